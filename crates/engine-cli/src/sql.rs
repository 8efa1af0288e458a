//! `engine sql`: SQL over obs/var of one or more datasets.

use anyhow::Result;
use std::path::Path;

pub(crate) fn sql(
    query: &str,
    data: &[String],
    output: Option<&Path>,
    overwrite: bool,
) -> Result<()> {
    let mut session = engine::SqlSession::new();
    for d in data {
        // `name=path`, unless the whole argument is an existing path containing `=`.
        match d.split_once('=') {
            Some((name, path)) if !Path::new(d).exists() => {
                session.add(Some(name), Path::new(path))?
            }
            _ => session.add(None, Path::new(d))?,
        }
    }
    match output {
        Some(path) => {
            session.query_to_file(query, path, overwrite)?;
            eprintln!("wrote {}", path.display());
        }
        None => {
            let (_, batches) = session.query(query)?;
            println!("{}", engine::format_table(&batches)?);
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            eprintln!("{rows} row{}", if rows == 1 { "" } else { "s" });
        }
    }
    Ok(())
}
