//! In-memory matrix blocks and the kernels that work on them.
//!
//! A block is what a storage reader hands to an operator: a dense n-d array typed at run time
//! ([`DynArray`]) or a compressed sparse matrix ([`Compressed`]); kernels compute on float64
//! rows ([`Csr`], the same structure with float64 values). Selections along an axis are
//! sorted runs ([`AxisSelection`]). This crate knows nothing of files or plans.

pub mod csr;
pub mod dtype;
pub mod selection;
pub mod sparse;

pub use dtype::{DType, DynArray};

/// A block whose shape or layout an operation cannot take (reshaping to another size,
/// concatenating different element types, a compressed matrix whose pointers do not fit its
/// indices). This crate knows no files: the store turns it into a format error at the
/// element it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutError(String);

impl LayoutError {
    pub fn new(message: impl Into<String>) -> LayoutError {
        LayoutError(message.into())
    }
}

impl std::fmt::Display for LayoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LayoutError {}
pub use csr::Csr;
pub use selection::AxisSelection;
pub use sparse::{Compressed, SparseFormat, concat_axis, select_axis, take_1d};

/// A 2-D block of a matrix element, dense or sparse.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Dense(DynArray),
    Sparse(Compressed),
}

impl Block {
    /// `[rows, cols]` (for dense n-d arrays, the first two dimensions).
    pub fn shape(&self) -> Vec<usize> {
        match self {
            Block::Dense(a) => a.shape().to_vec(),
            Block::Sparse(c) => c.shape.to_vec(),
        }
    }

    pub fn dtype(&self) -> DType {
        match self {
            Block::Dense(a) => a.dtype(),
            Block::Sparse(c) => c.data.dtype(),
        }
    }

    /// The block as a dense array.
    pub fn to_dense(&self) -> DynArray {
        match self {
            Block::Dense(a) => a.clone(),
            Block::Sparse(c) => c.to_dense(),
        }
    }

    /// Selects rows and columns of a 2-D block (dense arrays: the first two axes).
    pub fn select(&self, rows: &AxisSelection, cols: &AxisSelection) -> Block {
        match self {
            Block::Dense(a) => {
                let a = if rows.is_full(a.shape()[0]) {
                    a.clone()
                } else {
                    select_axis(a, 0, rows)
                };
                let a = if a.shape().len() < 2 || cols.is_full(a.shape()[1]) {
                    a
                } else {
                    select_axis(&a, 1, cols)
                };
                Block::Dense(a)
            }
            Block::Sparse(c) => Block::Sparse(c.select(rows, cols)),
        }
    }
}
