//! Shared vocabulary of the engine: the error type classified by who is at fault, and the
//! `Result` alias every library crate returns.
//!
//! Libraries never use `anyhow`: a caller must be able to tell a bad user selection from a
//! damaged file from an engine bug.

use std::fmt;
use std::path::{Path, PathBuf};

/// Result alias used across the engine's library crates.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where in a file or store a problem sits: the file, and the element path inside it
/// (`/X/indptr`, `obs/cell_type/codes`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    pub file: Option<PathBuf>,
    pub element: Option<String>,
}

impl Location {
    pub fn new(file: impl AsRef<Path>, element: impl Into<String>) -> Self {
        Self {
            file: Some(file.as_ref().to_path_buf()),
            element: Some(element.into()),
        }
    }
    pub fn file(file: impl AsRef<Path>) -> Self {
        Self {
            file: Some(file.as_ref().to_path_buf()),
            element: None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, &self.element) {
            (Some(file), Some(el)) => write!(f, "{}:{}", file.display(), el),
            (Some(file), None) => write!(f, "{}", file.display()),
            (None, Some(el)) => write!(f, "{el}"),
            (None, None) => write!(f, "<unknown>"),
        }
    }
}

/// Errors classified by fault, after DataFusion's `DataFusionError`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user asked for something impossible: a selection out of range, an unknown
    /// element, a bad option value.
    #[error("{0}")]
    Usage(String),
    /// A user mistake in one pipeline step that only planning finds (a missing input column,
    /// an index out of range): the CLI points at the step in the pipeline file.
    #[error("step `{step}`: {message}")]
    Step { step: String, message: String },
    /// A file or store does not follow the AnnData on-disk format, or is damaged.
    #[error("{location}: {message}")]
    Format { location: Location, message: String },
    /// The file uses an encoding this engine does not read (yet).
    #[error("{location}: unsupported {what}")]
    Unsupported { location: Location, what: String },
    /// The operating system or a storage library failed.
    #[error("{location}: {message}")]
    Io { location: Location, message: String },
    /// The values cannot be computed with: NaN or infinite entries where a step needs
    /// numbers, statistics without a solution (bins that are not distinct, a trend that
    /// cannot be fitted).
    #[error("{0}")]
    Data(String),
    /// A memory or resource limit was hit.
    #[error("resources exhausted: {0}")]
    Resources(String),
    /// A broken invariant inside the engine: a bug.
    #[error("internal error: {0}. This is a bug in engine, please report it")]
    Internal(String),
}

impl Error {
    pub fn format(location: Location, message: impl Into<String>) -> Self {
        Error::Format {
            location,
            message: message.into(),
        }
    }
    pub fn io(location: Location, message: impl fmt::Display) -> Self {
        Error::Io {
            location,
            message: message.to_string(),
        }
    }
    pub fn unsupported(location: Location, what: impl Into<String>) -> Self {
        Error::Unsupported {
            location,
            what: what.into(),
        }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage(message.into())
    }
    pub fn step(step: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Step {
            step: step.into(),
            message: message.into(),
        }
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal(message.into())
    }
    pub fn data(message: impl Into<String>) -> Self {
        Error::Data(message.into())
    }

    /// Names the pipeline step a user or data error arose in (`step `pcs`: …`); other
    /// faults name their own file and element.
    pub fn in_step(self, step: &str) -> Self {
        match self {
            Error::Usage(m) => Error::Usage(format!("step `{step}`: {m}")),
            Error::Data(m) => Error::Data(format!("step `{step}`: {m}")),
            other => other,
        }
    }

    /// Fills in the file of a location-carrying error that was raised without one.
    pub fn in_file(mut self, file: &Path) -> Self {
        if let Error::Format { location, .. }
        | Error::Unsupported { location, .. }
        | Error::Io { location, .. } = &mut self
            && location.file.is_none()
        {
            location.file = Some(file.to_path_buf());
        }
        self
    }

    /// Names `to` wherever the error names `from` (its location and its message): errors
    /// raised while writing a temporary file speak of the target the user asked for.
    pub fn with_path_replaced(mut self, from: &Path, to: &Path) -> Self {
        let (f, t) = (from.display().to_string(), to.display().to_string());
        let fix = |s: &mut String| {
            if s.contains(&f) {
                *s = s.replace(&f, &t);
            }
        };
        match &mut self {
            Error::Format { location, message } | Error::Io { location, message } => {
                relocate(&mut location.file, from, to);
                fix(message);
            }
            Error::Unsupported { location, what } => {
                relocate(&mut location.file, from, to);
                fix(what);
            }
            Error::Usage(m) | Error::Data(m) | Error::Resources(m) | Error::Internal(m) => fix(m),
            Error::Step { message, .. } => fix(message),
        }
        self
    }

    /// Whether the user's input is at fault (a mistake in the pipeline, the arguments or a
    /// step), as opposed to the data, the machine or a bug.
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::Usage(_) | Error::Step { .. })
    }

    /// A short name of the fault class, for exit codes and JSON reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Usage(_) | Error::Step { .. } => "usage",
            Error::Format { .. } => "format",
            Error::Unsupported { .. } => "unsupported",
            Error::Io { .. } => "io",
            Error::Data(_) => "data",
            Error::Resources(_) => "resources",
            Error::Internal(_) => "internal",
        }
    }
}

/// `file` under `to` instead of `from`, if it was under `from`.
fn relocate(file: &mut Option<PathBuf>, from: &Path, to: &Path) {
    if let Some(f) = file
        && let Ok(rest) = f.strip_prefix(from)
    {
        *f = if rest.as_os_str().is_empty() {
            to.to_path_buf()
        } else {
            to.join(rest)
        };
    }
}

/// Builds an [`Error::Format`] for an element path with `format!` arguments.
#[macro_export]
macro_rules! format_err {
    ($el:expr, $($arg:tt)*) => {
        $crate::Error::format($crate::Location { file: None, element: Some(($el).to_string()) }, format!($($arg)*))
    };
}

/// Builds an [`Error::Internal`] with `format!` arguments.
#[macro_export]
macro_rules! internal_err {
    ($($arg:tt)*) => { $crate::Error::internal(format!($($arg)*)) };
}

/// Parses a size: `512M`, `64MiB`, `1.5G`, `2GB`, `64k` or a byte count (units are powers of
/// 1024). Zero and sizes past 1 PiB are refused; the message says what is accepted.
///
/// # Errors
/// A message naming the text and the accepted forms.
pub fn parse_bytes(s: &str) -> std::result::Result<usize, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mul: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0f64.powi(4),
        _ => f64::NAN,
    };
    let bad = || {
        format!(
            "bad size `{s}`: use a number with K, M, G or T (powers of 1024), e.g. 512M, 1.5G, 64MiB"
        )
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    let bytes = n * mul;
    if !bytes.is_finite() {
        return Err(bad());
    }
    if bytes < 1.0 {
        return Err(format!("size `{s}` is zero"));
    }
    if bytes > 1024.0f64.powi(5) {
        return Err(format!("size `{s}` is past 1 PiB"));
    }
    Ok(bytes as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_error_names_file_and_element() {
        let e = format_err!("/X/indptr", "not monotonic at {}", 3).in_file(Path::new("a.h5ad"));
        assert_eq!(e.to_string(), "a.h5ad:/X/indptr: not monotonic at 3");
        assert_eq!(e.kind(), "format");
    }

    #[test]
    fn data_errors_name_their_step() {
        let e = Error::data("X holds NaN").in_step("pcs");
        assert_eq!(e.to_string(), "step `pcs`: X holds NaN");
        assert_eq!(e.kind(), "data");
        let io = Error::io(Location::file("a.h5ad"), "gone").in_step("pcs");
        assert_eq!(io.to_string(), "a.h5ad: gone");
    }

    #[test]
    fn temporary_paths_become_the_target() {
        let e = Error::io(
            Location::new("out/.tmp-1-2-x.h5ad", "/obs"),
            "write to './out/.tmp-1-2-x.h5ad' failed",
        )
        .with_path_replaced(Path::new("out/.tmp-1-2-x.h5ad"), Path::new("out/x.h5ad"));
        assert_eq!(
            e.to_string(),
            "out/x.h5ad:/obs: write to './out/x.h5ad' failed"
        );
    }

    #[test]
    fn internal_error_says_it_is_a_bug() {
        let e = internal_err!("shape mismatch");
        assert!(e.to_string().contains("This is a bug"));
    }
}
