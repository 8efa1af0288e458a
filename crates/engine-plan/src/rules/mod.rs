//! Optimizer rules, one file each, applied in this order:
//!
//! 1. `fuse_elementwise` — first, so later rules see PCA reading the scan directly.
//!
//! (`push_down_selection`, `prune_elements`, `merge_passes` and `align_chunks` are the next
//! rules to land; today the physical planner merges the statistics passes itself.)

pub mod fuse_elementwise;

use crate::plan::LogicalPlan;
use engine_common::{Error, Result};

/// A rule rewrites a plan in place and says whether it changed anything.
pub type Rule = fn(&mut LogicalPlan) -> bool;

/// Rules by name, in order.
pub const RULES: &[(&str, Rule)] = &[(fuse_elementwise::NAME, fuse_elementwise::apply)];

/// Runs every enabled rule once, checking after each that every node's schema is unchanged
/// (rules may only change how values are computed, never what they are).
///
/// # Errors
/// When a rule changed a schema: a bug in that rule.
pub fn optimize(
    plan: &LogicalPlan,
    disabled: &[String],
) -> Result<(LogicalPlan, Vec<&'static str>)> {
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
