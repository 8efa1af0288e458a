//! The facade's error: a pipeline's mistakes with their places, or the engine's typed error.

use engine_spec::Diagnostics;
use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// Problems in a pipeline's text or in what its steps ask for, each at its place
    /// (`pipeline.yaml:12:7`); [`Diagnostics::render`] prints them with snippets.
    Pipeline(Diagnostics),
    /// Everything else, classified by fault.
    Engine(engine_common::Error),
}

impl Error {
    /// A user mistake (bad pipeline, bad argument), as opposed to bad data or a failure.
    pub fn is_usage(&self) -> bool {
        match self {
            Error::Pipeline(_) => true,
            Error::Engine(e) => e.is_usage(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Pipeline(d) => {
                let n = d.items.len();
                write!(
                    f,
                    "{n} problem{} in {}",
                    if n == 1 { "" } else { "s" },
                    d.file
                )
            }
            Error::Engine(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Pipeline(_) => None,
            Error::Engine(e) => Some(e),
        }
    }
}

impl From<engine_common::Error> for Error {
    fn from(e: engine_common::Error) -> Self {
        Error::Engine(e)
    }
}
