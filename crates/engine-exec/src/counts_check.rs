//! Steps that expect raw counts (normalize_total, QC metrics, `seurat_v3` highly variable
//! genes) watch their pass for values that are not counts and warn once, as a careful user
//! would want: on log-normalised or scaled X their results mean something else.

use engine_matrix::Csr;
use engine_ops::stats::first_non_count;
use std::sync::Mutex;

/// The first value (by row) a pass saw that is not a count.
#[derive(Debug, Default)]
pub(crate) struct CountsCheck(Mutex<Option<(usize, f64)>>);

impl CountsCheck {
    /// Takes a pass's finding.
    pub fn merge(&self, found: Option<(usize, f64)>) {
        if let Some((row, v)) = found
            && let Ok(mut seen) = self.0.lock()
            && seen.is_none_or(|(r, _)| row < r)
        {
            *seen = Some((row, v));
        }
    }

    /// The warning for `op`, when a value was not a count.
    pub fn warning(self, op: &str) -> Option<String> {
        let (row, v) = self.0.into_inner().ok().flatten()?;
        Some(format!(
            "{op} expects counts, and its input X holds {v} (row {row}): is X already \
             normalised or scaled? Read the counts with `layer:` or place this step before \
             normalize_total and log1p"
        ))
    }
}

/// The first value of a block (whose first row is `first_row`) that is not a count, with its
/// row.
pub(crate) fn first_non_count_row(first_row: usize, x: &Csr) -> Option<(usize, f64)> {
    let i = first_non_count(&x.data)?;
    let row = first_row + x.indptr.partition_point(|&p| p as usize <= i) - 1;
    Some((row, x.data[i]))
}
