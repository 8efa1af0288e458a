//! Leiden community detection (Traag, Waltman & van Eck 2019) optimising modularity with a
//! resolution parameter, as `sc.tl.leiden(flavor="igraph")` runs it: `beta = 0.01` for the
//! randomised refinement and `n_iterations` full passes, each starting from the last.
//!
//! Quality of moving node `v` into community `C` (in edge-weight units):
//! `w(v, C) − γ · k_v · K_C / (2m)`, with `k_v` the node's strength, `K_C` the community's
//! total strength and `m` the total edge weight.

use engine_matrix::Compressed;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;

/// A weighted undirected graph in CSR form (no self loops), with node strengths kept
/// explicitly so aggregated nodes keep the strength of their members.
#[derive(Debug, Clone)]
struct Graph {
    indptr: Vec<usize>,
    nbr: Vec<u32>,
    w: Vec<f64>,
    strength: Vec<f64>,
}

impl Graph {
    fn n(&self) -> usize {
        self.strength.len()
    }
    fn edges(&self, v: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        let r = self.indptr[v]..self.indptr[v + 1];
        self.nbr[r.clone()]
            .iter()
            .zip(&self.w[r])
            .map(|(&u, &w)| (u as usize, w))
    }
}

/// Weights summed per community, with the touched communities listed so clearing costs only
/// what was used (a hash map here dominated the run time).
struct Links {
    w: Vec<f64>,
    seen: Vec<bool>,
    touched: Vec<usize>,
}

impl Links {
    fn new(n: usize) -> Self {
        Links {
            w: vec![0.0; n],
            seen: vec![false; n],
            touched: Vec::new(),
        }
    }
    fn add(&mut self, c: usize, w: f64) {
        if !self.seen[c] {
            self.seen[c] = true;
            self.touched.push(c);
        }
        self.w[c] += w;
    }
    fn get(&self, c: usize) -> f64 {
        self.w[c]
    }
    fn clear(&mut self) {
        for c in self.touched.drain(..) {
            self.w[c] = 0.0;
            self.seen[c] = false;
        }
    }
}

/// Parameters with scanpy's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeidenParams {
    pub resolution: f64,
    /// Full Leiden passes; a negative value runs until the partition is stable.
    pub n_iterations: i64,
    pub seed: u64,
    /// Randomness of the refinement (igraph's `beta`).
    pub beta: f64,
}

impl Default for LeidenParams {
    fn default() -> Self {
        LeidenParams {
            resolution: 1.0,
            n_iterations: 2,
            seed: 0,
            beta: 0.01,
        }
    }
}

/// Clusters the nodes of a symmetric weighted adjacency matrix (e.g. `obsp['connectivities']`).
/// Labels are numbered from the largest cluster down.
pub fn leiden(adjacency: &Compressed, params: &LeidenParams) -> Vec<u32> {
    let n = adjacency.shape[0];
    let weight = crate::sparse::value_at(&adjacency.data);
    let mut graph = Graph {
        indptr: Vec::with_capacity(n + 1),
        nbr: Vec::with_capacity(adjacency.indices.len()),
        w: Vec::with_capacity(adjacency.indices.len()),
        strength: vec![0.0; n],
    };
    graph.indptr.push(0);
    for i in 0..n {
        let (lo, hi) = (
            adjacency.indptr[i] as usize,
            adjacency.indptr[i + 1] as usize,
        );
        for (e, &j) in (lo..hi).zip(&adjacency.indices[lo..hi]) {
            let w = weight(e);
            graph.strength[i] += w;
            if j as usize != i {
                graph.nbr.push(j);
                graph.w.push(w);
            }
        }
        graph.indptr.push(graph.nbr.len());
    }
    drop(weight);
    let two_m: f64 = graph.strength.iter().sum();
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let mut membership: Vec<usize> = (0..n).collect();
    if two_m <= 0.0 {
        return relabel_by_size(&membership);
    }
    let mut pass = 0;
    loop {
        let before = membership.clone();
        membership = one_pass(&graph, membership, params, two_m, &mut rng);
        pass += 1;
        let stable = same_partition(&before, &membership);
        if (params.n_iterations >= 0 && pass >= params.n_iterations)
            || (params.n_iterations < 0 && stable)
        {
            break;
        }
    }
    relabel_by_size(&membership)
}

/// One Leiden pass: move, refine, aggregate, until every community is a single node.
fn one_pass(
    graph: &Graph,
    initial: Vec<usize>,
    p: &LeidenParams,
    two_m: f64,
    rng: &mut ChaCha8Rng,
) -> Vec<usize> {
    let n0 = graph.n();
    // node_of[v] = aggregated node that original node v currently belongs to.
    let mut node_of: Vec<usize> = (0..n0).collect();
    // The first level works on the input graph itself; later levels own their aggregates.
    let mut g = std::borrow::Cow::Borrowed(graph);
    let mut part = compact(&initial);
    loop {
        move_nodes_fast(&g, &mut part, p.resolution, two_m, rng);
        let n_comms = part.iter().copied().max().map_or(0, |m| m + 1);
        if n_comms == g.n() {
            break;
        }
        let refined = refine(&g, &part, p, two_m, rng);
        // Aggregate on the refined partition; the aggregate starts from the unrefined one.
        let n_ref = refined.iter().copied().max().map_or(0, |m| m + 1);
        let mut agg_part = vec![0usize; n_ref];
        for v in 0..g.n() {
            agg_part[refined[v]] = part[v];
        }
        g = std::borrow::Cow::Owned(aggregate(&g, &refined, n_ref));
        for x in node_of.iter_mut() {
            *x = refined[*x];
        }
        part = agg_part;
        if n_ref == refined.len() {
            // Refinement merged nothing: no further progress is possible at this level.
            break;
        }
    }
    node_of.iter().map(|&a| part[a]).collect()
}

/// Renumbers labels to 0..k in order of first appearance.
fn compact(labels: &[usize]) -> Vec<usize> {
    let max = labels.iter().copied().max().map_or(0, |m| m + 1);
    let mut map = vec![usize::MAX; max];
    let mut next = 0;
    labels
        .iter()
        .map(|&l| {
            if map[l] == usize::MAX {
                map[l] = next;
                next += 1;
            }
            map[l]
        })
        .collect()
}

fn same_partition(a: &[usize], b: &[usize]) -> bool {
    compact(a) == compact(b)
}

/// The fast local moving phase: visit nodes from a queue; move each to the neighbouring
/// community with the largest gain; re-queue neighbours outside its new community.
fn move_nodes_fast(g: &Graph, part: &mut [usize], gamma: f64, two_m: f64, rng: &mut ChaCha8Rng) {
    let n = g.n();
    let n_comm = n.max(part.iter().copied().max().map_or(0, |m| m + 1));
    let mut total = vec![0.0; n_comm];
    let mut size = vec![0usize; n_comm];
    for v in 0..n {
        total[part[v]] += g.strength[v];
        size[part[v]] += 1;
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    let mut queue: VecDeque<usize> = order.into();
    let mut queued = vec![true; n];
    let mut link = Links::new(n_comm);
    // Empty communities a node may move into alone; entries are dropped lazily once reused.
    let mut empty: Vec<usize> = (0..n_comm).filter(|&c| size[c] == 0).collect();
    while let Some(v) = queue.pop_front() {
        queued[v] = false;
        let cur = part[v];
        let kv = g.strength[v];
        link.clear();
        for (u, w) in g.edges(v) {
            link.add(part[u], w);
        }
        total[cur] -= kv;
        size[cur] -= 1;
        if size[cur] == 0 {
            total[cur] = 0.0;
            empty.push(cur);
        }
        let gain = |c: usize, w: f64, total: &[f64]| w - gamma * kv * total[c] / two_m;
        let mut best = cur;
        let mut best_gain = gain(cur, link.get(cur), &total);
        for &c in &link.touched {
            let g_c = gain(c, link.get(c), &total);
            if g_c > best_gain || (g_c == best_gain && c < best && c != cur) {
                best = c;
                best_gain = g_c;
            }
        }
        // Alone in an empty community has gain 0.
        if best_gain < 0.0 {
            while let Some(&c) = empty.last() {
                if size[c] == 0 {
                    best = c;
                    break;
                }
                empty.pop();
            }
        }
        total[best] += kv;
        size[best] += 1;
        if best != cur {
            part[v] = best;
            for (u, _) in g.edges(v) {
                if !queued[u] && part[u] != best {
                    queued[u] = true;
                    queue.push_back(u);
                }
            }
        }
    }
    let compacted = compact(part);
    part.copy_from_slice(&compacted);
}

/// The refinement phase: inside each community, nodes start alone and are merged, in random
/// order, into well-connected sub-communities with probability ∝ exp(gain / beta).
fn refine(
    g: &Graph,
    part: &[usize],
    p: &LeidenParams,
    two_m: f64,
    rng: &mut ChaCha8Rng,
) -> Vec<usize> {
    let n = g.n();
    let gamma = p.resolution;
    let mut refined: Vec<usize> = (0..n).collect();
    let mut sub_total: Vec<f64> = g.strength.clone();
    let mut singleton = vec![true; n];
    let n_comm = part.iter().copied().max().map_or(0, |m| m + 1);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); n_comm];
    let mut comm_total = vec![0.0; n_comm];
    for v in 0..n {
        members[part[v]].push(v);
        comm_total[part[v]] += g.strength[v];
    }
    // External weight of each sub-community to the rest of its community, kept up to date.
    let mut sub_ext: Vec<f64> = (0..n)
        .map(|v| {
            g.edges(v)
                .filter(|(u, _)| part[*u] == part[v])
                .map(|(_, w)| w)
                .sum()
        })
        .collect();
    let mut link = Links::new(n);
    for c in 0..n_comm {
        let mut nodes = members[c].clone();
        nodes.shuffle(rng);
        let kc = comm_total[c];
        for &v in &nodes {
            let kv = g.strength[v];
            // Only well-connected singletons move.
            if !singleton[v] || sub_ext[v] < gamma * kv * (kc - kv) / two_m {
                continue;
            }
            link.clear();
            for (u, w) in g.edges(v) {
                if part[u] == c {
                    link.add(refined[u], w);
                }
            }
            let mut candidates: Vec<(usize, f64)> = Vec::new();
            let own = refined[v];
            for &s in &link.touched {
                let w = link.get(s);
                if s == own {
                    continue;
                }
                // Target must itself be well connected within the community.
                if sub_ext[s] < gamma * sub_total[s] * (kc - sub_total[s]) / two_m {
                    continue;
                }
                let gain = w - gamma * kv * sub_total[s] / two_m;
                if gain >= 0.0 {
                    candidates.push((s, gain));
                }
            }
            if candidates.is_empty() {
                continue;
            }
            candidates.sort_by_key(|e| e.0);
            let max_gain = candidates.iter().map(|e| e.1).fold(f64::MIN, f64::max);
            let weights: Vec<f64> = candidates
                .iter()
                .map(|(_, gn)| ((gn - max_gain) / p.beta).exp())
                .collect();
            let sum: f64 = weights.iter().sum();
            let mut r = rng.random::<f64>() * sum;
            let mut target = candidates[candidates.len() - 1].0;
            for ((s, _), w) in candidates.iter().zip(&weights) {
                if r < *w {
                    target = *s;
                    break;
                }
                r -= w;
            }
            // Move v (a singleton) into `target`.
            let w_to_target = link.get(target);
            let v_int: f64 = g
                .edges(v)
                .filter(|(u, _)| part[*u] == c)
                .map(|(_, w)| w)
                .sum();
            sub_ext[target] += v_int - 2.0 * w_to_target;
            sub_total[target] += kv;
            sub_total[own] = 0.0;
            sub_ext[own] = 0.0;
            refined[v] = target;
            singleton[v] = false;
            singleton[target] = false;
        }
    }
    compact(&refined)
}

/// Collapses each community of `part` (labels 0..k) into one node.
fn aggregate(g: &Graph, part: &[usize], k: usize) -> Graph {
    let mut strength = vec![0.0; k];
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); k];
    for v in 0..g.n() {
        strength[part[v]] += g.strength[v];
        members[part[v]].push(v);
    }
    let mut link = Links::new(k);
    let mut out = Graph {
        indptr: vec![0],
        nbr: Vec::new(),
        w: Vec::new(),
        strength,
    };
    let mut row: Vec<(usize, f64)> = Vec::new();
    for (a, vs) in members.iter().enumerate() {
        link.clear();
        for &v in vs {
            for (u, w) in g.edges(v) {
                if part[u] != a {
                    link.add(part[u], w);
                }
            }
        }
        row.clear();
        row.extend(link.touched.iter().map(|&b| (b, link.get(b))));
        row.sort_by_key(|e| e.0);
        for &(b, w) in &row {
            out.nbr.push(b as u32);
            out.w.push(w);
        }
        out.indptr.push(out.nbr.len());
    }
    out
}

/// Labels 0..k with 0 the largest community (ties by first appearance).
fn relabel_by_size(membership: &[usize]) -> Vec<u32> {
    let c = compact(membership);
    let k = c.iter().copied().max().map_or(0, |m| m + 1);
    let mut sizes: Vec<(usize, usize)> = (0..k).map(|i| (0, i)).collect();
    for &l in &c {
        sizes[l].0 += 1;
    }
    sizes.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut rank = vec![0u32; k];
    for (r, (_, l)) in sizes.iter().enumerate() {
        rank[*l] = r as u32;
    }
    c.iter().map(|&l| rank[l]).collect()
}

/// Modularity of a partition: `Q = 1/2m Σ_ij (A_ij − γ k_i k_j / 2m) δ(c_i, c_j)`.
pub fn modularity(adjacency: &Compressed, labels: &[u32], resolution: f64) -> f64 {
    let w = adjacency.data.to_f64_vec().unwrap_or_default();
    let n = adjacency.shape[0];
    let k = labels.iter().copied().max().map_or(0, |m| m as usize + 1);
    let mut strength = vec![0.0; n];
    let mut internal = vec![0.0; k];
    for i in 0..n {
        let (lo, hi) = (
            adjacency.indptr[i] as usize,
            adjacency.indptr[i + 1] as usize,
        );
        for (&j, &wij) in adjacency.indices[lo..hi].iter().zip(&w[lo..hi]) {
            strength[i] += wij;
            if labels[i] == labels[j as usize] {
                internal[labels[i] as usize] += wij;
            }
        }
    }
    let two_m: f64 = strength.iter().sum();
    let mut tot = vec![0.0; k];
    for i in 0..n {
        tot[labels[i] as usize] += strength[i];
    }
    (0..k)
        .map(|c| internal[c] / two_m - resolution * (tot[c] / two_m).powi(2))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cliques of `size` nodes joined in a ring by single weak edges.
    fn ring_of_cliques(cliques: usize, size: usize) -> Compressed {
        let mut edges = crate::test_graphs::cliques(cliques, size);
        for c in 0..cliques {
            edges.push((c * size, ((c + 1) % cliques) * size + 1, 0.1));
        }
        crate::test_graphs::undirected(cliques * size, &edges)
    }

    #[test]
    fn finds_the_cliques_of_a_ring() {
        let g = ring_of_cliques(8, 6);
        for seed in 0..5 {
            let labels = leiden(
                &g,
                &LeidenParams {
                    seed,
                    ..Default::default()
                },
            );
            for c in 0..8 {
                let first = labels[c * 6];
                assert!(
                    (0..6).all(|i| labels[c * 6 + i] == first),
                    "seed {seed}: clique {c} split: {labels:?}"
                );
            }
            let distinct: std::collections::HashSet<_> = labels.iter().collect();
            assert_eq!(distinct.len(), 8, "seed {seed}");
            // Each clique: 15 internal edges; modularity of the clique partition in closed form.
            let q = modularity(&g, &labels, 1.0);
            let two_m = 2.0 * (8.0 * 15.0 + 8.0 * 0.1);
            let tot: f64 = 2.0 * 15.0 + 2.0 * 0.1;
            let want = 8.0 * (2.0 * 15.0 / two_m - (tot / two_m).powi(2));
            assert!((q - want).abs() < 1e-12, "{q} vs {want}");
        }
    }

    #[test]
    fn resolution_controls_granularity() {
        let g = ring_of_cliques(8, 6);
        // Merging two neighbouring cliques gains 0.1 − γ·30.2²/241.6: positive below γ ≈ 0.026.
        let coarse = leiden(
            &g,
            &LeidenParams {
                resolution: 0.01,
                ..Default::default()
            },
        );
        let fine = leiden(
            &g,
            &LeidenParams {
                resolution: 1.0,
                ..Default::default()
            },
        );
        let count = |l: &[u32]| l.iter().collect::<std::collections::HashSet<_>>().len();
        assert!(
            count(&coarse) < count(&fine),
            "{} vs {}",
            count(&coarse),
            count(&fine)
        );
    }

    #[test]
    fn same_seed_same_labels() {
        let g = ring_of_cliques(5, 4);
        let p = LeidenParams {
            seed: 3,
            ..Default::default()
        };
        assert_eq!(leiden(&g, &p), leiden(&g, &p));
    }
}
