//! Nearest neighbours and the graph scanpy builds from them.
//!
//! - [`exact_knn`]: blocked brute force, squared distances from one matrix product per block
//!   of queries (`‖q‖² + ‖x‖² − 2 q·x`), parallel over blocks. scanpy uses the same exact
//!   search for euclidean data below 8,192 cells.
//! - [`distances`]: the `obsp['distances']` CSR (self removed), as scanpy stores it.
//! - [`umap_connectivities`]: UMAP's fuzzy simplicial set (`umap.umap_.fuzzy_simplicial_set`,
//!   which scanpy calls for `obsp['connectivities']`): per-cell `rho` (nearest non-zero
//!   distance) and `sigma` (binary search so the memberships sum to log2 k), then the fuzzy
//!   union `P + Pᵀ − P∘Pᵀ`.

use engine_matrix::{Compressed, DynArray, SparseFormat};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

/// Cells below which scanpy (and so `neighbors`) searches exactly; NN-descent from here on.
pub const EXACT_MAX_CELLS: usize = 8192;

/// The k nearest neighbours of every row (itself first, at distance 0), as `n × k` indices and
/// euclidean distances in increasing order.
pub fn exact_knn(x: ArrayView2<'_, f64>, k: usize) -> (Array2<u32>, Array2<f64>) {
    let (n, d) = x.dim();
    let k = k.min(n);
    let data = Mat::<f64>::from_fn(n, d, |i, j| x[[i, j]]);
    let norms: Vec<f64> = (0..n)
        .map(|i| x.row(i).iter().map(|v| v * v).sum())
        .collect();
    // Query blocks of about 16 MiB of distances each.
    let block = ((16usize << 20) / (8 * n.max(1))).clamp(1, 1024);
    let starts: Vec<usize> = (0..n).step_by(block).collect();
    let parts: Vec<(Vec<u32>, Vec<f64>)> = starts
        .par_iter()
        .map(|&s| {
            let e = (s + block).min(n);
            let q = data.subrows(s, e - s);
            let mut dots = Mat::<f64>::zeros(e - s, n);
            matmul(
                dots.as_mut(),
                Accum::Replace,
                q,
                data.transpose(),
                1.0,
                Par::Seq,
            );
            crate::cpu::clean();
            let mut idx = Vec::with_capacity((e - s) * k);
            let mut dist = Vec::with_capacity((e - s) * k);
            let mut cand: Vec<(f64, u32)> = Vec::with_capacity(n);
            for r in 0..e - s {
                let i = s + r;
                cand.clear();
                cand.extend((0..n).map(|j| {
                    let sq = if j == i {
                        0.0
                    } else {
                        (norms[i] + norms[j] - 2.0 * dots[(r, j)]).max(0.0)
                    };
                    (sq, j as u32)
                }));
                // Self sorts first: distance 0 and, on ties, it is preferred.
                let key = |a: &(f64, u32)| (a.0, a.1 != i as u32, a.1);
                if k < n {
                    cand.select_nth_unstable_by(k - 1, |a, b| {
                        key(a)
                            .partial_cmp(&key(b))
                            .unwrap_or(std::cmp::Ordering::Equal)
                    });
                    cand.truncate(k);
                }
                cand.sort_by(|a, b| {
                    key(a)
                        .partial_cmp(&key(b))
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
                for &(sq, j) in &cand {
                    idx.push(j);
                    dist.push(sq.sqrt());
                }
            }
            (idx, dist)
        })
        .collect();
    let mut indices = Vec::with_capacity(n * k);
    let mut dists = Vec::with_capacity(n * k);
    for (i, d) in parts {
        indices.extend(i);
        dists.extend(d);
    }
    (
        Array2::from_shape_vec((n, k), indices).expect("n × k indices"),
        Array2::from_shape_vec((n, k), dists).expect("n × k distances"),
    )
}

/// `obsp['distances']`: each row's neighbours without itself, float32 as scanpy stores it.
pub fn distances(indices: &Array2<u32>, dists: &Array2<f64>) -> Compressed {
    let (n, k) = indices.dim();
    let mut indptr = Vec::with_capacity(n + 1);
    indptr.push(0u64);
    let mut cols = Vec::with_capacity(n * k.saturating_sub(1));
    let mut vals = Vec::with_capacity(n * k.saturating_sub(1));
    let mut row: Vec<(u32, f32)> = Vec::with_capacity(k);
    for i in 0..n {
        row.clear();
        row.extend(
            (0..k)
                .filter(|&j| indices[[i, j]] as usize != i)
                .map(|j| (indices[[i, j]], dists[[i, j]] as f32)),
        );
        row.sort_by_key(|e| e.0);
        cols.extend(row.iter().map(|e| e.0));
        vals.extend(row.iter().map(|e| e.1));
        indptr.push(cols.len() as u64);
    }
    csr(n, indptr, cols, vals)
}

/// An `n × n` float32 CSR matrix from its arrays.
fn csr(n: usize, indptr: Vec<u64>, cols: Vec<u32>, vals: Vec<f32>) -> Compressed {
    Compressed {
        format: SparseFormat::Csr,
        shape: [n, n],
        indptr,
        indices: cols,
        data: DynArray::F32(ndarray::Array1::from(vals).into_dyn()),
    }
}

/// umap's `smooth_knn_dist` with `local_connectivity = 1`, `bandwidth = 1`: per-row `sigma`
/// and `rho`.
pub fn smooth_knn_dist(dists: &Array2<f64>, k: f64) -> (Vec<f64>, Vec<f64>) {
    const TOL: f64 = 1e-5; // SMOOTH_K_TOLERANCE
    const MIN_K_DIST_SCALE: f64 = 1e-3;
    let (n, m) = dists.dim();
    let target = k.log2();
    let mean_all = dists.iter().sum::<f64>() / (n * m).max(1) as f64;
    let rows: Vec<(f64, f64)> = (0..n)
        .into_par_iter()
        .map(|i| {
            let row = dists.row(i);
            let rho = row.iter().copied().find(|&d| d > 0.0).unwrap_or(0.0);
            let (mut lo, mut hi, mut mid) = (0.0f64, f64::INFINITY, 1.0f64);
            for _ in 0..64 {
                let psum: f64 = row
                    .iter()
                    .skip(1)
                    .map(|&d| {
                        if d - rho > 0.0 {
                            (-(d - rho) / mid).exp()
                        } else {
                            1.0
                        }
                    })
                    .sum();
                if (psum - target).abs() < TOL {
                    break;
                }
                if psum > target {
                    hi = mid;
                    mid = (lo + hi) / 2.0;
                } else {
                    lo = mid;
                    mid = if hi.is_infinite() {
                        mid * 2.0
                    } else {
                        (lo + hi) / 2.0
                    };
                }
            }
            let floor = MIN_K_DIST_SCALE
                * if rho > 0.0 {
                    row.iter().sum::<f64>() / m as f64
                } else {
                    mean_all
                };
            (mid.max(floor), rho)
        })
        .collect();
    rows.into_iter().unzip()
}

/// The directed memberships P as CSR rows sorted by column (float32, as umap keeps them).
struct Rows<'a> {
    ptr: &'a [usize],
    col: &'a [u32],
    val: &'a [f32],
}

impl Rows<'_> {
    /// `P[i, j]`, found in row i's few sorted entries.
    fn at(&self, i: usize, j: u32) -> f64 {
        let r = self.ptr[i]..self.ptr[i + 1];
        self.col[r.clone()]
            .binary_search(&j)
            .map_or(0.0, |x| f64::from(self.val[r.start + x]))
    }

    /// Row i of the fuzzy union P + Pᵀ − P∘Pᵀ, in column order: the merge of P's row i and
    /// Pᵀ's (`t`: Pᵀ's pattern).
    fn union_row(&self, i: usize, t: (&[usize], &[u32]), mut emit: impl FnMut(u32, f32)) {
        let r = self.ptr[i]..self.ptr[i + 1];
        let (a, b) = (&self.col[r.clone()], &t.1[t.0[i]..t.0[i + 1]]);
        let (mut x, mut y) = (0, 0);
        while x < a.len() || y < b.len() {
            let cx = a.get(x).copied().unwrap_or(u32::MAX);
            let cy = b.get(y).copied().unwrap_or(u32::MAX);
            let j = cx.min(cy);
            let u = if cx == j {
                x += 1;
                f64::from(self.val[r.start + x - 1])
            } else {
                0.0
            };
            let v = if cy == j {
                y += 1;
                self.at(j as usize, i as u32)
            } else {
                0.0
            };
            let w = (u + v - u * v) as f32;
            if w != 0.0 {
                emit(j, w);
            }
        }
    }
}

/// `obsp['connectivities']`: the symmetric fuzzy union of each cell's membership strengths.
pub fn umap_connectivities(indices: &Array2<u32>, dists: &Array2<f64>) -> Compressed {
    let (n, k) = indices.dim();
    let (sigma, rho) = smooth_knn_dist(dists, k as f64);
    // Directed memberships P[i, j] as CSR rows sorted by column.
    let mut p_ptr = Vec::with_capacity(n + 1);
    p_ptr.push(0usize);
    let (mut p_col, mut p_val) = (Vec::with_capacity(n * k), Vec::with_capacity(n * k));
    let mut row: Vec<(u32, f32)> = Vec::with_capacity(k);
    for i in 0..n {
        row.clear();
        for j in 0..k {
            let c = indices[[i, j]];
            if c as usize == i {
                continue;
            }
            let d = dists[[i, j]] - rho[i];
            let v = if d <= 0.0 || sigma[i] == 0.0 {
                1.0
            } else {
                (-d / sigma[i]).exp() as f32
            };
            if v != 0.0 {
                row.push((c, v));
            }
        }
        row.sort_by_key(|e| e.0);
        for &(c, v) in &row {
            p_col.push(c);
            p_val.push(v);
        }
        p_ptr.push(p_col.len());
    }
    // Pᵀ's pattern by counting sort (its rows come out sorted because P's rows are visited
    // in order); its values are looked up in P's short sorted rows rather than copied.
    let mut t_ptr = vec![0usize; n + 1];
    for &c in &p_col {
        t_ptr[c as usize + 1] += 1;
    }
    for i in 0..n {
        t_ptr[i + 1] += t_ptr[i];
    }
    let mut t_col = vec![0u32; p_col.len()];
    {
        let mut cursor = t_ptr.clone();
        for i in 0..n {
            for &c in &p_col[p_ptr[i]..p_ptr[i + 1]] {
                t_col[cursor[c as usize]] = i as u32;
                cursor[c as usize] += 1;
            }
        }
    }
    let p = Rows {
        ptr: &p_ptr,
        col: &p_col,
        val: &p_val,
    };
    let t = (&t_ptr[..], &t_col[..]);
    // Visited twice: to size the arrays exactly, then to fill them.
    let mut indptr = Vec::with_capacity(n + 1);
    indptr.push(0u64);
    for i in 0..n {
        let mut len = 0u64;
        p.union_row(i, t, |_, _| len += 1);
        indptr.push(indptr[i] + len);
    }
    let nnz = indptr[n] as usize;
    let (mut cols, mut vals) = (Vec::with_capacity(nnz), Vec::with_capacity(nnz));
    for i in 0..n {
        p.union_row(i, t, |j, w| {
            cols.push(j);
            vals.push(w);
        });
    }
    csr(n, indptr, cols, vals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knn_on_a_line_is_closed_form() {
        // Points 0, 1, 3, 7, 15 on a line.
        let x = Array2::from_shape_vec((5, 1), vec![0.0, 1.0, 3.0, 7.0, 15.0]).unwrap();
        let (idx, d) = exact_knn(x.view(), 3);
        assert_eq!(idx.row(0).to_vec(), vec![0, 1, 2]);
        assert_eq!(d.row(0).to_vec(), vec![0.0, 1.0, 3.0]);
        assert_eq!(idx.row(3).to_vec(), vec![3, 2, 1]);
        assert_eq!(d.row(3).to_vec(), vec![0.0, 4.0, 6.0]);
        let dm = distances(&idx, &d);
        assert_eq!(dm.indptr, vec![0, 2, 4, 6, 8, 10]);
        assert_eq!(&dm.indices[6..8], &[1, 2]);
    }

    #[test]
    fn sigma_solves_the_membership_equation() {
        let d = Array2::from_shape_vec((1, 5), vec![0.0, 1.0, 1.5, 2.0, 4.0]).unwrap();
        let (sigma, rho) = smooth_knn_dist(&d, 5.0);
        assert_eq!(rho[0], 1.0);
        let psum: f64 = [1.0f64, 1.5, 2.0, 4.0]
            .iter()
            .map(|&x| {
                if x - 1.0 > 0.0 {
                    (-(x - 1.0) / sigma[0]).exp()
                } else {
                    1.0
                }
            })
            .sum();
        assert!((psum - 5f64.log2()).abs() < 1e-4, "{psum}");
    }

    #[test]
    fn connectivities_are_symmetric_fuzzy_unions() {
        let x = Array2::from_shape_fn((30, 2), |(i, j)| {
            ((i * 37 + j * 11) % 17) as f64 + 0.01 * i as f64
        });
        let (idx, d) = exact_knn(x.view(), 5);
        let c = umap_connectivities(&idx, &d);
        assert!(c.validate().is_ok());
        let dense = c.to_dense().to_f64_vec().unwrap();
        for i in 0..30 {
            assert_eq!(dense[i * 30 + i], 0.0);
            for j in 0..30 {
                assert!((dense[i * 30 + j] - dense[j * 30 + i]).abs() < 1e-6);
                assert!((0.0..=1.0).contains(&dense[i * 30 + j]));
            }
        }
    }
}
