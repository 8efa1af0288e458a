//! Compressed sparse blocks (CSR and CSC) with run-time typed values.
//!
//! ```text
//! CSR, 3 x 4:            indptr  [0, 2, 2, 3]
//!   [1 0 2 0]            indices [0, 2, 1]
//!   [0 0 0 0]            data    [1, 2, 3]
//!   [0 3 0 0]
//! ```
//! Row `i`'s entries are `data[indptr[i]..indptr[i+1]]` at columns `indices[...]`; CSC is the
//! same with rows and columns swapped. Indices are `u32`: no AnnData axis has 2^32 entries.

use crate::LayoutError;
use crate::dtype::DynArray;
use crate::selection::AxisSelection;
use crate::{DType, dyn_rewrap};
use ndarray::{Array1, ArrayD, Axis, IxDyn};

/// Which axis the compression runs along.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SparseFormat {
    /// Compressed rows (`csr_matrix`).
    Csr,
    /// Compressed columns (`csc_matrix`).
    Csc,
}

impl SparseFormat {
    pub fn encoding(self) -> &'static str {
        match self {
            SparseFormat::Csr => "csr_matrix",
            SparseFormat::Csc => "csc_matrix",
        }
    }
}

/// A CSR or CSC matrix block. The values are a run-time typed array as files store them
/// (`Compressed<DynArray>`, the default) or float64 rows as kernels compute on them ([`Csr`]);
/// the structure and its invariants are the same for both.
#[derive(Debug, Clone, PartialEq)]
pub struct Compressed<V = DynArray> {
    pub format: SparseFormat,
    /// `[n_rows, n_cols]`.
    pub shape: [usize; 2],
    /// Length `n_major + 1`.
    pub indptr: Vec<u64>,
    /// Minor-axis index of each stored value.
    pub indices: Vec<u32>,
    /// Stored values, 1-D.
    pub data: V,
}

impl<V> Compressed<V> {
    /// Length of the compressed (major) axis.
    pub fn n_major(&self) -> usize {
        match self.format {
            SparseFormat::Csr => self.shape[0],
            SparseFormat::Csc => self.shape[1],
        }
    }

    pub fn n_minor(&self) -> usize {
        match self.format {
            SparseFormat::Csr => self.shape[1],
            SparseFormat::Csc => self.shape[0],
        }
    }

    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Stored positions of major slice `i` (row `i` of a CSR).
    pub fn major_range(&self, i: usize) -> std::ops::Range<usize> {
        self.indptr[i] as usize..self.indptr[i + 1] as usize
    }
}

impl Compressed {
    /// An all-zero matrix of the given shape.
    pub fn empty(format: SparseFormat, shape: [usize; 2], dtype: DType) -> Self {
        let n_major = if format == SparseFormat::Csr {
            shape[0]
        } else {
            shape[1]
        };
        Self {
            format,
            shape,
            indptr: vec![0; n_major + 1],
            indices: vec![],
            data: DynArray::zeros(dtype, &[0]),
        }
    }

    /// Checks the structural invariants a file may violate.
    ///
    /// # Errors
    /// A sentence naming the first broken invariant.
    pub fn validate(&self) -> Result<(), LayoutError> {
        if self.indptr.len() != self.n_major() + 1 {
            return Err(LayoutError::new(format!(
                "indptr has length {}, expected {}",
                self.indptr.len(),
                self.n_major() + 1
            )));
        }
        if self.indptr[0] != 0 {
            return Err(LayoutError::new(format!(
                "indptr starts at {}, expected 0",
                self.indptr[0]
            )));
        }
        if let Some(i) = self.indptr.windows(2).position(|w| w[0] > w[1]) {
            return Err(LayoutError::new(format!(
                "indptr is not monotonic at position {}",
                i + 1
            )));
        }
        let last = *self.indptr.last().unwrap_or(&0) as usize;
        if last != self.indices.len() || last != self.data.len() {
            return Err(LayoutError::new(format!(
                "indptr ends at {last} but indices has {} and data {} entries",
                self.indices.len(),
                self.data.len()
            )));
        }
        let n_minor = self.n_minor();
        if let Some(p) = self.indices.iter().position(|&i| i as usize >= n_minor) {
            return Err(LayoutError::new(format!(
                "index {} at position {p} is out of range for axis of length {n_minor}",
                self.indices[p]
            )));
        }
        Ok(())
    }

    /// Selects major-axis slices (rows of a CSR, columns of a CSC) in order.
    pub fn select_major(&self, sel: &AxisSelection) -> Compressed {
        let mut indptr = Vec::with_capacity(sel.len() + 1);
        indptr.push(0u64);
        let mut take: Vec<usize> = Vec::new();
        for r in sel.runs() {
            let lo = self.indptr[r.start] as usize;
            let hi = self.indptr[r.end] as usize;
            for i in r.clone() {
                let n = self.indptr[i + 1] - self.indptr[i];
                indptr.push(indptr.last().copied().unwrap_or(0) + n);
            }
            take.extend(lo..hi);
        }
        let indices = take.iter().map(|&k| self.indices[k]).collect();
        let data = take_1d(&self.data, &take);
        let mut shape = self.shape;
        match self.format {
            SparseFormat::Csr => shape[0] = sel.len(),
            SparseFormat::Csc => shape[1] = sel.len(),
        }
        Compressed {
            format: self.format,
            shape,
            indptr,
            indices,
            data,
        }
    }

    /// Selects minor-axis entries (columns of a CSR), renumbering them.
    pub fn select_minor(&self, sel: &AxisSelection) -> Compressed {
        let map = sel.position_map(self.n_minor());
        let mut indptr = Vec::with_capacity(self.indptr.len());
        indptr.push(0u64);
        let mut take = Vec::new();
        let mut indices = Vec::new();
        for i in 0..self.n_major() {
            for k in self.indptr[i] as usize..self.indptr[i + 1] as usize {
                if let Some(p) = map[self.indices[k] as usize] {
                    take.push(k);
                    indices.push(p);
                }
            }
            indptr.push(indices.len() as u64);
        }
        let data = take_1d(&self.data, &take);
        let mut shape = self.shape;
        match self.format {
            SparseFormat::Csr => shape[1] = sel.len(),
            SparseFormat::Csc => shape[0] = sel.len(),
        }
        Compressed {
            format: self.format,
            shape,
            indptr,
            indices,
            data,
        }
    }

    /// Selects rows and columns.
    pub fn select(&self, rows: &AxisSelection, cols: &AxisSelection) -> Compressed {
        let (major, minor) = match self.format {
            SparseFormat::Csr => (rows, cols),
            SparseFormat::Csc => (cols, rows),
        };
        let m = if major.is_full(self.n_major()) {
            self.clone()
        } else {
            self.select_major(major)
        };
        if minor.is_full(self.n_minor()) {
            m
        } else {
            m.select_minor(minor)
        }
    }

    /// Converts to the other compression axis (CSR <-> CSC) with a counting sort.
    pub fn transpose_format(&self) -> Compressed {
        let n_minor = self.n_minor();
        let mut counts = vec![0u64; n_minor + 1];
        for &j in &self.indices {
            counts[j as usize + 1] += 1;
        }
        for j in 0..n_minor {
            counts[j + 1] += counts[j];
        }
        let indptr = counts.clone();
        let mut next = counts;
        let mut perm = vec![0usize; self.nnz()];
        let mut indices = vec![0u32; self.nnz()];
        for i in 0..self.n_major() {
            for k in self.indptr[i] as usize..self.indptr[i + 1] as usize {
                let j = self.indices[k] as usize;
                let dst = next[j] as usize;
                next[j] += 1;
                perm[dst] = k;
                indices[dst] = i as u32;
            }
        }
        let data = take_1d(&self.data, &perm);
        let format = match self.format {
            SparseFormat::Csr => SparseFormat::Csc,
            SparseFormat::Csc => SparseFormat::Csr,
        };
        Compressed {
            format,
            shape: self.shape,
            indptr,
            indices,
            data,
        }
    }

    /// Expands to a dense 2-D array of the same element type.
    pub fn to_dense(&self) -> DynArray {
        let shape = self.shape;
        let fmt = self.format;
        let indptr = &self.indptr;
        let indices = &self.indices;
        dyn_rewrap!(&self.data, d => {
            let mut out = ArrayD::from_elem(IxDyn(&shape), Default::default());
            for i in 0..indptr.len() - 1 {
                for k in indptr[i] as usize..indptr[i + 1] as usize {
                    let j = indices[k] as usize;
                    let (r, c) = if fmt == SparseFormat::Csr { (i, j) } else { (j, i) };
                    out[[r, c]] = d[k].clone();
                }
            }
            out
        })
    }

    /// Stacks blocks along the major axis (rows of CSR blocks).
    ///
    /// # Errors
    /// When formats, minor lengths or element types disagree.
    pub fn concat_major(blocks: &[Compressed]) -> Result<Compressed, LayoutError> {
        let first = blocks
            .first()
            .ok_or(LayoutError::new("no blocks to concatenate"))?;
        let mut indptr = vec![0u64];
        let mut indices = Vec::new();
        let mut parts = Vec::new();
        let mut n_major = 0;
        for b in blocks {
            if b.format != first.format
                || b.n_minor() != first.n_minor()
                || b.data.dtype() != first.data.dtype()
            {
                return Err(LayoutError::new(
                    "blocks differ in format, minor length or element type",
                ));
            }
            let base = *indptr.last().unwrap_or(&0);
            indptr.extend(b.indptr[1..].iter().map(|&p| p + base));
            indices.extend_from_slice(&b.indices);
            parts.push(&b.data);
            n_major += b.n_major();
        }
        let data = concat_1d(&parts)?;
        let shape = match first.format {
            SparseFormat::Csr => [n_major, first.shape[1]],
            SparseFormat::Csc => [first.shape[0], n_major],
        };
        Ok(Compressed {
            format: first.format,
            shape,
            indptr,
            indices,
            data,
        })
    }
}

/// Gathers `positions` from a 1-D array.
pub fn take_1d(a: &DynArray, positions: &[usize]) -> DynArray {
    dyn_rewrap!(a, v => {
        let v1 = v.view().into_dimensionality::<ndarray::Ix1>().expect("take_1d needs a 1-D array");
        Array1::from_iter(positions.iter().map(|&p| v1[p].clone())).into_dyn()
    })
}

/// Concatenates arrays along axis 0.
///
/// # Errors
/// When element types or trailing dimensions differ.
pub fn concat_1d(parts: &[&DynArray]) -> Result<DynArray, LayoutError> {
    concat_axis(parts, 0)
}

/// Concatenates n-d arrays of one element type along `axis`.
///
/// # Errors
/// When element types or the other dimensions differ.
pub fn concat_axis(parts: &[&DynArray], axis: usize) -> Result<DynArray, LayoutError> {
    let first = parts
        .first()
        .ok_or(LayoutError::new("nothing to concatenate"))?;
    macro_rules! cat {
        ($variant:ident) => {{
            let mut views = Vec::with_capacity(parts.len());
            for p in parts {
                match p {
                    DynArray::$variant(a) => views.push(a.view()),
                    other => {
                        return Err(LayoutError::new(format!(
                            "cannot concatenate {} with {}",
                            first.dtype(),
                            other.dtype()
                        )));
                    }
                }
            }
            DynArray::$variant(
                ndarray::concatenate(Axis(axis), &views)
                    .map_err(|e| LayoutError::new(e.to_string()))?,
            )
        }};
    }
    Ok(match first {
        DynArray::Bool(_) => cat!(Bool),
        DynArray::I8(_) => cat!(I8),
        DynArray::I16(_) => cat!(I16),
        DynArray::I32(_) => cat!(I32),
        DynArray::I64(_) => cat!(I64),
        DynArray::U8(_) => cat!(U8),
        DynArray::U16(_) => cat!(U16),
        DynArray::U32(_) => cat!(U32),
        DynArray::U64(_) => cat!(U64),
        DynArray::F32(_) => cat!(F32),
        DynArray::F64(_) => cat!(F64),
        DynArray::Str(_) => cat!(Str),
    })
}

/// Selects along `axis` of a dense array.
pub fn select_axis(a: &DynArray, axis: usize, sel: &AxisSelection) -> DynArray {
    let idx: Vec<usize> = sel.indices().collect();
    dyn_rewrap!(a, v => v.select(Axis(axis), &idx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::arr2;

    fn example() -> Compressed {
        Compressed {
            format: SparseFormat::Csr,
            shape: [3, 4],
            indptr: vec![0, 2, 2, 3],
            indices: vec![0, 2, 1],
            data: DynArray::F32(ndarray::arr1(&[1.0f32, 2.0, 3.0]).into_dyn()),
        }
    }

    #[test]
    fn dense_expansion_matches_picture() {
        let d = example().to_dense();
        assert_eq!(
            d,
            DynArray::F32(
                arr2(&[[1.0f32, 0., 2., 0.], [0., 0., 0., 0.], [0., 3., 0., 0.]]).into_dyn()
            )
        );
    }

    #[test]
    fn transpose_format_keeps_values() {
        let m = example();
        let t = m.transpose_format();
        assert_eq!(t.format, SparseFormat::Csc);
        assert_eq!(t.indptr, vec![0, 1, 2, 3, 3]);
        assert_eq!(t.to_dense(), m.to_dense());
        assert_eq!(t.transpose_format(), m);
    }

    #[test]
    fn select_matches_dense_selection() {
        let m = example();
        let rows = AxisSelection::from_indices(&[0, 2]);
        let cols = AxisSelection::from_indices(&[1, 2]);
        let s = m.select(&rows, &cols);
        let d = select_axis(&select_axis(&m.to_dense(), 0, &rows), 1, &cols);
        assert_eq!(s.to_dense(), d);
        assert!(s.validate().is_ok());
    }

    #[test]
    fn validate_catches_bad_structure() {
        let mut m = example();
        m.indptr = vec![0, 2, 1, 3];
        assert!(
            m.validate()
                .unwrap_err()
                .to_string()
                .contains("not monotonic")
        );
        let mut m = example();
        m.indices[2] = 9;
        assert!(
            m.validate()
                .unwrap_err()
                .to_string()
                .contains("out of range")
        );
    }

    #[test]
    fn concat_major_round_trips_split() {
        let m = example();
        let a = m.select_major(&AxisSelection::range(0..1));
        let b = m.select_major(&AxisSelection::range(1..3));
        assert_eq!(Compressed::concat_major(&[a, b]).unwrap(), m);
    }
}
