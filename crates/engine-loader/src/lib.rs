//! Random minibatches of a preshuffled collection (`preshuffle`, or annbatch's
//! `DatasetCollection`), as a training loader draws them: chunk-then-shuffle, like annbatch's
//! `Loader`. The collection's rows are tiled into slices of `chunk_size` contiguous cells
//! whose order is shuffled; `preload_nchunks` slices at a time are read (large sequential
//! reads, the files in parallel), their cells permuted in memory and cut into batches of
//! `batch_size`. Every cell comes once per epoch; the same seed gives the same batches. The
//! next preload is read while the current one is handed out.
//!
//! ```text
//! rows   |----|----|----|----|----|--|        slices of chunk_size, order shuffled
//! load   [s3 s0 s5] -> permute -> |b|b|b|     preload_nchunks slices, batches of batch_size
//! ```

use engine_common::{Error, Result};
use engine_matrix::{AxisSelection, Block, Compressed, DType, DynArray, SparseFormat};
use engine_store::{Dataset, Matrix};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use std::ops::Range;
use std::path::Path;
use std::sync::mpsc;

/// A collection's datasets, in order, with where each one's rows begin.
#[derive(Debug)]
pub struct Collection {
    matrices: Vec<Matrix>,
    /// Each sparse dataset's row pointers, read once: every load then reads only the runs'
    /// values and indices.
    indptrs: Vec<Option<Vec<u64>>>,
    /// Every dataset is CSR of one value type that the store decodes straight into a load's
    /// buffers (sharded zarr v3, as preshuffle and annbatch write it).
    direct: Option<DType>,
    /// Row offsets of the datasets, and the total.
    offsets: Vec<usize>,
    n_vars: usize,
}

impl Collection {
    /// Opens the datasets `dataset_0`, `dataset_1`, … of the collection at `path` (a zarr
    /// group with annbatch's `encoding-type: annbatch-preshuffled`).
    ///
    /// # Errors
    /// When the path is not such a collection, or its datasets differ in genes.
    pub fn open(path: &Path) -> Result<Collection> {
        let mut names: Vec<(usize, String)> = std::fs::read_dir(path)
            .map_err(|e| Error::usage(format!("{}: {e}", path.display())))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let k = name.strip_prefix("dataset_")?.parse::<usize>().ok()?;
                Some((k, name))
            })
            .collect();
        names.sort();
        let root = std::fs::read_to_string(path.join("zarr.json")).unwrap_or_default();
        if names.is_empty() || !root.contains("annbatch-preshuffled") {
            return Err(Error::usage(format!(
                "{}: not a preshuffled collection (a zarr group marked `annbatch-preshuffled` with dataset_0, dataset_1, …)",
                path.display()
            )));
        }
        let mut matrices = Vec::new();
        let mut indptrs = Vec::new();
        let mut offsets = vec![0];
        let mut n_vars = None;
        for (_, name) in &names {
            let ds = Dataset::open(path.join(name))?;
            let x = ds
                .x()?
                .ok_or_else(|| Error::usage(format!("{}/{name} has no X", path.display())))?;
            match n_vars {
                None => n_vars = Some(x.n_cols()),
                Some(m) if m != x.n_cols() => {
                    return Err(Error::usage(format!(
                        "{}/{name} has {} genes and the first dataset {m}",
                        path.display(),
                        x.n_cols()
                    )));
                }
                Some(_) => {}
            }
            offsets.push(offsets[offsets.len() - 1] + x.n_rows());
            indptrs.push(match x.sparse_format() {
                Some(SparseFormat::Csr) => x.indptr()?,
                _ => None,
            });
            matrices.push(x);
        }
        let direct = direct_dtype(&matrices, &indptrs)?;
        Ok(Collection {
            matrices,
            indptrs,
            direct,
            offsets,
            n_vars: n_vars.unwrap_or(0),
        })
    }

    pub fn n_obs(&self) -> usize {
        self.offsets[self.matrices.len()]
    }

    pub fn n_vars(&self) -> usize {
        self.n_vars
    }

    /// Whether loads are decoded by the store straight into their buffers (see `read_direct`).
    pub fn reads_directly(&self) -> bool {
        self.direct.is_some()
    }

    /// The rows `runs` (global, ascending) as one block (CSR, or dense for dense X): the runs
    /// in each dataset split into groups read in parallel, in order.
    fn read(&self, runs: &[Range<usize>]) -> Result<Block> {
        let all = AxisSelection::from_runs(runs.to_vec());
        let groups = rayon::current_num_threads().max(1) * 4;
        let mut pieces: Vec<(usize, AxisSelection)> = Vec::new();
        for d in 0..self.matrices.len() {
            let sel = all.restrict(self.offsets[d]..self.offsets[d + 1]);
            let per = sel.runs().len().div_ceil(groups).max(1);
            for g in sel.runs().chunks(per) {
                pieces.push((d, AxisSelection::from_runs(g.to_vec())));
            }
        }
        if let Some(dtype) = self.direct {
            return self.read_direct(&pieces, dtype);
        }
        let blocks = pieces
            .par_iter()
            .map(|(d, rows)| {
                let m = &self.matrices[*d];
                if let Some(indptr) = &self.indptrs[*d] {
                    return m.read_csr_rows(indptr, rows).map(Block::Sparse);
                }
                Ok(
                    match m.read_block(rows, &AxisSelection::all(self.n_vars))? {
                        Block::Sparse(c) if c.format == SparseFormat::Csc => {
                            Block::Sparse(c.transpose_format())
                        }
                        b => b,
                    },
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let bad = |e: engine_matrix::LayoutError| Error::data(e.to_string());
        if blocks.iter().all(|b| matches!(b, Block::Sparse(_))) {
            let parts: Vec<Compressed> = blocks
                .into_iter()
                .filter_map(|b| match b {
                    Block::Sparse(c) => Some(c),
                    Block::Dense(_) => None,
                })
                .collect();
            return Compressed::concat_major(&parts)
                .map(Block::Sparse)
                .map_err(bad);
        }
        let arrays: Vec<&DynArray> = blocks
            .iter()
            .filter_map(|b| match b {
                Block::Dense(a) => Some(a),
                Block::Sparse(_) => None,
            })
            .collect();
        if arrays.len() != blocks.len() {
            return Err(Error::data("the collection mixes dense and sparse X"));
        }
        engine_matrix::concat_axis(&arrays, 0)
            .map(Block::Dense)
            .map_err(bad)
    }
}

impl Collection {
    /// The pieces' rows as one CSR block, each piece decoded by the store straight into its
    /// part of the block's values and indices (in parallel): no array per run and no
    /// concatenation after.
    fn read_direct(&self, pieces: &[(usize, AxisSelection)], dtype: DType) -> Result<Block> {
        let mut indptr = vec![0u64];
        let mut sizes = Vec::with_capacity(pieces.len());
        for (d, rows) in pieces {
            let ptr = self.indptrs[*d].as_deref().ok_or_else(|| {
                Error::internal("a direct read of a dataset without row pointers")
            })?;
            let start = *indptr.last().unwrap_or(&0);
            for r in rows.runs() {
                let base = *indptr.last().unwrap_or(&0);
                indptr.extend(
                    ptr[r.start + 1..=r.end]
                        .iter()
                        .map(|&p| p - ptr[r.start] + base),
                );
            }
            sizes.push((*indptr.last().unwrap_or(&0) - start) as usize);
        }
        let total: usize = sizes.iter().sum();
        let mut data = DynArray::zeros(dtype, &[total]);
        let mut indices = vec![0u32; total];
        let elem = dtype.size();
        {
            let bytes = engine_store::bytes_mut(&mut data)
                .ok_or_else(|| Error::internal(format!("direct read of {dtype} values")))?;
            let (mut rest_d, mut rest_i) = (bytes, indices.as_mut_slice());
            let mut jobs = Vec::with_capacity(pieces.len());
            for ((d, rows), &n) in pieces.iter().zip(&sizes) {
                let (dd, td) = rest_d.split_at_mut(n * elem);
                let (ii, ti) = rest_i.split_at_mut(n);
                (rest_d, rest_i) = (td, ti);
                jobs.push((*d, rows, dd, ii));
            }
            jobs.into_par_iter().try_for_each(|(d, rows, dd, ii)| {
                let ptr = self.indptrs[d].as_deref().unwrap_or_default();
                if self.matrices[d].read_csr_rows_into(ptr, rows, dd, ii)? {
                    Ok(())
                } else {
                    Err(Error::internal(
                        "a direct read the dataset offered was refused",
                    ))
                }
            })?;
        }
        let rows = indptr.len() - 1;
        Ok(Block::Sparse(Compressed {
            format: SparseFormat::Csr,
            shape: [rows, self.n_vars],
            indptr,
            indices,
            data,
        }))
    }
}

/// The value type every dataset's CSR X shares when the store reads each straight into a
/// load's buffers (checked with an empty read); `None` sends loads through `read_csr_rows`.
fn direct_dtype(matrices: &[Matrix], indptrs: &[Option<Vec<u64>>]) -> Result<Option<DType>> {
    let mut dtype = None;
    for (m, ptr) in matrices.iter().zip(indptrs) {
        let Some(ptr) = ptr else { return Ok(None) };
        let d = m.dtype();
        if dtype.is_some_and(|t| t != d)
            || !m.read_csr_rows_into(
                ptr,
                &AxisSelection::from_runs(Vec::new()),
                &mut [],
                &mut [],
            )?
        {
            return Ok(None);
        }
        dtype = Some(d);
    }
    Ok(dtype)
}

/// How batches are drawn (annbatch's `Loader` arguments and defaults).
#[derive(Debug, Clone)]
pub struct LoaderOptions {
    pub batch_size: usize,
    pub chunk_size: usize,
    pub preload_nchunks: usize,
    pub shuffle: bool,
    pub drop_last: bool,
    pub seed: u64,
}

impl Default for LoaderOptions {
    fn default() -> Self {
        LoaderOptions {
            batch_size: 1,
            chunk_size: 512,
            preload_nchunks: 32,
            shuffle: true,
            drop_last: false,
            seed: 0,
        }
    }
}

impl LoaderOptions {
    /// Refuses options no epoch can be drawn with.
    ///
    /// # Errors
    /// A zero size, or preloads that do not split into whole batches.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 || self.chunk_size == 0 || self.preload_nchunks == 0 {
            return Err(Error::usage(
                "batch_size, chunk_size and preload_nchunks must be at least 1",
            ));
        }
        // As annbatch requires: a preload splits into whole batches.
        let preload = self.chunk_size.saturating_mul(self.preload_nchunks);
        if !preload.is_multiple_of(self.batch_size) {
            return Err(Error::usage(format!(
                "chunk_size × preload_nchunks ({preload}) must be a multiple of batch_size ({})",
                self.batch_size
            )));
        }
        Ok(())
    }
}

/// One minibatch: its cells' rows of X (CSR, or dense) and their global positions in the
/// collection.
#[derive(Debug, Clone)]
pub struct Batch {
    pub x: Block,
    pub index: Vec<usize>,
}

/// Rows `rows` of a block, in that order.
fn take_rows(x: &Block, rows: &[usize]) -> Block {
    match x {
        Block::Sparse(c) => {
            let mut indptr = Vec::with_capacity(rows.len() + 1);
            indptr.push(0u64);
            let mut total = 0u64;
            for &r in rows {
                total += c.indptr[r + 1] - c.indptr[r];
                indptr.push(total);
            }
            let total = total as usize;
            // Whole rows are contiguous: copied a row slice at a time.
            let mut indices = Vec::with_capacity(total);
            for &r in rows {
                indices
                    .extend_from_slice(&c.indices[c.indptr[r] as usize..c.indptr[r + 1] as usize]);
            }
            let data = engine_matrix::dyn_rewrap!(&c.data, v => match v.as_slice() {
                Some(s) => {
                    let mut out = Vec::with_capacity(total);
                    for &r in rows {
                        out.extend_from_slice(&s[c.indptr[r] as usize..c.indptr[r + 1] as usize]);
                    }
                    ndarray::Array1::from(out).into_dyn()
                }
                None => ndarray::Array1::from_iter(
                    rows.iter()
                        .flat_map(|&r| c.indptr[r] as usize..c.indptr[r + 1] as usize)
                        .map(|k| v[[k]].clone()),
                )
                .into_dyn(),
            });
            Block::Sparse(Compressed {
                format: SparseFormat::Csr,
                shape: [rows.len(), c.shape[1]],
                indptr,
                indices,
                data,
            })
        }
        Block::Dense(a) => {
            Block::Dense(engine_matrix::dyn_rewrap!(a, v => v.select(ndarray::Axis(0), rows)))
        }
    }
}

/// The load requests of one epoch: groups of `preload_nchunks` slices of `chunk_size` rows,
/// the slices in a seeded random order (the short one last, as annbatch has it).
pub fn epoch_plan(n: usize, o: &LoaderOptions) -> Vec<Vec<Range<usize>>> {
    let chunk = o.chunk_size.max(1);
    let mut slices: Vec<Range<usize>> = (0..n)
        .step_by(chunk)
        .map(|s| s..(s + chunk).min(n))
        .collect();
    if o.shuffle {
        let short = slices.last().filter(|r| r.len() < chunk).cloned();
        if short.is_some() {
            slices.pop();
        }
        slices.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(o.seed));
        slices.extend(short);
    }
    slices
        .chunks(o.preload_nchunks.max(1))
        .map(<[Range<usize>]>::to_vec)
        .collect()
}

/// Draws one epoch of batches from `c`, calling `f` on each in order; the next preload is read
/// on another thread while `f` runs.
///
/// # Errors
/// On read failures, or what `f` returns.
pub fn for_each_batch(
    c: &Collection,
    o: &LoaderOptions,
    mut f: impl FnMut(Batch) -> Result<()>,
) -> Result<()> {
    o.validate()?;
    let plan = epoch_plan(c.n_obs(), o);
    // The in-memory shuffle draws from its own stream of the seed: `seed + 1` would repeat
    // the slice order of the epoch seeded `seed + 1`.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(o.seed);
    rng.set_stream(1);
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<Result<(Vec<usize>, Block)>>(1);
        let reader = scope.spawn(move || {
            for request in &plan {
                // Sorted runs read sequentially; the rows keep the request's slice order.
                let mut runs = request.clone();
                runs.sort_by_key(|r| r.start);
                let got = c.read(&runs).map(|x| {
                    let rows: Vec<usize> = runs.iter().flat_map(Clone::clone).collect();
                    (rows, x)
                });
                if tx.send(got).is_err() {
                    break;
                }
            }
        });
        for got in rx {
            let (rows, x) = got?;
            let mut order: Vec<usize> = (0..rows.len()).collect();
            if o.shuffle {
                order.shuffle(&mut rng);
            }
            for part in order.chunks(o.batch_size) {
                if o.drop_last && part.len() < o.batch_size {
                    continue;
                }
                let batch = Batch {
                    x: take_rows(&x, part),
                    index: part.iter().map(|&i| rows[i]).collect(),
                };
                f(batch)?;
            }
        }
        reader
            .join()
            .map_err(|_| Error::internal("the loader's reader thread panicked"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each row in exactly one slice; slices whole but the last; the same seed, the same plan.
    #[test]
    fn an_epoch_covers_every_row_once() {
        let o = LoaderOptions {
            chunk_size: 10,
            preload_nchunks: 3,
            seed: 5,
            ..Default::default()
        };
        let plan = epoch_plan(95, &o);
        let mut rows: Vec<usize> = plan.iter().flatten().flat_map(Clone::clone).collect();
        assert_eq!(plan.len(), 4);
        assert_eq!(plan.last().unwrap().last().unwrap().len(), 5);
        rows.sort_unstable();
        assert_eq!(rows, (0..95).collect::<Vec<_>>());
        assert_eq!(plan, epoch_plan(95, &o));
        assert_ne!(
            plan,
            epoch_plan(
                95,
                &LoaderOptions {
                    seed: 6,
                    ..o.clone()
                }
            )
        );
        let ordered = epoch_plan(
            25,
            &LoaderOptions {
                shuffle: false,
                ..o
            },
        );
        assert_eq!(ordered, vec![vec![0..10, 10..20, 20..25]]);
    }
}
