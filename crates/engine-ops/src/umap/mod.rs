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
//!
//! `curve` fits `a` and `b`; `graph` keeps the edges and their sampling schedule; `spectral`
//! makes the initial layout; `sgd` runs the epochs, with `fastmath`'s vectorisable sum and
//! power.

mod curve;
mod fastmath;
mod graph;
mod sgd;
mod spectral;

pub use curve::find_ab_params;

use engine_matrix::Compressed;
use graph::{Adjacency, Edges};
use ndarray::{Array2, ArrayView2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sgd::{optimize_layout, z_order};
use spectral::{noisy_scale_coords, scale_into_box, spectral_layout};

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
    /// The vertices in the order the SGD keeps them (see [`optimize`]).
    order: Vec<usize>,
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
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    // The graph's kept edges, read in place by the spectral start and then by the schedule.
    let adjacency = Adjacency::of_graph(graph, n_epochs);
    let init = if n == 0 {
        Array2::zeros((0, dim))
    } else if params.spectral {
        let coords = spectral_layout(&adjacency, data, dim, &mut rng);
        noisy_scale_coords(&coords, &mut rng)
    } else {
        Array2::from_shape_fn((n, dim), |_| rng.random_range(-10.0f32..10.0))
    };
    let embedding = scale_into_box(init);
    // Vertices renumbered so that graph neighbours sit close in memory: the layout starts
    // from a spectral embedding, in which they are close in space, and a Z-order curve over
    // it keeps most edges inside a block and in cache.
    let order = z_order(&embedding);
    // The SGD samples by the schedule alone, built once the spectral solver's basis is gone.
    let edges = Edges::from_adjacency(&adjacency, &order);
    Initial {
        embedding,
        order,
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
        order,
        edges,
        n_epochs,
        a,
        b,
        mut rng,
    } = init;
    if embedding.nrows() > 0 {
        let mut local = embedding.select(Axis(0), &order);
        optimize_layout(&mut local, &edges, n_epochs, a, b, params, &mut rng);
        for (row, &v) in local.outer_iter().zip(&order) {
            embedding.row_mut(v).assign(&row);
        }
    }
    Umap { embedding, a, b }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn graph(n: usize, edges: &[(usize, usize, f64)]) -> Compressed {
        crate::test_graphs::undirected(n, edges)
    }

    /// `k` cliques of `size` vertices, each linked to the next by one edge of weight `link`.
    pub(super) fn clique_chain(k: usize, size: usize, link: f64) -> Compressed {
        let mut edges = crate::test_graphs::cliques(k, size);
        for c in 0..k - 1 {
            edges.push((c * size, (c + 1) * size, link));
        }
        graph(k * size, &edges)
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
}
