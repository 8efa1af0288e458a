//! Plan, explain, check and run a pipeline.

use crate::error::Error;
use crate::pipeline::Pipeline;
use crate::predicates::SqlPredicates;
use engine_exec::{DEFAULT_MEMORY_LIMIT, ExecOptions, PhysicalPlan, RunReport};
use engine_plan::LogicalPlan;
use std::sync::Arc;

/// How to plan and run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Bytes the run may hold besides the runtime's own (results, scratch and X blocks);
    /// block sizes follow from what the results leave.
    pub memory_limit: usize,
    /// Optimizer rules switched off, by name.
    pub disabled_rules: Vec<String>,
    /// Draw progress bars on stderr.
    pub progress: bool,
    /// Replace existing outputs (files or zarr stores; never other directories). Off by
    /// default: a run does not destroy what is there.
    pub overwrite: bool,
    /// Hands freed memory back to the system between stages (the allocator is the caller's
    /// choice).
    pub release_memory: Option<fn()>,
    /// Runs the passes over X that can leave the process elsewhere (the Python package's
    /// dask client); `None` runs everything here.
    pub distributor: Option<Arc<dyn engine_exec::Distributor>>,
    /// Set from another thread to stop the run at the next block or stage (it then fails
    /// and writes nothing).
    pub cancel: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            memory_limit: DEFAULT_MEMORY_LIMIT,
            disabled_rules: Vec::new(),
            progress: false,
            overwrite: false,
            release_memory: None,
            distributor: None,
            cancel: None,
        }
    }
}

/// A pipeline's plans: as written, as optimized, and as it runs.
#[derive(Debug)]
pub struct Plans {
    pub logical: LogicalPlan,
    pub optimized: LogicalPlan,
    /// The rules that changed something, in order.
    pub applied: Vec<&'static str>,
    pub physical: PhysicalPlan,
    /// `uns['engine']` of the outputs.
    pub provenance: engine_store::Value,
}

impl Plans {
    /// The three plans as stable text (what `engine explain` prints).
    pub fn explain(&self) -> String {
        format!(
            "== logical plan ==\n{}\n== optimized plan (rules applied: {}) ==\n{}\n== physical plan ==\n{}\n",
            self.logical.explain(),
            if self.applied.is_empty() {
                "none".to_string()
            } else {
                self.applied.join(", ")
            },
            self.optimized.explain(),
            self.physical.explain()
        )
    }
}

/// Binds a pipeline to its sources (reading their metadata, not their data), optimizes and
/// lowers it.
///
/// # Errors
/// A step planning or lowering rejects, as [`Error::Pipeline`] at that step; an unknown rule
/// or an unreadable source as [`Error::Engine`].
pub fn plan(pipeline: &Pipeline, opts: &Options) -> Result<Plans, Error> {
    let logical =
        engine_plan::plan(pipeline.spec(), &SqlPredicates).map_err(|e| pipeline.at_step(e))?;
    check_outputs(pipeline, &logical, opts)?;
    let (optimized, applied) = engine_plan::optimize(&logical, &opts.disabled_rules)?;
    let physical =
        engine_exec::lower(&optimized, opts.memory_limit).map_err(|e| pipeline.at_step(e))?;
    Ok(Plans {
        logical,
        optimized,
        applied,
        physical,
        provenance: pipeline.provenance(),
    })
}

/// The files a run would write: no output may be one of the pipeline's inputs, and an existing
/// one is replaced only with `overwrite` and only if it is a file or a zarr store (what `run`
/// would refuse after all the compute, refused before it).
fn check_outputs(pipeline: &Pipeline, logical: &LogicalPlan, opts: &Options) -> Result<(), Error> {
    // Every file a scan reads, a concatenation's too.
    let inputs: Vec<(String, std::path::PathBuf)> = logical
        .nodes
        .iter()
        .flat_map(|n| match &n.op {
            engine_plan::Op::Scan(s) => match &s.source {
                engine_plan::Source::File { path, .. } => vec![path.clone()],
                engine_plan::Source::Concat(c) => c.parts.iter().map(|p| p.path.clone()).collect(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        })
        .filter_map(|path| std::fs::canonicalize(&path).ok().map(|c| (path, c)))
        .collect();
    let spec = pipeline.spec();
    let plots = spec
        .steps
        .iter()
        .filter(|s| !s.op.produces_data())
        .filter_map(|s| s.arg("path").as_str().map(|p| (p.to_string(), s.span)));
    let outputs = spec.outputs.iter().map(|o| (o.path.clone(), o.span));
    let mut seen = std::collections::HashSet::new();
    for (path, span) in outputs.chain(plots) {
        let p = std::path::Path::new(&path);
        // Two writes to one path: the second would replace the first after all the work.
        if !seen.insert(std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())) {
            return Err(pipeline.at(span, format!("`{path}` is written twice")));
        }
        if let Ok(c) = std::fs::canonicalize(p)
            && let Some((input, _)) = inputs.iter().find(|(_, i)| *i == c)
        {
            return Err(pipeline.at(
                span,
                format!("output `{path}` is the pipeline's input `{input}`: write it elsewhere"),
            ));
        }
        if let Err(e) = engine_store::target::check_target(p, opts.overwrite) {
            return Err(pipeline.at(span, e.to_string()));
        }
    }
    Ok(())
}

/// Everything [`plan`] checks, without running.
///
/// # Errors
/// As [`plan`].
pub fn check(pipeline: &Pipeline, opts: &Options) -> Result<(), Error> {
    plan(pipeline, opts).map(|_| ())
}

/// Runs planned work.
///
/// # Errors
/// On read/write failures or data a step cannot take.
pub fn run(plans: &Plans, opts: &Options) -> Result<RunReport, Error> {
    let exec = ExecOptions {
        overwrite: opts.overwrite,
        progress: opts.progress,
        predicates: Arc::new(SqlPredicates),
        release_memory: opts.release_memory,
        provenance: Some(plans.provenance.clone()),
        distributor: opts.distributor.clone(),
        cancel: opts.cancel.clone(),
    };
    Ok(plans.physical.run(&exec)?)
}
