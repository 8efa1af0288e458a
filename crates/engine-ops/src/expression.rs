//! What scanpy's dot plot summarises per group of cells and gene: the fraction of the
//! group's cells expressing the gene (a value above a cutoff) and their mean, gathered
//! block by block.

use engine_matrix::Csr;
use serde::{Deserialize, Serialize};

/// Per group and chosen gene: the group's cells, the stored values, those above the cutoff,
/// and the sums over all of them and over those above the cutoff.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupExpression {
    /// Per column of X: its slot among the chosen genes plus one, or 0.
    slot: Vec<u32>,
    n_slots: usize,
    cutoff: f64,
    /// Per group.
    pub cells: Vec<u64>,
    /// Per group and slot (`group * n_slots + slot`).
    stored: Vec<u64>,
    expressed: Vec<u64>,
    sum: Vec<f64>,
    sum_expressed: Vec<f64>,
}

impl GroupExpression {
    /// For X of `n_cols` columns, the genes at `columns` (distinct) and `n_groups` groups.
    pub fn new(n_cols: usize, columns: &[usize], n_groups: usize, cutoff: f64) -> Self {
        let mut slot = vec![0u32; n_cols];
        for (s, &c) in columns.iter().enumerate() {
            slot[c] = s as u32 + 1;
        }
        let cells = n_groups * columns.len();
        GroupExpression {
            slot,
            n_slots: columns.len(),
            cutoff,
            cells: vec![0; n_groups],
            stored: vec![0; cells],
            expressed: vec![0; cells],
            sum: vec![0.0; cells],
            sum_expressed: vec![0.0; cells],
        }
    }

    /// Adds the rows of `x`, row `i` in group `groups[i]` (`None`: in no group).
    pub fn add(&mut self, x: &Csr, groups: &[Option<usize>]) {
        for (i, g) in groups.iter().enumerate() {
            let Some(g) = *g else { continue };
            self.cells[g] += 1;
            let (idx, val) = x.row(i);
            for (&j, &v) in idx.iter().zip(val) {
                let s = self.slot[j as usize];
                if s == 0 {
                    continue;
                }
                let at = g * self.n_slots + s as usize - 1;
                self.stored[at] += 1;
                self.sum[at] += v;
                if v > self.cutoff {
                    self.expressed[at] += 1;
                    self.sum_expressed[at] += v;
                }
            }
        }
    }

    pub fn merge(mut self, other: &GroupExpression) -> GroupExpression {
        for (a, b) in self.cells.iter_mut().zip(&other.cells) {
            *a += b;
        }
        for (a, b) in self.stored.iter_mut().zip(&other.stored) {
            *a += b;
        }
        for (a, b) in self.expressed.iter_mut().zip(&other.expressed) {
            *a += b;
        }
        for (a, b) in self.sum.iter_mut().zip(&other.sum) {
            *a += b;
        }
        for (a, b) in self.sum_expressed.iter_mut().zip(&other.sum_expressed) {
            *a += b;
        }
        self
    }

    /// Group `g`'s fraction of cells expressing the gene in `slot`, and its mean: over
    /// all the group's cells, or (`only_expressed`) over those expressing it, 0 when none
    /// do. Unstored values are zeros, which express the gene when the cutoff is below 0.
    pub fn fraction_mean(&self, g: usize, slot: usize, only_expressed: bool) -> (f64, f64) {
        let at = g * self.n_slots + slot;
        let cells = self.cells[g];
        let zeros = cells - self.stored[at];
        let zeros_express = 0.0 > self.cutoff;
        let expressed = self.expressed[at] + if zeros_express { zeros } else { 0 };
        let fraction = expressed as f64 / cells as f64;
        let mean = if only_expressed {
            if expressed == 0 {
                0.0
            } else {
                self.sum_expressed[at] / expressed as f64
            }
        } else {
            self.sum[at] / cells as f64
        };
        (fraction, mean)
    }
}

/// scanpy's `standard_scale`: each row (`by_row`) or column of the `rows × cols` values,
/// row by row, less its minimum and over its new maximum; 0 where that is undefined.
pub fn standard_scale(values: &mut [f64], cols: usize, by_row: bool) {
    if cols == 0 {
        return;
    }
    let rows = values.len() / cols;
    let (outer, inner) = if by_row { (rows, cols) } else { (cols, rows) };
    let at = |o: usize, i: usize| if by_row { o * cols + i } else { i * cols + o };
    for o in 0..outer {
        let min = (0..inner)
            .map(|i| values[at(o, i)])
            .fold(f64::INFINITY, f64::min);
        let max = (0..inner)
            .map(|i| values[at(o, i)] - min)
            .fold(f64::NEG_INFINITY, f64::max);
        for i in 0..inner {
            let v = (values[at(o, i)] - min) / max;
            values[at(o, i)] = if v.is_nan() { 0.0 } else { v };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two groups, three genes, two of them chosen; zeros unstored.
    fn block() -> Csr {
        Csr::from_rows(
            3,
            &[
                vec![(0, 1.0), (2, 4.0)],
                vec![(2, -1.0)],
                vec![(0, 3.0), (1, 7.0)],
                vec![],
            ],
        )
    }

    #[test]
    fn fractions_and_means_count_the_zeros() {
        let mut e = GroupExpression::new(3, &[2, 0], 2, 0.0);
        // Rows 0 and 1 in group 0, row 2 in group 1, row 3 in none.
        e.add(&block(), &[Some(0), Some(0), Some(1), None]);
        assert_eq!(e.cells, vec![2, 1]);
        // Gene 2 in group 0: 4 and -1; one of two cells above 0, mean 1.5.
        assert_eq!(e.fraction_mean(0, 0, false), (0.5, 1.5));
        assert_eq!(e.fraction_mean(0, 0, true), (0.5, 4.0));
        // Gene 0 in group 1: 3.
        assert_eq!(e.fraction_mean(1, 1, false), (1.0, 3.0));
        // Gene 2 in group 1: no value.
        assert_eq!(e.fraction_mean(1, 0, true), (0.0, 0.0));
        // Split in two and merged: the same.
        let mut a = GroupExpression::new(3, &[2, 0], 2, 0.0);
        let mut b = a.clone();
        let m = block();
        a.add(&m.select_rows(&[0, 1]), &[Some(0), Some(0)]);
        b.add(&m.select_rows(&[2, 3]), &[Some(1), None]);
        let merged = a.merge(&b);
        for (g, s) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            assert_eq!(
                merged.fraction_mean(g, s, false),
                e.fraction_mean(g, s, false)
            );
        }
    }

    /// A cutoff below zero: unstored zeros express the gene, as in `obs_tidy > cutoff`.
    #[test]
    fn a_negative_cutoff_counts_zeros() {
        let mut e = GroupExpression::new(3, &[1], 1, -0.5);
        e.add(&block(), &[Some(0), Some(0), Some(0), Some(0)]);
        // Gene 1: 7 stored, three zeros; all four above -0.5.
        assert_eq!(e.fraction_mean(0, 0, false), (1.0, 1.75));
        let mut e = GroupExpression::new(3, &[2], 1, -0.5);
        e.add(&block(), &[Some(0), Some(0), Some(0), Some(0)]);
        // Gene 2: 4, -1 and two zeros: three above -0.5.
        assert_eq!(e.fraction_mean(0, 0, false), (0.75, 0.75));
    }

    /// pandas: `df.sub(df.min(axis=1), axis=0).div(…max…).fillna(0)` by rows, and by columns.
    #[test]
    fn standard_scale_by_rows_and_columns() {
        let mut v = vec![1.0, 3.0, 5.0, 2.0, 2.0, 2.0];
        standard_scale(&mut v, 3, true);
        assert_eq!(v, vec![0.0, 0.5, 1.0, 0.0, 0.0, 0.0]);
        let mut v = vec![1.0, 3.0, 5.0, 2.0, 2.0, 2.0];
        standard_scale(&mut v, 3, false);
        assert_eq!(v, vec![0.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
    }
}
