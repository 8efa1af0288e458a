//! UMAP layout of a fuzzy kNN graph (McInnes, Healy & Melville 2018), as `sc.tl.umap` runs
//! umap-learn's `simplicial_set_embedding`:
//! - `a`, `b` fitted so `1 / (1 + a d^2b)` matches the offset exponential set by `min_dist`
//!   and `spread`;
//! - edges lighter than `max / n_epochs` dropped; each remaining edge sampled in proportion
//!   to its weight;
//! - spectral initialisation from the normalised Laplacian, with disconnected components
//!   laid out apart, scaled into `[0, 10]`;
//! - SGD over the edges, each positive step followed by `negative_sample_rate` repulsive
//!   steps against random vertices, with a learning rate decaying linearly to zero.
//!
//! The SGD runs over fixed vertex blocks in parallel, each reading the others as of the
//! epoch's start, so one seed gives one layout on any number of cores (umap-learn runs
//! sequentially when given a seed). A vertex takes all its samples of an epoch from where it
//! stood at its turn, so they are computed together as one vector.

use crate::eigen;
use engine_matrix::Compressed;
use faer::dyn_stack::{MemStack, StackReq};
use faer::matrix_free::LinOp;
use faer::{Mat, MatMut, MatRef, Par};
use ndarray::{Array2, ArrayView2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;
use std::borrow::Cow;

/// `sc.tl.umap`'s parameters, with its defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct UmapParams {
    pub min_dist: f64,
    pub spread: f64,
    pub n_components: usize,
    /// `maxiter`: 500 epochs up to 10,000 cells, 200 above when `None`.
    pub n_epochs: Option<usize>,
    pub alpha: f64,
    pub gamma: f64,
    pub negative_sample_rate: usize,
    pub a: Option<f64>,
    pub b: Option<f64>,
    pub seed: u64,
    /// `init_pos`: `true` for "spectral", `false` for "random" (uniform in `[-10, 10]`).
    pub spectral: bool,
}

impl Default for UmapParams {
    fn default() -> Self {
        UmapParams {
            min_dist: 0.5,
            spread: 1.0,
            n_components: 2,
            n_epochs: None,
            alpha: 1.0,
            gamma: 1.0,
            negative_sample_rate: 5,
            a: None,
            b: None,
            seed: 0,
            spectral: true,
        }
    }
}

/// The layout and the curve parameters it was optimised with (`uns['umap']['params']`).
#[derive(Debug, Clone)]
pub struct Umap {
    pub embedding: Array2<f32>,
    pub a: f64,
    pub b: f64,
}

/// Lays out the symmetric graph `graph` (`obsp['connectivities']`); `data` is the
/// representation the graph was built from, used only to place disconnected components.
pub fn umap(graph: &Compressed, data: ArrayView2<'_, f32>, params: &UmapParams) -> Umap {
    optimize(initialize(graph, data, params), params)
}

/// A layout ready for SGD: the starting coordinates (in `[0, 10]`), the edges to sample and
/// the fitted curve.
#[derive(Debug)]
pub struct Initial {
    embedding: Array2<f32>,
    edges: Edges,
    n_epochs: usize,
    a: f64,
    b: f64,
    rng: ChaCha8Rng,
}

/// The curve fit, the edge schedule and the initial layout (spectral or random).
pub fn initialize(graph: &Compressed, data: ArrayView2<'_, f32>, params: &UmapParams) -> Initial {
    let (a, b) = match (params.a, params.b) {
        (Some(a), Some(b)) => (a, b),
        _ => find_ab_params(params.spread, params.min_dist),
    };
    let n = graph.shape[0];
    let dim = params.n_components;
    let n_epochs = params
        .n_epochs
        .filter(|&e| e > 0)
        .unwrap_or(if n <= 10_000 { 500 } else { 200 });
    let mut edges = Edges::from_graph(graph, n_epochs);
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let init = if n == 0 {
        Array2::zeros((0, dim))
    } else if params.spectral {
        let coords = spectral_layout(&edges.adjacency(), data, dim, &mut rng);
        noisy_scale_coords(&coords, &mut rng)
    } else {
        Array2::from_shape_fn((n, dim), |_| rng.random_range(-10.0f32..10.0))
    };
    // The SGD samples by the schedule alone.
    edges.weight = Vec::new();
    Initial {
        embedding: scale_into_box(init),
        edges,
        n_epochs,
        a,
        b,
        rng,
    }
}

/// The SGD epochs.
pub fn optimize(init: Initial, params: &UmapParams) -> Umap {
    let Initial {
        mut embedding,
        edges,
        n_epochs,
        a,
        b,
        mut rng,
    } = init;
    if embedding.nrows() > 0 {
        // Vertices renumbered so that graph neighbours sit close in memory: the layout
        // starts from a spectral embedding, in which they are close in space, and a
        // Z-order curve over it keeps most edges inside a block and in cache.
        let order = z_order(&embedding);
        let edges = edges.permuted(&order);
        let mut local = embedding.select(Axis(0), &order);
        optimize_layout(&mut local, &edges, n_epochs, a, b, params, &mut rng);
        for (row, &v) in local.outer_iter().zip(&order) {
            embedding.row_mut(v).assign(&row);
        }
    }
    Umap { embedding, a, b }
}

/// The rows of `coords` sorted along a Z-order (Morton) curve through their first (up to
/// three) columns; ties keep index order.
fn z_order(coords: &Array2<f32>) -> Vec<usize> {
    let k = coords.ncols().min(3);
    let bits = 30 / k.max(1) as u32;
    let top = ((1u64 << bits) - 1) as f32;
    let range: Vec<(f32, f32)> = (0..k)
        .map(|c| {
            let col = coords.column(c);
            let lo = col.iter().copied().fold(f32::INFINITY, f32::min);
            let hi = col.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            (lo, (hi - lo).max(f32::MIN_POSITIVE))
        })
        .collect();
    let code = |row: ndarray::ArrayView1<'_, f32>| -> u64 {
        let mut z = 0u64;
        for (c, &(lo, width)) in range.iter().enumerate() {
            let q = (((row[c] - lo) / width * top) as u64).min(top as u64);
            for bit in 0..bits {
                z |= ((q >> bit) & 1) << (bit as usize * k + c);
            }
        }
        z
    };
    let codes: Vec<u64> = coords.outer_iter().map(code).collect();
    let mut order: Vec<usize> = (0..coords.nrows()).collect();
    order.sort_by_key(|&v| (codes[v], v));
    order
}

/// Least-squares fit of `1 / (1 + a x^2b)` to 1 below `min_dist` and
/// `exp(-(x - min_dist) / spread)` above, on 300 points over `[0, 3 spread]`, from
/// `a = b = 1` (umap-learn's `find_ab_params`, which calls scipy's `curve_fit`); solved here
/// by Levenberg–Marquardt with the analytic Jacobian.
pub fn find_ab_params(spread: f64, min_dist: f64) -> (f64, f64) {
    let xs: Vec<f64> = (0..300).map(|i| 3.0 * spread * i as f64 / 299.0).collect();
    let ys: Vec<f64> = xs
        .iter()
        .map(|&x| {
            if x < min_dist {
                1.0
            } else {
                (-(x - min_dist) / spread).exp()
            }
        })
        .collect();
    let cost = |a: f64, b: f64| -> f64 {
        xs.iter()
            .zip(&ys)
            .map(|(&x, &y)| (1.0 / (1.0 + a * x.powf(2.0 * b)) - y).powi(2))
            .sum()
    };
    let (mut a, mut b) = (1.0f64, 1.0f64);
    let mut current = cost(a, b);
    let mut lambda = 1e-3;
    for _ in 0..500 {
        // Normal equations of the linearised problem.
        let (mut jaa, mut jab, mut jbb, mut ga, mut gb) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (&x, &y) in xs.iter().zip(&ys) {
            if x == 0.0 {
                // f = 1 and both derivatives vanish at the origin.
                continue;
            }
            let p = x.powf(2.0 * b);
            let f = 1.0 / (1.0 + a * p);
            let r = f - y;
            let da = -p * f * f;
            let db = -a * p * 2.0 * x.ln() * f * f;
            jaa += da * da;
            jab += da * db;
            jbb += db * db;
            ga += da * r;
            gb += db * r;
        }
        let mut improved = false;
        while lambda < 1e12 {
            let (m00, m11) = (jaa * (1.0 + lambda), jbb * (1.0 + lambda));
            let det = m00 * m11 - jab * jab;
            if det.abs() < f64::MIN_POSITIVE {
                lambda *= 10.0;
                continue;
            }
            let step_a = -(m11 * ga - jab * gb) / det;
            let step_b = -(m00 * gb - jab * ga) / det;
            let (na, nb) = (a + step_a, b + step_b);
            let trial = cost(na, nb);
            if na > 0.0 && nb > 0.0 && trial <= current {
                let converged = (step_a.abs() <= 1e-13 * a.abs().max(1e-13))
                    && (step_b.abs() <= 1e-13 * b.abs().max(1e-13));
                a = na;
                b = nb;
                let gain = current - trial;
                current = trial;
                lambda = (lambda / 10.0).max(1e-15);
                improved = !converged && gain > 0.0;
                break;
            }
            lambda *= 10.0;
        }
        if !improved {
            break;
        }
    }
    (a, b)
}

/// The graph's edges in both directions as CSR rows (row = head), with umap-learn's
/// sampling schedule. Weights are kept only until the spectral initialisation.
#[derive(Debug)]
struct Edges {
    indptr: Vec<usize>,
    tail: Vec<u32>,
    weight: Vec<f32>,
    /// Single precision: at a million cells each per-edge array is ~90 MB, and an epoch
    /// count below 2^24 is exact.
    epochs_per_sample: Vec<f32>,
}

impl Edges {
    /// Drops edges lighter than `max / n_epochs` (they would never be sampled) and sets
    /// `epochs_per_sample = max / weight`.
    fn from_graph(graph: &Compressed, n_epochs: usize) -> Edges {
        let weight = crate::sparse::value_at(&graph.data);
        let max = (0..graph.indices.len()).map(&weight).fold(0.0f64, f64::max);
        let floor = max / n_epochs as f64;
        let n = graph.shape[0];
        let mut e = Edges {
            indptr: Vec::with_capacity(n + 1),
            tail: Vec::new(),
            weight: Vec::new(),
            epochs_per_sample: Vec::new(),
        };
        e.indptr.push(0);
        for i in 0..n {
            let (lo, hi) = (graph.indptr[i] as usize, graph.indptr[i + 1] as usize);
            for (at, &j) in (lo..hi).zip(&graph.indices[lo..hi]) {
                let w = weight(at);
                if w > 0.0 && w >= floor && j as usize != i {
                    e.tail.push(j);
                    e.weight.push(w as f32);
                    e.epochs_per_sample.push((max / w) as f32);
                }
            }
            e.indptr.push(e.tail.len());
        }
        e
    }

    /// The same edges with vertex `order[v]` renamed `v` (rows keep their edge order).
    fn permuted(self, order: &[usize]) -> Edges {
        let mut rank = vec![0u32; order.len()];
        for (v, &old) in order.iter().enumerate() {
            rank[old] = v as u32;
        }
        let mut e = Edges {
            indptr: Vec::with_capacity(self.indptr.len()),
            tail: Vec::with_capacity(self.tail.len()),
            weight: Vec::new(),
            epochs_per_sample: Vec::with_capacity(self.tail.len()),
        };
        e.indptr.push(0);
        for &old in order {
            let (lo, hi) = (self.indptr[old], self.indptr[old + 1]);
            e.tail
                .extend(self.tail[lo..hi].iter().map(|&t| rank[t as usize]));
            e.epochs_per_sample
                .extend_from_slice(&self.epochs_per_sample[lo..hi]);
            e.indptr.push(e.tail.len());
        }
        e
    }

    /// The kept edges as a symmetric weighted adjacency (borrowed) for the spectral
    /// initialisation.
    fn adjacency(&self) -> Adjacency<'_> {
        Adjacency {
            indptr: Cow::Borrowed(&self.indptr),
            indices: Cow::Borrowed(&self.tail),
            weight: Cow::Borrowed(&self.weight),
        }
    }
}

#[derive(Debug, Clone)]
struct Adjacency<'a> {
    indptr: Cow<'a, [usize]>,
    indices: Cow<'a, [u32]>,
    weight: Cow<'a, [f32]>,
}

impl Adjacency<'_> {
    fn n(&self) -> usize {
        self.indptr.len() - 1
    }

    fn row(&self, i: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        let r = self.indptr[i]..self.indptr[i + 1];
        self.indices[r.clone()]
            .iter()
            .zip(&self.weight[r])
            .map(|(&j, &w)| (j as usize, f64::from(w)))
    }

    /// Connected-component label of every vertex, numbered in order of first vertex.
    fn components(&self) -> (usize, Vec<usize>) {
        let n = self.n();
        let mut label = vec![usize::MAX; n];
        let mut count = 0;
        let mut stack = Vec::new();
        for start in 0..n {
            if label[start] != usize::MAX {
                continue;
            }
            label[start] = count;
            stack.push(start);
            while let Some(v) = stack.pop() {
                for (u, _) in self.row(v) {
                    if label[u] == usize::MAX {
                        label[u] = count;
                        stack.push(u);
                    }
                }
            }
            count += 1;
        }
        (count, label)
    }

    /// The subgraph on `members` (sorted), renumbered.
    fn induced(&self, members: &[usize]) -> Adjacency<'static> {
        let mut local = vec![u32::MAX; self.n()];
        for (k, &v) in members.iter().enumerate() {
            local[v] = k as u32;
        }
        let (mut indptr, mut indices, mut weight) = (vec![0], Vec::new(), Vec::new());
        for &v in members {
            let r = self.indptr[v]..self.indptr[v + 1];
            for (&u, &w) in self.indices[r.clone()].iter().zip(&self.weight[r]) {
                if local[u as usize] != u32::MAX {
                    indices.push(local[u as usize]);
                    weight.push(w);
                }
            }
            indptr.push(indices.len());
        }
        Adjacency {
            indptr: Cow::Owned(indptr),
            indices: Cow::Owned(indices),
            weight: Cow::Owned(weight),
        }
    }
}

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
fn spectral_layout(
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
fn noisy_scale_coords(coords: &Array2<f64>, rng: &mut ChaCha8Rng) -> Array2<f32> {
    let max = coords.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let expansion = if max > 0.0 { 10.0 / max } else { 1.0 };
    let noise = Normal::new(0.0, 1e-4).expect("valid normal");
    coords.mapv(|v| (v * expansion) as f32 + noise.sample(rng) as f32)
}

/// Each coordinate rescaled to `[0, 10]`.
fn scale_into_box(mut e: Array2<f32>) -> Array2<f32> {
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

/// A per-vertex xorshift stream for negative sampling (umap-learn keeps one tau-rand state
/// per head vertex).
fn next(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

/// umap-learn's `optimize_layout_euclidean` with `move_other = True`, specialised for the
/// usual 2 and 3 components.
fn optimize_layout(
    embedding: &mut Array2<f32>,
    edges: &Edges,
    n_epochs: usize,
    a: f64,
    b: f64,
    params: &UmapParams,
    rng: &mut ChaCha8Rng,
) {
    match embedding.ncols() {
        2 => layout_epochs::<2>(embedding, edges, n_epochs, a, b, params, rng),
        3 => layout_epochs::<3>(embedding, edges, n_epochs, a, b, params, rng),
        _ => layout_epochs::<0>(embedding, edges, n_epochs, a, b, params, rng),
    }
}

/// Vertex blocks the epochs are split into. Fixed rather than one per thread, so the layout
/// is the same on every machine whatever its core count.
const PARTITIONS: usize = 8;

/// The per-edge sampling state of one vertex block.
struct Part<'a> {
    /// Vertices `lo..hi` and their edges `indptr[lo]..indptr[hi]`.
    lo: usize,
    hi: usize,
    own: &'a mut [f32],
    states: &'a mut [u64],
    next_sample: &'a mut [f32],
    next_negative: &'a mut [f32],
    /// Moves of vertices outside the block, applied after the epoch.
    deferred: &'a mut [f32],
}

/// The SGD with `D` components, or any number when `D` is 0 (the constant lets the compiler
/// unroll the per-component loops).
///
/// Each epoch runs the vertex blocks in parallel. A block moves its own vertices at once, as
/// umap-learn does; it reads other blocks' vertices (and every negative sample) as they were
/// at the start of the epoch, and its pulls on other blocks wait until the epoch ends. So the result depends on the seed only,
/// not on threads or timing. (umap-learn's parallel mode instead lets threads race.)
fn layout_epochs<const D: usize>(
    embedding: &mut Array2<f32>,
    edges: &Edges,
    n_epochs: usize,
    a: f64,
    b: f64,
    params: &UmapParams,
    rng: &mut ChaCha8Rng,
) {
    let n = embedding.nrows();
    let dim = if D == 0 { embedding.ncols() } else { D };
    let emb = embedding
        .as_slice_mut()
        .expect("a fresh array is contiguous");
    let mut states: Vec<u64> = (0..n).map(|_| rng.random::<u64>() | 1).collect();
    let rate = params.negative_sample_rate as f32;
    let mut next_sample = edges.epochs_per_sample.clone();
    let mut next_negative: Vec<f32> = edges.epochs_per_sample.iter().map(|e| e / rate).collect();
    // Blocks of about equal edge counts.
    let m = edges.tail.len();
    let mut bounds = vec![0usize];
    for p in 1..PARTITIONS {
        let v = edges.indptr.partition_point(|&e| e < m * p / PARTITIONS);
        bounds.push(v.clamp(*bounds.last().expect("non-empty"), n));
    }
    bounds.push(n);
    let mut snapshot = vec![0.0f32; emb.len()];
    let mut deferred = vec![0.0f32; PARTITIONS * emb.len()];
    let curve = Curve {
        a: a as f32,
        b: b as f32,
        gamma: params.gamma as f32,
    };
    for epoch in 0..n_epochs {
        let alpha = (params.alpha * (1.0 - epoch as f64 / n_epochs as f64)) as f32;
        snapshot.copy_from_slice(emb);
        // Disjoint mutable pieces for the blocks.
        let mut parts = Vec::with_capacity(PARTITIONS);
        let (mut own, mut st, mut ns, mut nn, mut df) = (
            &mut emb[..],
            &mut states[..],
            &mut next_sample[..],
            &mut next_negative[..],
            &mut deferred[..],
        );
        for w in bounds.windows(2) {
            let (lo, hi) = (w[0], w[1]);
            let n_edges = edges.indptr[hi] - edges.indptr[lo];
            parts.push(Part {
                lo,
                hi,
                own: take_front(&mut own, (hi - lo) * dim),
                states: take_front(&mut st, hi - lo),
                next_sample: take_front(&mut ns, n_edges),
                next_negative: take_front(&mut nn, n_edges),
                deferred: take_front(&mut df, n * dim),
            });
        }
        parts.par_iter_mut().for_each(|p| {
            // Compiled for the widest vector unit present: the sample batches vectorise.
            pulp::Arch::new().dispatch(BlockEpoch::<D> {
                p,
                edges,
                snapshot: &snapshot,
                dim,
                e: epoch as f32,
                alpha,
                rate,
                curve: &curve,
            });
        });
        drop(parts);
        // Deferred moves in block order, in parallel over vertices.
        let width = 4096 * dim;
        emb.par_chunks_mut(width)
            .enumerate()
            .for_each(|(c, chunk)| {
                let start = c * width;
                for p in 0..PARTITIONS {
                    let d = &deferred[p * n * dim + start..p * n * dim + start + chunk.len()];
                    for (x, g) in chunk.iter_mut().zip(d) {
                        *x += g;
                    }
                }
            });
        deferred.par_chunks_mut(width).for_each(|d| d.fill(0.0));
    }
}

/// The first `len` items of `rest`, which keeps the others.
fn take_front<'a, T>(rest: &mut &'a mut [T], len: usize) -> &'a mut [T] {
    let (front, back) = std::mem::take(rest).split_at_mut(len);
    *rest = back;
    front
}

/// The fitted curve and the repulsion weight.
struct Curve {
    a: f32,
    b: f32,
    gamma: f32,
}

/// [`block_epoch`]'s arguments, for `pulp`'s dispatch.
struct BlockEpoch<'a, 'p, const D: usize> {
    p: &'a mut Part<'p>,
    edges: &'a Edges,
    snapshot: &'a [f32],
    dim: usize,
    e: f32,
    alpha: f32,
    rate: f32,
    curve: &'a Curve,
}

impl<const D: usize> pulp::WithSimd for BlockEpoch<'_, '_, D> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let BlockEpoch {
            p,
            edges,
            snapshot,
            dim,
            e,
            alpha,
            rate,
            curve,
        } = self;
        block_epoch::<D>(p, edges, snapshot, dim, e, alpha, rate, curve);
    }
}

/// One vertex's samples in an epoch, one lane each: first the attractions to its sampled
/// edges' tails, then the negative samples. Reused from vertex to vertex.
#[derive(Default)]
struct Lanes {
    /// The attractions' tails, in edge order.
    tails: Vec<u32>,
    /// The negative samples.
    negatives: Vec<u32>,
    /// `head - other`, component-major (component `c` at `c * len..(c + 1) * len`), so loops
    /// over lanes vectorise.
    diff: Vec<f32>,
    d2: Vec<f32>,
    coeff: Vec<f32>,
}

/// One epoch of one vertex block: umap-learn's per-edge step with `move_other = True`, except
/// that a vertex takes all its samples of the epoch from where it stood at its turn (the
/// tails still move at once). Its samples are then independent of each other: they are
/// drawn first as indices, then gathered and computed as vectors, so the processor never
/// waits on a chain of dependent steps.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn block_epoch<const D: usize>(
    p: &mut Part<'_>,
    edges: &Edges,
    snapshot: &[f32],
    dim: usize,
    e: f32,
    alpha: f32,
    rate: f32,
    curve: &Curve,
) {
    let dim = if D == 0 { dim } else { D };
    let n = snapshot.len() / dim.max(1);
    let Curve { a, b, gamma } = *curve;
    let base = edges.indptr[p.lo];
    let (lo, hi) = (p.lo, p.hi);
    // Whether vertex `k` is in the block, in one comparison.
    let inside = |k: usize| k.wrapping_sub(lo) < hi - lo;
    let mut head = vec![0.0f32; dim];
    let mut lanes = Lanes::default();
    for j in lo..hi {
        let jl = j - lo;
        let (first, last) = (edges.indptr[j], edges.indptr[j + 1]);
        lanes.tails.clear();
        lanes.negatives.clear();
        // In a register rather than memory while the vertex draws its samples.
        let mut state = p.states[jl];
        for i in first..last {
            let li = i - base;
            if p.next_sample[li] > e {
                continue;
            }
            lanes.tails.push(edges.tail[i]);
            p.next_sample[li] += edges.epochs_per_sample[i];
            // Computed per sample rather than stored: one array fewer per edge.
            let per_negative = edges.epochs_per_sample[i] / rate;
            let n_neg = ((e - p.next_negative[li]) / per_negative).max(0.0) as usize;
            p.next_negative[li] += n_neg as f32 * per_negative;
            for _ in 0..n_neg {
                // Lemire's multiply-shift maps 32 random bits onto 0..n without a division.
                let other = ((next(&mut state) >> 32) * n as u64) >> 32;
                if other as usize != j {
                    lanes.negatives.push(other as u32);
                }
            }
        }
        p.states[jl] = state;
        let pulls = lanes.tails.len();
        let len = pulls + lanes.negatives.len();
        if len == 0 {
            continue;
        }
        head.copy_from_slice(&p.own[jl * dim..(jl + 1) * dim]);
        lanes.diff.resize(dim * len, 0.0);
        lanes.d2.clear();
        lanes.d2.resize(len, 0.0);
        for (c, col) in lanes.diff.chunks_exact_mut(len).enumerate() {
            let h = head[c];
            let (pull, push) = col.split_at_mut(pulls);
            // Tails inside the block are where they stand now; negative samples (even
            // inside the block) where they stood at the epoch's start: a branch there would
            // be mispredicted often and stall the loads in flight.
            for (d, &k) in pull.iter_mut().zip(&lanes.tails) {
                let k = k as usize;
                let other = if inside(k) {
                    p.own[(k - lo) * dim + c]
                } else {
                    snapshot[k * dim + c]
                };
                *d = h - other;
            }
            for (d, &k) in push.iter_mut().zip(&lanes.negatives) {
                *d = h - snapshot[k as usize * dim + c];
            }
            for (q, d) in lanes.d2.iter_mut().zip(col.iter()) {
                *q += d * d;
            }
        }
        lanes.coeff.resize(len, 0.0);
        // An attraction's coefficient is -2ab d^(2b-2) / (1 + a d^2b), a negative sample's
        // 2 gamma b / ((0.001 + d^2)(1 + a d^2b)). (Coincident points give a non-finite
        // attraction here; the next loop replaces it.)
        let (pull_coeff, push_coeff) = lanes.coeff.split_at_mut(pulls);
        let (pull_d2, push_d2) = lanes.d2.split_at(pulls);
        for (c, &q) in pull_coeff.iter_mut().zip(pull_d2) {
            let pb = pow(q, b);
            *c = (-2.0 * a * b * pb) / ((a * pb + 1.0) * q);
        }
        for (c, &q) in push_coeff.iter_mut().zip(push_d2) {
            let pb = pow(q, b);
            *c = (2.0 * gamma * b) / ((a * pb + 1.0) * (0.001 + q));
        }
        for (c, col) in lanes.diff.chunks_exact_mut(len).enumerate() {
            // Each lane's move along this component, clipped to ±4 as in umap-learn;
            // coincident points: no pull, and umap-learn's fixed push of 4.
            let (pull, push) = col.split_at_mut(pulls);
            for ((d, &coeff), &q) in pull.iter_mut().zip(pull_coeff.iter()).zip(pull_d2) {
                let g = (coeff * *d).clamp(-4.0, 4.0);
                *d = if q > 0.0 { g } else { 0.0 };
            }
            for ((d, &coeff), &q) in push.iter_mut().zip(push_coeff.iter()).zip(push_d2) {
                let g = (coeff * *d).clamp(-4.0, 4.0);
                *d = if q > 0.0 { g } else { 4.0 };
            }
            p.own[jl * dim + c] += alpha * sum(col);
            // The tails move back along their pulls.
            for (&g, &k) in col[..pulls].iter().zip(&lanes.tails) {
                let k = k as usize;
                if inside(k) {
                    p.own[(k - lo) * dim + c] -= alpha * g;
                } else {
                    p.deferred[k * dim + c] -= alpha * g;
                }
            }
        }
    }
}

/// A sum in eight fixed partial sums: vectorises, and rounds the same on every processor.
#[inline(always)]
fn sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for ch in &mut chunks {
        for (a, v) in acc.iter_mut().zip(ch) {
            *a += v;
        }
    }
    let tail: f32 = chunks.remainder().iter().sum();
    acc.iter().sum::<f32>() + tail
}

/// `x^y` for `x >= 0` as `2^(y log2 x)`, within 1e-5 relative for the layout's exponents.
/// glibc's `powf` took a third of the layout and cannot be vectorised; this is branch-free
/// and uses only adds, multiplies, a division and bit moves, so a loop over it vectorises.
/// (The result is the same on every processor: no fused multiply-adds are formed.)
#[inline(always)]
fn pow(x: f32, y: f32) -> f32 {
    exp2(y * log2(x))
}

/// `log2 x` for `x >= 0`; finite (about -127) at 0.
#[inline(always)]
fn log2(x: f32) -> f32 {
    // x = 2^e m with m in [sqrt(1/2), sqrt(2)): subtracting sqrt(1/2)'s bits puts the
    // exponent of the result in the high bits.
    let bits = x.to_bits() as i32;
    let e = bits.wrapping_sub(0x3f35_04f3) >> 23;
    let m = f32::from_bits(bits.wrapping_sub(e << 23) as u32);
    // ln m = 2 atanh(s), s = (m - 1)/(m + 1), |s| < 0.172: five odd terms leave < 1e-9.
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let ln = s * (2.0 + s2 * (2.0 / 3.0 + s2 * (2.0 / 5.0 + s2 * (2.0 / 7.0 + s2 * (2.0 / 9.0)))));
    e as f32 + ln * std::f32::consts::LOG2_E
}

/// `2^y`, saturating outside the normal range.
#[inline(always)]
fn exp2(y: f32) -> f32 {
    let y = y.clamp(-126.0, 126.0);
    // Round to nearest by adding 1.5 * 2^23: the sum's low bits then hold the integer, so
    // neither a rounding instruction nor a (saturating, scalar) float-to-int cast is needed.
    const SHIFT: f32 = 12_582_912.0;
    let t = y + SHIFT;
    let n = t - SHIFT;
    let ni = (t.to_bits() as i32).wrapping_sub(SHIFT.to_bits() as i32);
    let f = (y - n) * std::f32::consts::LN_2;
    // e^f for |f| <= ln(2)/2 by its Taylor series to f^6: error below 2e-7.
    let p = 1.0
        + f * (1.0
            + f * (1.0 / 2.0
                + f * (1.0 / 6.0 + f * (1.0 / 24.0 + f * (1.0 / 120.0 + f * (1.0 / 720.0))))));
    p * f32::from_bits(((ni + 127) << 23) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(n: usize, edges: &[(usize, usize, f64)]) -> Compressed {
        crate::test_graphs::undirected(n, edges)
    }

    /// `k` cliques of `size` vertices, each linked to the next by one edge of weight `link`.
    fn clique_chain(k: usize, size: usize, link: f64) -> Compressed {
        let mut edges = crate::test_graphs::cliques(k, size);
        for c in 0..k - 1 {
            edges.push((c * size, (c + 1) * size, link));
        }
        graph(k * size, &edges)
    }

    #[test]
    fn fast_power_matches_powf() {
        // The layout's exponents (b for min_dist 0.5 and 0.1, and 1) over the distances it meets.
        for y in [0.8951f32, 0.7915, 1.0, 1.5] {
            let mut x = 1e-6f32;
            while x < 1e5 {
                let (got, want) = (pow(x, y), x.powf(y));
                assert!(
                    ((got - want) / want).abs() < 1e-5,
                    "{x}^{y}: {got} vs {want}"
                );
                x *= 1.0137;
            }
        }
        assert_eq!(pow(1.0, 0.9), 1.0);
        assert!(pow(0.0, 0.9) < 1e-30);
    }

    #[test]
    fn ab_params_match_scipy_curve_fit() {
        // umap.umap_.find_ab_params(1.0, 0.5) and (1.0, 0.1) with scipy 1.18.1.
        let (a, b) = find_ab_params(1.0, 0.5);
        assert!(
            (a - 0.583_030_020_3).abs() < 1e-6 && (b - 1.334_166_992_4).abs() < 1e-6,
            "{a} {b}"
        );
        let (a, b) = find_ab_params(1.0, 0.1);
        assert!(
            (a - 1.576_943_460_3).abs() < 1e-6 && (b - 0.895_060_877_9).abs() < 1e-6,
            "{a} {b}"
        );
    }

    #[test]
    fn spectral_layout_of_a_path_is_closed_form() {
        // On a path with unit weights, D⁻¹A has eigenvectors cos(π k i / (n - 1)) with
        // eigenvalues cos(π k / (n - 1)), so the normalised Laplacian's k-th mode is
        // sqrt(deg_i) cos(π k i / (n - 1)).
        let n = 200;
        let edges: Vec<_> = (0..n - 1).map(|i| (i, i + 1, 1.0)).collect();
        let g = graph(n, &edges);
        let x = connected_spectral(&Edges::from_graph(&g, 500).adjacency(), 2, 1e-12)
            .expect("converges");
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
    fn separate_cliques_end_up_apart_and_the_seed_fixes_the_layout() {
        // Three 30-vertex cliques, loosely chained: the layout keeps each clique together.
        let (k, size) = (3, 30);
        let g = clique_chain(k, size, 0.1);
        let data = Array2::<f32>::zeros((k * size, 2));
        let u = umap(&g, data.view(), &UmapParams::default());
        let centre = |c: usize| {
            let rows = u.embedding.slice(ndarray::s![c * size..(c + 1) * size, ..]);
            (
                rows.column(0).mean().unwrap(),
                rows.column(1).mean().unwrap(),
            )
        };
        let spread = |c: usize| {
            let (cx, cy) = centre(c);
            (c * size..(c + 1) * size)
                .map(|i| {
                    ((u.embedding[[i, 0]] - cx).powi(2) + (u.embedding[[i, 1]] - cy).powi(2)).sqrt()
                })
                .fold(0.0f32, f32::max)
        };
        for c in 0..k {
            for o in c + 1..k {
                let ((ax, ay), (bx, by)) = (centre(c), centre(o));
                let gap = ((ax - bx).powi(2) + (ay - by).powi(2)).sqrt();
                assert!(gap > spread(c) + spread(o), "cliques {c} and {o} overlap");
            }
        }
        let again = umap(&g, data.view(), &UmapParams::default());
        assert_eq!(u.embedding, again.embedding);
        let other = umap(
            &g,
            data.view(),
            &UmapParams {
                seed: 1,
                ..Default::default()
            },
        );
        assert_ne!(u.embedding, other.embedding);
    }

    #[test]
    fn disconnected_components_are_laid_out_apart() {
        // Two separate rings: the components start at ±e_1 and stay apart.
        let n = 40;
        let mut edges = Vec::new();
        for r in 0..2 {
            for i in 0..n {
                edges.push((r * n + i, r * n + (i + 1) % n, 1.0));
                edges.push((r * n + i, r * n + (i + 2) % n, 0.5));
            }
        }
        let g = graph(2 * n, &edges);
        let data = Array2::<f32>::zeros((2 * n, 2));
        let u = umap(&g, data.view(), &UmapParams::default());
        let xs = |r: usize| {
            u.embedding
                .slice(ndarray::s![r * n..(r + 1) * n, 0])
                .to_vec()
        };
        let (x0, x1) = (xs(0), xs(1));
        let (lo0, hi0) = (
            x0.iter().cloned().fold(f32::INFINITY, f32::min),
            x0.iter().cloned().fold(f32::NEG_INFINITY, f32::max),
        );
        let (lo1, hi1) = (
            x1.iter().cloned().fold(f32::INFINITY, f32::min),
            x1.iter().cloned().fold(f32::NEG_INFINITY, f32::max),
        );
        let (ys0, ys1) = (
            u.embedding.slice(ndarray::s![..n, 1]).to_vec(),
            u.embedding.slice(ndarray::s![n.., 1]).to_vec(),
        );
        let apart_x = hi0 < lo1 || hi1 < lo0;
        let (lo0y, hi0y) = (
            ys0.iter().cloned().fold(f32::INFINITY, f32::min),
            ys0.iter().cloned().fold(f32::NEG_INFINITY, f32::max),
        );
        let (lo1y, hi1y) = (
            ys1.iter().cloned().fold(f32::INFINITY, f32::min),
            ys1.iter().cloned().fold(f32::NEG_INFINITY, f32::max),
        );
        let apart_y = hi0y < lo1y || hi1y < lo0y;
        assert!(apart_x || apart_y, "rings overlap");
    }

    #[test]
    fn subspace_iteration_spans_the_leading_modes() {
        // Three 40-vertex cliques in a chain: a clear gap after the three leading eigenvalues,
        // so 100 block iterations capture the exact modes the Krylov solver finds.
        let (k, size) = (3, 40);
        let g = clique_chain(k, size, 0.5);
        let edges = Edges::from_graph(&g, 500);
        let adjacency = edges.adjacency();
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
