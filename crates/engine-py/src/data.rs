//! A dataset opened lazily: its shape, element keys, obs/var as Arrow, and block reads of any
//! matrix element by row and column runs (what `engine.read(...)[rows, cols]` and dask's
//! chunks ask for).

use crate::arrays;
use crate::errors::engine_err;
use crate::tables::ArrowStream;
use engine::{AxisSelection, EngineError, Matrix};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

#[pyclass(module = "engine._engine", frozen)]
pub(crate) struct Dataset {
    ds: Arc<engine::Dataset>,
    /// Matrices opened so far, by element path: their metadata is read once.
    matrices: Mutex<HashMap<String, Matrix>>,
}

impl Dataset {
    fn matrix(&self, element: &str) -> Result<Matrix, EngineError> {
        let mut open = self.matrices.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = open.get(element) {
            return Ok(m.clone());
        }
        let m = self.ds.matrix(element)?;
        open.insert(element.to_string(), m.clone());
        Ok(m)
    }
}

/// Runs `[(start, stop), …]` on an axis of length `n` (all of it when `None`), checked.
fn selection(
    runs: Option<Vec<(usize, usize)>>,
    n: usize,
    axis: &str,
) -> Result<AxisSelection, EngineError> {
    let Some(runs) = runs else {
        return Ok(AxisSelection::all(n));
    };
    let runs: Vec<Range<usize>> = runs.into_iter().map(|(a, b)| a..b).collect();
    if let Some(r) = runs.iter().find(|r| r.start > r.end || r.end > n) {
        return Err(EngineError::usage(format!(
            "{axis} positions {}..{} are out of range for {n} {axis}",
            r.start, r.end
        )));
    }
    Ok(AxisSelection::from_runs(runs))
}

#[pymethods]
impl Dataset {
    /// Opens `path` (`.h5ad`, `.zarr`, 10x output, or a URL), reading metadata only.
    #[new]
    fn new(py: Python<'_>, path: &str) -> PyResult<Dataset> {
        let ds = py
            .detach(|| engine::Dataset::open(path))
            .map_err(engine_err)?;
        Ok(Dataset {
            ds: Arc::new(ds),
            matrices: Mutex::new(HashMap::new()),
        })
    }

    /// `(n_obs, n_vars)`.
    #[getter]
    fn shape(&self) -> (usize, usize) {
        (self.ds.n_obs(), self.ds.n_vars())
    }

    /// The element names under `group` (`obsm`, `layers`, `uns`, …).
    fn keys(&self, py: Python<'_>, group: &str) -> PyResult<Vec<String>> {
        py.detach(|| self.ds.keys(group)).map_err(engine_err)
    }

    /// Whether the element exists.
    fn has(&self, py: Python<'_>, element: &str) -> PyResult<bool> {
        py.detach(|| self.ds.has(element)).map_err(engine_err)
    }

    /// obs (`axis="obs"`) or var as one Arrow record batch, the index first.
    #[pyo3(signature = (axis, columns=None))]
    fn frame(
        &self,
        py: Python<'_>,
        axis: &str,
        columns: Option<Vec<String>>,
    ) -> PyResult<ArrowStream> {
        let batch = py
            .detach(|| {
                let frame = match axis {
                    "obs" => self.ds.obs(columns.as_deref()),
                    "var" => self.ds.var(columns.as_deref()),
                    other => Err(EngineError::usage(format!(
                        "no dataframe `{other}`: obs or var"
                    ))),
                }?;
                engine::frame_to_batch(&frame)
            })
            .map_err(engine_err)?;
        Ok(ArrowStream::new(batch.schema(), vec![batch]))
    }

    /// A matrix element's shape, dtype (NumPy's name), sparse format (`None` when dense),
    /// stored values and storage chunk shape.
    fn matrix_info<'py>(&self, py: Python<'py>, element: &str) -> PyResult<Bound<'py, PyDict>> {
        let (m, info) = py
            .detach(|| {
                let m = self.matrix(element)?;
                let info = m.value_info()?;
                Ok((m, info))
            })
            .map_err(engine_err)?;
        let d = PyDict::new(py);
        d.set_item("shape", m.shape())?;
        d.set_item("dtype", m.dtype().numpy_name())?;
        d.set_item(
            "format",
            m.sparse_format().map(|f| match f {
                engine::SparseFormat::Csr => "csr",
                engine::SparseFormat::Csc => "csc",
            }),
        )?;
        d.set_item("nnz", m.sparse_format().map(|_| m.nnz()))?;
        d.set_item("chunks", info.chunks)?;
        Ok(d)
    }

    /// Rows and columns of a matrix element, each given as sorted, disjoint `(start, stop)`
    /// runs (`None`: all); dense blocks come back as a NumPy array, sparse ones as scipy's
    /// parts.
    #[pyo3(signature = (element, rows=None, cols=None))]
    fn read<'py>(
        &self,
        py: Python<'py>,
        element: &str,
        rows: Option<Vec<(usize, usize)>>,
        cols: Option<Vec<(usize, usize)>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let block = py
            .detach(|| {
                let m = self.matrix(element)?;
                let rows = selection(rows, m.n_rows(), "row")?;
                let cols = selection(cols, m.n_cols(), "column")?;
                m.read_block(&rows, &cols).map(arrays::prepare)
            })
            .map_err(engine_err)?;
        arrays::to_python(py, block)
    }
}
