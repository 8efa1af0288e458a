//! Pipeline text to a validated spec with source spans: no I/O, no plans.
//!
//! A pipeline is YAML (`version`, `params`, `steps`, `outputs`); every problem is reported
//! together as `file:line:col: error: …` with the source line, a caret and a hint.

pub mod diag;
pub mod index_expr;
pub mod ops;
pub mod spec;
pub mod sqlform;
pub mod tree;

pub use diag::{Diagnostic, Diagnostics, Span};
pub use spec::{Arg, ElementStorage, Output, Param, PipelineSpec, Step, parse_sql, parse_yaml};
