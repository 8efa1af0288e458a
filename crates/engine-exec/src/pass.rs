//! The two shapes of a pass over X: a fold of row blocks into per-worker accumulators with an
//! associative merge (statistics, Gram), and a per-block map whose results keep block order.

use crate::block::XBlock;
use crate::context::RunContext;
use crate::distribute::{Kernel, LineageSpec, Partial, Task, TaskResult, decode, encode};
use crate::lineage::Lineage;
use engine_common::Result;
use indicatif::ProgressBar;
use rayon::prelude::*;
use std::ops::Range;

/// Folds `f` over row blocks in parallel and merges the partials.
pub(crate) fn fold_pass<P: Send>(
    lineage: &Lineage,
    bar: &ProgressBar,
    init: impl Fn() -> P + Sync + Send,
    f: impl Fn(&mut P, Range<usize>, &XBlock) -> Result<()> + Sync + Send,
    merge: impl Fn(P, P) -> P + Sync + Send,
) -> Result<(P, usize)> {
    let ranges = lineage.blocks();
    let out = fold_ranges(lineage, &ranges, bar, init, f, merge)?;
    Ok((out, ranges.len()))
}

/// Folds a kernel over X's row blocks: on the run's distributor when it has one and X can
/// be described to another process, else here. Partials merge in block order either way.
pub(crate) fn fold_kernel(
    lineage: &Lineage,
    cx: &RunContext<'_>,
    bar: &ProgressBar,
    kernel: &Kernel,
) -> Result<(Partial, usize)> {
    if let Some(out) = distribute(lineage, cx, bar, kernel)? {
        return Ok(out);
    }
    fold_pass(
        lineage,
        bar,
        || kernel.init(lineage.n_vars()),
        |acc, r, x| kernel.apply(acc, r, x),
        Partial::merge,
    )
}

/// Runs a kernel on the run's distributor; `None` when the run has none or X cannot be
/// described to another process (a concatenation).
pub(crate) fn distribute(
    lineage: &Lineage,
    cx: &RunContext<'_>,
    bar: &ProgressBar,
    kernel: &Kernel,
) -> Result<Option<(Partial, usize)>> {
    let spec = cx
        .opts
        .distributor
        .as_ref()
        .and_then(|d| Some((d, LineageSpec::of(lineage)?)));
    let Some((distributor, spec)) = spec else {
        return Ok(None);
    };
    let ranges = lineage.blocks();
    // Contiguous groups of blocks, one task each: a worker reads one stretch of the file.
    let per_task = ranges.len().div_ceil(distributor.tasks().max(1)).max(1);
    let tasks = ranges
        .chunks(per_task)
        .map(|group| {
            encode(&Task {
                kernel: kernel.clone(),
                blocks: group.iter().map(|r| (r.start, r.end)).collect(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    // The distributor may have merged the results on the cluster already (a tree-reduce);
    // what comes back merges here in order.
    let results = distributor.run(&encode(&spec)?, tasks)?;
    let mut out = kernel.init(lineage.n_vars());
    for bytes in &results {
        let r: TaskResult = decode(bytes)?;
        cx.bytes.add(r.bytes);
        out = out.merge(r.partial);
    }
    bar.inc(ranges.len() as u64);
    bar.finish_and_clear();
    Ok(Some((out, ranges.len())))
}

/// Folds `f` over the blocks `ranges` in parallel and merges the partials in block order.
pub(crate) fn fold_ranges<P: Send>(
    lineage: &Lineage,
    ranges: &[Range<usize>],
    bar: &ProgressBar,
    init: impl Fn() -> P + Sync + Send,
    f: impl Fn(&mut P, Range<usize>, &XBlock) -> Result<()> + Sync + Send,
    merge: impl Fn(P, P) -> P + Sync + Send,
) -> Result<P> {
    let n = ranges.len();
    // One accumulator per worker over a contiguous share of the blocks: rayon's own fold
    // would create an accumulator per split, and a Gram partial is n_vars² doubles.
    let workers = rayon::current_num_threads().max(1);
    let share = n.div_ceil(workers).max(1);
    let partials: Vec<P> = ranges
        .par_chunks(share)
        .map(|group| -> Result<P> {
            let mut acc = init();
            for r in group {
                let x = lineage.block(r.clone())?;
                f(&mut acc, r.clone(), &x)?;
                bar.inc(1);
            }
            Ok(acc)
        })
        .collect::<Result<_>>()?;
    bar.finish_and_clear();
    Ok(partials.into_iter().reduce(&merge).unwrap_or_else(&init))
}

/// Runs `f` on every block in parallel; results in block order.
pub(crate) fn map_pass<T: Send>(
    lineage: &Lineage,
    bar: &ProgressBar,
    f: impl Fn(Range<usize>, &XBlock) -> Result<T> + Sync + Send,
) -> Result<(Vec<T>, usize)> {
    fold_pass(
        lineage,
        bar,
        Vec::new,
        |acc, r, x| {
            acc.push(f(r, x)?);
            Ok(())
        },
        |mut a, b| {
            a.extend(b);
            a
        },
    )
}

/// The values of X's columns `cols` (genes) for every row, gathered in one pass: a plot's
/// colour or a violin's values. Held as float32, as scanpy's plots read them.
pub(crate) fn gather_columns(
    lineage: &Lineage,
    cx: &RunContext<'_>,
    bar: &ProgressBar,
    cols: &[usize],
) -> Result<(Vec<Vec<f32>>, usize)> {
    let kernel = Kernel::Columns {
        cols: cols.to_vec(),
    };
    let (partial, blocks) = fold_kernel(lineage, cx, bar, &kernel)?;
    Ok((partial.columns(lineage.n_obs())?, blocks))
}
