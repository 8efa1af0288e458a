//! The initial layout: umap-learn's `spectral_layout`, and the scaling into `[0, 10]` that a
//! random start gets too.

use super::graph::Adjacency;
use crate::eigen;
use faer::dyn_stack::{MemStack, StackReq};
use faer::matrix_free::LinOp;
use faer::{Mat, MatMut, MatRef, Par};
use ndarray::{Array2, ArrayView2};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;

/// `I + D^-1/2 A D^-1/2`: its largest eigenvectors are the normalised Laplacian's smallest,
/// and the shift keeps the spectrum in `[0, 2]` so "largest magnitude" means "largest".
#[derive(Debug)]
struct ShiftedNormalized<'g> {
    graph: &'g Adjacency<'g>,
    inv_sqrt_deg: Vec<f64>,
}

impl LinOp<f64> for ShiftedNormalized<'_> {
    fn apply_scratch(&self, _rhs_ncols: usize, _par: Par) -> StackReq {
        StackReq::EMPTY
    }
    fn nrows(&self) -> usize {
        self.graph.n()
    }
    fn ncols(&self) -> usize {
        self.graph.n()
    }
    fn apply(
        &self,
        mut out: MatMut<'_, f64>,
        rhs: MatRef<'_, f64>,
        _par: Par,
        _stack: &mut MemStack,
    ) {
        // Plain SSE code on pool threads faer's solver just used: see `cpu`.
        crate::cpu::clean_all();
        let d = &self.inv_sqrt_deg;
        let n = self.graph.n();
        let b = rhs.ncols();
        // All columns in one traversal of the graph, which is what costs: rows of `D^-1/2 x`
        // side by side, then each output row's sums over its edges.
        let mut scaled = vec![0.0f64; n * b];
        scaled
            .par_chunks_mut(b.max(1))
            .enumerate()
            .for_each(|(j, r)| {
                for (c, v) in r.iter_mut().enumerate() {
                    *v = rhs[(j, c)] * d[j];
                }
            });
        let mut y = vec![0.0f64; n * b];
        y.par_chunks_mut(b.max(1))
            .enumerate()
            .with_min_len(1024)
            .for_each(|(i, yr)| {
                for (j, w) in self.graph.row(i) {
                    for (acc, s) in yr.iter_mut().zip(&scaled[j * b..(j + 1) * b]) {
                        *acc += w * s;
                    }
                }
                for (c, v) in yr.iter_mut().enumerate() {
                    *v = rhs[(i, c)] + d[i] * *v;
                }
            });
        for i in 0..n {
            for c in 0..b {
                out[(i, c)] = y[i * b + c];
            }
        }
    }
    fn conj_apply(
        &self,
        out: MatMut<'_, f64>,
        rhs: MatRef<'_, f64>,
        par: Par,
        stack: &mut MemStack,
    ) {
        self.apply(out, rhs, par, stack);
    }
}

/// Residual asked of the spectral initialisation: umap-learn asks ARPACK for 1e-4 too, and
/// the layout only starts from these vectors.
const SPECTRAL_TOL: f64 = 1e-4;

/// Eigenvectors 2..=dim+1 of the normalised Laplacian of a connected graph (umap-learn's
/// `spectral_layout`), or `None` when the solver fails (umap-learn then falls back to a
/// random layout, as the caller does).
fn connected_spectral(graph: &Adjacency<'_>, dim: usize, tol: f64) -> Option<Array2<f64>> {
    let n = graph.n();
    let deg: Vec<f64> = (0..n).map(|i| graph.row(i).map(|(_, w)| w).sum()).collect();
    if deg.iter().any(|&d| d <= 0.0) {
        return None;
    }
    let op = ShiftedNormalized {
        graph,
        inv_sqrt_deg: deg.iter().map(|d| 1.0 / d.sqrt()).collect(),
    };
    let k = dim + 1;
    // The trivial top eigenvector, D^1/2 1 with eigenvalue 2, is known: lock it and find the
    // next `dim`.
    let lanczos = (n * (LANCZOS_BASIS + 2) * size_of::<f64>() <= LANCZOS_BYTES)
        .then(|| {
            let norm = deg.iter().sum::<f64>().sqrt();
            let top = Mat::from_fn(n, 1, |i, _| deg[i].sqrt() / norm);
            eigen::thick_restart_lanczos(
                &op,
                dim,
                tol,
                LANCZOS_BASIS,
                top.as_ref(),
                LANCZOS_PRODUCTS,
            )
            .filter(|(_, vecs)| vecs.ncols() == dim)
            .map(|(_, vecs)| {
                let mut all = Mat::zeros(n, dim + 1);
                all.as_mut().subcols_mut(0, 1).copy_from(&top);
                all.as_mut().subcols_mut(1, dim).copy_from(&vecs);
                all
            })
        })
        .flatten();
    let mut vecs = match lanczos {
        Some(vecs) => vecs,
        None if n <= 4096 => {
            // Small graphs: the dense operator and the full solver.
            let mut dense = Mat::<f64>::zeros(n, n);
            let eye = Mat::<f64>::identity(n, n);
            op.apply(
                dense.as_mut(),
                eye.as_ref(),
                Par::Seq,
                MemStack::new(&mut []),
            );
            let (_, vecs) = eigen::dense(dense.as_ref()).ok()?;
            vecs.subcols(0, k.min(n)).to_owned()
        }
        // Too large for the basis, or not converged: the approximate block iteration.
        None => subspace_iteration(&op, k, SUBSPACE_ITERATIONS),
    };
    if vecs.ncols() < k {
        return None;
    }
    eigen::fix_signs(&mut vecs);
    Some(Array2::from_shape_fn((n, dim), |(i, c)| vecs[(i, c + 1)]))
}

/// Lanczos basis of the spectral initialisation: small, so reorthogonalisation stays cheap,
/// and restarts keep the leading Ritz vectors.
const LANCZOS_BASIS: usize = 32;

/// Operator products before the spectral initialisation gives up (and falls back to a random
/// layout, as umap-learn does when ARPACK fails).
const LANCZOS_PRODUCTS: usize = 5000;

/// Most bytes the Lanczos basis (`LANCZOS_BASIS + 2` vectors of length n: 270 MB at a million
/// cells) may take; beyond it (about two million cells) block subspace iteration, which needs
/// `k + 4` vectors but is slower and rougher, runs instead (a million cells: 56 s against
/// Lanczos's 11 s, and a final layout's silhouette of 0.81 against 0.83).
const LANCZOS_BYTES: usize = 512 << 20;

/// Products with the operator per block column in [`subspace_iteration`]: components with
/// eigenvalue below 0.95 of the top are damped 170-fold, enough for a starting layout (the
/// layout's SGD does the rest, as it does after umap-learn's loose 1e-4 eigensolve).
const SUBSPACE_ITERATIONS: usize = 100;

/// The `k` leading eigenvectors of `op` (spectrum in `[0, 2]`), approximately: block power
/// iteration on `k + 4` columns from the known top vector and fixed pseudo-random ones,
/// orthonormalised each step, then a Rayleigh–Ritz projection.
fn subspace_iteration(op: &ShiftedNormalized<'_>, k: usize, iterations: usize) -> Mat<f64> {
    let n = op.graph.n();
    let b = (k + 4).min(n);
    let mut x = Mat::<f64>::from_fn(n, b, |i, c| {
        if c == 0 {
            1.0 / op.inv_sqrt_deg[i]
        } else {
            // A fixed hash of (row, column) in [-1, 1): the start does not depend on a seed.
            let h = crate::synthetic::mix(i as u64, c as u64);
            (h >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        }
    });
    let mut y = Mat::<f64>::zeros(n, b);
    for _ in 0..iterations {
        x = x.qr().compute_thin_Q();
        op.apply(y.as_mut(), x.as_ref(), Par::Seq, MemStack::new(&mut []));
        std::mem::swap(&mut x, &mut y);
    }
    x = x.qr().compute_thin_Q();
    op.apply(y.as_mut(), x.as_ref(), Par::Seq, MemStack::new(&mut []));
    let h = x.transpose() * &y;
    let h = Mat::from_fn(b, b, |i, j| 0.5 * (h[(i, j)] + h[(j, i)]));
    match eigen::dense(h.as_ref()) {
        Ok((_, u)) => &x * u.subcols(0, k.min(b)),
        Err(_) => x.subcols(0, k.min(b)).to_owned(),
    }
}

/// umap-learn's `spectral_layout`, with `multi_component_layout` for disconnected graphs:
/// components are placed at meta-embedding points (the unit axes and their negatives when
/// few, a spectral embedding of the component centroids in `data` otherwise) and each laid out
/// within half the distance to its nearest neighbouring point.
pub(super) fn spectral_layout(
    graph: &Adjacency<'_>,
    data: ArrayView2<'_, f32>,
    dim: usize,
    rng: &mut ChaCha8Rng,
) -> Array2<f64> {
    let n = graph.n();
    let random = |rng: &mut ChaCha8Rng, rows: usize, half: f64| {
        Array2::from_shape_fn((rows, dim), |_| rng.random_range(-half..half))
    };
    let (n_comp, labels) = graph.components();
    if n_comp == 1 {
        return connected_spectral(graph, dim, SPECTRAL_TOL)
            .unwrap_or_else(|| random(rng, n, 10.0));
    }
    let meta = meta_embedding(data, n_comp, &labels, dim);
    let mut members = vec![Vec::new(); n_comp];
    for (v, &l) in labels.iter().enumerate() {
        members[l].push(v);
    }
    let mut out = Array2::zeros((n, dim));
    for (c, m) in members.iter().enumerate() {
        let data_range = (0..n_comp)
            .filter(|&o| o != c)
            .map(|o| {
                (0..dim)
                    .map(|d| (meta[[c, d]] - meta[[o, d]]).powi(2))
                    .sum::<f64>()
                    .sqrt()
            })
            .filter(|&d| d > 0.0)
            .fold(f64::INFINITY, f64::min)
            / 2.0;
        let data_range = if data_range.is_finite() {
            data_range
        } else {
            1.0
        };
        let local = if m.len() < 2 * dim || m.len() <= dim + 1 {
            None
        } else {
            connected_spectral(&graph.induced(m), dim, SPECTRAL_TOL)
        };
        let local = match local {
            Some(mut e) => {
                let max = e.iter().fold(0.0f64, |a, v| a.max(v.abs()));
                if max > 0.0 {
                    e.mapv_inplace(|v| v * data_range / max);
                }
                e
            }
            None => random(rng, m.len(), data_range),
        };
        for (k, &v) in m.iter().enumerate() {
            for d in 0..dim {
                out[[v, d]] = local[[k, d]] + meta[[c, d]];
            }
        }
    }
    out
}

/// Where each component goes: `±e_i` when there are at most `2 dim` components, else a
/// spectral embedding of the centroids' Gaussian affinities `exp(-d²)` scaled to unit
/// extent (umap-learn's `component_layout`), with evenly spread points on a circle when those
/// affinities vanish.
fn meta_embedding(
    data: ArrayView2<'_, f32>,
    n_comp: usize,
    labels: &[usize],
    dim: usize,
) -> Array2<f64> {
    if n_comp <= 2 * dim {
        let k = n_comp.div_ceil(2);
        return Array2::from_shape_fn((n_comp, dim), |(c, d)| {
            let (axis, sign) = if c < k { (c, 1.0) } else { (c - k, -1.0) };
            if axis == d { sign } else { 0.0 }
        });
    }
    let p = data.ncols();
    let mut centroids = Array2::<f64>::zeros((n_comp, p));
    let mut counts = vec![0usize; n_comp];
    for (row, &l) in data.outer_iter().zip(labels) {
        counts[l] += 1;
        for (c, &v) in centroids.row_mut(l).iter_mut().zip(row) {
            *c += f64::from(v);
        }
    }
    for (mut row, &c) in centroids.outer_iter_mut().zip(&counts) {
        row.mapv_inplace(|v| v / c.max(1) as f64);
    }
    let affinity = Mat::from_fn(n_comp, n_comp, |i, j| {
        let d2: f64 = (0..p)
            .map(|k| (centroids[[i, k]] - centroids[[j, k]]).powi(2))
            .sum();
        (-d2).exp()
    });
    let deg: Vec<f64> = (0..n_comp)
        .map(|i| (0..n_comp).map(|j| affinity[(i, j)]).sum())
        .collect();
    let off_diagonal: f64 = deg.iter().sum::<f64>() - n_comp as f64;
    let spectral = (data.nrows() == labels.len() && off_diagonal > 1e-12)
        .then(|| {
            let norm = Mat::from_fn(n_comp, n_comp, |i, j| {
                affinity[(i, j)] / (deg[i] * deg[j]).sqrt()
            });
            eigen::dense(norm.as_ref()).ok()
        })
        .flatten()
        .map(|(_, mut vecs)| {
            eigen::fix_signs(&mut vecs);
            Array2::from_shape_fn((n_comp, dim), |(i, d)| vecs[(i, d + 1)] / deg[i].sqrt())
        });
    let mut meta = spectral.unwrap_or_else(|| {
        Array2::from_shape_fn((n_comp, dim), |(c, d)| {
            let t = std::f64::consts::TAU * c as f64 / n_comp as f64;
            match d {
                0 => t.cos(),
                1 => t.sin(),
                _ => 0.0,
            }
        })
    });
    let max = meta.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    if max > 0.0 {
        meta.mapv_inplace(|v| v / max);
    }
    meta
}

/// Scales so the largest coordinate is 10, then adds N(0, 1e-4) noise (umap-learn's
/// `noisy_scale_coords`).
pub(super) fn noisy_scale_coords(coords: &Array2<f64>, rng: &mut ChaCha8Rng) -> Array2<f32> {
    let max = coords.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let expansion = if max > 0.0 { 10.0 / max } else { 1.0 };
    let noise = Normal::new(0.0, 1e-4).expect("valid normal");
    coords.mapv(|v| (v * expansion) as f32 + noise.sample(rng) as f32)
}

/// Each coordinate rescaled to `[0, 10]`.
pub(super) fn scale_into_box(mut e: Array2<f32>) -> Array2<f32> {
    for mut col in e.columns_mut() {
        let (lo, hi) = col
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
                (l.min(v), h.max(v))
            });
        let span = hi - lo;
        col.mapv_inplace(|v| {
            if span > 0.0 {
                10.0 * (v - lo) / span
            } else {
                0.0
            }
        });
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::umap::tests::{clique_chain, graph};

    #[test]
    fn spectral_layout_of_a_path_is_closed_form() {
        // On a path with unit weights, D⁻¹A has eigenvectors cos(π k i / (n - 1)) with
        // eigenvalues cos(π k / (n - 1)), so the normalised Laplacian's k-th mode is
        // sqrt(deg_i) cos(π k i / (n - 1)).
        let n = 200;
        let edges: Vec<_> = (0..n - 1).map(|i| (i, i + 1, 1.0)).collect();
        let g = graph(n, &edges);
        let x = connected_spectral(&Adjacency::of_graph(&g, 500), 2, 1e-12).expect("converges");
        for k in 1..=2 {
            let expected: Vec<f64> = (0..n)
                .map(|i| {
                    let deg = if i == 0 || i == n - 1 { 1.0f64 } else { 2.0 };
                    deg.sqrt() * (std::f64::consts::PI * (k * i) as f64 / (n - 1) as f64).cos()
                })
                .collect();
            let got = x.column(k - 1);
            let dot: f64 = got.iter().zip(&expected).map(|(a, b)| a * b).sum();
            let norms = got.dot(&got).sqrt() * expected.iter().map(|v| v * v).sum::<f64>().sqrt();
            assert!(
                (dot.abs() / norms - 1.0).abs() < 1e-8,
                "mode {k}: |cos| {}",
                dot.abs() / norms
            );
        }
    }

    #[test]
    fn subspace_iteration_spans_the_leading_modes() {
        // Three 40-vertex cliques in a chain: a clear gap after the three leading eigenvalues,
        // so 100 block iterations capture the exact modes the Krylov solver finds.
        let (k, size) = (3, 40);
        let g = clique_chain(k, size, 0.5);
        let adjacency = Adjacency::of_graph(&g, 500);
        let deg: Vec<f64> = (0..k * size)
            .map(|i| adjacency.row(i).map(|(_, w)| w).sum())
            .collect();
        let op = ShiftedNormalized {
            graph: &adjacency,
            inv_sqrt_deg: deg.iter().map(|d| 1.0 / d.sqrt()).collect(),
        };
        let approx = subspace_iteration(&op, 3, SUBSPACE_ITERATIONS);
        let exact = connected_spectral(&adjacency, 2, 1e-12).unwrap();
        // The subspaces agree: each exact mode lies in the span of the approximate ones.
        for c in 0..2 {
            let v = exact.column(c);
            let norm = v.dot(&v).sqrt();
            let captured: f64 = (0..3)
                .map(|a| {
                    let dot: f64 = (0..k * size).map(|i| approx[(i, a)] * v[i]).sum();
                    dot * dot
                })
                .sum::<f64>()
                .sqrt();
            assert!(
                (captured / norm - 1.0).abs() < 1e-6,
                "mode {c}: {}",
                captured / norm
            );
        }
    }
}
