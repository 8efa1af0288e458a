//! The SGD epochs over fixed vertex blocks (umap-learn's `optimize_layout_euclidean`).

use super::UmapParams;
use super::fastmath::{pow, sum};
use super::graph::Edges;
use ndarray::Array2;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// The rows of `coords` sorted along a Z-order (Morton) curve through their first (up to
/// three) columns; ties keep index order.
pub(super) fn z_order(coords: &Array2<f32>) -> Vec<usize> {
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
pub(super) fn optimize_layout(
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
        let (mut own, mut st, mut df) = (&mut emb[..], &mut states[..], &mut deferred[..]);
        for w in bounds.windows(2) {
            let (lo, hi) = (w[0], w[1]);
            parts.push(Part {
                lo,
                hi,
                own: take_front(&mut own, (hi - lo) * dim),
                states: take_front(&mut st, hi - lo),
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

/// Whether an edge sampled every `per_sample` epochs is sampled in epoch `e`, and with how
/// many negative samples: umap-learn's schedule, computed rather than kept per edge.
///
/// umap-learn keeps two counters per edge: the next epoch to sample it (starting at
/// `per_sample`, advanced by `per_sample`) and the next epoch for a negative sample
/// (starting at `per_sample / rate`, advanced by whole steps of it). So the `m`-th sample
/// falls in the first epoch `e` with `floor(e / per_sample) >= m`, and it draws
/// `floor(e rate / per_sample) - floor(e' rate / per_sample)` negatives, where `e'` is the
/// epoch of sample `m - 1` (the first subtracts 1). Without the counters the SGD holds 8
/// bytes less per edge, and as the same function of `e` decides every epoch, each sample is
/// taken exactly once.
#[inline(always)]
fn samples(per_sample: f32, e: f32, rate: f32) -> Option<usize> {
    let q = |x: f32| (x / per_sample).floor();
    let m = q(e);
    if m < 1.0 || q(e - 1.0) >= m {
        return None;
    }
    let negatives = |x: f32| (x * rate / per_sample).floor();
    let before = if m < 2.0 {
        1.0
    } else {
        // The first epoch that reached sample m - 1.
        let mut at = ((m - 1.0) * per_sample).ceil();
        while at > 0.0 && q(at - 1.0) >= m - 1.0 {
            at -= 1.0;
        }
        while q(at) < m - 1.0 {
            at += 1.0;
        }
        negatives(at)
    };
    Some((negatives(e) - before).max(0.0) as usize)
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
            let Some(n_neg) = samples(edges.epochs_per_sample[i], e, rate) else {
                continue;
            };
            lanes.tails.push(edges.tail[i]);
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

#[cfg(test)]
mod tests {
    use super::samples;

    /// umap-learn's two counters for one edge over `n_epochs`: per epoch, whether the edge is
    /// sampled and how many negatives it draws.
    fn counters(per_sample: f64, rate: f64, n_epochs: usize) -> Vec<Option<usize>> {
        let per_negative = per_sample / rate;
        let (mut next, mut next_negative) = (per_sample, per_negative);
        (0..n_epochs)
            .map(|n| {
                let e = n as f64;
                if next > e {
                    return None;
                }
                let k = ((e - next_negative) / per_negative) as usize;
                next += per_sample;
                next_negative += k as f64 * per_negative;
                Some(k)
            })
            .collect()
    }

    #[test]
    fn the_computed_schedule_is_umap_learns_counters() {
        // Steps that are binary fractions (and so their quotients by the rate): the counters'
        // sums are exact, so every epoch must agree.
        let exact = [1.0, 1.5, 2.25, 3.0, 4.125, 7.75, 64.0, 199.5, 200.0]
            .into_iter()
            .flat_map(|s| [(s, 1.0), (s, 2.0), (s, 8.0)])
            .chain([(5.0, 5.0), (7.5, 5.0), (15.625, 5.0), (160.0, 5.0)]);
        for (per_sample, rate) in exact {
            let computed: Vec<Option<usize>> = (0..200)
                .map(|e| samples(per_sample as f32, e as f32, rate as f32))
                .collect();
            assert_eq!(
                computed,
                counters(per_sample, rate, 200),
                "{per_sample} at rate {rate}"
            );
        }
        // Other values: a sample or negative may move by an epoch at a rounding boundary,
        // but none is lost or taken twice.
        for k in 0..500 {
            let per_sample = 1.0 + k as f64 * 0.397;
            let computed: Vec<Option<usize>> = (0..500)
                .map(|e| samples(per_sample as f32, e as f32, 5.0))
                .collect();
            let reference = counters(per_sample, 5.0, 500);
            let count = |s: &[Option<usize>]| s.iter().flatten().count() as i64;
            let negatives = |s: &[Option<usize>]| s.iter().flatten().sum::<usize>() as i64;
            assert!(
                (count(&computed) - count(&reference)).abs() <= 1,
                "{per_sample}"
            );
            assert!(
                (negatives(&computed) - negatives(&reference)).abs() <= 5,
                "{per_sample}"
            );
        }
    }
}
