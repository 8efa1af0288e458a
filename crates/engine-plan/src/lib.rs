//! Logical plans over AnnData values: the planner binds a validated pipeline to its sources
//! (metadata only), the optimizer rewrites the plan rule by rule, EXPLAIN prints it.

pub mod io;
pub mod plan;
pub mod planner;
pub mod rules;

pub use plan::{
    ColType, FilterBy, GRAM_MAX_VARS, HvgParams, LogicalPlan, Node, NodeId, Op, QcVar, ScaleParams,
    Scan, Schema, Selection, Source, Storage, SvdSolver,
};
pub use planner::{NoPredicates, Predicates, plan};
pub use rules::optimize;
