//! How to run a physical plan, and what the run reports.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Bytes a run may hold (results, scratch and X blocks; see [`crate::memory`]) unless the
/// caller says otherwise.
pub const DEFAULT_MEMORY_LIMIT: usize = 256 << 20;

/// How to run (what lowering decided is in the plan: block sizes follow the memory limit the
/// plan was lowered for).
#[derive(Debug, Clone)]
pub struct ExecOptions {
    pub overwrite: bool,
    /// Draw a progress bar on stderr for passes over X.
    pub progress: bool,
    /// Evaluates `where` predicates over columns computed in the pipeline.
    pub predicates: Arc<dyn engine_plan::Predicates>,
    /// Hands memory freed by the previous stage back to the system; called on every thread
    /// before each stage (the allocator is the binary's choice).
    pub release_memory: Option<fn()>,
    /// Recorded as `uns['engine']` in every output: what made it (version, pipeline, its
    /// hash and parameters).
    pub provenance: Option<engine_store::Value>,
    /// Runs the passes that can leave the process on other processes (a dask cluster);
    /// `None` runs everything here.
    pub distributor: Option<Arc<dyn crate::Distributor>>,
    /// Set by another thread to stop the run at the next block or stage (the Python
    /// package's Ctrl-C); the run then fails and writes nothing.
    pub cancel: Option<Arc<AtomicBool>>,
}

/// Fails when `cancel` is set.
pub(crate) fn check_cancel(cancel: Option<&Arc<AtomicBool>>) -> engine_common::Result<()> {
    if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
        return Err(engine_common::Error::Resources(
            "interrupted: the run was stopped before it finished, and wrote nothing".into(),
        ));
    }
    Ok(())
}

impl ExecOptions {
    /// Returns freed memory to the system on every thread, so scratch just dropped does not
    /// count in what comes next.
    pub(crate) fn release_freed(&self) {
        if let Some(release) = self.release_memory {
            release();
            rayon::broadcast(|_| release());
        }
    }
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            overwrite: true,
            progress: false,
            predicates: Arc::new(engine_plan::NoPredicates),
            release_memory: None,
            provenance: None,
            distributor: None,
            cancel: None,
        }
    }
}

/// What one stage did.
#[derive(Debug, Clone)]
pub struct StageReport {
    pub name: String,
    pub seconds: f64,
    pub blocks: usize,
    /// Bytes of matrix data decoded from storage (values, indices and row pointers).
    pub bytes: u64,
    /// The process's peak resident memory once the stage finished, in KiB (Linux).
    pub peak_rss_kib: Option<u64>,
}

/// Peak resident set size of this process so far, in KiB, where the OS reports it.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    pub stages: Vec<StageReport>,
    pub outputs: Vec<String>,
    /// What the run noticed and went on with: ``step `norm`: normalize_total expects counts…``.
    pub warnings: Vec<String>,
}
