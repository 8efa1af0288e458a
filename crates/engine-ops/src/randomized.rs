//! Randomized PCA for many variables, where the `n_vars²` Gram matrix per worker would not fit:
//! subspace iteration on the covariance (Halko, Martinsson & Tropp 2011, algorithm 4.4; what
//! scikit-learn's `randomized_svd` does on the centred data). Each iteration is one streaming
//! pass that accumulates `Bᵀ(B W)` over row blocks `B`, so a worker holds `n_vars × (n_comps +
//! oversamples)` numbers, and centring (and a fused `scale`) are applied implicitly.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use ndarray::ArrayView2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use crate::pca::Pca;
use engine_common::Result;
use engine_matrix::Csr;

/// The sizes scikit-learn's `randomized_svd` picks by default. Its last step multiplies by
/// X once more than our Rayleigh–Ritz on the covariance does, so for the same `n_iter` its
/// subspace is one power ahead: comparable, not identical.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Randomized {
    pub n_comps: usize,
    /// Extra directions beyond `n_comps` (`n_oversamples = 10`).
    pub oversamples: usize,
    /// Power iterations after the first pass (`n_iter = 'auto'`: 7, or 4 when the components
    /// are at least a tenth of the smaller side of X).
    pub n_iter: usize,
    pub seed: u64,
}

impl Randomized {
    pub fn new(n_comps: usize, n_obs: usize, n_vars: usize, seed: u64) -> Randomized {
        Randomized {
            n_comps,
            oversamples: 10,
            n_iter: if 10 * n_comps < n_obs.min(n_vars) {
                7
            } else {
                4
            },
            seed,
        }
    }

    /// Passes over X, the projection not counted.
    pub fn passes(&self) -> usize {
        1 + self.n_iter.max(1)
    }
}

/// Whether two partials share a vector: the same allocation in one process, equal values
/// across processes (each task deserialises its own copy).
fn same(a: &Arc<Vec<f64>>, b: &Arc<Vec<f64>>) -> bool {
    Arc::ptr_eq(a, b) || a == b
}

/// Genes per tile of the sparse products: a tile's rows of W and of the sum (`TILE × l`
/// doubles each, 240 KiB at l = 60) stay in L2.
const TILE: usize = 512;

/// One pass's partial result: `Σ Bsᵀ (Bs W)` over blocks shifted by a fixed vector (a dense
/// input's estimated mean, which keeps the implicit centring free of cancellation; a sparse
/// input's fill or zero, so absent entries cost nothing), with the column sums and sums of
/// squares that give the mean and variance.
/// It crosses processes whole (a dask task returns one).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CovProduct {
    pub n: u64,
    shift: Arc<Vec<f64>>,
    /// `n_vars × l`, row-major, shared by every worker.
    w: Arc<Vec<f64>>,
    l: usize,
    sum: Vec<f64>,
    sumsq: Vec<f64>,
    /// `n_vars × l`, row-major.
    acc: Vec<f64>,
}

impl CovProduct {
    pub fn new(shift: Arc<Vec<f64>>, w: Arc<Vec<f64>>) -> CovProduct {
        let d = shift.len();
        let l = w.len() / d.max(1);
        CovProduct {
            n: 0,
            shift,
            w,
            l,
            sum: vec![0.0; d],
            sumsq: vec![0.0; d],
            acc: vec![0.0; d * l],
        }
    }

    /// Adds one dense block (rows × vars).
    pub fn update(&mut self, x: ArrayView2<'_, f64>) {
        let (n, d) = x.dim();
        if n == 0 {
            return;
        }
        let (sum, sumsq) = (&mut self.sum, &mut self.sumsq);
        let shifted = crate::stats::shifted(x, &self.shift, |j, s| {
            sum[j] += s;
            sumsq[j] += s * s;
        });
        let w = MatRef::from_row_major_slice(&self.w, d, self.l);
        let mut t = Mat::<f64>::zeros(n, self.l);
        // Blocks already run in parallel: each product is sequential on its worker.
        matmul(
            t.as_mut(),
            Accum::Replace,
            shifted.as_ref(),
            w,
            1.0,
            Par::Seq,
        );
        matmul(
            MatMut::from_row_major_slice_mut(&mut self.acc, d, self.l),
            Accum::Add,
            shifted.transpose(),
            t.as_ref(),
            1.0,
            Par::Seq,
        );
        crate::cpu::clean();
        self.n += n as u64;
    }

    /// Adds one sparse block whose absent entries equal the shift (a scaled matrix's fill, or
    /// zero), so only stored entries cost anything. Both products go tile by tile of [`TILE`]
    /// genes, so the rows of W and of the sum they touch stay in cache while every row of the
    /// block visits them; each entry still adds in the same order as row by row.
    pub fn update_sparse(&mut self, x: &Csr) {
        let (n, l) = (x.n_rows(), self.l);
        let dev = x.deviations(&self.shift);
        for (&j, &s) in x.indices.iter().zip(&dev) {
            self.sum[j as usize] += s;
            self.sumsq[j as usize] += s * s;
        }
        let (tiles, bounds) = x.tile_bounds(TILE);
        // T = Bs W, one row of l per cell of the block.
        let mut t = vec![0.0; n * l];
        for tile in 0..tiles {
            for (row, out) in bounds.chunks_exact(tiles + 1).zip(t.chunks_exact_mut(l)) {
                let r = row[tile]..row[tile + 1];
                for (&j, &s) in x.indices[r.clone()].iter().zip(&dev[r]) {
                    let j = j as usize;
                    for (o, &w) in out.iter_mut().zip(&self.w[j * l..(j + 1) * l]) {
                        *o += s * w;
                    }
                }
            }
        }
        // The sum += Bsᵀ T.
        for tile in 0..tiles {
            for (row, ti) in bounds.chunks_exact(tiles + 1).zip(t.chunks_exact(l)) {
                let r = row[tile]..row[tile + 1];
                for (&j, &s) in x.indices[r.clone()].iter().zip(&dev[r]) {
                    let j = j as usize;
                    for (o, &u) in self.acc[j * l..(j + 1) * l].iter_mut().zip(ti) {
                        *o += s * u;
                    }
                }
            }
        }
        self.n += n as u64;
    }

    /// Combines two partial results of the same pass.
    ///
    /// # Panics
    /// When the partials belong to different passes: that is a bug in the caller.
    pub fn merge(mut self, other: CovProduct) -> CovProduct {
        assert!(
            same(&self.w, &other.w) && same(&self.shift, &other.shift),
            "partials of different passes"
        );
        self.n += other.n;
        let add = |a: &mut Vec<f64>, b: &[f64]| a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
        add(&mut self.sum, &other.sum);
        add(&mut self.sumsq, &other.sumsq);
        add(&mut self.acc, &other.acc);
        self
    }

    /// The mean of the shifted columns.
    fn offset(&self) -> Vec<f64> {
        let n = self.n.max(1) as f64;
        self.sum.iter().map(|s| s / n).collect()
    }

    /// Sample variances (ddof = 1).
    fn variance(&self) -> Vec<f64> {
        let n = self.n as f64;
        self.sum
            .iter()
            .zip(&self.sumsq)
            .map(|(s, q)| ((q - s * s / n) / (n - 1.0).max(1.0)).max(0.0))
            .collect()
    }

    /// The covariance times this pass's `W`: `(Σ Bsᵀ Bs W − n δ (δᵀ W)) / (n − 1)`, with δ the
    /// shifted mean; column-major `n_vars × l`.
    fn cov_times_w(&self) -> Mat<f64> {
        let (d, l) = (self.sum.len(), self.l);
        let n = self.n as f64;
        let delta = self.offset();
        let mut dw = vec![0.0; l];
        for (j, &dj) in delta.iter().enumerate() {
            for (o, &w) in dw.iter_mut().zip(&self.w[j * l..(j + 1) * l]) {
                *o += dj * w;
            }
        }
        Mat::from_fn(d, l, |j, c| {
            (self.acc[j * l + c] - n * delta[j] * dw[c]) / (n - 1.0).max(1.0)
        })
    }
}

/// What randomized PCA found, with the statistics of its first pass.
#[derive(Debug, Clone)]
pub struct Found {
    pub pca: Pca,
    pub mean: Vec<f64>,
    /// Per-variable standard deviations (zero variance gives 1), when standardising.
    pub scale: Option<Vec<f64>>,
}

/// Runs randomized PCA over `n_vars` variables. `pass(shift, w)` streams X once and returns
/// the merged [`CovProduct`] for that shift and `W` (row-major `n_vars × l`); the first pass
/// also fixes the mean and, with `standardize`, the scale of the correlation matrix.
///
/// # Errors
/// What `pass` returns, or a data error when the eigendecomposition fails (NaN or infinite
/// data).
pub fn pca(
    n_vars: usize,
    shift: Vec<f64>,
    standardize: bool,
    r: &Randomized,
    mut pass: impl FnMut(Arc<Vec<f64>>, Arc<Vec<f64>>) -> Result<CovProduct>,
) -> Result<Found> {
    let d = n_vars;
    let k = r.n_comps.min(d);
    let l = (k + r.oversamples).min(d);
    let shift = Arc::new(shift);
    let mut rng = ChaCha8Rng::seed_from_u64(r.seed);
    let omega: Vec<f64> = (0..d * l)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    let first = pass(shift.clone(), Arc::new(omega))?;
    let var = first.variance();
    let mean: Vec<f64> = first
        .offset()
        .iter()
        .zip(shift.iter())
        .map(|(o, s)| o + s)
        .collect();
    let scale: Option<Vec<f64>> = standardize.then(|| {
        var.iter()
            .map(|v| if *v > 0.0 { v.sqrt() } else { 1.0 })
            .collect()
    });
    // The operator is C, or D⁻¹ C D⁻¹ (the correlation) with D the scale: a pass with
    // W = D⁻¹ Q gives C W, and D⁻¹ C W is the operator times Q.
    let unscale = |m: &mut Mat<f64>| {
        if let Some(s) = &scale {
            for c in 0..m.ncols() {
                for (j, sj) in s.iter().enumerate() {
                    m[(j, c)] /= sj;
                }
            }
        }
    };
    // The first pass ran before the scale was known: its product is C Ω, a start as good as
    // any other for the range finder.
    let mut y = first.cov_times_w();
    unscale(&mut y);
    drop(first);
    let mut q = Mat::<f64>::zeros(d, l);
    for _ in 0..r.n_iter.max(1) {
        q = y.as_ref().qr().compute_thin_Q();
        let mut w = q.clone();
        unscale(&mut w);
        let w: Vec<f64> = (0..d * l).map(|e| w[(e / l, e % l)]).collect();
        let p = pass(shift.clone(), Arc::new(w))?;
        y = p.cov_times_w();
        unscale(&mut y);
    }
    // Rayleigh–Ritz on the last basis: the small matrix Qᵀ A Q, symmetrised.
    let mut m = Mat::<f64>::zeros(l, l);
    matmul(
        m.as_mut(),
        Accum::Replace,
        q.transpose(),
        y.as_ref(),
        1.0,
        Par::Seq,
    );
    let m = Mat::from_fn(l, l, |i, j| (m[(i, j)] + m[(j, i)]) / 2.0);
    let (values, vecs) = crate::eigen::dense(m.as_ref())?;
    let mut vectors = Mat::<f64>::zeros(d, k);
    matmul(
        vectors.as_mut(),
        Accum::Replace,
        q.as_ref(),
        vecs.subcols(0, k),
        1.0,
        Par::Seq,
    );
    crate::cpu::clean();
    crate::eigen::fix_signs(&mut vectors);
    let total: f64 = match &scale {
        Some(s) => var.iter().zip(s).map(|(v, s)| v / (s * s)).sum(),
        None => var.iter().sum(),
    };
    let variance: Vec<f64> = values[..k].iter().map(|v| v.max(0.0)).collect();
    let variance_ratio = variance
        .iter()
        .map(|v| if total > 0.0 { v / total } else { 0.0 })
        .collect();
    Ok(Found {
        pca: Pca {
            components: ndarray::Array2::from_shape_fn((d, k), |(i, c)| vectors[(i, c)]),
            variance,
            variance_ratio,
        },
        mean,
        scale,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Gram;
    use ndarray::Array2;

    /// 400 × 60 data of rank-5 signal with decaying strengths plus small noise, off-centre.
    fn data() -> Array2<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut g = || -> f64 { StandardNormal.sample(&mut rng) };
        let factors = Array2::from_shape_fn((400, 5), |_| g());
        let loadings = Array2::from_shape_fn((5, 60), |(r, _)| g() * 10.0 / (r as f64 + 1.0));
        let noise = Array2::from_shape_fn((400, 60), |(_, j)| g() * 0.05 * (1.0 + j as f64 / 60.0));
        let offset = Array2::from_shape_fn((1, 60), |(_, j)| 100.0 + j as f64);
        factors.dot(&loadings) + noise + offset
    }

    fn exact(x: &Array2<f64>, standardize: bool, k: usize) -> Pca {
        let mut g = Gram::new(vec![0.0; x.ncols()]);
        g.update(x.view());
        let cov = if standardize {
            g.correlation().0
        } else {
            g.covariance()
        };
        crate::pca::from_covariance(cov, k).unwrap()
    }

    /// Streams `x` in blocks of 37 rows, dense or sparse, as the executor does.
    fn randomized(x: &Array2<f64>, standardize: bool, k: usize, sparse: bool) -> Found {
        let r = Randomized::new(k, x.nrows(), x.ncols(), 3);
        run(x, r, standardize, vec![0.0; x.ncols()], sparse)
    }

    /// Streams `x` with `shift` through the solver; sparse blocks store only the entries that
    /// differ from the shift, as a scaled sparse matrix stores those that differ from its fill.
    fn run(
        x: &Array2<f64>,
        r: Randomized,
        standardize: bool,
        shift: Vec<f64>,
        sparse: bool,
    ) -> Found {
        let fill = shift.clone();
        pca(x.ncols(), shift, standardize, &r, |shift, w| {
            let mut acc = CovProduct::new(shift.clone(), w.clone());
            for start in (0..x.nrows()).step_by(37) {
                let end = (start + 37).min(x.nrows());
                let mut part = CovProduct::new(shift.clone(), w.clone());
                let b = x.slice(ndarray::s![start..end, ..]);
                if sparse {
                    let rows: Vec<Vec<(u32, f64)>> = b
                        .outer_iter()
                        .map(|r| {
                            r.iter()
                                .enumerate()
                                .filter(|&(j, &v)| v != fill[j])
                                .map(|(j, &v)| (j as u32, v))
                                .collect()
                        })
                        .collect();
                    part.update_sparse(&Csr::from_rows(x.ncols(), &rows));
                } else {
                    part.update(b);
                }
                acc = acc.merge(part);
            }
            Ok(acc)
        })
        .unwrap()
    }

    fn assert_close(a: &Pca, b: &Pca, comps: usize, tol: f64) {
        for c in 0..comps {
            let rel = (a.variance_ratio[c] - b.variance_ratio[c]).abs() / b.variance_ratio[c];
            assert!(
                rel < tol,
                "component {c}: ratio {} vs {}",
                a.variance_ratio[c],
                b.variance_ratio[c]
            );
            let dot: f64 = a.components.column(c).dot(&b.components.column(c));
            assert!((dot - 1.0).abs() < tol, "component {c}: |cos| {dot}");
        }
    }

    #[test]
    fn matches_the_exact_covariance_pca() {
        let x = data();
        let found = randomized(&x, false, 5, false);
        assert_close(&found.pca, &exact(&x, false, 5), 5, 1e-9);
        let means: Vec<f64> = x.mean_axis(ndarray::Axis(0)).unwrap().to_vec();
        for (a, b) in found.mean.iter().zip(&means) {
            assert!((a - b).abs() < 1e-9);
        }
        assert!(found.scale.is_none());
    }

    #[test]
    fn standardized_matches_the_correlation_pca_dense_and_sparse() {
        let x = data();
        let want = exact(&x, true, 5);
        for sparse in [false, true] {
            let found = randomized(&x, true, 5, sparse);
            assert_close(&found.pca, &want, 5, 1e-9);
            // The total is the number of variables: every one has unit variance.
            let sum: f64 = found.pca.variance.iter().sum();
            let ratio: f64 = found.pca.variance_ratio.iter().sum();
            assert!((sum / ratio - 60.0).abs() < 1e-9);
        }
    }

    #[test]
    fn sparse_blocks_whose_absent_entries_are_the_fill_give_the_dense_result() {
        // Most entries equal their column's fill (as after `scale` of sparse counts) and are
        // not stored. With as many directions as variables the subspace is complete, so the
        // result is exact whatever the spectrum: any error is the kernel's.
        let mut x = data();
        let fill: Vec<f64> = (0..x.ncols()).map(|j| -0.5 - j as f64 / 60.0).collect();
        for ((i, j), v) in x.indexed_iter_mut() {
            if (i * 7 + j * 3) % 10 < 7 {
                *v = fill[j];
            }
        }
        let r = Randomized {
            n_comps: 5,
            oversamples: x.ncols(),
            n_iter: 2,
            seed: 5,
        };
        for standardize in [false, true] {
            let want = exact(&x, standardize, 5);
            let dense = run(&x, r, standardize, fill.clone(), false);
            let sparse = run(&x, r, standardize, fill.clone(), true);
            assert_close(&dense.pca, &want, 5, 1e-9);
            assert_close(&sparse.pca, &want, 5, 1e-9);
            for (a, b) in sparse.mean.iter().zip(&dense.mean) {
                assert!((a - b).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn sparse_products_across_tiles_equal_the_dense_ones() {
        let d = 2 * TILE + 77;
        let x = Array2::from_shape_fn((50, d), |(i, j)| {
            if (i * 13 + j * 7) % 5 == 0 {
                (i + j) as f64 * 0.01
            } else {
                0.0
            }
        });
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let w: Vec<f64> = (0..d * 3)
            .map(|_| StandardNormal.sample(&mut rng))
            .collect();
        let (shift, w) = (Arc::new(vec![0.0; d]), Arc::new(w));
        let mut dense = CovProduct::new(shift.clone(), w.clone());
        dense.update(x.view());
        let rows: Vec<Vec<(u32, f64)>> = x
            .outer_iter()
            .map(|r| {
                r.iter()
                    .enumerate()
                    .filter(|&(_, &v)| v != 0.0)
                    .map(|(j, &v)| (j as u32, v))
                    .collect()
            })
            .collect();
        let mut sparse = CovProduct::new(shift, w);
        sparse.update_sparse(&Csr::from_rows(d, &rows));
        assert!(sparse.acc.iter().any(|v| *v != 0.0));
        for (a, b) in [
            (&sparse.acc, &dense.acc),
            (&sparse.sum, &dense.sum),
            (&sparse.sumsq, &dense.sumsq),
        ] {
            for (u, v) in a.iter().zip(b.iter()) {
                assert!((u - v).abs() <= 1e-9 * v.abs().max(1.0), "{u} vs {v}");
            }
        }
    }
}
