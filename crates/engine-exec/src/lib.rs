//! The streaming executor: lowers a logical plan into passes over X and runs them.
//!
//! X is never materialised. Each node's X is a *lineage*: the scan plus the elementwise maps
//! applied since (e.g. standardisation). A pass streams row blocks of a lineage through a
//! fold with an associative merge (statistics, Gram) or a per-block map (projection, writer),
//! on all cores via rayon; each worker holds one block, so memory is bounded by
//! `threads × block size` whatever the number of rows. Everything between passes is small
//! (statistics, loadings, embeddings, graphs).

mod lineage;
mod run;

pub use run::{ExecOptions, RunReport, StageReport, peak_rss_kib, physical_plan, run};
