//! Logical plans over AnnData values: the planner binds a validated pipeline to its sources
//! (described by a catalogue from their metadata), the optimizer rewrites the plan rule by rule, EXPLAIN prints it.

pub mod catalog;
pub mod io;
pub mod ops;
pub mod plan;
pub mod planner;
pub mod rules;
pub mod schema;

pub use catalog::{Catalog, SourceInfo, StoreCatalog};
pub use plan::{
    ColType, Concat, ConcatPart, DotGenes, Dotplot, Filter, FilterBy, HvgFlavor, HvgParams, Join,
    Leiden, Log1p, LogicalOp, LogicalPlan, MarkerKind, Merge, Neighbors, Node, NodeId,
    NormalizeTotal, Op, Pca, Plot, Preshuffle, Qc, QcVar, RankGenesGroups, RankGenesGroupsPlot,
    RankGenesGroupsViolin, RankMethod, Reads, SEURAT_V3_N_TOP, Scale, ScaleParams, Scan, Schema,
    Select, Selection, Size, Slot, Source, Storage, SvdSolver, Umap, Violin, ViolinKey, Where,
    Write, XEffect, XEncoding,
};
pub use planner::{NoPredicates, Predicates, plan, plan_with};
pub use rules::optimize;
