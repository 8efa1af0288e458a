//! The physical plan: what runs, node by node, with every method choice already made.
//!
//! [`crate::lower`] turns an optimized logical plan into these nodes: block sizes, the PCA
//! solver, the kNN search, output formats are decided there, once. EXPLAIN's physical section
//! is printed from the nodes ([`PhysicalPlan::explain`]) and [`PhysicalPlan::run`] executes
//! the same nodes, so the two cannot drift apart. Each node lives in its own file: its
//! parameters, its EXPLAIN lines and its execution.

pub(crate) mod dotplot;
pub(crate) mod filter;
pub(crate) mod hvg;
pub(crate) mod hvg_v3;
pub(crate) mod leiden;
pub(crate) mod log1p;
pub(crate) mod neighbors;
pub(crate) mod normalize_total;
pub(crate) mod pca;
pub(crate) mod plot;
pub(crate) mod preshuffle;
pub(crate) mod qc;
pub(crate) mod rank_genes_groups;
pub(crate) mod rank_genes_groups_plot;
pub(crate) mod rank_genes_groups_violin;
pub(crate) mod scale;
pub(crate) mod scan;
pub(crate) mod umap;
pub(crate) mod view;
pub(crate) mod violin;
pub(crate) mod where_view;
pub(crate) mod write;

use crate::annotations::Annotations;
use crate::context::RunContext;
use crate::lineage::Lineage;
use engine_common::{Error, Result};
use std::borrow::Cow;
use std::fmt::Write as _;

/// The AnnData value flowing along an edge: X as a lineage (recomputed block by block, never
/// materialised) and everything else in memory.
#[derive(Debug, Clone)]
pub(crate) struct Data {
    pub x: Lineage,
    pub ann: Annotations,
}

/// One executable node.
pub(crate) trait ExecNode: std::fmt::Debug + Send + Sync {
    /// The node's name in EXPLAIN; it names the method chosen (`PcaGram`, `KnnExact`).
    fn name(&self) -> &'static str;

    /// What the node does, one EXPLAIN line per stage, in order: `pass over X: …` for a pass
    /// over the data, `in memory: …` for work on the small results. Empty when the node only
    /// rewires X (a view, a map that later passes apply).
    fn stages(&self) -> Vec<String>;

    /// A line EXPLAIN prints before the stages (a scan's reads).
    fn header(&self, _step: &str) -> Option<String> {
        None
    }

    /// Sinks (writers, plots) only read their input and produce no value, so the executor
    /// lends them the input instead of handing it over.
    fn is_sink(&self) -> bool {
        false
    }

    /// Runs the node on its inputs (owned, or lent to a sink).
    ///
    /// # Errors
    /// On read/write failures or data the step cannot take.
    fn execute(&self, inputs: Vec<Cow<'_, Data>>, cx: &mut RunContext<'_>) -> Result<Option<Data>>;
}

/// The single input of a one-input node.
pub(crate) fn single<'a>(mut inputs: Vec<Cow<'a, Data>>, node: &str) -> Result<Cow<'a, Data>> {
    match inputs.len() {
        1 => Ok(inputs.remove(0)),
        n => Err(Error::internal(format!(
            "{node} node with {n} inputs (lowering gives it one)"
        ))),
    }
}

/// A node with its place in the plan.
#[derive(Debug)]
pub(crate) struct PhysicalNode {
    /// The pipeline step it came from.
    pub step: String,
    /// The logical operator it lowers, for the line of a skipped node.
    pub logical: &'static str,
    /// Positions of its inputs in the plan.
    pub inputs: Vec<usize>,
    /// `None` when no output depends on the node: it is skipped.
    pub exec: Option<Box<dyn ExecNode>>,
    /// Appended to its passes over X when they go through a view that was not pushed into
    /// the scan (what such a pass reads).
    pub through_view: Option<String>,
}

/// Nodes in topological order (inputs first), as the logical plan had them.
#[derive(Debug)]
pub struct PhysicalPlan {
    pub(crate) nodes: Vec<PhysicalNode>,
    /// The worker threads the block sizes were chosen for: the memory limit holds only when
    /// the run has no more.
    pub(crate) workers: usize,
    /// The results held at the costliest step, and the bytes left for X blocks.
    pub(crate) memory: (crate::memory::MemoryEstimate, usize),
    /// Bytes of fetched chunks a remote scan keeps for the blocks after (0: none remote).
    pub(crate) remote_cache: usize,
}

impl PhysicalPlan {
    /// Node positions in the order they run (sinks as soon as their inputs exist).
    pub(crate) fn running_order(&self) -> Vec<usize> {
        let inputs: Vec<Vec<usize>> = self.nodes.iter().map(|n| n.inputs.clone()).collect();
        let sink: Vec<bool> = self
            .nodes
            .iter()
            .map(|n| n.exec.as_ref().is_some_and(|e| e.is_sink()))
            .collect();
        crate::order::running_order(&inputs, &sink)
    }

    /// Stable text: the scans' reads and one line per stage, numbered as they run.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        let mut stage = 0;
        for n in self.running_order().into_iter().map(|i| &self.nodes[i]) {
            let Some(exec) = &n.exec else {
                let _ = writeln!(
                    out,
                    "-- {} ({}) not needed by any output: skipped",
                    n.step, n.logical
                );
                continue;
            };
            if let Some(h) = exec.header(&n.step) {
                let _ = writeln!(out, "{h}");
            }
            for line in exec.stages() {
                let note = match &n.through_view {
                    Some(reads) if line.starts_with("pass over X") => {
                        format!(" [through a view not pushed into the scan: {reads}]")
                    }
                    _ => String::new(),
                };
                let _ = writeln!(
                    out,
                    "stage {stage}: {} ({}) {line}{note}",
                    n.step,
                    exec.name()
                );
                stage += 1;
            }
        }
        let (estimate, blocks) = &self.memory;
        if !estimate.step.is_empty() {
            let _ = writeln!(
                out,
                "memory: about {} MiB of results at the peak (step `{}`: {}, {} workers); X blocks within {} MiB",
                crate::memory::mib(estimate.peak),
                estimate.step,
                estimate.what,
                self.workers,
                blocks >> 20
            );
        }
        if self.remote_cache > 0 {
            let _ = writeln!(
                out,
                "memory: {} MiB keep fetched remote chunks for the blocks that read them again",
                self.remote_cache >> 20
            );
        }
        for (id, gram) in &estimate.randomized_pca {
            let _ = writeln!(
                out,
                "memory: step `{}` runs PCA randomized: its Gram matrices would need about {} MiB",
                self.nodes[*id].step,
                crate::memory::mib(*gram)
            );
        }
        out
    }
}
