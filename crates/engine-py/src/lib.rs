//! `engine._engine`: the engine's facade for Python. The `engine` package in `python/` wraps
//! it in an anndata-shaped API; this module only crosses the boundary:
//!
//! - every call that reads, plans or computes releases the GIL (`Python::detach`);
//! - errors become the exception classes of `engine.errors`, chosen by fault;
//! - tables leave as Arrow C streams, dense blocks as NumPy arrays that own our buffers, and
//!   sparse blocks as the NumPy parts of a scipy matrix.

mod arrays;
mod data;
mod errors;
mod loader;
mod pipeline;
mod tables;

use pyo3::prelude::*;

#[pymodule]
fn _engine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(pipeline::check, m)?)?;
    m.add_function(wrap_pyfunction!(pipeline::explain, m)?)?;
    m.add_function(wrap_pyfunction!(pipeline::run, m)?)?;
    m.add_function(wrap_pyfunction!(pipeline::run_task, m)?)?;
    m.add_function(wrap_pyfunction!(pipeline::merge_results, m)?)?;
    m.add_function(wrap_pyfunction!(tables::sql, m)?)?;
    m.add_class::<tables::ArrowStream>()?;
    m.add_class::<data::Dataset>()?;
    m.add_class::<loader::Batches>()?;
    Ok(())
}
