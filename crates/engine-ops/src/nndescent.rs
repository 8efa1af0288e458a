//! Approximate k nearest neighbours by NN-descent (Dong, Moses & Li 2011), the algorithm of
//! pynndescent, which scanpy uses above 8,192 cells: start from random neighbours, then
//! repeatedly let each point's neighbours (and reverse neighbours) introduce themselves to
//! each other, keeping the k closest seen, until few lists change.

use ndarray::{Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// One point's candidate list: up to k (squared distance, index, is-new), unsorted.
#[derive(Clone)]
struct Heap {
    items: Vec<(f64, u32, bool)>,
}

impl Heap {
    fn worst(&self) -> f64 {
        self.items.iter().map(|e| e.0).fold(f64::MIN, f64::max)
    }
    /// Inserts `j` if it is closer than the current worst and not already present.
    fn push(&mut self, d: f64, j: u32, k: usize) -> bool {
        if self.items.iter().any(|e| e.1 == j) {
            return false;
        }
        if self.items.len() < k {
            self.items.push((d, j, true));
            return true;
        }
        let (wi, w) = self
            .items
            .iter()
            .enumerate()
            .fold(
                (0, f64::MIN),
                |(bi, bd), (i, e)| if e.0 > bd { (i, e.0) } else { (bi, bd) },
            );
        if d < w {
            self.items[wi] = (d, j, true);
            true
        } else {
            false
        }
    }
}

/// Approximate k nearest neighbours of every row, itself first, like [`crate::knn::exact_knn`].
pub fn nn_descent(x: ArrayView2<'_, f64>, k: usize, seed: u64) -> (Array2<u32>, Array2<f64>) {
    let (n, _) = x.dim();
    let k = k.min(n);
    let rows: Vec<Vec<f64>> = x.outer_iter().map(|r| r.to_vec()).collect();
    // Neighbours other than self; self is added at the end.
    let kk = k.saturating_sub(1).max(1).min(n.saturating_sub(1));
    let mut heaps: Vec<Heap> = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut rng =
                ChaCha8Rng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut h = Heap {
                items: Vec::with_capacity(kk),
            };
            while h.items.len() < kk {
                let j = rng.random_range(0..n);
                if j != i {
                    h.push(sq_dist(&rows[i], &rows[j]), j as u32, kk);
                }
            }
            h
        })
        .collect();
    let max_candidates = kk.min(60);
    for _iter in 0..12 {
        // Split each list into new (not yet joined) and old members; mark new as old.
        let mut new: Vec<Vec<u32>> = vec![Vec::new(); n];
        let mut old: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (i, h) in heaps.iter_mut().enumerate() {
            for e in h.items.iter_mut() {
                if e.2 {
                    if new[i].len() < max_candidates {
                        new[i].push(e.1);
                        e.2 = false;
                    }
                } else {
                    old[i].push(e.1);
                }
            }
        }
        // Reverse neighbours join too.
        let (mut rnew, mut rold): (Vec<Vec<u32>>, Vec<Vec<u32>>) =
            (vec![Vec::new(); n], vec![Vec::new(); n]);
        for i in 0..n {
            for &j in &new[i] {
                if rnew[j as usize].len() < max_candidates {
                    rnew[j as usize].push(i as u32);
                }
            }
            for &j in &old[i] {
                if rold[j as usize].len() < max_candidates {
                    rold[j as usize].push(i as u32);
                }
            }
        }
        for i in 0..n {
            new[i].append(&mut rnew[i]);
            new[i].sort_unstable();
            new[i].dedup();
            old[i].append(&mut rold[i]);
            old[i].sort_unstable();
            old[i].dedup();
        }
        // Local joins, in chunks so the proposals stay small.
        let mut updates = 0usize;
        for chunk in (0..n).collect::<Vec<_>>().chunks(4096) {
            let proposals: Vec<(u32, u32, f64)> = chunk
                .par_iter()
                .flat_map_iter(|&i| {
                    let mut out = Vec::new();
                    let nw = &new[i];
                    for (a, &u) in nw.iter().enumerate() {
                        for &v in nw[a + 1..].iter().chain(old[i].iter()) {
                            if u != v {
                                let d = sq_dist(&rows[u as usize], &rows[v as usize]);
                                out.push((u, v, d));
                                out.push((v, u, d));
                            }
                        }
                    }
                    out
                })
                .collect();
            for (u, v, d) in proposals {
                let h = &mut heaps[u as usize];
                if d < h.worst() || h.items.len() < kk {
                    updates += h.push(d, v, kk) as usize;
                }
            }
        }
        if (updates as f64) < 0.001 * (n * kk) as f64 {
            break;
        }
    }
    let mut indices = Array2::zeros((n, k));
    let mut dists = Array2::zeros((n, k));
    for (i, h) in heaps.iter_mut().enumerate() {
        h.items
            .sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        indices[[i, 0]] = i as u32;
        for (c, e) in h.items.iter().take(k - 1).enumerate() {
            indices[[i, c + 1]] = e.1;
            dists[[i, c + 1]] = e.0.sqrt();
        }
    }
    (indices, dists)
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
        let (ai, ad) = nn_descent(x.view(), 15, 0);
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
}
