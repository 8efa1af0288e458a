//! Matrix operators and algorithms with scanpy's semantics: the embedded synthetic source,
//! streaming statistics (moments, Gram) with associative merges, and PCA. Kernels only: no
//! files, no plans.

pub mod counts;
pub mod cpu;
pub mod eigen;
pub mod expression;
pub mod hierarchy;
pub mod hvg;
pub mod kde;
pub mod knn;
pub mod leiden;
pub mod loess;
pub mod markers;
pub mod nndescent;
pub mod pca;
pub mod randomized;
pub mod sparse;
pub mod stats;
pub mod synthetic;
pub mod umap;

/// Small graphs the kernel tests share.
#[cfg(test)]
pub(crate) mod test_graphs {
    use engine_matrix::{Compressed, DynArray, SparseFormat};

    /// A symmetric CSR adjacency (float64 weights) from undirected weighted edges.
    pub fn undirected(n: usize, edges: &[(usize, usize, f64)]) -> Compressed {
        let mut rows: Vec<Vec<(u32, f64)>> = vec![Vec::new(); n];
        for &(i, j, w) in edges {
            rows[i].push((j as u32, w));
            rows[j].push((i as u32, w));
        }
        let mut indptr = vec![0u64];
        let (mut indices, mut data) = (Vec::new(), Vec::new());
        for mut r in rows {
            r.sort_by_key(|e| e.0);
            for (j, w) in r {
                indices.push(j);
                data.push(w);
            }
            indptr.push(indices.len() as u64);
        }
        Compressed {
            format: SparseFormat::Csr,
            shape: [n, n],
            indptr,
            indices,
            data: DynArray::F64(ndarray::Array1::from(data).into_dyn()),
        }
    }

    /// The unit-weight edges of `k` cliques of `size` vertices, clique `c` on vertices
    /// `c * size .. (c + 1) * size`.
    pub fn cliques(k: usize, size: usize) -> Vec<(usize, usize, f64)> {
        let mut edges = Vec::new();
        for c in 0..k {
            for i in 0..size {
                for j in i + 1..size {
                    edges.push((c * size + i, c * size + j, 1.0));
                }
            }
        }
        edges
    }
}
