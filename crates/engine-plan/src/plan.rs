//! The logical plan: a DAG of AnnData-valued nodes whose schemas are known before any data is
//! read. Nodes live in an arena in topological order (inputs before consumers), named by
//! [`NodeId`]; a node consumed twice is a fan-out, never a copy. Each operator lives in its
//! own file under `ops/`; [`Op`] names them and dispatches to them.

pub use crate::ops::concat::{Concat, ConcatPart, Join, Merge};
pub use crate::ops::dotplot::{DotGenes, Dotplot, MarkerKind};
pub use crate::ops::filter::{Filter, FilterBy};
pub use crate::ops::hvg::{HvgFlavor, HvgParams, SEURAT_V3_N_TOP};
pub use crate::ops::leiden::Leiden;
pub use crate::ops::log1p::Log1p;
pub use crate::ops::neighbors::Neighbors;
pub use crate::ops::normalize_total::NormalizeTotal;
pub use crate::ops::pca::{Pca, SvdSolver};
pub use crate::ops::plot::Plot;
pub use crate::ops::preshuffle::{Preshuffle, Size};
pub use crate::ops::qc::{Qc, QcVar};
pub use crate::ops::rank_genes_groups::{RankGenesGroups, RankMethod};
pub use crate::ops::rank_genes_groups_plot::RankGenesGroupsPlot;
pub use crate::ops::rank_genes_groups_violin::RankGenesGroupsViolin;
pub use crate::ops::scale::{Scale, ScaleParams};
pub use crate::ops::scan::{Scan, Source, Storage, XEncoding};
pub use crate::ops::select::{Select, Selection, Where};
pub use crate::ops::umap::Umap;
pub use crate::ops::violin::{Violin, ViolinKey};
pub use crate::ops::write::{Slot, Write};
pub use crate::ops::{LogicalOp, Reads, XEffect};
pub use crate::schema::{ColType, Schema};
use std::fmt::Write as _;

/// Index of a node in its plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub usize);

/// A logical operator with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Scan(Scan),
    /// Per-cell and per-gene QC columns.
    Qc(Qc),
    Filter(Filter),
    NormalizeTotal(NormalizeTotal),
    Log1p(Log1p),
    Hvg(HvgParams),
    /// A view `adata[rows, cols]` (positions in its input).
    Select(Select),
    /// A view by predicates evaluated at run time.
    Where(Where),
    Scale(Scale),
    Pca(Pca),
    Neighbors(Neighbors),
    Leiden(Leiden),
    Umap(Umap),
    Plot(Plot),
    Dotplot(Dotplot),
    RankGenesGroupsPlot(RankGenesGroupsPlot),
    RankGenesGroupsViolin(RankGenesGroupsViolin),
    Violin(Violin),
    RankGenesGroups(RankGenesGroups),
    /// Cells shuffled into a collection of datasets (a sink).
    Preshuffle(Preshuffle),
    Write(Write),
}

/// Calls the same method on whichever operator `op` holds.
macro_rules! each {
    ($op:expr, $o:ident => $e:expr) => {
        match $op {
            Op::Scan($o) => $e,
            Op::Qc($o) => $e,
            Op::Filter($o) => $e,
            Op::NormalizeTotal($o) => $e,
            Op::Log1p($o) => $e,
            Op::Hvg($o) => $e,
            Op::Select($o) => $e,
            Op::Where($o) => $e,
            Op::Scale($o) => $e,
            Op::Pca($o) => $e,
            Op::Neighbors($o) => $e,
            Op::Leiden($o) => $e,
            Op::Umap($o) => $e,
            Op::Plot($o) => $e,
            Op::Dotplot($o) => $e,
            Op::RankGenesGroupsPlot($o) => $e,
            Op::RankGenesGroupsViolin($o) => $e,
            Op::Violin($o) => $e,
            Op::RankGenesGroups($o) => $e,
            Op::Preshuffle($o) => $e,
            Op::Write($o) => $e,
        }
    };
}

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Op::Scan(_) => "Scan",
            Op::Qc(_) => "Qc",
            Op::Filter(_) => "Filter",
            Op::NormalizeTotal(_) => "NormalizeTotal",
            Op::Log1p(_) => "Log1p",
            Op::Hvg(_) => "Hvg",
            Op::Select(_) => "Select",
            Op::Where(_) => "Where",
            Op::Scale(_) => "Scale",
            Op::Pca(_) => "Pca",
            Op::Neighbors(_) => "Neighbors",
            Op::Leiden(_) => "Leiden",
            Op::Umap(_) => "Umap",
            Op::Plot(_) => "Plot",
            Op::Dotplot(d) => match d.kind {
                MarkerKind::Dots { .. } => "Dotplot",
                MarkerKind::StackedViolin => "StackedViolin",
            },
            Op::RankGenesGroupsPlot(_) => "RankGenesGroupsPlot",
            Op::RankGenesGroupsViolin(_) => "RankGenesGroupsViolin",
            Op::Violin(_) => "Violin",
            Op::RankGenesGroups(_) => "RankGenesGroups",
            Op::Preshuffle(_) => "Preshuffle",
            Op::Write(_) => "Write",
        }
    }

    /// Whether the operator is a sink: it writes a file (an output, an image) and gives no
    /// value to later steps.
    pub fn is_sink(&self) -> bool {
        matches!(
            self,
            Op::Write(_)
                | Op::Preshuffle(_)
                | Op::Plot(_)
                | Op::Dotplot(_)
                | Op::RankGenesGroupsPlot(_)
                | Op::RankGenesGroupsViolin(_)
                | Op::Violin(_)
        )
    }

    /// Parameters as stable text for EXPLAIN.
    pub fn describe(&self) -> String {
        each!(self, o => o.describe())
    }

    /// What the operator reads of its input besides X (`prune_elements`).
    pub fn reads(&self) -> Reads {
        each!(self, o => o.reads())
    }

    /// What the operator does to X's values (`fuse_elementwise`).
    pub fn x_effect(&self) -> XEffect {
        each!(self, o => o.x_effect())
    }

    /// A map's `fused` flag (`fuse_elementwise`).
    pub fn fused_mut(&mut self) -> Option<&mut bool> {
        each!(self, o => o.fused_mut())
    }
}

/// One node of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The pipeline step it came from.
    pub step: String,
    pub op: Op,
    pub inputs: Vec<NodeId>,
    pub schema: Schema,
}

/// The DAG.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogicalPlan {
    pub nodes: Vec<Node>,
}

impl LogicalPlan {
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0]
    }

    /// The nodes that read each node, in one pass over the edges (a search per node was
    /// quadratic on long chains).
    pub fn consumer_lists(&self) -> Vec<Vec<NodeId>> {
        let mut out = vec![Vec::new(); self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for input in &n.inputs {
                if !out[input.0].contains(&NodeId(i)) {
                    out[input.0].push(NodeId(i));
                }
            }
        }
        out
    }

    /// Stable indented text, one node per line in topological order.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let inputs = if n.inputs.is_empty() {
                String::new()
            } else {
                format!(
                    " <- {}",
                    n.inputs
                        .iter()
                        .map(|i| format!("#{}", i.0))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            let _ = writeln!(
                out,
                "#{i} {} = {}({}){inputs}",
                n.step,
                n.op.name(),
                n.op.describe()
            );
            let _ = writeln!(out, "     :: {}", n.schema.describe());
        }
        out
    }
}
