//! Leiden community detection (Traag, Waltman & van Eck 2019) optimising modularity with a
//! resolution parameter, as `sc.tl.leiden(flavor="igraph")` runs it: `beta = 0.01` for the
//! randomised refinement and `n_iterations` full passes, each starting from the last.
//!
//! Quality of moving node `v` into community `C` (in edge-weight units):
//! `w(v, C) − γ · k_v · K_C / (2m)`, with `k_v` the node's strength, `K_C` the community's
//! total strength and `m` the total edge weight.

use engine_matrix::{Compressed, DynArray};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::borrow::Cow;
use std::collections::VecDeque;

/// A weighted undirected graph in CSR form (no self loops), with node strengths kept
/// explicitly so aggregated nodes keep the strength of their members. The first level
/// borrows the input's arrays. Weights are float32, as scanpy stores `obsp` graphs (a
/// float64 input and the aggregates' float64 sums are rounded); strengths are float64.
#[derive(Debug, Clone)]
struct Graph<'a> {
    indptr: Cow<'a, [u64]>,
    nbr: Cow<'a, [u32]>,
    w: Cow<'a, [f32]>,
    strength: Vec<f64>,
}

impl Graph<'_> {
    fn n(&self) -> usize {
        self.strength.len()
    }
    fn edges(&self, v: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        let r = self.indptr[v] as usize..self.indptr[v + 1] as usize;
        self.nbr[r.clone()]
            .iter()
            .zip(&self.w[r])
            .map(|(&u, &w)| (u as usize, f64::from(w)))
    }

    /// The adjacency as a graph: borrowed when it is float32 without self loops (as
    /// `obsp['connectivities']` is), copied otherwise. Self loops count in the strength only.
    fn of(adjacency: &Compressed) -> Graph<'_> {
        let n = adjacency.shape[0];
        let (ptr, idx) = (&adjacency.indptr, &adjacency.indices);
        let weights: Cow<'_, [f32]> = match &adjacency.data {
            DynArray::F32(a) if a.as_slice().is_some() => {
                Cow::Borrowed(a.as_slice().expect("checked"))
            }
            other => {
                let v = crate::sparse::value_at(other);
                Cow::Owned((0..idx.len()).map(|e| v(e) as f32).collect())
            }
        };
        let mut strength = vec![0.0; n];
        let mut loops = false;
        for (i, s) in strength.iter_mut().enumerate() {
            let r = ptr[i] as usize..ptr[i + 1] as usize;
            for (&j, &w) in idx[r.clone()].iter().zip(&weights[r]) {
                *s += f64::from(w);
                loops |= j as usize == i;
            }
        }
        if !loops {
            return Graph {
                indptr: Cow::Borrowed(ptr),
                nbr: Cow::Borrowed(idx),
                w: weights,
                strength,
            };
        }
        let mut g = Graph {
            indptr: Cow::Owned(Vec::with_capacity(n + 1)),
            nbr: Cow::Owned(Vec::with_capacity(idx.len())),
            w: Cow::Owned(Vec::with_capacity(idx.len())),
            strength,
        };
        let (indptr, nbr, w) = (g.indptr.to_mut(), g.nbr.to_mut(), g.w.to_mut());
        indptr.push(0);
        for i in 0..n {
            let r = ptr[i] as usize..ptr[i + 1] as usize;
            for (&j, &x) in idx[r.clone()].iter().zip(&weights[r]) {
                if j as usize != i {
                    nbr.push(j);
                    w.push(x);
                }
            }
            indptr.push(nbr.len() as u64);
        }
        g
    }
}

/// Weights summed per community, with the touched communities listed so clearing costs only
/// what was used (a hash map here dominated the run time).
#[derive(Default)]
struct Links {
    w: Vec<f64>,
    seen: Vec<bool>,
    touched: Vec<usize>,
}

impl Links {
    /// Room for communities `0..n`, all at zero.
    fn reset(&mut self, n: usize) {
        self.clear();
        self.w.resize(n, 0.0);
        self.seen.resize(n, false);
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

/// Nodes grouped by label: group `c` is `nodes[start[c]..start[c + 1]]`, in increasing order.
#[derive(Default)]
struct Groups {
    start: Vec<usize>,
    nodes: Vec<usize>,
}

impl Groups {
    /// Regroups by `labels` (values below `k`) with a counting sort.
    fn fill(&mut self, labels: &[usize], k: usize) {
        self.start.clear();
        self.start.resize(k + 1, 0);
        for &l in labels {
            self.start[l + 1] += 1;
        }
        for c in 0..k {
            self.start[c + 1] += self.start[c];
        }
        self.nodes.clear();
        self.nodes.resize(labels.len(), 0);
        // `start[c]` serves as group c's cursor, then is restored from `start[c + 1]`'s
        // old value by the shift below.
        for (v, &l) in labels.iter().enumerate() {
            self.nodes[self.start[l]] = v;
            self.start[l] += 1;
        }
        for c in (1..=k).rev() {
            self.start[c] = self.start[c - 1];
        }
        self.start[0] = 0;
    }
    fn group(&self, c: usize) -> &[usize] {
        &self.nodes[self.start[c]..self.start[c + 1]]
    }
}

/// Buffers shared by every level of every pass. The first level is the largest, so after it
/// a level allocates only its aggregated graph and strengths: no per-level churn of
/// node-sized scratch for the allocator to hold on to (fresh buffers per level made resident memory grow 57 MiB during Leiden on
/// the 50k-cell blobs).
#[derive(Default)]
struct Scratch {
    total: Vec<f64>,
    size: Vec<usize>,
    order: Vec<usize>,
    queue: VecDeque<usize>,
    queued: Vec<bool>,
    empty: Vec<usize>,
    link: Links,
    sub_total: Vec<f64>,
    sub_ext: Vec<f64>,
    singleton: Vec<bool>,
    comm_total: Vec<f64>,
    groups: Groups,
    shuffled: Vec<usize>,
    candidates: Vec<(usize, f64)>,
    weights: Vec<f64>,
    map: Vec<usize>,
    row: Vec<(usize, f64)>,
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
    let graph = Graph::of(adjacency);
    let two_m: f64 = graph.strength.iter().sum();
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let mut membership: Vec<usize> = (0..n).collect();
    if two_m <= 0.0 {
        return relabel_by_size(&membership);
    }
    let mut scratch = Scratch::default();
    let mut before = Vec::with_capacity(n);
    let mut pass = 0;
    loop {
        before.clone_from(&membership);
        one_pass(
            &graph,
            &mut membership,
            params,
            two_m,
            &mut rng,
            &mut scratch,
        );
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
/// `membership` holds the starting partition and receives the result.
fn one_pass(
    graph: &Graph<'_>,
    membership: &mut [usize],
    p: &LeidenParams,
    two_m: f64,
    rng: &mut ChaCha8Rng,
    scratch: &mut Scratch,
) {
    let n0 = graph.n();
    // node_of[v] = aggregated node that original node v currently belongs to.
    let mut node_of: Vec<usize> = (0..n0).collect();
    // The first level works on the input graph itself; later levels own their aggregates.
    let mut g = Cow::Borrowed(graph);
    let mut part = membership.to_vec();
    compact(&mut part, &mut scratch.map);
    let mut refined = Vec::with_capacity(n0);
    loop {
        move_nodes_fast(&g, &mut part, p.resolution, two_m, rng, scratch);
        let n_comms = part.iter().copied().max().map_or(0, |m| m + 1);
        if n_comms == g.n() {
            break;
        }
        refine(&g, &part, p, two_m, rng, scratch, &mut refined);
        // Aggregate on the refined partition; the aggregate starts from the unrefined one.
        let n_ref = refined.iter().copied().max().map_or(0, |m| m + 1);
        let aggregated = aggregate(&g, &refined, n_ref, scratch);
        // The refined labels of a level's nodes become the next level's node numbers; each
        // new node starts in its members' community.
        for v in 0..g.n() {
            scratch.map[refined[v]] = part[v];
        }
        part.clear();
        part.extend_from_slice(&scratch.map[..n_ref]);
        g = Cow::Owned(aggregated);
        for x in node_of.iter_mut() {
            *x = refined[*x];
        }
        if n_ref == refined.len() {
            // Refinement merged nothing: no further progress is possible at this level.
            break;
        }
    }
    for (m, &a) in membership.iter_mut().zip(&node_of) {
        *m = part[a];
    }
}

/// Renumbers labels to 0..k in order of first appearance, in place (`map` is scratch).
fn compact(labels: &mut [usize], map: &mut Vec<usize>) {
    let max = labels.iter().copied().max().map_or(0, |m| m + 1);
    map.clear();
    map.resize(max.max(labels.len()), usize::MAX);
    let mut next = 0;
    for l in labels.iter_mut() {
        if map[*l] == usize::MAX {
            map[*l] = next;
            next += 1;
        }
        *l = map[*l];
    }
}

fn same_partition(a: &[usize], b: &[usize]) -> bool {
    let mut map = Vec::new();
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    compact(&mut a, &mut map);
    compact(&mut b, &mut map);
    a == b
}

/// The fast local moving phase: visit nodes from a queue; move each to the neighbouring
/// community with the largest gain; re-queue neighbours outside its new community.
fn move_nodes_fast(
    g: &Graph<'_>,
    part: &mut [usize],
    gamma: f64,
    two_m: f64,
    rng: &mut ChaCha8Rng,
    s: &mut Scratch,
) {
    let n = g.n();
    let n_comm = n.max(part.iter().copied().max().map_or(0, |m| m + 1));
    let (total, size) = (&mut s.total, &mut s.size);
    total.clear();
    total.resize(n_comm, 0.0);
    size.clear();
    size.resize(n_comm, 0);
    for v in 0..n {
        total[part[v]] += g.strength[v];
        size[part[v]] += 1;
    }
    s.order.clear();
    s.order.extend(0..n);
    s.order.shuffle(rng);
    let queue = &mut s.queue;
    queue.clear();
    queue.extend(s.order.iter().copied());
    let queued = &mut s.queued;
    queued.clear();
    queued.resize(n, true);
    let link = &mut s.link;
    link.reset(n_comm);
    // Empty communities a node may move into alone; entries are dropped lazily once reused.
    let empty = &mut s.empty;
    empty.clear();
    empty.extend((0..n_comm).filter(|&c| size[c] == 0));
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
        let mut best_gain = gain(cur, link.get(cur), total);
        for &c in &link.touched {
            let g_c = gain(c, link.get(c), total);
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
    compact(part, &mut s.map);
}

/// The refinement phase: inside each community, nodes start alone and are merged, in random
/// order, into well-connected sub-communities with probability ∝ exp(gain / beta). The
/// sub-community labels (compacted) go to `refined`.
fn refine(
    g: &Graph<'_>,
    part: &[usize],
    p: &LeidenParams,
    two_m: f64,
    rng: &mut ChaCha8Rng,
    s: &mut Scratch,
    refined: &mut Vec<usize>,
) {
    let n = g.n();
    let gamma = p.resolution;
    refined.clear();
    refined.extend(0..n);
    let sub_total = &mut s.sub_total;
    sub_total.clone_from(&g.strength);
    let singleton = &mut s.singleton;
    singleton.clear();
    singleton.resize(n, true);
    let n_comm = part.iter().copied().max().map_or(0, |m| m + 1);
    s.groups.fill(part, n_comm);
    let comm_total = &mut s.comm_total;
    comm_total.clear();
    comm_total.resize(n_comm, 0.0);
    for v in 0..n {
        comm_total[part[v]] += g.strength[v];
    }
    // External weight of each sub-community to the rest of its community, kept up to date.
    let sub_ext = &mut s.sub_ext;
    sub_ext.clear();
    sub_ext.extend((0..n).map(|v| {
        g.edges(v)
            .filter(|(u, _)| part[*u] == part[v])
            .map(|(_, w)| w)
            .sum::<f64>()
    }));
    let link = &mut s.link;
    link.reset(n);
    let (candidates, weights) = (&mut s.candidates, &mut s.weights);
    for (c, &kc) in comm_total.iter().enumerate() {
        let nodes = &mut s.shuffled;
        nodes.clear();
        nodes.extend_from_slice(s.groups.group(c));
        nodes.shuffle(rng);
        for &v in nodes.iter() {
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
            candidates.clear();
            let own = refined[v];
            for &t in &link.touched {
                let w = link.get(t);
                if t == own {
                    continue;
                }
                // Target must itself be well connected within the community.
                if sub_ext[t] < gamma * sub_total[t] * (kc - sub_total[t]) / two_m {
                    continue;
                }
                let gain = w - gamma * kv * sub_total[t] / two_m;
                if gain >= 0.0 {
                    candidates.push((t, gain));
                }
            }
            if candidates.is_empty() {
                continue;
            }
            candidates.sort_by_key(|e| e.0);
            let max_gain = candidates.iter().map(|e| e.1).fold(f64::MIN, f64::max);
            weights.clear();
            weights.extend(
                candidates
                    .iter()
                    .map(|(_, gn)| ((gn - max_gain) / p.beta).exp()),
            );
            let sum: f64 = weights.iter().sum();
            let mut r = rng.random::<f64>() * sum;
            let mut target = candidates[candidates.len() - 1].0;
            for ((t, _), w) in candidates.iter().zip(weights.iter()) {
                if r < *w {
                    target = *t;
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
    compact(refined, &mut s.map);
}

/// Collapses each community of `part` (labels 0..k) into one node.
fn aggregate(g: &Graph<'_>, part: &[usize], k: usize, s: &mut Scratch) -> Graph<'static> {
    let mut strength = vec![0.0; k];
    for v in 0..g.n() {
        strength[part[v]] += g.strength[v];
    }
    s.groups.fill(part, k);
    let link = &mut s.link;
    link.reset(k);
    // The level's edge count bounds the aggregate's, so the edge arrays never grow by
    // doubling copies.
    let bound = g.nbr.len();
    let (mut indptr, mut nbr, mut w) = (
        Vec::with_capacity(k + 1),
        Vec::with_capacity(bound),
        Vec::with_capacity(bound),
    );
    indptr.push(0u64);
    let row = &mut s.row;
    for a in 0..k {
        link.clear();
        for &v in s.groups.group(a) {
            for (u, x) in g.edges(v) {
                if part[u] != a {
                    link.add(part[u], x);
                }
            }
        }
        row.clear();
        row.extend(link.touched.iter().map(|&b| (b, link.get(b))));
        row.sort_by_key(|e| e.0);
        for &(b, x) in row.iter() {
            nbr.push(b as u32);
            w.push(x as f32);
        }
        indptr.push(nbr.len() as u64);
    }
    Graph {
        indptr: Cow::Owned(indptr),
        nbr: Cow::Owned(nbr),
        w: Cow::Owned(w),
        strength,
    }
}

/// Labels 0..k with 0 the largest community (ties by first appearance).
fn relabel_by_size(membership: &[usize]) -> Vec<u32> {
    let mut c = membership.to_vec();
    compact(&mut c, &mut Vec::new());
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
    fn borrowed_float32_and_copied_graphs_cluster_alike() {
        let g = ring_of_cliques(8, 6);
        let weights = g.data.to_f64_vec().expect("numeric");
        let as_f32 = Compressed {
            data: DynArray::F32(
                ndarray::Array1::from_iter(weights.iter().map(|&w| w as f32)).into_dyn(),
            ),
            ..g.clone()
        };
        assert!(matches!(Graph::of(&as_f32).nbr, Cow::Borrowed(_)));
        assert!(matches!(Graph::of(&g).w, Cow::Owned(_)));
        let p = LeidenParams::default();
        assert_eq!(leiden(&as_f32, &p), leiden(&g, &p));
        // Self loops stay out of the edge lists but count in the strength.
        let n = 48;
        let mut edges = crate::test_graphs::cliques(8, 6);
        edges.extend((0..8).map(|c| (c * 6, ((c + 1) % 8) * 6 + 1, 0.1)));
        let mut looped = crate::test_graphs::undirected(n, &edges);
        let (mut indptr, mut indices, mut data) = (vec![0u64], Vec::new(), Vec::new());
        for i in 0..n {
            let r = looped.indptr[i] as usize..looped.indptr[i + 1] as usize;
            let mut row: Vec<(u32, f32)> = looped.indices[r.clone()]
                .iter()
                .zip(&weights[r])
                .map(|(&j, &w)| (j, w as f32))
                .chain([(i as u32, 0.5)])
                .collect();
            row.sort_by_key(|e| e.0);
            indices.extend(row.iter().map(|e| e.0));
            data.extend(row.iter().map(|e| e.1));
            indptr.push(indices.len() as u64);
        }
        looped.indptr = indptr;
        looped.indices = indices;
        looped.data = DynArray::F32(ndarray::Array1::from(data).into_dyn());
        let graph = Graph::of(&looped);
        assert!(matches!(graph.nbr, Cow::Owned(_)));
        assert_eq!(graph.nbr.len(), g.indices.len());
        assert!((graph.strength[2] - (5.0 + 0.5)).abs() < 1e-12);
        let labels = leiden(&looped, &p);
        for c in 0..8 {
            assert!((0..6).all(|i| labels[c * 6 + i] == labels[c * 6]));
        }
        assert_eq!(
            labels
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len(),
            8
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
