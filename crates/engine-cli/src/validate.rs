//! `engine validate`: every element read, every invariant anndata relies on checked.

use anyhow::Result;
use serde_json::json;
use std::path::Path;

/// The file has errors; the report printed them, so `main` only sets the exit status.
#[derive(Debug)]
pub(crate) struct Invalid;

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the file has errors")
    }
}

impl std::error::Error for Invalid {}

/// Prints the report; fails with [`Invalid`] when the file has errors.
pub(crate) fn validate(path: &Path, as_json: bool, block_bytes: usize) -> Result<()> {
    let report = engine::validate(path, block_bytes);
    let n_errors = report.errors().count();
    if as_json {
        let out = json!({
            "path": path.display().to_string(),
            "format": report.format.map(|f| f.name()),
            "n_obs": report.shape.map(|s| s.0),
            "n_vars": report.shape.map(|s| s.1),
            "valid": report.is_valid(),
            "elements_checked": report.elements,
            "problems": report.problems.iter().map(|p| json!({
                "severity": p.severity.name(), "element": p.element, "message": p.message,
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let what = match (report.format, report.shape) {
            (Some(f), Some((o, v))) => format!(" ({}, {o} obs × {v} var)", f.name()),
            (Some(f), None) => format!(" ({})", f.name()),
            _ => String::new(),
        };
        let n_warnings = report.problems.len() - n_errors;
        let verdict = if n_errors == 0 { "valid" } else { "INVALID" };
        println!(
            "{}{what}: {verdict}, {} elements checked, {n_errors} errors, {n_warnings} warnings",
            path.display(),
            report.elements
        );
        for p in &report.problems {
            println!("{:<8}{}: {}", p.severity.name(), p.element, p.message);
        }
    }
    if report.is_valid() {
        Ok(())
    } else {
        Err(Invalid.into())
    }
}
