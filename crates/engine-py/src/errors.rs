//! Engine errors as Python exceptions. The classes live in `engine/errors.py`, so they can
//! derive from the builtin a Python user catches (`ValueError`, `OSError`, `MemoryError`).

use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The exception for an engine error, by fault; a pipeline's problems keep their places in
/// `diagnostics`.
pub(crate) fn to_py(e: engine::Error) -> PyErr {
    Python::attach(|py| build(py, e).unwrap_or_else(|err| err))
}

/// The same, for the engine's typed error.
pub(crate) fn engine_err(e: engine::EngineError) -> PyErr {
    to_py(engine::Error::Engine(e))
}

fn build(py: Python<'_>, e: engine::Error) -> PyResult<PyErr> {
    use engine::EngineError as E;
    let module = py.import("engine.errors")?;
    let (class, message) = match &e {
        engine::Error::Pipeline(d) => ("PipelineError", d.render()),
        engine::Error::Engine(inner) => (
            match inner {
                E::Usage(_) | E::Step { .. } => "UsageError",
                E::Format { .. } => "FormatError",
                E::Unsupported { .. } => "UnsupportedError",
                E::Io { .. } => "StorageError",
                E::Data(_) => "DataError",
                E::Resources(_) => "ResourceError",
                E::Internal(_) => "InternalError",
            },
            inner.to_string(),
        ),
    };
    let exc = module.getattr(class)?.call1((message,))?;
    if let engine::Error::Pipeline(d) = &e {
        let items = d
            .items
            .iter()
            .map(|i| {
                let item = PyDict::new(py);
                item.set_item("file", &d.file)?;
                item.set_item("line", i.span.line)?;
                item.set_item("column", i.span.col)?;
                item.set_item("message", &i.message)?;
                item.set_item("help", &i.help)?;
                Ok(item)
            })
            .collect::<PyResult<Vec<_>>>()?;
        exc.setattr("diagnostics", items)?;
    }
    Ok(PyErr::from_value(exc))
}
