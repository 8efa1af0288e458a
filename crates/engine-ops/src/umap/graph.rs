//! The graph's kept edges, their sampling schedule, and the adjacency the spectral
//! initialisation reads.

use engine_matrix::{Compressed, DynArray};
use std::borrow::Cow;

/// The graph's edges in both directions as CSR rows (row = head), with umap-learn's
/// sampling schedule: what the SGD reads. Built after the spectral initialisation (which
/// reads the graph itself), so the two never hold their per-edge arrays at once.
#[derive(Debug)]
pub(super) struct Edges {
    pub(super) indptr: Vec<usize>,
    pub(super) tail: Vec<u32>,
    /// Single precision: at a million cells each per-edge array is ~90 MB, and an epoch
    /// count below 2^24 is exact.
    pub(super) epochs_per_sample: Vec<f32>,
}

impl Edges {
    /// The edges `adjacency` keeps (see [`Adjacency::row`]) with
    /// `epochs_per_sample = max / weight`, and vertex `order[v]` renamed `v` (rows keep their
    /// edge order): built in that order at once, so no second copy of the arrays is made.
    pub(super) fn from_adjacency(adjacency: &Adjacency<'_>, order: &[usize]) -> Edges {
        let n = adjacency.n();
        let mut rank = vec![0u32; n];
        for (v, &old) in order.iter().enumerate() {
            rank[old] = v as u32;
        }
        // Sized for every stored edge (most are kept): grown by doubling, the arrays could
        // reach twice the graph.
        let m = adjacency.indices.len();
        let mut e = Edges {
            indptr: Vec::with_capacity(n + 1),
            tail: Vec::with_capacity(m),
            epochs_per_sample: Vec::with_capacity(m),
        };
        e.indptr.push(0);
        for &old in order {
            for (j, w) in adjacency.row(old) {
                e.tail.push(rank[j]);
                e.epochs_per_sample.push((adjacency.max / w) as f32);
            }
            e.indptr.push(e.tail.len());
        }
        e
    }
}

/// A symmetric weighted adjacency for the spectral initialisation: the graph's own arrays
/// (borrowed when its weights are float32), read through umap-learn's drop rule.
#[derive(Debug, Clone)]
pub(super) struct Adjacency<'a> {
    indptr: Cow<'a, [u64]>,
    indices: Cow<'a, [u32]>,
    weight: Cow<'a, [f32]>,
    /// The graph's largest weight.
    max: f64,
    /// Weights below it are not edges: `max / n_epochs`, they would never be sampled.
    floor: f64,
}

impl<'a> Adjacency<'a> {
    /// The edges of `graph` that a layout of `n_epochs` epochs keeps.
    pub(super) fn of_graph(graph: &'a Compressed, n_epochs: usize) -> Adjacency<'a> {
        let value = crate::sparse::value_at(&graph.data);
        let max = (0..graph.indices.len()).map(&value).fold(0.0f64, f64::max);
        let weight = match &graph.data {
            DynArray::F32(a) if a.as_slice().is_some() => {
                Cow::Borrowed(a.as_slice().expect("checked"))
            }
            _ => Cow::Owned((0..graph.indices.len()).map(|e| value(e) as f32).collect()),
        };
        Adjacency {
            indptr: Cow::Borrowed(&graph.indptr),
            indices: Cow::Borrowed(&graph.indices),
            weight,
            max,
            floor: max / n_epochs as f64,
        }
    }

    pub(super) fn n(&self) -> usize {
        self.indptr.len() - 1
    }

    /// Row `i`'s edges and their weights: self loops, zeros and weights below the floor are
    /// skipped.
    pub(super) fn row(&self, i: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        let r = self.indptr[i] as usize..self.indptr[i + 1] as usize;
        self.indices[r.clone()]
            .iter()
            .zip(&self.weight[r])
            .map(|(&j, &w)| (j as usize, f64::from(w)))
            .filter(move |&(j, w)| w > 0.0 && w >= self.floor && j != i)
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
        let (mut indptr, mut indices, mut weight) = (vec![0u64], Vec::new(), Vec::new());
        for &v in members {
            for (u, w) in self.row(v) {
                if local[u] != u32::MAX {
                    indices.push(local[u]);
                    weight.push(w as f32);
                }
            }
            indptr.push(indices.len() as u64);
        }
        // Kept edges only: nothing more to drop.
        Adjacency {
            indptr: Cow::Owned(indptr),
            indices: Cow::Owned(indices),
            weight: Cow::Owned(weight),
            max: self.max,
            floor: f64::NEG_INFINITY,
        }
    }
}
