//! How passes cut a scan into blocks, and what those blocks read from storage: shared by
//! `align_chunks`, EXPLAIN and the executor so all three agree.

use crate::plan::{Concat, Scan, Source, Storage, XEncoding};
use engine_matrix::AxisSelection;
use std::collections::BTreeSet;
use std::ops::Range;

/// Preferred bytes per block (f64 values plus a scratch copy). Blocks of a few MiB stay in
/// cache through the fused kernels and are faster than larger ones (measured on the 50k x 1k
/// Gram pass: 0.94 s with 1 MB blocks of values, 1.77 s with 67 MB); the memory limit only
/// ever makes them smaller.
pub const BLOCK_TARGET_BYTES: usize = 4 << 20;

/// Rows per block so that all workers' blocks together stay within `memory_limit`.
pub fn max_block_rows(n_vars: usize, memory_limit: usize, workers: usize) -> usize {
    let per_row = n_vars.max(1) * 8 * 2;
    let budget = (memory_limit / workers.max(1)).min(BLOCK_TARGET_BYTES);
    // Down to 8 rows: a dense row of 30,000 genes is already ~0.5 MiB of block.
    (budget / per_row).clamp(8, 65_536)
}

/// Consecutive blocks of at most `max_rows` positions.
pub fn even_blocks(n: usize, max_rows: usize) -> Vec<Range<usize>> {
    (0..n)
        .step_by(max_rows.max(1))
        .map(|s| s..(s + max_rows.max(1)).min(n))
        .collect()
}

/// Blocks of positions whose source rows (`rows`) never split a storage chunk (chunks begin
/// at `chunk_starts`) unless one chunk alone holds more than `max_rows` selected rows.
pub fn aligned_blocks(
    rows: &AxisSelection,
    chunk_starts: &[usize],
    max_rows: usize,
) -> Vec<Range<usize>> {
    let max_rows = max_rows.max(1);
    let chunk_of = |r: usize| chunk_starts.partition_point(|&s| s <= r).saturating_sub(1);
    // Positions where each chunk's selected rows begin.
    let mut groups: Vec<(usize, usize)> = Vec::new(); // (chunk, first position)
    let mut pos = 0;
    for run in rows.runs() {
        let mut r = run.start;
        while r < run.end {
            let c = chunk_of(r);
            let end = chunk_starts
                .get(c + 1)
                .copied()
                .unwrap_or(usize::MAX)
                .min(run.end);
            if groups.last().map(|g| g.0) != Some(c) {
                groups.push((c, pos));
            }
            pos += end - r;
            r = end;
        }
    }
    let total = pos;
    let mut blocks = Vec::new();
    let mut start = 0;
    for (i, _) in groups.iter().enumerate() {
        let group_end = groups.get(i + 1).map_or(total, |g| g.1);
        if group_end - start > max_rows {
            // Close the block before this chunk, then split an oversized chunk evenly.
            let here = groups[i].1;
            if here > start {
                blocks.push(start..here);
                start = here;
            }
            while group_end - start > max_rows {
                blocks.push(start..start + max_rows);
                start += max_rows;
            }
        }
    }
    if start < total {
        blocks.push(start..total);
    }
    blocks
}

/// What a scan reads in one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanIo {
    /// Distinct storage chunks touched, and how many the source has (`None`: contiguous).
    pub chunks: Option<(u64, u64)>,
    /// Chunk decodes including repeats where blocks split a chunk.
    pub decodes: u64,
    /// Uncompressed bytes read, and the size of the whole matrix.
    pub bytes: (u64, u64),
    /// Requests a remote source answers (`None`: a local file).
    pub requests: Option<u64>,
}

impl ScanIo {
    pub fn describe(&self) -> String {
        let mb = |b: u64| format!("{:.1} MB", b as f64 / 1e6);
        let mut s = format!("reads {} of {}", mb(self.bytes.0), mb(self.bytes.1));
        if let Some((read, total)) = self.chunks {
            s += &format!(", {read} of {total} chunks ({} skipped)", total - read);
            if self.decodes > read {
                s += &format!(", {} decodes (blocks split chunks)", self.decodes);
            }
        }
        if let Some(r) = self.requests {
            s += &format!(", {r} request{}", if r == 1 { "" } else { "s" });
        }
        s
    }
}

fn chunk_range(r: &Range<u64>, c: u64) -> Range<u64> {
    if r.is_empty() {
        0..0
    } else {
        r.start / c..(r.end - 1) / c + 1
    }
}

impl ScanIo {
    /// Two reads as one: a concatenation's files together.
    fn add(self, other: &ScanIo) -> ScanIo {
        ScanIo {
            chunks: match (self.chunks, other.chunks) {
                (Some(a), Some(b)) => Some((a.0 + b.0, a.1 + b.1)),
                (a, b) => a.or(b),
            },
            decodes: self.decodes + other.decodes,
            bytes: (self.bytes.0 + other.bytes.0, self.bytes.1 + other.bytes.1),
            requests: match (self.requests, other.requests) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            },
        }
    }
}

/// What one pass over `scan` in `blocks` (positions of the scan's output rows) reads. `None`
/// for generated sources. A concatenation's is the sum of its files' (`concat_io`).
pub fn scan_io(scan: &Scan, blocks: &[Range<usize>]) -> Option<ScanIo> {
    let (n, m) = scan.source_shape();
    let rows = scan
        .rows
        .as_ref()
        .map_or_else(|| AxisSelection::all(n), |s| s.sel.clone());
    let cols = scan
        .cols
        .as_ref()
        .map_or_else(|| AxisSelection::all(m), |s| s.sel.clone());
    let block_rows: Vec<AxisSelection> = blocks.iter().map(|b| rows.slice(b.clone())).collect();
    match &scan.source {
        Source::File { storage, .. } => Some(storage_io(storage, &block_rows, &cols)),
        Source::Concat(c) => concat_io(c, &block_rows, &cols)
            .into_iter()
            .map(|(_, io)| io)
            .reduce(|a, b| a.add(&b)),
        _ => None,
    }
}

/// Per file of a concatenation (by its `read` step), what a pass reads of it: each block's
/// rows inside the file, and the file's columns behind the selected genes it has.
pub fn concat_io(
    c: &Concat,
    block_rows: &[AxisSelection],
    cols: &AxisSelection,
) -> Vec<(String, ScanIo)> {
    let offsets = c.offsets();
    c.parts
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let window = offsets[k]..offsets[k + 1];
            let rows: Vec<AxisSelection> = block_rows
                .iter()
                .map(|b| b.restrict(window.clone()))
                .filter(|b| !b.is_empty())
                .collect();
            let own: Vec<usize> = cols.indices().filter_map(|j| p.columns[j]).collect();
            (
                p.step.clone(),
                storage_io(&p.storage, &rows, &AxisSelection::from_indices(&own)),
            )
        })
        .collect()
}

/// What reading `block_rows` (rows of the stored matrix, one selection per block) × `cols`
/// of a stored X decodes, and for a remote source the requests it takes.
fn storage_io(storage: &Storage, block_rows: &[AxisSelection], cols: &AxisSelection) -> ScanIo {
    let mut io = decoded(storage, block_rows, cols);
    if storage.remote {
        io.requests = Some(requests(storage, block_rows, cols, io.decodes));
    }
    io
}

/// The requests a remote read takes, as the readers make them: every (inner) chunk a block
/// touches is fetched whole, once per block; a sharded dense array costs each touched shard
/// its index and one coalesced range, or one request when the block needs all of it; a
/// sparse matrix's data and indices are fetched alike (its row pointers were read when
/// planning).
fn requests(
    storage: &Storage,
    block_rows: &[AxisSelection],
    cols: &AxisSelection,
    decodes: u64,
) -> u64 {
    let (Some(chunks), Some(shards), XEncoding::Dense) =
        (&storage.chunks, &storage.shards, storage.encoding)
    else {
        return match storage.encoding {
            XEncoding::Dense => decodes,
            _ => 2 * decodes,
        };
    };
    if chunks.len() < 2 || shards.len() < 2 {
        return decodes;
    }
    let [n, m] = storage.shape.map(|x| x as u64);
    let (cr, cc) = (chunks[0].max(1), chunks[1].max(1));
    let (sr, sc) = (shards[0].max(1), shards[1].max(1));
    let col_chunks: BTreeSet<u64> = cols
        .runs()
        .iter()
        .flat_map(|r| chunk_range(&(r.start as u64..r.end as u64), cc))
        .collect();
    let mut total = 0;
    for b in block_rows {
        let row_chunks: BTreeSet<u64> = b
            .runs()
            .iter()
            .flat_map(|r| chunk_range(&(r.start as u64..r.end as u64), cr))
            .collect();
        // Per shard, the span of inner chunks the read covers along each axis (a read spans
        // the touched chunks of a shard from the first to the last).
        let spans = |touched: &BTreeSet<u64>, c: u64, sh: u64| {
            let mut by: std::collections::BTreeMap<u64, (u64, u64)> = Default::default();
            for &k in touched {
                let e = by.entry(k * c / sh).or_insert((k, k));
                e.0 = e.0.min(k);
                e.1 = e.1.max(k);
            }
            by
        };
        let per_r = sr.div_ceil(cr);
        let per_c = sc.div_ceil(cc);
        let whole = |(lo, hi): (u64, u64), s: u64, per: u64, sh: u64, len: u64| {
            lo == s * per && hi == s * per + per - 1 && (s + 1) * sh <= len
        };
        for (si, rs) in spans(&row_chunks, cr, sr) {
            for (sj, cs) in spans(&col_chunks, cc, sc) {
                // A shard cut short by the array's end is never read whole.
                let one = whole(rs, si, per_r, sr, n) && whole(cs, sj, per_c, sc, m);
                total += if one { 1 } else { 2 };
            }
        }
    }
    total
}

/// What reading `block_rows` × `cols` of a stored X decodes.
fn decoded(storage: &Storage, block_rows: &[AxisSelection], cols: &AxisSelection) -> ScanIo {
    let [n, m] = storage.shape;
    let vb = storage.value_bytes as u64;
    match (storage.encoding, &storage.indptr) {
        (XEncoding::Csr, Some(indptr)) => {
            let per = vb + storage.index_bytes as u64;
            let nnz = *indptr.last().unwrap_or(&0);
            let mut bytes = 0;
            let mut touched = BTreeSet::new();
            let mut decodes = 0;
            for b in block_rows {
                for run in b.runs() {
                    let (lo, hi) = (indptr[run.start], indptr[run.end]);
                    bytes += (hi - lo) * per + 8 * (run.len() as u64 + 1);
                    if let Some(c) = storage.chunks.as_ref().and_then(|c| c.first()) {
                        let cr = chunk_range(&(lo..hi), *c);
                        decodes += cr.end - cr.start;
                        touched.extend(cr);
                    }
                }
            }
            let chunks = storage
                .chunks
                .as_ref()
                .and_then(|c| c.first())
                .map(|c| (touched.len() as u64, nnz.div_ceil(*c)));
            ScanIo {
                chunks,
                decodes,
                bytes: (bytes, nnz * per + 8 * (n as u64 + 1)),
                requests: None,
            }
        }
        (XEncoding::Dense, _) => {
            let total = n as u64 * m as u64 * vb;
            // Column chunks (or, contiguous, the column span) each row run reads.
            let col_runs: Vec<Range<u64>> = cols
                .runs()
                .iter()
                .map(|r| r.start as u64..r.end as u64)
                .collect();
            let Some(ch) = storage.chunks.as_ref().filter(|c| c.len() >= 2) else {
                let span: u64 = col_runs.iter().map(|r| r.end - r.start).sum();
                let rows: usize = block_rows.iter().map(AxisSelection::len).sum();
                return ScanIo {
                    chunks: None,
                    decodes: 0,
                    bytes: (rows as u64 * span * vb, total),
                    requests: None,
                };
            };
            let (cr, cc) = (ch[0].max(1), ch[1].max(1));
            let col_chunks: BTreeSet<u64> =
                col_runs.iter().flat_map(|r| chunk_range(r, cc)).collect();
            let col_width: u64 = col_chunks.iter().map(|&c| cc.min(m as u64 - c * cc)).sum();
            let mut row_chunks = BTreeSet::new();
            let mut decodes = 0;
            for b in block_rows {
                let mut in_block = BTreeSet::new();
                for run in b.runs() {
                    in_block.extend(chunk_range(&(run.start as u64..run.end as u64), cr));
                }
                decodes += in_block.len() as u64 * col_chunks.len() as u64;
                row_chunks.extend(in_block);
            }
            let row_height: u64 = row_chunks.iter().map(|&c| cr.min(n as u64 - c * cr)).sum();
            ScanIo {
                chunks: Some((
                    row_chunks.len() as u64 * col_chunks.len() as u64,
                    (n as u64).div_ceil(cr) * (m as u64).div_ceil(cc),
                )),
                decodes,
                bytes: (row_height * col_width * vb, total),
                requests: None,
            }
        }
        _ => {
            // CSC read by rows: every block reads the whole matrix and keeps its rows.
            let nnz = storage
                .indptr
                .as_ref()
                .map_or(0, |p| *p.last().unwrap_or(&0));
            let whole = nnz * (vb + storage.index_bytes as u64);
            ScanIo {
                chunks: None,
                decodes: 0,
                bytes: (whole * block_rows.len() as u64, whole),
                requests: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_blocks_never_split_a_chunk_that_fits() {
        let starts: Vec<usize> = (0..100).step_by(10).collect();
        let all = AxisSelection::all(100);
        assert_eq!(
            aligned_blocks(&all, &starts, 25),
            vec![0..20, 20..40, 40..60, 60..80, 80..100]
        );
        // A selection: rows 5..15 and 40..45 -> positions 0..10 and 10..15.
        let sel = AxisSelection::from_runs(vec![5..15, 40..45]);
        assert_eq!(aligned_blocks(&sel, &starts, 6), vec![0..5, 5..10, 10..15]);
        // A chunk larger than a block is split evenly.
        assert_eq!(
            aligned_blocks(&all, &[0, 50], 20),
            vec![0..20, 20..40, 40..50, 50..70, 70..90, 90..100]
        );
    }

    #[test]
    fn even_blocks_cover_everything() {
        assert_eq!(even_blocks(10, 4), vec![0..4, 4..8, 8..10]);
    }
}
