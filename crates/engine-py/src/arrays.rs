//! Blocks as NumPy: a dense block becomes an array that owns our buffer; a sparse one the
//! `(format, data, indices, indptr, shape)` parts scipy builds its matrix from, in the index
//! dtype scipy would choose (int32 while it holds every index and offset).
//!
//! [`prepare`] does the index conversion without the GIL (on the loader's thread, or inside
//! a read's `detach`); [`to_python`] only hands the buffers over.

use numpy::{IntoPyArray, PyArray1};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// Index arrays in the dtype scipy takes as they are.
#[derive(Debug)]
pub(crate) enum Indices {
    I32(Vec<i32>, Vec<i32>),
    I64(Vec<i64>, Vec<i64>),
}

/// A block ready to cross into Python.
#[derive(Debug)]
pub(crate) enum Prepared {
    Dense(engine::DynArray),
    Sparse {
        format: &'static str,
        data: engine::DynArray,
        indices: Indices,
        shape: (usize, usize),
    },
}

/// Converts a block's indices for scipy (in place where the sizes allow).
pub(crate) fn prepare(b: engine::Block) -> Prepared {
    match b {
        engine::Block::Dense(a) => Prepared::Dense(a),
        engine::Block::Sparse(c) => {
            let (format, minor) = match c.format {
                engine::SparseFormat::Csr => ("csr", c.shape[1]),
                engine::SparseFormat::Csc => ("csc", c.shape[0]),
            };
            let nnz = c.indptr.last().copied().unwrap_or(0);
            let small = nnz <= i32::MAX as u64 && minor <= i32::MAX as usize;
            // u32 -> i32 keeps the allocation (same layout): no copy of the largest array.
            let indices = if small {
                Indices::I32(
                    c.indices.into_iter().map(|i| i as i32).collect(),
                    c.indptr.into_iter().map(|i| i as i32).collect(),
                )
            } else {
                Indices::I64(
                    c.indices.into_iter().map(i64::from).collect(),
                    c.indptr.into_iter().map(|i| i as i64).collect(),
                )
            };
            Prepared::Sparse {
                format,
                data: c.data,
                indices,
                shape: (c.shape[0], c.shape[1]),
            }
        }
    }
}

/// A dense array of any numeric or boolean element type, moved into NumPy.
fn dense<'py>(py: Python<'py>, a: engine::DynArray) -> PyResult<Bound<'py, PyAny>> {
    use engine::DynArray as D;
    Ok(match a {
        D::Bool(v) => v.into_pyarray(py).into_any(),
        D::I8(v) => v.into_pyarray(py).into_any(),
        D::I16(v) => v.into_pyarray(py).into_any(),
        D::I32(v) => v.into_pyarray(py).into_any(),
        D::I64(v) => v.into_pyarray(py).into_any(),
        D::U8(v) => v.into_pyarray(py).into_any(),
        D::U16(v) => v.into_pyarray(py).into_any(),
        D::U32(v) => v.into_pyarray(py).into_any(),
        D::U64(v) => v.into_pyarray(py).into_any(),
        D::F32(v) => v.into_pyarray(py).into_any(),
        D::F64(v) => v.into_pyarray(py).into_any(),
        D::Str(_) => {
            return Err(PyTypeError::new_err(
                "a matrix of strings cannot be handed to NumPy as numbers",
            ));
        }
    })
}

/// A prepared block: a NumPy array when dense, scipy's parts when sparse.
pub(crate) fn to_python(py: Python<'_>, b: Prepared) -> PyResult<Bound<'_, PyAny>> {
    match b {
        Prepared::Dense(a) => dense(py, a),
        Prepared::Sparse {
            format,
            data,
            indices,
            shape,
        } => {
            let (indices, indptr) = match indices {
                Indices::I32(i, p) => (
                    PyArray1::from_vec(py, i).into_any(),
                    PyArray1::from_vec(py, p).into_any(),
                ),
                Indices::I64(i, p) => (
                    PyArray1::from_vec(py, i).into_any(),
                    PyArray1::from_vec(py, p).into_any(),
                ),
            };
            Ok(PyTuple::new(
                py,
                [
                    format.into_pyobject(py)?.into_any(),
                    dense(py, data)?,
                    indices,
                    indptr,
                    shape.into_pyobject(py)?.into_any(),
                ],
            )?
            .into_any())
        }
    }
}
