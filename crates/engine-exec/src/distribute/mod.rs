//! Passes over X on other processes (workers of a dask.distributed cluster, through the
//! Python package). A pass that can leave the process is a [`Kernel`]: a serialisable fold
//! of row blocks into a [`Partial`] with an associative merge. The X it folds travels as a
//! [`LineageSpec`]: the source as parameters and a path, the rows and columns read, and the
//! maps and views applied since, which a worker reopens and recomputes block by block.
//!
//! ```text
//! driver: fold_kernel ── LineageSpec + Task{kernel, blocks} ──> Distributor ──> workers
//!         merge in task order <──────────── Partial per task <── run_task (fold_ranges)
//! ```
//!
//! Without a distributor, or for a lineage that cannot be described (a concatenation), the
//! same kernel folds in this process: one code path for both.

mod kernel;
mod spec;

pub(crate) use kernel::{Kernel, Partial, project_block};
pub(crate) use spec::{LineageSpec, SourceSpec};

use engine_common::{Error, Result};
use engine_store::ReadCounter;
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// Runs a pass's tasks elsewhere (engine-py implements it over a dask client).
pub trait Distributor: Send + Sync + std::fmt::Debug {
    /// How many tasks to cut a pass into: at least one per worker thread of the cluster.
    fn tasks(&self) -> usize;

    /// Runs [`run_task`] on `lineage` (the same for every task) and each of `tasks`;
    /// returns their results in task order.
    ///
    /// # Errors
    /// When the cluster fails or a task does.
    fn run(&self, lineage: &[u8], tasks: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>>;
}

/// One task: a kernel over some of the pass's blocks.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Task {
    pub kernel: Kernel,
    pub blocks: Vec<(usize, usize)>,
}

/// What a task returns: its partial and the bytes its reads decoded.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TaskResult {
    pub partial: Partial,
    pub bytes: u64,
}

pub(crate) fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    postcard::to_stdvec(v).map_err(|e| Error::internal(format!("encoding a pass task: {e}")))
}

pub(crate) fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| {
        Error::usage(format!(
            "a pass task that this engine cannot read ({e}): are the driver and the workers \
             the same version of the engine?"
        ))
    })
}

/// A worker's side: rebuilds the lineage and folds the task's blocks (on all of this
/// process's cores); returns the encoded [`TaskResult`].
///
/// # Errors
/// When the task cannot be decoded, the source cannot be opened, or a block fails.
pub fn run_task(lineage: &[u8], task: &[u8]) -> Result<Vec<u8>> {
    let spec: LineageSpec = decode(lineage)?;
    let task: Task = decode(task)?;
    let counter = ReadCounter::new();
    let lin = spec.open(&counter)?;
    let ranges: Vec<Range<usize>> = task.blocks.iter().map(|&(a, b)| a..b).collect();
    let kernel = &task.kernel;
    let partial = crate::pass::fold_ranges(
        &lin,
        &ranges,
        &indicatif::ProgressBar::hidden(),
        || kernel.init(lin.n_vars),
        |acc, r, x| kernel.apply(acc, r, x),
        Partial::merge,
    )?;
    encode(&TaskResult {
        partial,
        bytes: counter.get(),
    })
}

/// Joins two encoded task results, `b`'s blocks after `a`'s: a distributor's tree-reduce
/// on the cluster, so the driver receives one partial instead of one per task.
///
/// # Errors
/// When a result cannot be decoded.
pub fn merge_results(a: &[u8], b: &[u8]) -> Result<Vec<u8>> {
    let a: TaskResult = decode(a)?;
    let b: TaskResult = decode(b)?;
    // `Partial::merge` keeps the first of two kinds; results that cross processes are
    // checked instead of trusted.
    if std::mem::discriminant(&a.partial) != std::mem::discriminant(&b.partial) {
        return Err(Error::internal(
            "merging the results of two different passes",
        ));
    }
    encode(&TaskResult {
        partial: a.partial.merge(b.partial),
        bytes: a.bytes + b.bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::XBlock;
    use engine_ops::stats::Gram;
    use std::sync::Arc;

    /// A Gram partial crosses processes with every number kept, and merges as before.
    #[test]
    fn a_gram_partial_survives_the_wire() {
        let x = ndarray::array![[1.0, 2.0, 0.5], [3.0, -1.0, 4.0], [0.25, 0.0, 2.0]];
        let mut g = Gram::new(vec![1.0, 0.5, 2.0]);
        g.update(x.view());
        let back: Partial = decode(&encode(&Partial::Gram(g.clone())).unwrap()).unwrap();
        let back = back.gram().unwrap();
        assert_eq!((back.n, &back.shift, &back.sum), (g.n, &g.shift, &g.sum));
        for i in 0..3 {
            for j in 0..3 {
                assert_eq!(back.xtx[(i, j)], g.xtx[(i, j)]);
            }
        }
        // Its cross products, shifted: the first row and column by hand.
        let shifted = [0.0, 1.5, -1.5, 2.0, -1.5, 2.0, -0.75, -0.5, 0.0];
        let xtx00: f64 = (0..3).map(|r| shifted[r * 3] * shifted[r * 3]).sum();
        assert_eq!(g.xtx[(0, 0)], xtx00);
    }

    fn task_result(kernel: &Kernel, rows: Range<usize>, x: &ndarray::Array2<f64>) -> Vec<u8> {
        let mut partial = kernel.init(x.ncols());
        let block = XBlock::Dense(x.slice(ndarray::s![rows.clone(), ..]).to_owned());
        kernel.apply(&mut partial, rows, &block).unwrap();
        encode(&TaskResult { partial, bytes: 1 }).unwrap()
    }

    /// A randomized PCA pass cut into two tasks, each decoded from the wire and merged,
    /// equals the pass folded whole (the values are exact in binary, so every bit agrees).
    #[test]
    fn a_cov_product_cut_into_tasks_equals_the_whole_fold() {
        let x = ndarray::array![
            [1.0, 2.0, 0.5],
            [3.0, -1.0, 4.0],
            [0.25, 0.0, 2.0],
            [1.5, 1.0, -2.0]
        ];
        let kernel = Kernel::CovProduct {
            shift: Arc::new(vec![1.0, 0.5, 2.0]),
            w: Arc::new(vec![1.0, 0.0, 0.5, 1.0, -1.0, 2.0]),
        };
        let whole: TaskResult = decode(&task_result(&kernel, 0..4, &x)).unwrap();
        let merged = merge_results(
            &task_result(&kernel, 0..2, &x),
            &task_result(&kernel, 2..4, &x),
        )
        .unwrap();
        let merged: TaskResult = decode(&merged).unwrap();
        assert_eq!(merged.bytes, 2);
        let (a, b) = (
            merged.partial.cov_product().unwrap(),
            whole.partial.cov_product().unwrap(),
        );
        assert_eq!(a.n, 4);
        assert_eq!(encode(&a).unwrap(), encode(&b).unwrap());
    }

    /// Projection tasks return their rows, which come back in row order however the results
    /// were merged: onto the first two unit vectors, X_pca is X's first two columns.
    #[test]
    fn projected_rows_come_back_in_row_order() {
        let x = ndarray::array![[1.0, 2.0, 0.5], [3.0, -1.0, 4.0], [0.25, 0.0, 2.0]];
        let kernel = Kernel::Project {
            mean: vec![0.0; 3],
            scale: None,
            components: Arc::new(ndarray::array![[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]),
        };
        let merged = merge_results(
            &task_result(&kernel, 2..3, &x),
            &task_result(&kernel, 0..2, &x),
        )
        .unwrap();
        let merged: TaskResult = decode(&merged).unwrap();
        let rows = merged.partial.rows(3).unwrap();
        assert_eq!(
            rows,
            ndarray::array![[1.0f32, 2.0], [3.0, -1.0], [0.25, 0.0]]
        );
        // A result of another pass is refused, not folded in.
        let other = task_result(&Kernel::Moments, 0..3, &x);
        let err = merge_results(&task_result(&kernel, 0..3, &x), &other).unwrap_err();
        assert!(err.to_string().contains("two different passes"), "{err}");
    }

    /// Row sums from several tasks merge into row order whatever order the tasks finish in.
    #[test]
    fn row_sums_come_back_in_row_order() {
        let a = Partial::RowSums {
            blocks: vec![(4, vec![4.0, 5.0], vec![1, 1])],
            non_count: Some((5, 0.5)),
        };
        let b = Partial::RowSums {
            blocks: vec![(0, vec![0.0, 1.0, 2.0, 3.0], vec![0, 1, 1, 1])],
            non_count: Some((2, 1.5)),
        };
        let (sums, nnz, first) = a.merge(b).row_sums().unwrap();
        assert_eq!(sums, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(nnz, [0, 1, 1, 1, 1, 1]);
        assert_eq!(first, Some((2, 1.5)));
    }
}
