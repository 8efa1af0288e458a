//! Selections along one axis, kept as sorted, coalesced runs of indices.
//!
//! ```text
//! indices [2, 3, 4, 9, 10, 15]  ->  runs [2..5, 9..11, 15..16]
//! ```
//! Runs are what storage readers want: each run maps to a contiguous hyperslab or a
//! contiguous range of a CSR's data and indices.

use std::ops::Range;

/// A sorted, non-overlapping, coalesced set of index runs along one axis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AxisSelection {
    runs: Vec<Range<usize>>,
}

impl AxisSelection {
    /// Every index of an axis of length `n`.
    pub fn all(n: usize) -> Self {
        Self::range(0..n)
    }

    /// One contiguous range.
    pub fn range(r: Range<usize>) -> Self {
        if r.is_empty() {
            Self { runs: vec![] }
        } else {
            Self { runs: vec![r] }
        }
    }

    /// From sorted, unique indices.
    ///
    /// # Panics
    /// Never; unsorted or repeated input is sorted and deduplicated first.
    pub fn from_indices(indices: &[usize]) -> Self {
        let mut idx = indices.to_vec();
        if !idx.windows(2).all(|w| w[0] < w[1]) {
            idx.sort_unstable();
            idx.dedup();
        }
        let mut runs: Vec<Range<usize>> = Vec::new();
        for i in idx {
            match runs.last_mut() {
                Some(last) if last.end == i => last.end = i + 1,
                _ => runs.push(i..i + 1),
            }
        }
        Self { runs }
    }

    /// From a boolean mask.
    pub fn from_mask(mask: &[bool]) -> Self {
        let idx: Vec<usize> = mask
            .iter()
            .enumerate()
            .filter(|(_, m)| **m)
            .map(|(i, _)| i)
            .collect();
        Self::from_indices(&idx)
    }

    /// From runs that may overlap or touch; they are merged.
    pub fn from_runs(mut runs: Vec<Range<usize>>) -> Self {
        runs.retain(|r| !r.is_empty());
        runs.sort_by_key(|r| r.start);
        let mut out: Vec<Range<usize>> = Vec::with_capacity(runs.len());
        for r in runs {
            match out.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => out.push(r),
            }
        }
        Self { runs: out }
    }

    pub fn runs(&self) -> &[Range<usize>] {
        &self.runs
    }

    /// Number of selected indices.
    pub fn len(&self) -> usize {
        self.runs.iter().map(|r| r.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// One past the largest selected index (0 when empty).
    pub fn end(&self) -> usize {
        self.runs.last().map_or(0, |r| r.end)
    }

    /// Whether this selects exactly `0..n`.
    pub fn is_full(&self, n: usize) -> bool {
        n == 0 && self.runs.is_empty() || self.runs.len() == 1 && self.runs[0] == (0..n)
    }

    /// The selected indices in order.
    pub fn indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.runs.iter().flat_map(|r| r.clone())
    }

    /// The part of this selection inside `window`, shifted so `window.start` becomes 0.
    pub fn restrict(&self, window: Range<usize>) -> AxisSelection {
        let runs = self
            .runs
            .iter()
            .filter_map(|r| {
                let s = r.start.max(window.start);
                let e = r.end.min(window.end);
                (s < e).then(|| s - window.start..e - window.start)
            })
            .collect();
        AxisSelection { runs }
    }

    /// Splits the selection into consecutive pieces of at most `max_len` indices each.
    pub fn split(&self, max_len: usize) -> Vec<AxisSelection> {
        let max_len = max_len.max(1);
        let mut out = Vec::new();
        let mut cur: Vec<Range<usize>> = Vec::new();
        let mut cur_len = 0;
        for r in &self.runs {
            let mut start = r.start;
            while start < r.end {
                let take = (r.end - start).min(max_len - cur_len);
                cur.push(start..start + take);
                cur_len += take;
                start += take;
                if cur_len == max_len {
                    out.push(AxisSelection {
                        runs: std::mem::take(&mut cur),
                    });
                    cur_len = 0;
                }
            }
        }
        if !cur.is_empty() {
            out.push(AxisSelection { runs: cur });
        }
        out
    }

    /// The selected indices at positions `pos` (the `pos.start`-th to `pos.end`-th selected).
    pub fn slice(&self, pos: Range<usize>) -> AxisSelection {
        let mut runs = Vec::new();
        if pos.is_empty() {
            return AxisSelection { runs };
        }
        let mut offset = 0;
        for r in &self.runs {
            let (lo, hi) = (offset, offset + r.len());
            offset = hi;
            if hi <= pos.start {
                continue;
            }
            if lo >= pos.end {
                break;
            }
            let s = r.start + pos.start.saturating_sub(lo);
            let e = r.start + (pos.end.min(hi) - lo);
            runs.push(s..e);
        }
        AxisSelection { runs }
    }

    /// A selection of a selection: `inner` holds positions within `self`; the result holds
    /// the indices they name. Pushing a view into a scan composes selections this way. One
    /// walk over both (both are sorted), so chained filters with many runs stay linear.
    pub fn compose(&self, inner: &AxisSelection) -> AxisSelection {
        let mut runs: Vec<Range<usize>> = Vec::new();
        let mut push = |piece: Range<usize>| match runs.last_mut() {
            Some(last) if last.end == piece.start => last.end = piece.end,
            _ => runs.push(piece),
        };
        let mut outer = self.runs.iter();
        let mut cur = outer.next();
        let mut offset = 0; // positions before `cur`
        for r in inner.runs() {
            let mut p = r.start;
            while p < r.end {
                let Some(o) = cur else { break };
                let (lo, hi) = (offset, offset + o.len());
                if p >= hi {
                    offset = hi;
                    cur = outer.next();
                    continue;
                }
                let e = r.end.min(hi);
                push(o.start + (p - lo)..o.start + (e - lo));
                p = e;
            }
        }
        AxisSelection { runs }
    }

    /// For each index `0..n`, its position in the selection, or `None` when not selected.
    pub fn position_map(&self, n: usize) -> Vec<Option<u32>> {
        let mut map = vec![None; n];
        for (pos, i) in self.indices().enumerate() {
            if i < n {
                map[i] = Some(pos as u32);
            }
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_coalesce_into_runs() {
        let s = AxisSelection::from_indices(&[2, 3, 4, 9, 10, 15]);
        assert_eq!(s.runs(), &[2..5, 9..11, 15..16]);
        assert_eq!(s.len(), 6);
    }

    #[test]
    fn unsorted_indices_are_sorted_and_deduplicated() {
        let s = AxisSelection::from_indices(&[5, 1, 2, 2, 0]);
        assert_eq!(s.runs(), &[0..3, 5..6]);
    }

    #[test]
    fn restrict_shifts_to_window() {
        let s = AxisSelection::from_runs(vec![0..3, 8..12]);
        assert_eq!(s.restrict(2..10).runs(), &[0..1, 6..8]);
    }

    #[test]
    fn split_keeps_order_and_sizes() {
        let s = AxisSelection::from_runs(vec![0..5, 10..13]);
        let parts = s.split(3);
        let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
        assert_eq!(lens, vec![3, 3, 2]);
        let all: Vec<usize> = parts
            .iter()
            .flat_map(|p| p.indices().collect::<Vec<_>>())
            .collect();
        assert_eq!(all, vec![0, 1, 2, 3, 4, 10, 11, 12]);
    }

    #[test]
    fn slice_and_compose_follow_positions() {
        let s = AxisSelection::from_runs(vec![2..5, 10..14]);
        assert_eq!(s.slice(1..5).runs(), &[3..5, 10..12]);
        assert_eq!(s.slice(3..7).runs(), &[10..14]);
        let inner = AxisSelection::from_indices(&[0, 2, 3, 6]);
        let all: Vec<usize> = s.indices().collect();
        let want: Vec<usize> = inner.indices().map(|p| all[p]).collect();
        assert_eq!(s.compose(&inner).indices().collect::<Vec<_>>(), want);
        assert_eq!(s.compose(&inner).runs(), &[2..3, 4..5, 10..11, 13..14]);
        assert!(s.slice(3..3).is_empty());
        assert_eq!(s.compose(&AxisSelection::all(7)), s);
    }

    #[test]
    fn mask_and_full() {
        let s = AxisSelection::from_mask(&[true, true, false, true]);
        assert_eq!(s.runs(), &[0..2, 3..4]);
        assert!(AxisSelection::all(4).is_full(4));
        assert!(!s.is_full(4));
    }
}
