//! The engine as a library: one entry point for the CLI, and for a Python binding.
//!
//! ```text
//! Pipeline::from_file ──> plan() ──> Plans { logical, optimized, physical }
//!                                      ├── explain()  the three plans as stable text
//!                                      └── run()      the physical plan, streamed
//! ```
//!
//! [`check`] is [`plan`] without running: whatever `run` would reject at planning, lowering
//! or in a step's parameters, `check` rejects first. Mistakes in a pipeline come back as
//! [`Error::Pipeline`], positioned in its text; everything else as [`Error::Engine`]. No state
//! is process-global: each run counts its own bytes and stages.

mod error;
mod pipeline;
mod predicates;
mod session;

/// The engine's error classified by fault, which [`Error::Engine`] holds; callers build and
/// match it without depending on the crate that defines it.
pub use engine_common::Error as EngineError;
pub use engine_common::parse_bytes;
pub use engine_exec::{Distributor, RunReport, StageReport, merge_results, peak_rss_kib, run_task};
/// Random minibatches of a preshuffled collection, as a training loader draws them.
pub use engine_loader as loader;
/// In-memory blocks as reads return them (for bindings that hand them on).
pub use engine_matrix::{AxisSelection, Block, Compressed, DynArray, SparseFormat};
pub use engine_spec::diag::did_you_mean;
pub use engine_spec::ops::{DefaultValue, OPS, OpDef, ParamDef, VARIADIC, op};
pub use engine_sql::{SqlSession, format_table};
pub use engine_store::ReadOptions;
pub use engine_store::arrow::frame_to_batch;
pub use engine_store::remote::{Fetched, fetched};
pub use engine_store::validate::{Problem, Report as ValidationReport, Severity, validate};
pub use engine_store::write::remove_temporaries;
pub use engine_store::{
    ArrayOptions, Column, Compression, ConvertOptions, Dataset, ElementOptions, ElementRule, Frame,
    Matrix, StoreFormat, convert,
};
pub use error::Error;
pub use pipeline::Pipeline;
pub use predicates::SqlPredicates;
pub use session::{Options, Plans, check, plan, run};
