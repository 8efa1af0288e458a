//! [`Csr`]: the form kernels compute on, CSR rows with float64 values and column indices
//! sorted within each row. It is a [`Compressed`] with `Vec<f64>` values, so a block read
//! from a file becomes one by converting its values only, and a block to write goes back the
//! same way.

use crate::selection::AxisSelection;
use crate::sparse::{Compressed, SparseFormat};
use crate::{DynArray, LayoutError};
use ndarray::Array2;

/// CSR rows with float64 values.
pub type Csr = Compressed<Vec<f64>>;

impl Compressed<Vec<f64>> {
    /// No rows yet, `n_cols` columns; rows are added with [`Csr::push_row`].
    pub fn with_cols(n_cols: usize) -> Csr {
        Csr {
            format: SparseFormat::Csr,
            shape: [0, n_cols],
            indptr: vec![0],
            indices: Vec::new(),
            data: Vec::new(),
        }
    }

    /// A CSR from its parts; the row count is `indptr.len() - 1`.
    pub fn from_parts(n_cols: usize, indptr: Vec<u64>, indices: Vec<u32>, data: Vec<f64>) -> Csr {
        Csr {
            format: SparseFormat::Csr,
            shape: [indptr.len().saturating_sub(1), n_cols],
            indptr,
            indices,
            data,
        }
    }

    /// Builds a block from rows given as (column, value) lists.
    pub fn from_rows(n_cols: usize, rows: &[Vec<(u32, f64)>]) -> Csr {
        let mut m = Csr::with_cols(n_cols);
        for r in rows {
            m.indices.extend(r.iter().map(|&(j, _)| j));
            m.data.extend(r.iter().map(|&(_, v)| v));
            m.end_row();
        }
        m
    }

    /// Converts a stored CSR block's values to float64; the structure moves unchanged.
    ///
    /// # Errors
    /// When the block is CSC or its values are not numbers.
    pub fn from_stored(c: Compressed) -> Result<Csr, LayoutError> {
        if c.format != SparseFormat::Csr {
            return Err(LayoutError::new("expected a CSR block, found CSC"));
        }
        let data = c.data.to_f64_vec().ok_or_else(|| {
            LayoutError::new(format!(
                "sparse values of type {} are not numbers",
                c.data.dtype()
            ))
        })?;
        Ok(Csr {
            format: SparseFormat::Csr,
            shape: c.shape,
            indptr: c.indptr,
            indices: c.indices,
            data,
        })
    }

    /// The block with its values as `f(value)` in a run-time typed array, as writers take it.
    pub fn to_stored(&self, values: impl FnOnce(&[f64]) -> DynArray) -> Compressed {
        Compressed {
            format: SparseFormat::Csr,
            shape: self.shape,
            indptr: self.indptr.clone(),
            indices: self.indices.clone(),
            data: values(&self.data),
        }
    }

    pub fn n_rows(&self) -> usize {
        self.shape[0]
    }

    pub fn n_cols(&self) -> usize {
        self.shape[1]
    }

    /// Ends the current row: the entries pushed onto `indices` and `data` since the last
    /// call belong to it.
    pub fn end_row(&mut self) {
        self.indptr.push(self.indices.len() as u64);
        self.shape[0] += 1;
    }

    /// Appends one row.
    pub fn push_row(&mut self, indices: &[u32], values: &[f64]) {
        self.indices.extend_from_slice(indices);
        self.data.extend_from_slice(values);
        self.end_row();
    }

    /// Column indices and values of row `i`.
    pub fn row(&self, i: usize) -> (&[u32], &[f64]) {
        let r = self.major_range(i);
        (&self.indices[r.clone()], &self.data[r])
    }

    /// The stored values minus `shift` of their column, in storage order.
    pub fn deviations(&self, shift: &[f64]) -> Vec<f64> {
        self.indices
            .iter()
            .zip(&self.data)
            .map(|(&j, &v)| v - shift[j as usize])
            .collect()
    }

    /// Splits each row's entries by column tiles of `width`: returns the number of tiles and
    /// bounds in which row i's entries in tile t are `bounds[i * (tiles + 1) + t ..][..2]`.
    pub fn tile_bounds(&self, width: usize) -> (usize, Vec<usize>) {
        let tiles = self.n_cols().div_ceil(width).max(1);
        let mut bounds = Vec::with_capacity(self.n_rows() * (tiles + 1));
        for i in 0..self.n_rows() {
            let r = self.major_range(i);
            let idx = &self.indices[r.clone()];
            for t in 0..tiles {
                bounds.push(r.start + idx.partition_point(|&j| (j as usize) < t * width));
            }
            bounds.push(r.end);
        }
        (tiles, bounds)
    }

    /// The columns in `sel`, renumbered.
    pub fn select_cols(&self, sel: &AxisSelection) -> Csr {
        // A plain u32 map (u32::MAX = dropped) keeps this hot loop's lookups to 4 bytes.
        let mut map = vec![u32::MAX; self.n_cols()];
        for (new, old) in sel.indices().enumerate() {
            map[old] = new as u32;
        }
        let mut out = Csr::with_cols(sel.len());
        out.indptr.reserve(self.n_rows());
        for i in 0..self.n_rows() {
            let (idx, val) = self.row(i);
            for (&j, &v) in idx.iter().zip(val) {
                let n = map[j as usize];
                if n != u32::MAX {
                    out.indices.push(n);
                    out.data.push(v);
                }
            }
            out.end_row();
        }
        out
    }

    /// The rows at `positions`, in that order.
    pub fn select_rows(&self, positions: &[usize]) -> Csr {
        let mut out = Csr::with_cols(self.n_cols());
        out.indptr.reserve(positions.len());
        for &p in positions {
            let (idx, val) = self.row(p);
            out.push_row(idx, val);
        }
        out
    }

    /// Rows stacked in order.
    pub fn vstack(parts: &[Csr], n_cols: usize) -> Csr {
        let mut out = Csr::with_cols(n_cols);
        for p in parts {
            let base = out.indices.len() as u64;
            out.indices.extend_from_slice(&p.indices);
            out.data.extend_from_slice(&p.data);
            out.indptr.extend(p.indptr[1..].iter().map(|&o| o + base));
            out.shape[0] += p.n_rows();
        }
        out
    }

    /// The dense matrix, absent entries set to `fill[j]` (or 0).
    pub fn to_dense(&self, fill: Option<&[f64]>) -> Array2<f64> {
        let (n, d) = (self.n_rows(), self.n_cols());
        let mut x = match fill {
            Some(f) => Array2::from_shape_fn((n, d), |(_, j)| f[j]),
            None => Array2::zeros((n, d)),
        };
        for i in 0..n {
            let (idx, val) = self.row(i);
            for (&j, &v) in idx.iter().zip(val) {
                x[[i, j as usize]] = v;
            }
        }
        x
    }

    /// Applies `f` to every stored value.
    pub fn map_values(&mut self, f: impl Fn(f64) -> f64) {
        self.data.iter_mut().for_each(|v| *v = f(*v));
    }

    /// Multiplies row `i` by `factors[i]`.
    pub fn scale_rows(&mut self, factors: &[f64]) {
        for (i, &f) in factors.iter().enumerate() {
            let r = self.major_range(i);
            self.data[r].iter_mut().for_each(|v| *v *= f);
        }
    }

    /// Per row: the sum of stored values and the number of non-zero ones.
    pub fn row_sums_nnz(&self) -> (Vec<f64>, Vec<u64>) {
        (0..self.n_rows())
            .map(|i| {
                let (_, v) = self.row(i);
                (
                    v.iter().sum::<f64>(),
                    v.iter().filter(|x| **x != 0.0).count() as u64,
                )
            })
            .unzip()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Axis, arr2};

    fn block() -> Csr {
        Csr::from_rows(
            4,
            &[
                vec![(0, 1.0), (2, 3.0)],
                vec![],
                vec![(1, 2.0), (2, 1.0), (3, 5.0)],
                vec![(3, 1.0)],
            ],
        )
    }

    #[test]
    fn rows_build_the_pictured_matrix_and_keep_the_invariants() {
        let x = block();
        assert_eq!(x.shape, [4, 4]);
        assert_eq!(x.indptr, vec![0, 2, 2, 5, 6]);
        assert_eq!(
            x.to_dense(None),
            arr2(&[
                [1.0, 0., 3., 0.],
                [0., 0., 0., 0.],
                [0., 2., 1., 5.],
                [0., 0., 0., 1.]
            ])
        );
        let stored = x.to_stored(|v| DynArray::F64(ndarray::arr1(v).into_dyn()));
        assert!(stored.validate().is_ok());
        assert_eq!(Csr::from_stored(stored).unwrap(), x);
    }

    #[test]
    fn selections_and_stacking_match_the_dense_ones() {
        let x = block();
        let dense = x.to_dense(None);
        let cols = x.select_cols(&AxisSelection::from_indices(&[2, 3]));
        assert_eq!(cols.shape, [4, 2]);
        assert_eq!(cols.to_dense(None), dense.select(Axis(1), &[2, 3]));
        let rows = x.select_rows(&[2, 0]);
        assert_eq!(rows.shape, [2, 4]);
        assert_eq!(rows.to_dense(None), dense.select(Axis(0), &[2, 0]));
        let stacked = Csr::vstack(&[x.select_rows(&[0, 1]), x.select_rows(&[2, 3])], 4);
        assert_eq!(stacked, x);
    }

    #[test]
    fn tile_bounds_split_each_row_by_column() {
        let x = block();
        let (tiles, b) = x.tile_bounds(2);
        assert_eq!(tiles, 2);
        // Row 2 holds columns 1 | 2, 3: entries 2..3 in tile 0, 3..5 in tile 1.
        assert_eq!(&b[2 * 3..3 * 3], &[2, 3, 5]);
    }

    #[test]
    fn from_stored_refuses_csc() {
        let x = block().to_stored(|v| DynArray::F64(ndarray::arr1(v).into_dyn()));
        assert!(Csr::from_stored(x.transpose_format()).is_err());
    }
}
