//! Approximate k nearest neighbours as pynndescent finds them (scanpy's method above 8,192
//! cells): a forest of random-projection trees gives every point a good first neighbour list
//! (brute force inside each leaf), then NN-descent (Dong, Moses & Li 2011) lets each point's
//! new neighbours and reverse neighbours introduce themselves to each other until few lists
//! change.
//!
//! The search runs on a float32 copy of the data (pynndescent also searches in float32); the
//! distances returned are recomputed in float64 for the neighbours found. Memory stays at the
//! data plus a few lists of `k` entries per point: joins are generated in bounded chunks and
//! only proposals that beat one endpoint's current worst distance are kept.

use ndarray::{Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

fn sq_dist(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent partial sums so the loop vectorises.
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            let d = x[l] - y[l];
            acc[l] += d * d;
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += (x - y) * (x - y);
    }
    s
}

/// `offset + normal · x` in eight partial sums, so the loop vectorises (a plain iterator sum
/// is one chain of dependent adds; the trees spent most of their time in it).
fn margin(offset: f32, normal: &[f32], x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (cn, cx) = (normal.chunks_exact(8), x.chunks_exact(8));
    let (rn, rx) = (cn.remainder(), cx.remainder());
    for (a, b) in cn.zip(cx) {
        for l in 0..8 {
            acc[l] += a[l] * b[l];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (a, b) in rn.iter().zip(rx) {
        s += a * b;
    }
    offset + s
}

/// Every point's neighbour list: a max-heap of `k` (squared distance, index, is-new) so the
/// worst entry is at the root.
struct Graph {
    k: usize,
    dist: Vec<f32>,
    idx: Vec<u32>,
    new: Vec<bool>,
}

impl Graph {
    fn new(n: usize, k: usize) -> Self {
        Graph {
            k,
            dist: vec![f32::INFINITY; n * k],
            idx: vec![u32::MAX; n * k],
            new: vec![false; n * k],
        }
    }

    fn worst(&self, i: usize) -> f32 {
        self.dist[i * self.k]
    }

    /// Replaces the worst entry of `i` with `j` when closer and not already listed.
    fn push(&mut self, i: usize, d: f32, j: u32) -> bool {
        let k = self.k;
        heap_push(
            &mut self.dist[i * k..(i + 1) * k],
            &mut self.idx[i * k..(i + 1) * k],
            &mut self.new[i * k..(i + 1) * k],
            d,
            j,
        )
    }
}

/// Inserts into one max-heap list (see [`Graph`]).
fn heap_push(dist: &mut [f32], idx: &mut [u32], new: &mut [bool], d: f32, j: u32) -> bool {
    let k = dist.len();
    if d >= dist[0] || idx.contains(&j) {
        return false;
    }
    // Sift the new entry down from the root.
    let mut p = 0;
    loop {
        let (l, r) = (2 * p + 1, 2 * p + 2);
        let mut c = p;
        let mut cd = d;
        if l < k && dist[l] > cd {
            c = l;
            cd = dist[l];
        }
        if r < k && dist[r] > cd {
            c = r;
        }
        if c == p {
            break;
        }
        dist[p] = dist[c];
        idx[p] = idx[c];
        new[p] = new[c];
        p = c;
    }
    dist[p] = d;
    idx[p] = j;
    new[p] = true;
    true
}

/// Per-point candidate lists in one flat array of fixed width.
struct Candidates {
    width: usize,
    ids: Vec<u32>,
    len: Vec<usize>,
}

impl Candidates {
    fn new(n: usize, width: usize) -> Self {
        Candidates {
            width,
            ids: vec![0; n * width],
            len: vec![0; n],
        }
    }
    fn push(&mut self, i: usize, j: u32) {
        self.ids[i * self.width + self.len[i]] = j;
        self.len[i] += 1;
    }
    fn push_capped(&mut self, i: usize, j: u32, cap: usize) {
        if self.len[i] < cap {
            self.push(i, j);
        }
    }
    fn row(&self, i: usize) -> &[u32] {
        &self.ids[i * self.width..i * self.width + self.len[i]]
    }
    fn dedup(&mut self) {
        let w = self.width;
        self.ids
            .par_chunks_mut(w)
            .zip(self.len.par_iter_mut())
            .for_each(|(row, len)| {
                let r = &mut row[..*len];
                r.sort_unstable();
                let mut k = 0;
                for x in 0..r.len() {
                    if x == 0 || r[x] != r[k - 1] {
                        r[k] = r[x];
                        k += 1;
                    }
                }
                *len = k;
            });
    }
}

/// A worker's share of the graph: first point, then its distances, indices and flags.
type Span<'a> = (usize, &'a mut [f32], &'a mut [u32], &'a mut [bool]);

/// A proposed neighbour `j` of `i` at squared distance `d`.
type Proposal = (u32, u32, f32);

/// Runs `join` on each of `items` in parallel, split into as many consecutive spans as there
/// are buffers; each span appends its proposals to its own buffer, emptied first. Buffers
/// keep their capacity from call to call, so the joins allocate nothing once warm.
fn gather<T: Sync>(
    buffers: &mut [Vec<Proposal>],
    items: &[T],
    join: impl Fn(&T, &mut Vec<Proposal>) + Sync,
) {
    let span = items.len().div_ceil(buffers.len().max(1)).max(1);
    buffers.par_iter_mut().enumerate().for_each(|(b, out)| {
        out.clear();
        let lo = (b * span).min(items.len());
        let hi = (lo + span).min(items.len());
        for item in &items[lo..hi] {
            join(item, out);
        }
    });
}

/// Applies proposals `(i, j, d)`, partitioned by target so workers never share a list.
fn apply(graph: &mut Graph, proposals: &[Vec<Proposal>]) -> usize {
    let workers = rayon::current_num_threads().max(1);
    let n = graph.dist.len() / graph.k;
    let span = n.div_ceil(workers).max(1);
    let k = graph.k;
    let parts: Vec<Span<'_>> = graph
        .dist
        .chunks_mut(span * k)
        .zip(graph.idx.chunks_mut(span * k))
        .zip(graph.new.chunks_mut(span * k))
        .enumerate()
        .map(|(w, ((d, i), nw))| (w * span, d, i, nw))
        .collect();
    parts
        .into_par_iter()
        .map(|(start, dist, idx, new)| {
            let end = start + dist.len() / k;
            let mut changed = 0;
            for &(i, j, d) in proposals.iter().flatten() {
                let i = i as usize;
                if (start..end).contains(&i) {
                    let s = (i - start) * k;
                    changed += heap_push(
                        &mut dist[s..s + k],
                        &mut idx[s..s + k],
                        &mut new[s..s + k],
                        d,
                        j,
                    ) as usize;
                }
            }
            changed
        })
        .sum()
}

/// Leaves of one random-projection tree: splits by the hyperplane halfway between two random
/// points until a node holds at most `leaf` points.
fn rp_tree_leaves(
    data: &[f32],
    d: usize,
    points: Vec<u32>,
    leaf: usize,
    rng: &mut ChaCha8Rng,
    out: &mut Vec<Vec<u32>>,
) {
    let mut stack = vec![points];
    while let Some(pts) = stack.pop() {
        if pts.len() <= leaf {
            out.push(pts);
            continue;
        }
        let a = pts[rng.random_range(0..pts.len())] as usize;
        let mut b = pts[rng.random_range(0..pts.len())] as usize;
        if a == b {
            b = pts[(pts.iter().position(|&p| p as usize == a).unwrap_or(0) + 1) % pts.len()]
                as usize;
        }
        let (pa, pb) = (&data[a * d..(a + 1) * d], &data[b * d..(b + 1) * d]);
        let normal: Vec<f32> = pa.iter().zip(pb).map(|(x, y)| x - y).collect();
        let offset: f32 = -normal
            .iter()
            .zip(pa.iter().zip(pb))
            .map(|(n, (x, y))| n * (x + y) / 2.0)
            .sum::<f32>();
        let (mut left, mut right) = (Vec::new(), Vec::new());
        for &p in &pts {
            let row = &data[p as usize * d..(p as usize + 1) * d];
            let m = margin(offset, &normal, row);
            if m > 0.0 || (m == 0.0 && rng.random_bool(0.5)) {
                left.push(p);
            } else {
                right.push(p);
            }
        }
        if left.is_empty() || right.is_empty() {
            // Duplicates: split at random so the tree still terminates.
            let mut all = pts;
            let half = all.len() / 2;
            right = all.split_off(half);
            left = all;
        }
        stack.push(left);
        stack.push(right);
    }
}

/// Candidate pairs one local-join chunk examines at most (its proposals bound the join's
/// scratch).
const JOIN_PAIRS: usize = 1 << 17;

/// Bytes NN-descent holds at most for `n` points and `k` neighbours (itself included): the
/// lists (9 bytes an entry), the new and old candidate lists with their reverse neighbours
/// (two rows of `2 min(k - 1, 60)` ids and a length per point), their forward counts, and
/// the proposals of one join chunk (12 bytes each, up to two per pair, with a growing
/// vector's spare room); its outputs come after the candidates are gone.
pub fn nn_descent_bytes(n: usize, k: usize) -> usize {
    let kk = k.saturating_sub(1).max(1);
    let width = 2 * kk.min(60);
    let proposals = JOIN_PAIRS * 3 / 2 * 2 * 12 * 2;
    let search = 9 * n * kk + 2 * n * (4 * width + 8) + 20 * n + proposals;
    let outputs = 9 * n * kk + 12 * n * k;
    search.max(outputs)
}

/// Approximate k nearest neighbours of every row, itself first, like [`crate::knn::exact_knn`].
/// Searches in float32 (as pynndescent does); the returned distances are float64.
pub fn nn_descent(x: ArrayView2<'_, f32>, k: usize, seed: u64) -> (Array2<u32>, Array2<f64>) {
    let (n, d) = x.dim();
    let k = k.min(n);
    if n == 0 || k == 0 {
        return (Array2::zeros((n, k)), Array2::zeros((n, k)));
    }
    // Row-major rows without a copy when the view already is.
    let data: std::borrow::Cow<'_, [f32]> = match x.as_slice() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(x.iter().copied().collect()),
    };
    let data: &[f32] = &data;
    let row = |i: usize| &data[i * d..(i + 1) * d];
    // Neighbours other than self; self is added at the end.
    let kk = (k - 1).max(1).min(n.saturating_sub(1)).max(1);
    let mut graph = Graph::new(n, kk);
    let chunk = 4096usize;

    // Initial lists from a forest of random-projection trees (pynndescent's sizes, fewer trees).
    let n_trees = (4 + ((n as f64).powf(0.25).round() as usize) / 2).min(16);
    let leaf = kk.max(10) * 2;
    // The trees are independent (each has its own seed), so they grow in parallel, one
    // per worker at a time: each holds n indices.
    let workers = rayon::current_num_threads().max(1);
    // A few spans per worker so uneven spans still keep every worker busy.
    let mut buffers: Vec<Vec<Proposal>> = vec![Vec::new(); 4 * workers];
    let trees: Vec<usize> = (0..n_trees).collect();
    for batch in trees.chunks(workers) {
        let forest: Vec<Vec<Vec<u32>>> = batch
            .par_iter()
            .map(|&t| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (0xA076_1D64_78BD_642F ^ t as u64));
                let mut leaves = Vec::new();
                rp_tree_leaves(
                    data,
                    d,
                    (0..n as u32).collect(),
                    leaf,
                    &mut rng,
                    &mut leaves,
                );
                leaves
            })
            .collect();
        for leaves in &forest {
            for group in leaves.chunks(chunk / leaf.max(1) + 1) {
                gather(&mut buffers, group, |pts, out| {
                    for (a, &u) in pts.iter().enumerate() {
                        for &v in &pts[a + 1..] {
                            let dd = sq_dist(row(u as usize), row(v as usize));
                            if dd < graph.worst(u as usize) {
                                out.push((u, v, dd));
                            }
                            if dd < graph.worst(v as usize) {
                                out.push((v, u, dd));
                            }
                        }
                    }
                });
                apply(&mut graph, &buffers);
            }
        }
    }
    // Points a tree left with short lists get random neighbours.
    for i in 0..n {
        let mut rng =
            ChaCha8Rng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut tries = 0;
        while graph.worst(i).is_infinite() && tries < 4 * kk {
            let j = rng.random_range(0..n);
            if j != i {
                graph.push(i, sq_dist(row(i), row(j)), j as u32);
            }
            tries += 1;
        }
    }

    let max_candidates = kk.min(60);
    let iterations = ((n as f64).log2().round() as usize).max(5);
    // New (not yet joined) and old members of each list, then reverse neighbours, in flat
    // fixed-width rows (no per-point allocations), reused from iteration to iteration.
    let width = 2 * max_candidates;
    let mut new = Candidates::new(n, width);
    let mut old = Candidates::new(n, width);
    let mut forward = (vec![0usize; n], vec![0usize; n]);
    let points: Vec<u32> = (0..n as u32).collect();
    for _ in 0..iterations {
        new.len.fill(0);
        old.len.fill(0);
        for i in 0..n {
            for s in i * kk..(i + 1) * kk {
                let j = graph.idx[s];
                if j == u32::MAX {
                    continue;
                }
                if graph.new[s] {
                    if new.len[i] < max_candidates {
                        new.push(i, j);
                        graph.new[s] = false;
                    }
                } else if old.len[i] < max_candidates {
                    old.push(i, j);
                }
            }
        }
        forward.0.copy_from_slice(&new.len);
        forward.1.copy_from_slice(&old.len);
        for i in 0..n {
            for c in 0..forward.0[i] {
                let j = new.ids[i * width + c] as usize;
                new.push_capped(j, i as u32, width);
            }
            for c in 0..forward.1[i] {
                let j = old.ids[i * width + c] as usize;
                old.push_capped(j, i as u32, width);
            }
        }
        new.dedup();
        old.dedup();
        // Local joins in chunks, keeping only proposals that improve a list; a chunk holds
        // at most about 200k candidate pairs (each kept one is 12 bytes, twice: under 5 MiB
        // of proposals), whatever k is.
        let join_chunk = (JOIN_PAIRS / (width * width).max(1)).clamp(16, chunk);
        let mut updates = 0usize;
        let mut start = 0;
        while start < n {
            let end = (start + join_chunk).min(n);
            gather(&mut buffers, &points[start..end], |&i, out| {
                let nw = new.row(i as usize);
                for (a, &u) in nw.iter().enumerate() {
                    for &v in nw[a + 1..].iter().chain(old.row(i as usize)) {
                        if u == v {
                            continue;
                        }
                        let dd = sq_dist(row(u as usize), row(v as usize));
                        if dd < graph.worst(u as usize) {
                            out.push((u, v, dd));
                        }
                        if dd < graph.worst(v as usize) {
                            out.push((v, u, dd));
                        }
                    }
                }
            });
            updates += apply(&mut graph, &buffers);
            start = end;
        }
        if (updates as f64) <= 0.001 * (n * kk) as f64 {
            break;
        }
    }

    // The candidate lists are done with before the outputs exist.
    drop((new, old, forward, points, buffers));
    // Final lists sorted by exact float64 distance, written straight into the outputs.
    let mut indices = vec![0u32; n * k];
    let mut dists = vec![0f64; n * k];
    indices
        .par_chunks_mut(k)
        .zip(dists.par_chunks_mut(k))
        .enumerate()
        .for_each(|(i, (oi, od))| {
            let xi = row(i);
            let mut r: Vec<(f64, u32)> = graph.idx[i * kk..(i + 1) * kk]
                .iter()
                .filter(|&&j| j != u32::MAX)
                .map(|&j| {
                    let sq: f64 = xi
                        .iter()
                        .zip(row(j as usize))
                        .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
                        .sum();
                    (sq.sqrt(), j)
                })
                .collect();
            r.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            oi[0] = i as u32;
            for (c, (dist, j)) in r.into_iter().take(k - 1).enumerate() {
                oi[c + 1] = j;
                od[c + 1] = dist;
            }
        });
    (
        Array2::from_shape_vec((n, k), indices).expect("n × k indices"),
        Array2::from_shape_vec((n, k), dists).expect("n × k distances"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knn::exact_knn;

    #[test]
    fn recall_against_exact_search_is_high() {
        let blobs = crate::synthetic::Blobs {
            n_obs: 3000,
            n_vars: 10,
            centers: 5,
            cluster_std: 3.0,
            seed: 5,
        };
        let (x, _) = blobs.block(&blobs.center_matrix(), 0..3000);
        let (ei, _) = exact_knn(x.view(), 15);
        let (ai, ad) = nn_descent(x.mapv(|v| v as f32).view(), 15, 0);
        let mut hits = 0;
        for i in 0..3000 {
            assert_eq!(ai[[i, 0]], i as u32, "self first");
            let exact: std::collections::HashSet<u32> = ei.row(i).iter().copied().collect();
            hits += ai.row(i).iter().filter(|j| exact.contains(j)).count();
            assert!(
                ad.row(i).to_vec().windows(2).all(|w| w[0] <= w[1]),
                "sorted distances"
            );
        }
        let recall = hits as f64 / (3000.0 * 15.0);
        assert!(recall > 0.95, "recall {recall}");
    }

    #[test]
    fn heap_keeps_the_k_closest() {
        let mut g = Graph::new(1, 3);
        for (d, j) in [(5.0, 1), (1.0, 2), (4.0, 3), (2.0, 4), (3.0, 5), (2.0, 4)] {
            g.push(0, d, j);
        }
        let mut kept: Vec<u32> = g.idx.clone();
        kept.sort_unstable();
        assert_eq!(kept, vec![2, 4, 5]);
        assert_eq!(g.worst(0), 3.0);
    }
}
