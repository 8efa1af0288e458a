//! The streaming executor: lowers an optimized logical plan into a physical plan, then runs
//! it.
//!
//! - [`lower`] makes every choice of how to run (block sizes, solvers, searches, formats)
//!   and gives a [`PhysicalPlan`] of nodes, one file each under `physical/`.
//! - [`PhysicalPlan::explain`] prints those nodes; [`PhysicalPlan::run`] executes them.
//!
//! X is never materialised. Each value's X is a *lineage* (`lineage.rs`): a source behind the
//! `BlockSource` trait (`source/`) with the scan's selection, then the elementwise maps
//! (`maps.rs`) and unpushed views applied since. A pass streams row blocks of a lineage
//! through a fold with an associative merge (statistics, Gram) or a per-block map
//! (projection, writer), on all cores via rayon (`pass.rs`); each worker holds one block, so
//! memory is bounded by `threads × block size` whatever the number of rows. Everything
//! between passes is small (statistics, loadings, embeddings, graphs).

mod annotations;
mod block;
mod context;
mod counts_check;
mod distribute;
mod execute;
mod lineage;
mod lower;
mod maps;
pub mod memory;
mod options;
mod order;
mod pass;
mod physical;
mod source;

pub use distribute::{Distributor, merge_results, run_task};
pub use lower::lower;
pub use options::{DEFAULT_MEMORY_LIMIT, ExecOptions, RunReport, StageReport, peak_rss_kib};
pub use physical::PhysicalPlan;

use engine_common::Result;
use engine_plan::LogicalPlan;

/// Lowers an optimized plan for `memory_limit` bytes of blocks in flight and runs it.
///
/// # Errors
/// When lowering rejects a step; on read/write failures or invalid data.
pub fn run(plan: &LogicalPlan, memory_limit: usize, opts: &ExecOptions) -> Result<RunReport> {
    lower(plan, memory_limit)?.run(opts)
}
