//! One epoch of minibatches from a preshuffled collection, read on a thread of its own while
//! Python consumes them (engine-loader's `for_each_batch`, turned into an iterator).

use crate::arrays;
use crate::errors::engine_err;
use engine::EngineError;
use engine::loader::{Collection, LoaderOptions, for_each_batch};
use numpy::PyArray1;
use pyo3::prelude::*;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::mpsc;

/// Batches waiting for Python: a few are read ahead.
const AHEAD: usize = 4;

/// What the reader thread sends: a batch, the error that ended the epoch, or its end (so a
/// reader that dies without a word is told apart from an epoch that finished).
type Message = Result<Option<Ready>, EngineError>;

/// A batch converted for Python on the reader's thread, so the consumer only wraps buffers.
struct Ready {
    x: arrays::Prepared,
    index: Vec<i64>,
}

#[derive(Default)]
enum State {
    /// Opened and checked; the reading starts at the first batch asked for.
    Ready(Collection, LoaderOptions),
    Reading(mpsc::Receiver<Message>),
    #[default]
    Done,
}

#[pyclass(module = "engine._engine", frozen)]
pub(crate) struct Batches {
    state: Mutex<State>,
    #[pyo3(get)]
    n_obs: usize,
    #[pyo3(get)]
    n_vars: usize,
}

fn start(
    collection: Collection,
    options: LoaderOptions,
) -> Result<mpsc::Receiver<Message>, EngineError> {
    let (tx, rx) = mpsc::sync_channel(AHEAD);
    std::thread::Builder::new()
        .name("engine-loader".into())
        .spawn(move || {
            let sent = for_each_batch(&collection, &options, |b| {
                // A dropped iterator ends the epoch.
                let ready = Ready {
                    x: arrays::prepare(b.x),
                    index: b.index.iter().map(|&i| i as i64).collect(),
                };
                tx.send(Ok(Some(ready)))
                    .map_err(|_| EngineError::usage("the batches are no longer wanted"))
            });
            let _ = tx.send(sent.map(|()| None));
        })
        .map_err(|e| EngineError::Resources(format!("cannot start the loader's thread: {e}")))?;
    Ok(rx)
}

#[pymethods]
impl Batches {
    /// Opens the collection at `path` (metadata only) and checks annbatch's `Loader`
    /// arguments; nothing is read until the first batch is asked for.
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
        Ok(Batches {
            state: Mutex::new(State::Ready(collection, options)),
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
        // The lock is taken and the batch awaited off the GIL: a second thread asking at
        // the same time waits for the lock without holding the GIL the first one needs.
        let got = py.detach(|| -> Result<Option<Ready>, EngineError> {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if let State::Ready(..) = &*state
                && let State::Ready(c, o) = std::mem::take(&mut *state)
            {
                *state = State::Reading(start(c, o)?);
            }
            let State::Reading(rx) = &*state else {
                return Ok(None);
            };
            let got = match rx.recv() {
                Ok(m) => m,
                Err(mpsc::RecvError) => Err(EngineError::internal(
                    "the loader's reader thread stopped without finishing the epoch",
                )),
            };
            if !matches!(got, Ok(Some(_))) {
                *state = State::Done;
            }
            got
        });
        match got.map_err(engine_err)? {
            Some(batch) => Ok(Some((
                arrays::to_python(py, batch.x)?,
                PyArray1::from_vec(py, batch.index).into_any(),
            ))),
            None => Ok(None),
        }
    }
}
