//! `engine inspect`: what is in a store and how it is stored.

use anyhow::Result;
use engine::Dataset;
use serde_json::json;
use std::path::Path;

pub(crate) fn inspect(path: &Path, as_json: bool, head: usize) -> Result<()> {
    let ds = Dataset::open(path)?;
    let elements = ds.summarize()?;
    let obs = ds.obs(None);
    let var = ds.var(None);
    let frame_json = |f: &engine::Frame| {
        let mut cols = vec![
            json!({"name": f.index_name, "index": true, "type": f.index.type_name(), "encoding": f.index.encoding(),
            "head": (0..head.min(f.n_rows())).map(|i| f.index.render(i)).collect::<Vec<_>>()}),
        ];
        for (n, c) in &f.columns {
            cols.push(
                json!({"name": n, "type": c.type_name(), "encoding": c.encoding(),
                "head": (0..head.min(c.len())).map(|i| c.render(i)).collect::<Vec<_>>()}),
            );
        }
        cols
    };
    if as_json {
        let out = json!({
            "path": path.display().to_string(),
            "format": ds.format().name(),
            "n_obs": ds.n_obs(),
            "n_vars": ds.n_vars(),
            "elements": elements.iter().map(|e| json!({
                "path": e.path, "encoding": e.encoding, "dtype": e.dtype, "shape": e.shape, "nnz": e.nnz, "error": e.error,
                "storage": e.storage.iter().map(|(p, i)| json!({"array": p, "chunks": i.chunks, "shards": i.shards,
                    "compression": i.compression, "stored_bytes": i.stored_bytes})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "obs": obs.as_ref().map(frame_json).map_err(|e| e.to_string()),
            "var": var.as_ref().map(frame_json).map_err(|e| e.to_string()),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("{} ({})", path.display(), ds.format().name());
    println!(
        "AnnData object with n_obs × n_vars = {} × {}",
        ds.n_obs(),
        ds.n_vars()
    );
    println!();
    println!(
        "{:<28} {:<28} {:<10} {:<18} nnz",
        "element", "encoding", "dtype", "shape"
    );
    for e in &elements {
        let shape = e
            .shape
            .as_ref()
            .map(|s| format!("{s:?}"))
            .unwrap_or_default();
        let nnz = e.nnz.map(|n| n.to_string()).unwrap_or_default();
        println!(
            "{:<28} {:<28} {:<10} {:<18} {}",
            e.path,
            e.encoding,
            e.dtype.clone().unwrap_or_default(),
            shape,
            nnz
        );
        if let Some(err) = &e.error {
            println!("{:<28} ! {err}", "");
        }
        if matches!(e.encoding.as_str(), "array" | "csr_matrix" | "csc_matrix")
            && !e.path.starts_with("obs/")
            && !e.path.starts_with("var/")
        {
            for (p, i) in &e.storage {
                let chunks = i
                    .chunks
                    .as_ref()
                    .map(|c| format!("chunks {c:?}"))
                    .unwrap_or_else(|| "contiguous".into());
                let shards = i
                    .shards
                    .as_ref()
                    .map(|s| format!(" shards {s:?}"))
                    .unwrap_or_default();
                let comp = if i.compression.is_empty() {
                    "uncompressed".to_string()
                } else {
                    i.compression.join(" + ")
                };
                println!("{:<28}   {p}: {chunks}{shards}, {comp}", "");
            }
        }
    }
    for (name, frame) in [("obs", obs), ("var", var)] {
        println!();
        match frame {
            Ok(f) => {
                println!("{name}: {} rows, {} columns", f.n_rows(), f.columns.len());
                let preview = |c: &engine::Column| {
                    (0..head.min(c.len()))
                        .map(|i| c.render(i))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                println!(
                    "  {:<24} {:<28} {}",
                    format!("{} (index)", f.index_name),
                    f.index.type_name(),
                    preview(&f.index)
                );
                for (n, c) in &f.columns {
                    println!("  {:<24} {:<28} {}", n, c.type_name(), preview(c));
                }
            }
            Err(e) => println!("{name}: unreadable: {e}"),
        }
    }
    Ok(())
}
