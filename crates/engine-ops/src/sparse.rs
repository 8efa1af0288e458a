//! The kernels the count workflow runs on row blocks of a sparse matrix ([`Csr`]). A block may carry a per-column *fill*: the value of every entry that is not stored.
//! Unscaled counts have fill 0; after `scale` the fill is `-mean / sd`, so a standardised
//! matrix stays sparse (stored entries plus a dense row of fills) instead of being densified.

use crate::stats::{Gram, Moments};
use engine_matrix::Csr;
use engine_matrix::DynArray;
use ndarray::Array2;

/// Entry `e` of a stored value array as float64, without a float64 copy of the whole array
/// (a million-cell graph's weights are ~180 MB as float64).
pub fn value_at(data: &DynArray) -> Box<dyn Fn(usize) -> f64 + Sync + '_> {
    match data {
        DynArray::F32(a) if a.as_slice().is_some() => {
            let s = a.as_slice().expect("checked");
            Box::new(move |e| f64::from(s[e]))
        }
        DynArray::F64(a) if a.as_slice().is_some() => {
            let s = a.as_slice().expect("checked");
            Box::new(move |e| s[e])
        }
        other => {
            let v = other.to_f64_vec().unwrap_or_default();
            Box::new(move |e| v[e])
        }
    }
}

/// Per-column mean and variance by Welford's update over the stored entries of rows taken in
/// order, the implicit zeros merged at the end: scanpy's `aggregate(func=["mean", "var"])`
/// kernel (`mean_var_csr`), reproduced operation for operation. Its results differ from
/// sum / n in the last bit, and `seurat_v3`'s LOESS trend is sensitive to those bits
/// (its kd-tree splits on ties of the means), so per-batch statistics follow it exactly.
#[derive(Debug, Clone)]
pub struct Welford {
    pub n: u64,
    nnz: Vec<u64>,
    mean: Vec<f64>,
    m2: Vec<f64>,
}

impl Welford {
    pub fn new(n_cols: usize) -> Welford {
        Welford {
            n: 0,
            nnz: vec![0; n_cols],
            mean: vec![0.0; n_cols],
            m2: vec![0.0; n_cols],
        }
    }

    /// Adds rows `rows` of `x`, in the order given.
    pub fn add(&mut self, x: &Csr, rows: &[usize]) {
        for &i in rows {
            let (idx, val) = x.row(i);
            for (&j, &v) in idx.iter().zip(val) {
                let j = j as usize;
                self.nnz[j] += 1;
                let n = self.nnz[j] as f64;
                let delta = v - self.mean[j];
                self.mean[j] += delta / n;
                self.m2[j] += delta * (v - self.mean[j]);
            }
        }
        self.n += rows.len() as u64;
    }

    /// Mean and variance with `ddof` 1.
    pub fn mean_var(&self) -> (Vec<f64>, Vec<f64>) {
        let n_obs = self.n as f64;
        let mut mean = self.mean.clone();
        let mut var = self.m2.clone();
        for j in 0..mean.len() {
            let n_nz = self.nnz[j];
            let k = self.n - n_nz;
            if k > 0 && n_nz > 0 {
                let mean_a = mean[j];
                mean[j] = mean_a * n_nz as f64 / n_obs;
                var[j] += mean_a * mean_a * n_nz as f64 * k as f64 / n_obs;
            }
            var[j] /= n_obs;
        }
        let correction = n_obs / (n_obs - 1.0);
        var.iter_mut().for_each(|v| *v *= correction);
        (mean, var)
    }
}

/// Per-column count of non-zero entries and sum of `f(value)` and `f(value)²` over stored
/// entries: what gene QC, `filter_genes` and highly-variable-gene statistics accumulate.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ColumnSums {
    pub n: u64,
    pub nnz: Vec<u64>,
    pub sum: Vec<f64>,
    pub sumsq: Vec<f64>,
}

impl ColumnSums {
    pub fn new(n_cols: usize) -> ColumnSums {
        ColumnSums {
            n: 0,
            nnz: vec![0; n_cols],
            sum: vec![0.0; n_cols],
            sumsq: vec![0.0; n_cols],
        }
    }

    /// Adds the rows of `x` (only `rows`, when given), each value passed through `f` (which
    /// must map 0 to 0).
    pub fn add(&mut self, x: &Csr, rows: Option<&[usize]>, f: impl Fn(f64) -> f64) {
        self.add_by_column(x, rows, |_, v| f(v));
    }

    /// As [`ColumnSums::add`] with each value of column `j` clipped at `clip[j]` (seurat_v3's
    /// clipped variance; clips are positive, so absent zeros stay zeros).
    pub fn add_clipped(&mut self, x: &Csr, rows: Option<&[usize]>, clip: &[f64]) {
        self.add_by_column(x, rows, |j, v| v.min(clip[j]));
    }

    fn add_by_column(&mut self, x: &Csr, rows: Option<&[usize]>, f: impl Fn(usize, f64) -> f64) {
        let mut one = |i: usize| {
            let (idx, val) = x.row(i);
            for (&j, &v) in idx.iter().zip(val) {
                if v != 0.0 {
                    let j = j as usize;
                    let y = f(j, v);
                    self.nnz[j] += 1;
                    self.sum[j] += y;
                    self.sumsq[j] += y * y;
                }
            }
        };
        match rows {
            Some(r) => {
                r.iter().for_each(|&i| one(i));
                self.n += r.len() as u64;
            }
            None => {
                (0..x.n_rows()).for_each(&mut one);
                self.n += x.n_rows() as u64;
            }
        }
    }

    pub fn merge(mut self, other: &ColumnSums) -> ColumnSums {
        self.n += other.n;
        for j in 0..self.sum.len() {
            self.nnz[j] += other.nnz[j];
            self.sum[j] += other.sum[j];
            self.sumsq[j] += other.sumsq[j];
        }
        self
    }

    pub fn mean(&self) -> Vec<f64> {
        let n = self.n.max(1) as f64;
        self.sum.iter().map(|s| s / n).collect()
    }

    /// Variance with ddof 1, as scanpy's `mean_var(correction=1)` computes it from the sums.
    pub fn var(&self) -> Vec<f64> {
        let n = self.n as f64;
        self.sum
            .iter()
            .zip(&self.sumsq)
            .map(|(s, q)| {
                let m = s / n;
                (q / n - m * m) * n / (n - 1.0).max(1.0)
            })
            .collect()
    }
}

/// Per-cell QC of `sc.pp.calculate_qc_metrics`: genes detected, total counts, the percentage
/// of counts in the top `percent_top` genes and the counts in each gene set.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct CellQc {
    pub n_genes: Vec<u64>,
    pub total: Vec<f64>,
    /// `[cell][k]`: percent of the cell's counts in its `percent_top[k]` largest genes.
    pub pct_top: Vec<Vec<f64>>,
    /// `[cell][set]`: counts in each gene set.
    pub set_totals: Vec<Vec<f64>>,
}

/// Computes [`CellQc`] for the rows of `x`. `percent_top` must be sorted ascending.
pub fn cell_qc(x: &Csr, gene_sets: &[Vec<bool>], percent_top: &[usize]) -> CellQc {
    let mut q = CellQc::default();
    let mut sorted = Vec::new();
    for i in 0..x.n_rows() {
        let (idx, val) = x.row(i);
        let total: f64 = val.iter().sum();
        q.n_genes
            .push(val.iter().filter(|v| **v != 0.0).count() as u64);
        q.total.push(total);
        sorted.clear();
        sorted.extend_from_slice(val);
        sorted.sort_unstable_by(|a, b| b.total_cmp(a));
        let mut acc = 0.0;
        let mut taken = 0;
        let mut pct = Vec::with_capacity(percent_top.len());
        for &n in percent_top {
            while taken < n.min(sorted.len()) {
                acc += sorted[taken];
                taken += 1;
            }
            pct.push(acc / total * 100.0);
        }
        q.pct_top.push(pct);
        q.set_totals.push(
            gene_sets
                .iter()
                .map(|set| {
                    idx.iter()
                        .zip(val)
                        .filter(|(j, _)| set[**j as usize])
                        .map(|(_, v)| v)
                        .sum()
                })
                .collect(),
        );
    }
    q
}

/// Moments of a block whose absent entries equal `fill` (zero without one).
pub fn moments(x: &Csr, fill: Option<&[f64]>) -> Moments {
    let (n, d) = (x.n_rows(), x.n_cols());
    let mut m = Moments::new(d);
    if n == 0 {
        return m;
    }
    m.n = n as u64;
    let mut stored = vec![0u64; d];
    for (&j, &v) in x.indices.iter().zip(&x.data) {
        m.mean[j as usize] += v;
        stored[j as usize] += 1;
    }
    let f = |j: usize| fill.map_or(0.0, |f| f[j]);
    for (j, (mean, s)) in m.mean.iter_mut().zip(&stored).enumerate() {
        *mean = (*mean + (n as u64 - s) as f64 * f(j)) / n as f64;
    }
    for (&j, &v) in x.indices.iter().zip(&x.data) {
        let j = j as usize;
        m.m2[j] += (v - m.mean[j]) * (v - m.mean[j]);
    }
    for (j, ((q, mean), s)) in m.m2.iter_mut().zip(&m.mean).zip(&stored).enumerate() {
        let dev = f(j) - mean;
        *q += (n as u64 - s) as f64 * dev * dev;
    }
    m
}

/// Columns of the Gram accumulated together: a tile of `GRAM_TILE²` float64 (512 KiB) stays
/// in the L2 cache while every row of the block adds to it, where the whole `d × d` Gram
/// (32 MB at 2,000 genes) would miss the cache on nearly every update.
const GRAM_TILE: usize = 256;

/// Adds a sparse block to a Gram accumulator whose shift is the block's fill (zero without
/// one): absent entries then contribute nothing, so each row costs the square of its stored
/// entries, not of the matrix width. Only the upper triangle is accumulated, tile by tile;
/// each entry still sums the rows in order, so the result does not depend on the tiling.
pub fn gram_update(g: &mut Gram, x: &Csr) {
    let n = x.n_rows();
    let dev = x.deviations(&g.shift);
    for (&j, &v) in x.indices.iter().zip(&dev) {
        g.sum[j as usize] += v;
    }
    let (tiles, bounds) = x.tile_bounds(GRAM_TILE);
    for tb in 0..tiles {
        for ta in 0..=tb {
            for row in bounds.chunks_exact(tiles + 1) {
                let (a0, a1) = (row[ta], row[ta + 1]);
                for e in row[tb]..row[tb + 1] {
                    let vb = dev[e];
                    // Column jb holds rows ja <= jb of the upper triangle.
                    let col = g.xtx.col_as_slice_mut(x.indices[e] as usize);
                    let a1 = if ta == tb { e + 1 } else { a1 };
                    for (&ja, &va) in x.indices[a0..a1].iter().zip(&dev[a0..a1]) {
                        col[ja as usize] += va * vb;
                    }
                }
            }
        }
    }
    g.n += n as u64;
}

/// Scores of a sparse block: `((x - mean) / scale) · components`, where absent entries are
/// `fill` (zero without one).
pub fn project(
    x: &Csr,
    fill: Option<&[f64]>,
    mean: &[f64],
    scale: Option<&[f64]>,
    components: &Array2<f64>,
) -> Array2<f64> {
    let k = components.ncols();
    let s = |j: usize| scale.map_or(1.0, |s| s[j]);
    let f = |j: usize| fill.map_or(0.0, |f| f[j]);
    // The absent entries' contribution, the same for every row.
    let mut base = vec![0.0; k];
    for j in 0..x.n_cols() {
        let w = (f(j) - mean[j]) / s(j);
        if w != 0.0 {
            for (c, b) in base.iter_mut().enumerate() {
                *b += w * components[[j, c]];
            }
        }
    }
    // Contiguous component rows, so each entry's update is one vectorised sweep of k.
    let comps = components.as_standard_layout();
    let comps = comps.as_slice().expect("standard layout is contiguous");
    let mut out = vec![0.0; x.n_rows() * k];
    for (i, row) in out.chunks_exact_mut(k.max(1)).enumerate() {
        let (idx, val) = x.row(i);
        row.copy_from_slice(&base);
        for (&j, &v) in idx.iter().zip(val) {
            let j = j as usize;
            let w = (v - f(j)) / s(j);
            for (o, &p) in row.iter_mut().zip(&comps[j * k..(j + 1) * k]) {
                *o += w * p;
            }
        }
    }
    Array2::from_shape_vec((x.n_rows(), k), out).expect("one row of k scores per cell")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Axis;

    fn block() -> Csr {
        Csr::from_rows(
            4,
            &[
                vec![(0, 1.0), (2, 3.0)],
                vec![],
                vec![(1, 2.0), (2, 1.0), (3, 5.0)],
                vec![(3, 1.0)],
            ],
        )
    }

    #[test]
    fn moments_with_a_fill_equal_moments_of_the_dense_matrix() {
        let x = block();
        let fill = [0.5, -1.0, 0.0, 2.0];
        let dense = x.to_dense(Some(&fill));
        let want = Moments::of_block(dense.view());
        let got = moments(&x, Some(&fill));
        for j in 0..4 {
            assert!((got.mean[j] - want.mean[j]).abs() < 1e-12);
            assert!((got.m2[j] - want.m2[j]).abs() < 1e-12);
        }
    }

    #[test]
    fn sparse_gram_and_projection_equal_the_dense_ones() {
        let x = block();
        let fill = [0.5, -1.0, 0.0, 2.0];
        let dense = x.to_dense(Some(&fill));
        let mut g = Gram::new(fill.to_vec());
        gram_update(&mut g, &x);
        let mut want = Gram::new(vec![0.0; 4]);
        want.update(dense.view());
        let (a, b) = (g.covariance(), want.covariance());
        for i in 0..4 {
            for j in 0..4 {
                assert!((a[(i, j)] - b[(i, j)]).abs() < 1e-12, "{i},{j}");
            }
        }
        let comps = Array2::from_shape_fn((4, 2), |(i, j)| (i + 2 * j) as f64 * 0.1 - 0.2);
        let mean = g.mean();
        let sd = [1.0, 2.0, 0.5, 4.0];
        let got = project(&x, Some(&fill), &mean, Some(&sd), &comps);
        let want = crate::pca::project(dense.view(), &mean, Some(&sd), &comps);
        assert!((got - want).iter().all(|d| d.abs() < 1e-12));
    }

    #[test]
    fn tiled_sparse_gram_equals_the_dense_one_across_tiles() {
        // Wider than two tiles, about 5% dense, with a fill.
        let d = 2 * GRAM_TILE + 37;
        let rows: Vec<Vec<(u32, f64)>> = (0..60)
            .map(|i| {
                (0..d)
                    .filter(|j| (i * 7 + j * 13) % 19 == 0)
                    .map(|j| (j as u32, ((i + 3 * j) % 11) as f64 - 4.0))
                    .collect()
            })
            .collect();
        let x = Csr::from_rows(d, &rows);
        let fill: Vec<f64> = (0..d).map(|j| (j % 5) as f64 * 0.25 - 0.5).collect();
        let mut g = Gram::new(fill.clone());
        gram_update(&mut g, &x);
        let mut want = Gram::new(vec![0.0; d]);
        want.update(x.to_dense(Some(&fill)).view());
        let (a, b) = (g.covariance(), want.covariance());
        for i in 0..d {
            for j in 0..d {
                assert!((a[(i, j)] - b[(i, j)]).abs() < 1e-10, "{i},{j}");
            }
        }
    }

    #[test]
    fn qc_row_and_column_kernels() {
        let x = block();
        let q = cell_qc(&x, &[vec![false, false, true, true]], &[1, 2]);
        assert_eq!(q.n_genes, vec![2, 0, 3, 1]);
        assert_eq!(q.total, vec![4.0, 0.0, 8.0, 1.0]);
        assert_eq!(q.pct_top[0], vec![75.0, 100.0]);
        assert!(q.pct_top[1][0].is_nan());
        assert_eq!(q.pct_top[2], vec![62.5, 87.5]);
        assert_eq!(q.set_totals[2], vec![6.0]);
        let mut c = ColumnSums::new(4);
        c.add(&x, None, |v| v);
        let dense = x.to_dense(None);
        let sums = dense.sum_axis(Axis(0));
        assert_eq!(c.sum, sums.to_vec());
        assert_eq!(c.nnz, vec![1, 1, 2, 2]);
        // Column 3: values 0, 0, 5, 1 -> mean 1.5, var (2.25*2 + 12.25 + 0.25) / 3.
        assert!((c.var()[3] - (4.5 + 12.25 + 0.25) / 3.0).abs() < 1e-12);
        let mut y = x.clone();
        y.scale_rows(&[2.0, 1.0, 0.5, 1.0]);
        assert_eq!(y.row(2).1, &[1.0, 0.5, 2.5]);
    }
}
