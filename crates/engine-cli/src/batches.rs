//! `engine batches`: one or more epochs of random minibatches from a preshuffled collection,
//! timed, with a check that every cell came once per epoch.

use anyhow::Result;
use engine::loader::{Collection, LoaderOptions, for_each_batch};
use std::path::Path;

pub(crate) fn batches(path: &Path, o: &LoaderOptions, epochs: usize) -> Result<()> {
    let c = Collection::open(path)?;
    let n = c.n_obs();
    println!(
        "{}: {n} cells x {} genes; batch_size {}, chunk_size {}, preload_nchunks {}, seed {}",
        path.display(),
        c.n_vars(),
        o.batch_size,
        o.chunk_size,
        o.preload_nchunks,
        o.seed
    );
    for epoch in 0..epochs {
        let opts = LoaderOptions {
            seed: o.seed.wrapping_add(epoch as u64),
            ..o.clone()
        };
        let mut seen = vec![false; n];
        let (mut cells, mut batches) = (0usize, 0usize);
        let t = std::time::Instant::now();
        for_each_batch(&c, &opts, |b| {
            for &i in &b.index {
                if std::mem::replace(&mut seen[i], true) {
                    return Err(engine::EngineError::internal(format!(
                        "cell {i} came twice in an epoch"
                    )));
                }
            }
            cells += b.index.len();
            batches += 1;
            Ok(())
        })?;
        let secs = t.elapsed().as_secs_f64();
        if cells != n {
            anyhow::bail!("an epoch gave {cells} of {n} cells");
        }
        println!(
            "epoch {epoch}: {batches} batches, {cells} cells in {secs:.2}s: {:.0} cells/s",
            cells as f64 / secs.max(1e-9)
        );
    }
    Ok(())
}
