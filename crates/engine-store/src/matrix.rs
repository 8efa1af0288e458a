//! Lazy matrix elements (X, layers, obsm, varm, obsp, varp, raw/X) read block by block.
//!
//! A block read touches only the storage the selection needs: for dense arrays one hyperslab
//! per run of selected rows (and columns); for CSR, the selected rows' slice of `indptr`
//! first, then only those rows' ranges of `data` and `indices`.

use crate::backend::{ArrayInfo, Store, StoredType, join};
use crate::encoding::{Encoding, SparseInfo, bad, encoding_of, sparse_info, to_indices, to_indptr};
use engine_common::{Error, Result};
use engine_matrix::{AxisSelection, Block, Compressed, DType, DynArray, SparseFormat, concat_axis};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

mod csr_rows;
pub use csr_rows::bytes_mut;

/// Counts the bytes of matrix data a run's reads decode from storage (dense values; sparse
/// values, indices and row pointers), for `--metrics`. One per run, shared by the matrices
/// it opens, so two runs in one process never mix their figures.
#[derive(Debug, Clone, Default)]
pub struct ReadCounter(Arc<AtomicU64>);

impl ReadCounter {
    pub fn new() -> ReadCounter {
        ReadCounter::default()
    }

    /// Bytes counted so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Adds bytes decoded elsewhere (another process's share of a pass).
    pub fn add(&self, bytes: u64) {
        self.0.fetch_add(bytes, Ordering::Relaxed);
    }

    fn count(&self, block: &Block) {
        let n = match block {
            Block::Dense(a) => a.len() * a.dtype().size(),
            Block::Sparse(c) => {
                c.nnz() * (c.data.dtype().size() + std::mem::size_of::<u32>())
                    + c.indptr.len() * std::mem::size_of::<u64>()
            }
        };
        self.0.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// How a matrix element is stored.
#[derive(Debug, Clone, PartialEq)]
pub enum MatrixLayout {
    Dense(ArrayInfo),
    Sparse(SparseInfo),
}

/// A lazy handle to one matrix element.
#[derive(Debug, Clone)]
pub struct Matrix {
    store: Arc<dyn Store>,
    path: String,
    layout: MatrixLayout,
    /// Where block reads count what they decode; none by default.
    counter: Option<ReadCounter>,
}

impl Matrix {
    /// Opens the matrix at `path`, reading metadata only.
    ///
    /// # Errors
    /// When `path` is not a dense array or sparse matrix.
    pub fn open(store: Arc<dyn Store>, path: &str) -> Result<Matrix> {
        let layout = match encoding_of(store.as_ref(), path)? {
            Encoding::Array => {
                let info = store.array_info(path)?;
                match info.dtype {
                    StoredType::Plain(d) if d.is_numeric() => {}
                    ref other => {
                        return Err(bad(
                            store.as_ref(),
                            path,
                            format!("matrix has element type {other}, expected numbers"),
                        ));
                    }
                }
                if info.shape.is_empty() {
                    return Err(bad(store.as_ref(), path, "matrix is a scalar"));
                }
                MatrixLayout::Dense(info)
            }
            Encoding::Sparse(f) => MatrixLayout::Sparse(sparse_info(store.as_ref(), path, f)?),
            Encoding::Unknown { kind, version } => {
                return Err(Error::unsupported(
                    engine_common::Location::new(store.path(), format!("/{path}")),
                    format!("matrix encoding `{kind}` version `{version}`"),
                ));
            }
            other => {
                return Err(bad(
                    store.as_ref(),
                    path,
                    format!("expected a matrix, found {}", other.name()),
                ));
            }
        };
        Ok(Matrix {
            store,
            path: path.to_string(),
            layout,
            counter: None,
        })
    }

    /// The same matrix, its block reads counted in `counter`.
    pub fn counted(mut self, counter: ReadCounter) -> Matrix {
        self.counter = Some(counter);
        self
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn layout(&self) -> &MatrixLayout {
        &self.layout
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Full shape (dense arrays may have more than two dimensions, e.g. obsm entries).
    pub fn shape(&self) -> Vec<usize> {
        match &self.layout {
            MatrixLayout::Dense(i) => i.shape.iter().map(|&s| s as usize).collect(),
            MatrixLayout::Sparse(s) => s.shape.to_vec(),
        }
    }

    pub fn n_rows(&self) -> usize {
        self.shape()[0]
    }

    /// Columns (1 for a 1-D array).
    pub fn n_cols(&self) -> usize {
        self.shape().get(1).copied().unwrap_or(1)
    }

    pub fn dtype(&self) -> DType {
        match &self.layout {
            MatrixLayout::Dense(i) => match i.dtype {
                StoredType::Plain(d) => d,
                _ => DType::F64,
            },
            MatrixLayout::Sparse(s) => s.dtype,
        }
    }

    pub fn sparse_format(&self) -> Option<SparseFormat> {
        match &self.layout {
            MatrixLayout::Sparse(s) => Some(s.format),
            MatrixLayout::Dense(_) => None,
        }
    }

    /// Stored non-zeros (sparse) or elements (dense).
    pub fn nnz(&self) -> u64 {
        match &self.layout {
            MatrixLayout::Dense(i) => i.shape.iter().product(),
            MatrixLayout::Sparse(s) => s.nnz,
        }
    }

    /// Storage layout of the values: the dense array itself or a sparse matrix's `data`.
    ///
    /// # Errors
    /// On store failures.
    pub fn value_info(&self) -> Result<ArrayInfo> {
        match &self.layout {
            MatrixLayout::Dense(i) => Ok(i.clone()),
            MatrixLayout::Sparse(_) => self.store.array_info(&join(&self.path, "data")),
        }
    }

    /// Storage layout of a sparse matrix's `indices`.
    ///
    /// # Errors
    /// On store failures.
    pub fn index_info(&self) -> Result<Option<ArrayInfo>> {
        match &self.layout {
            MatrixLayout::Dense(_) => Ok(None),
            MatrixLayout::Sparse(_) => self
                .store
                .array_info(&join(&self.path, "indices"))
                .map(Some),
        }
    }

    /// Reads the whole matrix.
    ///
    /// # Errors
    /// On damaged data or store failures.
    pub fn read_all(&self) -> Result<Block> {
        self.read_block(
            &AxisSelection::all(self.n_rows()),
            &AxisSelection::all(self.n_cols()),
        )
    }

    /// Whether reads are network requests (a store opened by URL).
    pub fn is_remote(&self) -> bool {
        self.store.is_remote()
    }

    /// Reads the rows and columns selected.
    ///
    /// # Errors
    /// When the selection is out of range, the data is damaged or the store fails.
    pub fn read_block(&self, rows: &AxisSelection, cols: &AxisSelection) -> Result<Block> {
        if rows.end() > self.n_rows() || cols.end() > self.n_cols() {
            return Err(Error::usage(format!(
                "selection rows ..{} × cols ..{} is out of range for {} of shape {:?}",
                rows.end(),
                cols.end(),
                self.path,
                self.shape()
            )));
        }
        let block = match &self.layout {
            MatrixLayout::Dense(info) => self.read_dense(info, rows, cols).map(Block::Dense),
            MatrixLayout::Sparse(info) => self.read_sparse(info, rows, cols).map(Block::Sparse),
        }?;
        if let Some(c) = &self.counter {
            c.count(&block);
        }
        Ok(block)
    }

    /// Reads a contiguous range of rows, all columns.
    ///
    /// # Errors
    /// As [`Matrix::read_block`].
    pub fn read_rows(&self, rows: Range<usize>) -> Result<Block> {
        self.read_block(
            &AxisSelection::range(rows),
            &AxisSelection::all(self.n_cols()),
        )
    }

    fn read_dense(
        &self,
        info: &ArrayInfo,
        rows: &AxisSelection,
        cols: &AxisSelection,
    ) -> Result<DynArray> {
        let ndim = info.shape.len();
        let dtype = self.dtype();
        let mut shape_out: Vec<usize> = info.shape.iter().map(|&s| s as usize).collect();
        shape_out[0] = rows.len();
        if ndim > 1 {
            shape_out[1] = cols.len();
        }
        if rows.is_empty() || (ndim > 1 && cols.is_empty()) {
            return Ok(DynArray::zeros(dtype, &shape_out));
        }
        if self.store.is_remote()
            && ndim > 1
            && let Some(chunks) = info.chunks.as_ref().filter(|c| c.len() >= 2)
        {
            return self.read_dense_remote(info, chunks, rows, cols);
        }
        // Many scattered runs: their bounding range, read once, the columns then selected in
        // memory.
        let col_runs: Vec<Range<usize>> = if ndim == 1 {
            vec![0..1]
        } else if cols.runs().len() > 8 {
            vec![cols.runs()[0].start..cols.end()]
        } else {
            cols.runs().to_vec()
        };
        let regrouped = ndim > 1 && col_runs.as_slice() != cols.runs();
        let mut row_parts = Vec::with_capacity(rows.runs().len());
        for r in rows.runs() {
            let mut col_parts = Vec::with_capacity(col_runs.len());
            for c in &col_runs {
                let mut sel: Vec<Range<u64>> = vec![r.start as u64..r.end as u64];
                if ndim > 1 {
                    sel.push(c.start as u64..c.end as u64);
                }
                sel.extend(info.shape.iter().skip(2).map(|&s| 0..s));
                col_parts.push(self.store.read(&self.path, &sel)?);
            }
            let refs: Vec<&DynArray> = col_parts.iter().collect();
            row_parts.push(if refs.len() == 1 {
                col_parts.swap_remove(0)
            } else {
                concat_axis(&refs, 1).map_err(|e| Error::internal(e.to_string()))?
            });
        }
        let refs: Vec<&DynArray> = row_parts.iter().collect();
        let mut out = if refs.len() == 1 {
            row_parts.swap_remove(0)
        } else {
            concat_axis(&refs, 0).map_err(|e| Error::internal(e.to_string()))?
        };
        if regrouped {
            out = engine_matrix::select_axis(&out, 1, &positions_in(cols, &col_runs));
        }
        Ok(out)
    }

    /// A dense read over a network: every chunk holding selected values is fetched once,
    /// whole, and the selected rows and columns kept from it. The chunks of a piece of at most
    /// [`PIECE_BYTES`] are fetched concurrently ahead ([`Store::prefetch`]) and then decoded
    /// one by one, each cut down to the selection before the next: a block of scattered rows
    /// over chunks as tall as the matrix never holds more than a piece's compressed chunks
    /// and one decoded chunk, and no chunk is scattered into a wide buffer first.
    fn read_dense_remote(
        &self,
        info: &ArrayInfo,
        chunks: &[u64],
        rows: &AxisSelection,
        cols: &AxisSelection,
    ) -> Result<DynArray> {
        let (n, m) = (info.shape[0] as usize, info.shape[1] as usize);
        let (height, width) = (chunks[0].max(1) as usize, chunks[1].max(1) as usize);
        // A shard's chunks come in one coalesced range request after its index, so a piece
        // spans whole shards when that fits.
        let shard = info
            .shards
            .as_ref()
            .and_then(|s| s.get(1))
            .map_or(width, |&s| s as usize);
        let row_reads = chunk_runs(rows.runs(), height, height, n);
        let tallest = row_reads.iter().map(Range::len).max().unwrap_or(1);
        let trailing: Vec<Range<u64>> = info.shape.iter().skip(2).map(|&s| 0..s).collect();
        let per_col = tallest
            * trailing.iter().map(|r| r.end).product::<u64>() as usize
            * self.dtype().size();
        let piece = pieces_of(per_col, width, shard);
        let steps = |r: &Range<usize>, step: usize| -> Vec<Range<usize>> {
            (r.start..r.end)
                .step_by(step)
                .map(|s| s..(s + step).min(r.end))
                .collect()
        };
        let col_reads: Vec<Range<usize>> = chunk_runs(cols.runs(), width, shard, m)
            .iter()
            .flat_map(|r| steps(r, piece))
            .collect();
        let stack = |mut parts: Vec<DynArray>, axis: usize| -> Result<DynArray> {
            if parts.len() == 1 {
                return Ok(parts.swap_remove(0));
            }
            let refs: Vec<&DynArray> = parts.iter().collect();
            concat_axis(&refs, axis).map_err(|e| Error::internal(e.to_string()))
        };
        let mut row_parts = Vec::with_capacity(row_reads.len());
        for rr in &row_reads {
            let mut col_parts = Vec::new();
            for cr in &col_reads {
                if cols.restrict(cr.clone()).is_empty() {
                    continue;
                }
                let mut sel = vec![
                    rr.start as u64..rr.end as u64,
                    cr.start as u64..cr.end as u64,
                ];
                sel.extend(trailing.iter().cloned());
                let _held = self.store.prefetch(&self.path, &sel)?;
                // The piece's chunks with selected values, column by column.
                let jobs: Vec<(Range<usize>, Range<usize>)> = steps(cr, width)
                    .into_iter()
                    .filter(|c| !cols.restrict(c.clone()).is_empty())
                    .flat_map(|c| {
                        steps(rr, height)
                            .into_iter()
                            .filter(|r| !rows.restrict(r.clone()).is_empty())
                            .map(move |r| (c.clone(), r))
                    })
                    .collect();
                let decoded = on_threads(jobs.len(), |k| {
                    let (c, r) = &jobs[k];
                    let mut sel = vec![r.start as u64..r.end as u64, c.start as u64..c.end as u64];
                    sel.extend(trailing.iter().cloned());
                    let mut part = self.store.read(&self.path, &sel)?;
                    let (keep_rows, keep_cols) =
                        (rows.restrict(r.clone()), cols.restrict(c.clone()));
                    if !keep_rows.is_full(r.len()) {
                        part = engine_matrix::select_axis(&part, 0, &keep_rows);
                    }
                    if !keep_cols.is_full(c.len()) {
                        part = engine_matrix::select_axis(&part, 1, &keep_cols);
                    }
                    Ok(part)
                })?;
                let mut stacked = Vec::new();
                for (k, part) in decoded.into_iter().enumerate() {
                    stacked.push(part);
                    if jobs.get(k + 1).is_none_or(|next| next.0 != jobs[k].0) {
                        col_parts.push(stack(std::mem::take(&mut stacked), 0)?);
                    }
                }
            }
            row_parts.push(stack(col_parts, 1)?);
        }
        stack(row_parts, 0)
    }

    fn read_sparse(
        &self,
        info: &SparseInfo,
        rows: &AxisSelection,
        cols: &AxisSelection,
    ) -> Result<Compressed> {
        let (major, minor) = match info.format {
            SparseFormat::Csr => (rows, cols),
            SparseFormat::Csc => (cols, rows),
        };
        let n_minor = if info.format == SparseFormat::Csr {
            info.shape[1]
        } else {
            info.shape[0]
        };
        let store = self.store.as_ref();
        let indptr_path = join(&self.path, "indptr");
        let indices_path = join(&self.path, "indices");
        let data_path = join(&self.path, "data");
        // Over a network each run would cost its own requests for pointers, indices and
        // values: runs closer than `REMOTE_GAP` are read as one and the rows between them
        // dropped in memory.
        let groups: Vec<Range<usize>> = if store.is_remote() {
            let mut g: Vec<Range<usize>> = Vec::new();
            for r in major.runs() {
                match g.last_mut() {
                    Some(last) if r.start - last.end <= REMOTE_GAP => last.end = r.end,
                    _ => g.push(r.clone()),
                }
            }
            g
        } else {
            major.runs().to_vec()
        };
        let mut indptr = vec![0u64];
        let mut idx_parts = Vec::new();
        let mut data_parts = Vec::new();
        for r in &groups {
            let ptr = to_indptr(
                store,
                &indptr_path,
                &store.read(&indptr_path, &[r.start as u64..r.end as u64 + 1])?,
            )?;
            if let Some(p) = ptr.windows(2).position(|w| w[0] > w[1]) {
                return Err(bad(
                    store,
                    &indptr_path,
                    format!("indptr is not monotonic at position {}", r.start + p + 1),
                ));
            }
            let (lo, hi) = (ptr[0], *ptr.last().unwrap_or(&0));
            if hi > info.nnz {
                return Err(bad(
                    store,
                    &indptr_path,
                    format!(
                        "indptr points to {hi} but data has only {} entries",
                        info.nnz
                    ),
                ));
            }
            let base = *indptr.last().unwrap_or(&0);
            indptr.extend(ptr[1..].iter().map(|&p| p - lo + base));
            if hi > lo {
                let idx = store.read(&indices_path, &[lo..hi])?;
                idx_parts.push(to_indices(store, &indices_path, &idx, n_minor)?);
                data_parts.push(store.read(&data_path, &[lo..hi])?);
            }
        }
        if info.format == SparseFormat::Csr
            && major.is_full(info.shape[0])
            && indptr.last() != Some(&info.nnz)
        {
            return Err(bad(
                store,
                &indptr_path,
                format!(
                    "indptr ends at {:?} but data has {} entries",
                    indptr.last(),
                    info.nnz
                ),
            ));
        }
        let indices: Vec<u32> = idx_parts.concat();
        let data = if data_parts.is_empty() {
            DynArray::zeros(info.dtype, &[0])
        } else {
            let refs: Vec<&DynArray> = data_parts.iter().collect();
            concat_axis(&refs, 0).map_err(|e| Error::internal(e.to_string()))?
        };
        let mut shape = info.shape;
        let read: usize = groups.iter().map(Range::len).sum();
        match info.format {
            SparseFormat::Csr => shape[0] = read,
            SparseFormat::Csc => shape[1] = read,
        }
        let mut block = Compressed {
            format: info.format,
            shape,
            indptr,
            indices,
            data,
        };
        if groups.as_slice() != major.runs() {
            block = block.select_major(&positions_in(major, &groups));
        }
        Ok(if minor.is_full(n_minor) {
            block
        } else {
            block.select_minor(minor)
        })
    }
}

/// The chunk-aligned runs (chunks `width` wide, clipped at `n`) that hold `runs`, merged
/// where they touch or share a group of `group` columns (a shard), so each chunk and each
/// shard is read once.
fn chunk_runs(runs: &[Range<usize>], width: usize, group: usize, n: usize) -> Vec<Range<usize>> {
    let (width, group) = (width.max(1), group.max(1));
    let mut out: Vec<Range<usize>> = Vec::new();
    for r in runs.iter().filter(|r| !r.is_empty()) {
        let a = r.start / width * width..(r.end.div_ceil(width) * width).min(n);
        match out.last_mut() {
            Some(last) if last.end >= a.start || (last.end - 1) / group == a.start / group => {
                last.end = last.end.max(a.end)
            }
            _ => out.push(a),
        }
    }
    out
}

/// `f(0..n)` on as many threads as there are cores, results in order. Remote chunks are
/// decoded this way, not on the rayon pool: the pass's other workers may be waiting for
/// the very band this read gathers.
fn on_threads<T: Send>(n: usize, f: impl Fn(usize) -> Result<T> + Sync) -> Result<Vec<T>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(n);
    if threads <= 1 {
        return (0..n).map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut out: Vec<Option<Result<T>>> = (0..n).map(|_| None).collect();
    let done: Vec<Vec<(usize, Result<T>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        if k >= n {
                            break mine;
                        }
                        mine.push((k, f(k)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    for (k, r) in done.into_iter().flatten() {
        out[k] = Some(r);
    }
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Error::internal("a decoding thread panicked"))))
        .collect()
}

/// Rows between selected runs of a remote sparse matrix up to which one read covers both.
const REMOTE_GAP: usize = 4096;

/// Bytes one remote read decodes at most (unless a single chunk is larger).
const PIECE_BYTES: usize = 32 << 20;

/// Columns per remote read when a column takes `per_col` bytes over the rows read: whole
/// shards (`shard` columns) when one fits [`PIECE_BYTES`], else whole chunks (`width`).
fn pieces_of(per_col: usize, width: usize, shard: usize) -> usize {
    let per_col = per_col.max(1);
    let unit = if shard * per_col <= PIECE_BYTES {
        shard
    } else {
        width
    };
    (PIECE_BYTES / per_col / unit).max(1) * unit
}

/// Where the selected columns sit in the concatenation of `read` (runs covering them).
fn positions_in(cols: &AxisSelection, read: &[Range<usize>]) -> AxisSelection {
    let mut offset = 0;
    let mut at = Vec::with_capacity(cols.len());
    let mut runs = read.iter().peekable();
    for j in cols.indices() {
        while let Some(r) = runs.peek() {
            if j < r.end {
                break;
            }
            offset += r.len();
            runs.next();
        }
        let start = runs.peek().map_or(0, |r| r.start);
        at.push(offset + j - start);
    }
    AxisSelection::from_indices(&at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_runs_read_each_chunk_once() {
        // Columns 1, 3 (chunk 0), 7 (chunk 1), 20..22 (chunk 4) of 22, chunks 5 wide.
        let cols = AxisSelection::from_indices(&[1, 3, 7, 20, 21]);
        let read = chunk_runs(cols.runs(), 5, 5, 22);
        assert_eq!(read, vec![0..10, 20..22]);
        let at = positions_in(&cols, &read);
        assert_eq!(at.indices().collect::<Vec<_>>(), vec![1, 3, 7, 10, 11]);
        // Shards of 15 columns: one read spans each shard's chunks with selected columns
        // (and touching reads join).
        let cols = AxisSelection::from_indices(&[1, 12, 31]);
        assert_eq!(chunk_runs(cols.runs(), 5, 15, 45), vec![0..15, 30..35]);
        let cols = AxisSelection::from_indices(&[1, 12, 16, 29]);
        assert_eq!(chunk_runs(cols.runs(), 5, 15, 40), vec![0..30]);
    }

    #[test]
    fn remote_pieces_stay_within_their_bytes() {
        // A column of 100,000 float32 rows is 400,000 bytes: 83 fit 32 MiB, so 80 (whole
        // chunks of 5), or 75 (whole shards of 15).
        assert_eq!(pieces_of(400_000, 5, 5), 80);
        assert_eq!(pieces_of(400_000, 5, 15), 75);
        // Shards too large for a piece: whole chunks.
        assert_eq!(pieces_of(400_000, 5, 100), 80);
        // A chunk larger than a piece is still read whole.
        assert_eq!(pieces_of(40 << 20, 5, 5), 5);
    }
}
