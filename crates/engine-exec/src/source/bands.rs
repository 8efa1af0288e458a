//! A remote scan whose chunks are taller than its blocks, read band by band: a band (many
//! blocks' worth of consecutive rows) is gathered once, each chunk it touches fetched once,
//! and the blocks of a pass are cut from it. Read block by block, every block would fetch
//! every chunk it crosses again: over a network, chunks `(n_obs, 5)` cost one request per
//! block instead of one per pass.

use crate::block::XBlock;
use engine_common::Result;
use engine_matrix::AxisSelection;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Bytes a held value takes while its band is gathered: the float64 value kept, plus the
/// stored value and its copy when the read's pieces are joined.
pub(crate) const BYTES_PER_VALUE: usize = 16;

type Slot = Arc<Mutex<Option<Arc<XBlock>>>>;

/// The bands of one scan's rows and the ones held.
#[derive(Debug)]
pub(crate) struct Bands {
    /// The budget the bands were sized from, for a narrower selection of the same scan.
    budget: usize,
    workers: usize,
    /// Rows per band (positions in the scan).
    rows: usize,
    /// Bands held at once: one per worker, each walking its own share of the blocks.
    capacity: usize,
    /// Held bands, least recently used first; a band's slot is locked while it loads, so a
    /// second worker wanting it waits instead of fetching it again.
    held: Mutex<Vec<(usize, Slot)>>,
}

impl Bands {
    /// Bands over `n` rows of `n_cols` columns within `budget` bytes: one band when all rows
    /// fit, else one per worker at a time, each a whole number of `max_rows` blocks.
    pub fn new(budget: usize, n: usize, n_cols: usize, workers: usize, max_rows: usize) -> Bands {
        let (rows, capacity) = sizes(budget, n, n_cols, workers, max_rows);
        Bands {
            budget,
            workers,
            rows,
            capacity,
            held: Mutex::new(Vec::new()),
        }
    }

    /// Empty bands for a selection of `n` rows × `n_cols` columns of the same scan.
    pub fn reselect(&self, n: usize, n_cols: usize, max_rows: usize) -> Bands {
        Bands::new(self.budget, n, n_cols, self.workers, max_rows)
    }

    /// Positions `pos` of the scan's `n` rows, cut from the bands they fall in; `load` reads
    /// a band (a range of positions) when it is not held.
    pub fn read(
        &self,
        pos: &AxisSelection,
        n: usize,
        n_cols: usize,
        load: impl Fn(Range<usize>) -> Result<XBlock>,
    ) -> Result<XBlock> {
        let Some(first) = pos.runs().first().map(|r| r.start) else {
            return XBlock::concat(Vec::new(), n_cols);
        };
        let mut parts = Vec::new();
        for k in first / self.rows..=(pos.end() - 1) / self.rows {
            let window = k * self.rows..((k + 1) * self.rows).min(n);
            let local = pos.restrict(window.clone());
            if local.is_empty() {
                continue;
            }
            let slot = self.slot(k);
            let band = {
                let mut guard = lock(&slot);
                match guard.as_ref() {
                    Some(b) => b.clone(),
                    None => {
                        let b = Arc::new(load(window)?);
                        *guard = Some(b.clone());
                        b
                    }
                }
            };
            parts.push(band.take_rows(&local.indices().collect::<Vec<_>>()));
        }
        XBlock::concat(parts, n_cols)
    }

    /// Band `k`'s slot, made most recently used; the least recently used band is dropped
    /// when more than `capacity` would be held.
    fn slot(&self, k: usize) -> Slot {
        let mut held = lock(&self.held);
        if let Some(i) = held.iter().position(|(j, _)| *j == k) {
            let entry = held.remove(i);
            let slot = entry.1.clone();
            held.push(entry);
            return slot;
        }
        if held.len() >= self.capacity {
            held.remove(0);
        }
        let slot = Slot::default();
        held.push((k, slot.clone()));
        slot
    }
}

/// Rows per band and bands held at once for `n` rows of `n_cols` columns within `budget`.
pub(crate) fn sizes(
    budget: usize,
    n: usize,
    n_cols: usize,
    workers: usize,
    max_rows: usize,
) -> (usize, usize) {
    let per_row = n_cols.max(1) * BYTES_PER_VALUE;
    if n.saturating_mul(per_row) <= budget {
        return (n.max(1), 1);
    }
    let workers = workers.max(1);
    let max_rows = max_rows.max(1);
    let rows = (budget / workers / per_row / max_rows).max(1) * max_rows;
    (rows.min(n.max(1)), workers)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn rows_of(n: usize) -> impl Fn(Range<usize>) -> Result<XBlock> {
        move |w: Range<usize>| {
            Ok(XBlock::Dense(Array2::from_shape_fn(
                (w.len(), n),
                |(i, j)| ((w.start + i) * 10 + j) as f64,
            )))
        }
    }

    #[test]
    fn bands_fit_the_budget() {
        // 1,000 rows of 10 columns take 160,000 bytes: within 200,000 one band.
        assert_eq!(sizes(200_000, 1000, 10, 2, 64), (1000, 1));
        // Within 100,000: two workers' bands of 50,000 bytes, 312 rows, so 256 (4 blocks).
        assert_eq!(sizes(100_000, 1000, 10, 2, 64), (256, 2));
        // A budget below one block still holds one block per band.
        assert_eq!(sizes(10, 1000, 10, 2, 64), (64, 2));
    }

    #[test]
    fn each_band_loads_once_and_blocks_come_from_it() -> Result<()> {
        let loads = AtomicUsize::new(0);
        let load = |w: Range<usize>| {
            loads.fetch_add(1, Ordering::Relaxed);
            rows_of(3)(w)
        };
        let bands = Bands::new(100 * 3 * BYTES_PER_VALUE, 1000, 3, 1, 10);
        assert_eq!(bands.rows, 100);
        let mut got = Vec::new();
        for s in (0..1000).step_by(10) {
            got.push(bands.read(&AxisSelection::range(s..s + 10), 1000, 3, load)?);
        }
        assert_eq!(loads.load(Ordering::Relaxed), 10);
        let all = XBlock::concat(got, 3)?.into_dense();
        assert_eq!(all, rows_of(3)(0..1000)?.into_dense());
        // Positions across two bands: both held in turn, the rows in order.
        let pos = AxisSelection::from_indices(&[5, 99, 100, 250]);
        let x = bands.read(&pos, 1000, 3, load)?.into_dense();
        assert_eq!(x.column(0).to_vec(), vec![50.0, 990.0, 1000.0, 2500.0]);
        Ok(())
    }
}
