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

// The engine's allocations go to mimalloc, as in the CLI: glibc hands every freed
// multi-megabyte block back to the kernel and faults fresh pages in for the next one
// (a tenth of the loader's time went to page faults). Buffers moved into NumPy are freed
// through this allocator too (rust-numpy drops them as Rust values).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc v3's `mi_option_allow_thp`, by its place in `mi_option_t` (`mimalloc.h`).
const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;

#[pymodule]
fn _engine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // No transparent huge pages in our arenas (2 MiB pinned for a few live bytes showed as
    // peak memory in the CLI). The process's own setting is Python's, not ours to change.
    #[allow(unsafe_code)]
    // SAFETY: sets an integer option; mimalloc allows that at any time from any thread.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_ALLOW_THP, 0);
    }
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
