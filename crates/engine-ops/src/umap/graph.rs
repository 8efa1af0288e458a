//! The graph's kept edges, their sampling schedule, and the adjacency the spectral
//! initialisation reads.

use engine_matrix::Compressed;
use std::borrow::Cow;

/// The graph's edges in both directions as CSR rows (row = head), with umap-learn's
/// sampling schedule. Weights are kept only until the spectral initialisation.
#[derive(Debug)]
pub(super) struct Edges {
    pub(super) indptr: Vec<usize>,
    pub(super) tail: Vec<u32>,
    pub(super) weight: Vec<f32>,
    /// Single precision: at a million cells each per-edge array is ~90 MB, and an epoch
    /// count below 2^24 is exact.
    pub(super) epochs_per_sample: Vec<f32>,
}

impl Edges {
    /// Drops edges lighter than `max / n_epochs` (they would never be sampled) and sets
    /// `epochs_per_sample = max / weight`.
    pub(super) fn from_graph(graph: &Compressed, n_epochs: usize) -> Edges {
        let weight = crate::sparse::value_at(&graph.data);
        let max = (0..graph.indices.len()).map(&weight).fold(0.0f64, f64::max);
        let floor = max / n_epochs as f64;
        let n = graph.shape[0];
        // Sized for every stored edge (most are kept): grown by doubling, the three arrays
        // could reach twice the graph.
        let m = graph.indices.len();
        let mut e = Edges {
            indptr: Vec::with_capacity(n + 1),
            tail: Vec::with_capacity(m),
            weight: Vec::with_capacity(m),
            epochs_per_sample: Vec::with_capacity(m),
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

    /// The same edges with vertex `order[v]` renamed `v` (rows keep their edge order). One
    /// per-edge array is rebuilt at a time, so the copy costs one array, not all of them.
    pub(super) fn permuted(self, order: &[usize]) -> Edges {
        let mut rank = vec![0u32; order.len()];
        for (v, &old) in order.iter().enumerate() {
            rank[old] = v as u32;
        }
        let mut indptr = Vec::with_capacity(self.indptr.len());
        indptr.push(0);
        let mut tail = Vec::with_capacity(self.tail.len());
        for &old in order {
            let (lo, hi) = (self.indptr[old], self.indptr[old + 1]);
            tail.extend(self.tail[lo..hi].iter().map(|&t| rank[t as usize]));
            indptr.push(tail.len());
        }
        drop(self.tail);
        drop(rank);
        let mut epochs_per_sample = Vec::with_capacity(self.epochs_per_sample.len());
        for &old in order {
            let (lo, hi) = (self.indptr[old], self.indptr[old + 1]);
            epochs_per_sample.extend_from_slice(&self.epochs_per_sample[lo..hi]);
        }
        Edges {
            indptr,
            tail,
            weight: Vec::new(),
            epochs_per_sample,
        }
    }

    /// The kept edges as a symmetric weighted adjacency (borrowed) for the spectral
    /// initialisation.
    pub(super) fn adjacency(&self) -> Adjacency<'_> {
        Adjacency {
            indptr: Cow::Borrowed(&self.indptr),
            indices: Cow::Borrowed(&self.tail),
            weight: Cow::Borrowed(&self.weight),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Adjacency<'a> {
    indptr: Cow<'a, [usize]>,
    indices: Cow<'a, [u32]>,
    weight: Cow<'a, [f32]>,
}

impl Adjacency<'_> {
    pub(super) fn n(&self) -> usize {
        self.indptr.len() - 1
    }

    pub(super) fn row(&self, i: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        let r = self.indptr[i]..self.indptr[i + 1];
        self.indices[r.clone()]
            .iter()
            .zip(&self.weight[r])
            .map(|(&j, &w)| (j as usize, f64::from(w)))
    }

    /// Connected-component label of every vertex, numbered in order of first vertex.
    pub(super) fn components(&self) -> (usize, Vec<usize>) {
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
    pub(super) fn induced(&self, members: &[usize]) -> Adjacency<'static> {
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
