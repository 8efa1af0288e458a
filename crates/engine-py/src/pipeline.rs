//! `check`, `explain` and `run` of pipeline text, as the CLI does them.

use crate::errors::{engine_err, to_py};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

/// Parses pipeline text named `file` (for messages); SQL-like when `sql`.
fn load(
    file: &str,
    text: &str,
    sql: bool,
    params: &[(String, String)],
) -> PyResult<engine::Pipeline> {
    engine::Pipeline::from_text(file, text, sql, params).map_err(to_py)
}

fn options(
    memory_limit: Option<&str>,
    overwrite: bool,
    disabled_rules: Vec<String>,
) -> PyResult<engine::Options> {
    let mut o = engine::Options {
        overwrite,
        disabled_rules,
        ..engine::Options::default()
    };
    if let Some(m) = memory_limit {
        o.memory_limit = engine::parse_bytes(m).map_err(|msg| {
            engine_err(engine::EngineError::usage(format!("memory_limit: {msg}")))
        })?;
    }
    Ok(o)
}

/// Everything `run` would reject, without running.
#[pyfunction]
#[pyo3(signature = (file, text, sql, params, memory_limit=None, overwrite=false))]
pub(crate) fn check(
    py: Python<'_>,
    file: &str,
    text: &str,
    sql: bool,
    params: Vec<(String, String)>,
    memory_limit: Option<&str>,
    overwrite: bool,
) -> PyResult<()> {
    let opts = options(memory_limit, overwrite, Vec::new())?;
    let pipeline = load(file, text, sql, &params)?;
    py.detach(|| engine::check(&pipeline, &opts)).map_err(to_py)
}

/// The logical, optimized and physical plans as `engine explain` prints them.
#[pyfunction]
#[pyo3(signature = (file, text, sql, params, memory_limit=None, disabled_rules=Vec::new()))]
pub(crate) fn explain(
    py: Python<'_>,
    file: &str,
    text: &str,
    sql: bool,
    params: Vec<(String, String)>,
    memory_limit: Option<&str>,
    disabled_rules: Vec<String>,
) -> PyResult<String> {
    // Explaining writes nothing: existing outputs do not matter.
    let opts = options(memory_limit, true, disabled_rules)?;
    let pipeline = load(file, text, sql, &params)?;
    py.detach(|| engine::plan(&pipeline, &opts).map(|p| p.explain()))
        .map_err(to_py)
}

/// Passes handed to a Python callable `(lineage: bytes, tasks: list[bytes]) -> list[bytes]`
/// (engine/_dask.py's, over a dask client), called with the GIL taken back.
#[derive(Debug)]
struct PyDistributor {
    call: Py<PyAny>,
    tasks: usize,
}

impl engine::Distributor for PyDistributor {
    fn tasks(&self) -> usize {
        self.tasks
    }

    fn run(
        &self,
        lineage: &[u8],
        tasks: Vec<Vec<u8>>,
    ) -> Result<Vec<Vec<u8>>, engine::EngineError> {
        Python::attach(|py| {
            let tasks: Vec<Bound<'_, PyBytes>> =
                tasks.iter().map(|t| PyBytes::new(py, t)).collect();
            let out = self.call.call1(py, (PyBytes::new(py, lineage), tasks))?;
            out.extract::<Vec<Vec<u8>>>(py)
        })
        .map_err(|e| {
            engine::EngineError::Resources(format!("a pass on the dask cluster failed: {e}"))
        })
    }
}

/// Runs a pipeline; returns its outputs (`step`, `path`, `format`), stages and warnings.
/// With `distributor` (a callable and the tasks to cut a pass into), the passes that can
/// leave the process run through it.
#[pyfunction]
#[pyo3(signature = (file, text, sql, params, memory_limit=None, overwrite=false, disabled_rules=Vec::new(), distributor=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn run<'py>(
    py: Python<'py>,
    file: &str,
    text: &str,
    sql: bool,
    params: Vec<(String, String)>,
    memory_limit: Option<&str>,
    overwrite: bool,
    disabled_rules: Vec<String>,
    distributor: Option<(Py<PyAny>, usize)>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut opts = options(memory_limit, overwrite, disabled_rules)?;
    opts.distributor = distributor.map(|(call, tasks)| {
        std::sync::Arc::new(PyDistributor { call, tasks })
            as std::sync::Arc<dyn engine::Distributor>
    });
    let pipeline = load(file, text, sql, &params)?;
    let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    opts.cancel = Some(cancel.clone());
    let report = run_interruptibly(py, &cancel, || {
        let plans = engine::plan(&pipeline, &opts)?;
        engine::run(&plans, &opts)
    })?;
    let out = PyDict::new(py);
    let outputs = pipeline
        .spec()
        .outputs
        .iter()
        .map(|o| {
            let d = PyDict::new(py);
            d.set_item("step", &o.step)?;
            d.set_item("path", &o.path)?;
            d.set_item("format", &o.format)?;
            Ok(d)
        })
        .collect::<PyResult<Vec<_>>>()?;
    out.set_item("outputs", outputs)?;
    let stages = report
        .stages
        .iter()
        .map(|s| {
            let d = PyDict::new(py);
            d.set_item("name", &s.name)?;
            d.set_item("seconds", s.seconds)?;
            d.set_item("blocks", s.blocks)?;
            d.set_item("bytes", s.bytes)?;
            d.set_item("peak_rss_kib", s.peak_rss_kib)?;
            Ok(d)
        })
        .collect::<PyResult<Vec<_>>>()?;
    out.set_item("stages", stages)?;
    out.set_item("warnings", report.warnings)?;
    out.set_item("written", report.outputs)?;
    Ok(out)
}

/// Runs `work` on a thread while this one, the caller's, looks for Ctrl-C every 50 ms: a
/// KeyboardInterrupt sets `cancel`, the run stops at its next block and the interrupt is
/// raised once it has (the GIL is held only while looking).
fn run_interruptibly<T: Send>(
    py: Python<'_>,
    cancel: &std::sync::atomic::AtomicBool,
    work: impl FnOnce() -> Result<T, engine::Error> + Send,
) -> PyResult<T> {
    let mut interrupt = None;
    let out = py.detach(|| {
        std::thread::scope(|s| {
            let (tx, rx) = std::sync::mpsc::channel();
            let worker = s.spawn(move || {
                let out = work();
                let _ = tx.send(());
                out
            });
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                rx.recv_timeout(std::time::Duration::from_millis(50))
            {
                if interrupt.is_none()
                    && let Err(e) = Python::attach(|py| py.check_signals())
                {
                    cancel.store(true, std::sync::atomic::Ordering::Relaxed);
                    interrupt = Some(e);
                }
            }
            worker.join()
        })
    });
    if let Some(e) = interrupt {
        return Err(e);
    }
    match out {
        Ok(r) => r.map_err(to_py),
        Err(_) => Err(pyo3::exceptions::PyRuntimeError::new_err(
            "internal error: the run's thread panicked. This is a bug in engine, please report it",
        )),
    }
}

/// A worker's share of a pass: `lineage` and `task` as the driver's distributor sent them;
/// returns the task's result for the driver to merge.
#[pyfunction]
pub(crate) fn run_task<'py>(
    py: Python<'py>,
    lineage: &[u8],
    task: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let out = py
        .detach(|| engine::run_task(lineage, task))
        .map_err(engine_err)?;
    Ok(PyBytes::new(py, &out))
}

/// Joins two task results (`b` folded the later blocks): the cluster's tree-reduce.
#[pyfunction]
pub(crate) fn merge_results<'py>(
    py: Python<'py>,
    a: &[u8],
    b: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let out = py
        .detach(|| engine::merge_results(a, b))
        .map_err(engine_err)?;
    Ok(PyBytes::new(py, &out))
}
