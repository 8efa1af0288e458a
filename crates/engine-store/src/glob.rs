//! Paths that name several datasets: a `*` or `?` in the last component (`runs/*.h5ad`),
//! matched against that directory's entries, sorted.

use engine_common::{Error, Result};
use std::path::{Path, PathBuf};

/// Whether a path names several files.
pub fn is_glob(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.contains('*') || n.contains('?'))
}

/// The entries a glob's last component matches in its directory, sorted.
///
/// # Errors
/// When the directory cannot be read or nothing matches.
pub fn expand(path: &Path) -> Result<Vec<PathBuf>> {
    let pattern = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let entries =
        std::fs::read_dir(&dir).map_err(|e| Error::usage(format!("{}: {e}", dir.display())))?;
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_str().is_some_and(|n| matches(pattern, n)))
        .map(|e| e.path())
        .collect();
    out.sort();
    if out.is_empty() {
        return Err(Error::usage(format!(
            "no dataset matches `{}`",
            path.display()
        )));
    }
    Ok(out)
}

/// Shell-style matching of `*` (any run) and `?` (one character) of a whole name.
pub fn matches(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    while i < p.len() && p[i] == '*' {
        i += 1;
    }
    i == p.len()
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs_match_whole_names() {
        assert!(matches("*.h5ad", "a.h5ad"));
        assert!(!matches("*.h5ad", "a.h5ad.tmp"));
        assert!(matches("run?_*", "run1_x.zarr"));
        assert!(!matches("run?_*", "run12_x.zarr"));
        assert!(matches("*", "anything"));
        assert!(matches("a*b*c", "aXbYbc"));
    }
}
