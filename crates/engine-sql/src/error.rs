//! DataFusion errors as the engine reports them: the user's SQL mistakes become usage errors
//! that point into the query text (`<query>:LINE:COL: error: …` with the line and a caret);
//! errors our own table reads raise keep their fault class.

use datafusion::error::DataFusionError;
use engine_common::Error;

/// `(line, column)` from DataFusion's "… at Line: L, Column: C" messages, or from its
/// diagnostic span.
fn position(e: &DataFusionError) -> Option<(usize, usize)> {
    if let Some(d) = e.diagnostic()
        && let Some(span) = d.span
    {
        return Some((span.start.line as usize, span.start.column as usize));
    }
    let text = e.to_string();
    let at = text.rfind("Line: ")?;
    let rest = &text[at + 6..];
    let (line, rest) = rest.split_once(", Column: ")?;
    let col: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    Some((line.trim().parse().ok()?, col.parse().ok()?))
}

/// Converts an error from planning or running `sql`.
pub fn sql_error(sql: &str, e: &DataFusionError) -> Error {
    // Errors we raised inside a table scan come back wrapped; unwrap them.
    if let DataFusionError::External(inner) = e.find_root()
        && let Some(ours) = inner.downcast_ref::<Error>()
    {
        return match ours {
            Error::Usage(m) => Error::usage(m.clone()),
            Error::Step { step, message } => Error::step(step.clone(), message.clone()),
            Error::Internal(m) => Error::internal(m.clone()),
            Error::Resources(m) => Error::Resources(m.clone()),
            Error::Data(m) => Error::data(m.clone()),
            Error::Format { location, message } => Error::format(location.clone(), message.clone()),
            Error::Unsupported { location, what } => {
                Error::unsupported(location.clone(), what.clone())
            }
            Error::Io { location, message } => Error::io(location.clone(), message),
        };
    }
    let message = match e.find_root() {
        DataFusionError::SQL(p, _) => p.to_string(),
        DataFusionError::Plan(m) | DataFusionError::Execution(m) if !m.is_empty() => m.clone(),
        other => other.to_string(),
    };
    let message = message
        .trim_start_matches("sql parser error: ")
        .trim_start_matches("Error during planning: ")
        .to_string();
    // A query that ends too early: point just past its end.
    let eof = || {
        message.contains("found: EOF").then(|| {
            let lines: Vec<&str> = sql.lines().collect();
            (lines.len().max(1), lines.last().map_or(0, |l| l.len()) + 1)
        })
    };
    match position(e).or_else(eof) {
        Some((line, col)) if line >= 1 => {
            let text = sql.lines().nth(line - 1).unwrap_or("");
            Error::usage(format!(
                "<query>:{line}:{col}: error: {message}\n  | {text}\n  | {}^",
                " ".repeat(col.saturating_sub(1))
            ))
        }
        _ => Error::usage(format!("<query>: error: {message}")),
    }
}
