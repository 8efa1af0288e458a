//! One epoch of minibatches from a preshuffled collection, read on a thread of its own while
//! Python consumes them (engine-loader's `for_each_batch`, turned into an iterator).

use crate::arrays;
use crate::errors::engine_err;
use engine::EngineError;
use engine::loader::{Batch, Collection, LoaderOptions, for_each_batch};
use numpy::PyArray1;
use pyo3::prelude::*;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::mpsc;

/// Batches waiting for Python: a few are read ahead.
const AHEAD: usize = 4;

#[pyclass(module = "engine._engine")]
pub(crate) struct Batches {
    rx: Mutex<Option<mpsc::Receiver<Result<Batch, EngineError>>>>,
    #[pyo3(get)]
    n_obs: usize,
    #[pyo3(get)]
    n_vars: usize,
}

#[pymethods]
impl Batches {
    /// Starts an epoch over the collection at `path`; annbatch's `Loader` arguments.
    #[new]
    #[pyo3(signature = (path, batch_size, chunk_size, preload_nchunks, shuffle, drop_last, seed))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        batch_size: usize,
        chunk_size: usize,
        preload_nchunks: usize,
        shuffle: bool,
        drop_last: bool,
        seed: u64,
    ) -> PyResult<Batches> {
        let options = LoaderOptions {
            batch_size,
            chunk_size,
            preload_nchunks,
            shuffle,
            drop_last,
            seed,
        };
        options.validate().map_err(engine_err)?;
        let collection = py.detach(|| Collection::open(&path)).map_err(engine_err)?;
        let (n_obs, n_vars) = (collection.n_obs(), collection.n_vars());
        let (tx, rx) = mpsc::sync_channel(AHEAD);
        std::thread::Builder::new()
            .name("engine-loader".into())
            .spawn(move || {
                let sent = for_each_batch(&collection, &options, |b| {
                    // A dropped iterator ends the epoch.
                    tx.send(Ok(b))
                        .map_err(|_| EngineError::usage("the batches are no longer wanted"))
                });
                if let Err(e) = sent {
                    let _ = tx.send(Err(e));
                }
            })
            .map_err(|e| {
                engine_err(EngineError::Resources(format!(
                    "cannot start the loader's thread: {e}"
                )))
            })?;
        Ok(Batches {
            rx: Mutex::new(Some(rx)),
            n_obs,
            n_vars,
        })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// `(X, positions)`: the batch's rows (NumPy, or scipy's parts) and their positions in
    /// the collection.
    fn __next__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<Option<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
        let mut guard = self.rx.lock().unwrap_or_else(|p| p.into_inner());
        let Some(rx) = guard.take() else {
            return Ok(None);
        };
        // The receiver waits off the GIL; it is put back while batches keep coming.
        let (rx, got) = py.detach(move || {
            let got = rx.recv();
            (rx, got)
        });
        match got {
            Ok(Ok(batch)) => {
                *guard = Some(rx);
                let index: Vec<i64> = batch.index.iter().map(|&i| i as i64).collect();
                Ok(Some((
                    arrays::block(py, batch.x)?,
                    PyArray1::from_vec(py, index).into_any(),
                )))
            }
            Ok(Err(e)) => Err(engine_err(e)),
            Err(mpsc::RecvError) => Ok(None),
        }
    }
}
