//! Tables for pyarrow through the Arrow C stream interface (`__arrow_c_stream__`): the
//! batches' buffers are handed over, not copied.

use crate::errors::engine_err;
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{RecordBatch, RecordBatchIterator};
use arrow_schema::SchemaRef;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use std::path::Path;

/// Record batches waiting to be taken once by an Arrow consumer
/// (`pyarrow.RecordBatchReader.from_stream`, `pyarrow.table`, polars, DuckDB).
#[pyclass(module = "engine._engine")]
pub(crate) struct ArrowStream {
    batches: Option<(SchemaRef, Vec<RecordBatch>)>,
}

impl ArrowStream {
    pub(crate) fn new(schema: SchemaRef, batches: Vec<RecordBatch>) -> ArrowStream {
        ArrowStream {
            batches: Some((schema, batches)),
        }
    }
}

#[pymethods]
impl ArrowStream {
    /// The Arrow PyCapsule protocol; a requested schema is not honoured (the consumer casts).
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &mut self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let (schema, batches) = self
            .batches
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("this Arrow stream was already consumed"))?;
        let reader = RecordBatchIterator::new(batches.into_iter().map(Ok), schema);
        let stream = FFI_ArrowArrayStream::new(Box::new(reader));
        PyCapsule::new_with_value(py, stream, c"arrow_array_stream")
    }
}

/// Runs a read-only SQL query over obs/var of the datasets `data` (`(name, path)`; a `None`
/// name is the file stem), as `engine sql` does.
#[pyfunction]
pub(crate) fn sql(
    py: Python<'_>,
    query: &str,
    data: Vec<(Option<String>, String)>,
) -> PyResult<ArrowStream> {
    let (schema, batches) = py
        .detach(|| {
            let mut session = engine::SqlSession::new();
            for (name, path) in &data {
                session.add(name.as_deref(), Path::new(path))?;
            }
            session.query(query)
        })
        .map_err(engine_err)?;
    Ok(ArrowStream::new(schema, batches))
}
