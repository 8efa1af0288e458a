//! Blocks as NumPy: a dense block becomes an array that owns our buffer; a sparse one the
//! `(format, data, indices, indptr, shape)` parts scipy builds its matrix from, in the index
//! dtype scipy would choose (int32 while it holds every index and offset).

use numpy::{IntoPyArray, PyArray1};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// A dense array of any numeric or boolean element type, moved into NumPy.
pub(crate) fn dense<'py>(py: Python<'py>, a: engine::DynArray) -> PyResult<Bound<'py, PyAny>> {
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

/// A block: a NumPy array when dense, scipy's parts when sparse.
pub(crate) fn block<'py>(py: Python<'py>, b: engine::Block) -> PyResult<Bound<'py, PyAny>> {
    match b {
        engine::Block::Dense(a) => dense(py, a),
        engine::Block::Sparse(c) => {
            let format = match c.format {
                engine::SparseFormat::Csr => "csr",
                engine::SparseFormat::Csc => "csc",
            };
            let shape = (c.shape[0], c.shape[1]);
            let nnz = c.indptr.last().copied().unwrap_or(0);
            let max_index = c.indices.iter().copied().max().unwrap_or(0);
            let small = nnz <= i32::MAX as u64 && max_index <= i32::MAX as u32;
            let (indices, indptr): (Bound<'py, PyAny>, Bound<'py, PyAny>) = if small {
                (
                    PyArray1::from_vec(py, c.indices.into_iter().map(|i| i as i32).collect())
                        .into_any(),
                    PyArray1::from_vec(py, c.indptr.into_iter().map(|i| i as i32).collect())
                        .into_any(),
                )
            } else {
                (
                    PyArray1::from_vec(py, c.indices.into_iter().map(i64::from).collect())
                        .into_any(),
                    PyArray1::from_vec(py, c.indptr.into_iter().map(|i| i as i64).collect())
                        .into_any(),
                )
            };
            let data = dense(py, c.data)?;
            Ok(PyTuple::new(
                py,
                [
                    format.into_pyobject(py)?.into_any(),
                    data,
                    indices,
                    indptr,
                    shape.into_pyobject(py)?.into_any(),
                ],
            )?
            .into_any())
        }
    }
}
