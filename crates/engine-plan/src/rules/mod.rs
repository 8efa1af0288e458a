//! Optimizer rules, one file each, applied in this order:
//!
//! 1. `push_down_selection` — views become scan selections, so later rules see the real reads.
//! 2. `prune_elements` — scans read only the obs columns used downstream.
//! 3. `fuse_elementwise` — chains of row, column and element maps run as one kernel per block.
//! 4. `merge_passes` — scale's statistics and PCA's Gram matrix share one pass.
//! 5. `align_chunks` — pass blocks follow storage chunks.

pub mod align_chunks;
pub mod fuse_elementwise;
pub mod merge_passes;
pub mod prune_elements;
pub mod push_down_selection;

use crate::plan::LogicalPlan;
use engine_common::{Error, Result};

/// A rule rewrites a plan in place and says whether it changed anything.
pub type Rule = fn(&mut LogicalPlan) -> bool;

/// Rules by name, in order.
pub const RULES: &[(&str, Rule)] = &[
    (push_down_selection::NAME, push_down_selection::apply),
    (prune_elements::NAME, prune_elements::apply),
    (fuse_elementwise::NAME, fuse_elementwise::apply),
    (merge_passes::NAME, merge_passes::apply),
    (align_chunks::NAME, align_chunks::apply),
];

/// Runs every enabled rule once, checking after each that every node's schema is unchanged
/// (rules may only change how values are computed, never what they are).
///
/// # Errors
/// When a rule is unknown (a usage error) or changed a schema (a bug in that rule).
pub fn optimize(
    plan: &LogicalPlan,
    disabled: &[String],
) -> Result<(LogicalPlan, Vec<&'static str>)> {
    if let Some(d) = disabled.iter().find(|d| !RULES.iter().any(|(n, _)| n == d)) {
        return Err(Error::usage(format!(
            "unknown optimizer rule `{d}`; the rules are {}",
            RULES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
        )));
    }
    let mut p = plan.clone();
    let mut applied = Vec::new();
    for (name, rule) in RULES {
        if disabled.iter().any(|d| d == name) {
            continue;
        }
        let before: Vec<_> = p.nodes.iter().map(|n| n.schema.clone()).collect();
        if rule(&mut p) {
            applied.push(*name);
        }
        let after: Vec<_> = p.nodes.iter().map(|n| n.schema.clone()).collect();
        if before != after {
            return Err(Error::internal(format!(
                "optimizer rule `{name}` changed a schema"
            )));
        }
    }
    Ok((p, applied))
}
