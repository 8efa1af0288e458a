//! Binds a validated pipeline to data: asks a [`Catalog`] what each file source holds (its
//! metadata, never its data), binds each step to its operator (`ops/`: checks what the step
//! needs of its input and infers the output's schema), and adds a writer per output.

use crate::catalog::{Catalog, StoreCatalog};
use crate::ops::write::Write;
use crate::ops::{self, Bind};
use crate::plan::{LogicalPlan, Node, NodeId};
use crate::schema::Schema;
use engine_common::{Error, Result};
use engine_spec::PipelineSpec;
use std::collections::HashMap;

/// Evaluates a SQL predicate over a file's obs (or, with `var`, its var) into a mask. The
/// SQL engine lives in `engine-sql`; the binary passes it in, so planning (and everything
/// that depends on it) does not link DataFusion.
pub trait Predicates: Send + Sync + std::fmt::Debug {
    /// # Errors
    /// On SQL errors and read failures.
    fn mask(
        &self,
        path: &std::path::Path,
        options: &engine_store::ReadOptions,
        var: bool,
        predicate: &str,
    ) -> Result<Vec<bool>>;

    /// Evaluates a predicate over an in-memory obs (or var) frame, for run time.
    ///
    /// # Errors
    /// On SQL errors.
    fn mask_frame(
        &self,
        frame: &engine_store::Frame,
        var: bool,
        predicate: &str,
    ) -> Result<Vec<bool>>;

    /// Binds a run-time predicate to the columns the plan says obs (var) will have, so
    /// `check` refuses unknown columns and mistyped comparisons before any compute. Evaluates
    /// it over an empty frame of those columns: the same SQL path as the run.
    ///
    /// # Errors
    /// As [`Predicates::mask_frame`] would at run time.
    fn check(&self, schema: &Schema, var: bool, predicate: &str) -> Result<()> {
        match schema.empty_frame(var) {
            Some(frame) => self.mask_frame(&frame, var, predicate).map(|_| ()),
            None => Ok(()),
        }
    }
}

/// For plans without SQL predicates: any `where` is an error.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPredicates;

impl Predicates for NoPredicates {
    fn mask(
        &self,
        _: &std::path::Path,
        _: &engine_store::ReadOptions,
        _: bool,
        _: &str,
    ) -> Result<Vec<bool>> {
        Err(Error::usage("SQL predicates are not available here"))
    }

    fn mask_frame(&self, _: &engine_store::Frame, _: bool, _: &str) -> Result<Vec<bool>> {
        Err(Error::usage("SQL predicates are not available here"))
    }
}

/// Builds the logical plan of a pipeline, describing its files from their metadata
/// ([`StoreCatalog`]).
///
/// # Errors
/// When a file source cannot be opened or a step's requirement (an obsm key, a graph, an obs
/// column) is not produced upstream.
pub fn plan(spec: &PipelineSpec, sql: &dyn Predicates) -> Result<LogicalPlan> {
    plan_with(spec, &StoreCatalog, sql)
}

/// Builds the logical plan of a pipeline, asking `catalog` what its files hold.
///
/// # Errors
/// As [`plan`].
pub fn plan_with(
    spec: &PipelineSpec,
    catalog: &dyn Catalog,
    sql: &dyn Predicates,
) -> Result<LogicalPlan> {
    let mut plan = LogicalPlan::default();
    let mut by_step: HashMap<String, NodeId> = HashMap::new();
    for step in &spec.steps {
        let inputs: Vec<NodeId> = step.inputs.iter().map(|i| by_step[i]).collect();
        let (op, mut schema) = ops::bind(&Bind {
            step,
            plan: &plan,
            inputs: &inputs,
            catalog,
            sql,
        })?;
        schema.dedup();
        // A source reads no input's data: a concatenation holds its files in its source.
        let inputs = if matches!(op, crate::plan::Op::Scan(_)) {
            Vec::new()
        } else {
            inputs
        };
        plan.nodes.push(Node {
            step: step.id.clone(),
            op,
            inputs,
            schema,
        });
        by_step.insert(step.id.clone(), NodeId(plan.nodes.len() - 1));
    }
    for out in &spec.outputs {
        let input = by_step[&out.step];
        let schema = plan.node(input).schema.clone();
        let inputs = std::iter::once(input)
            .chain(out.sources().into_iter().map(|s| by_step[s]))
            .collect();
        plan.nodes.push(Node {
            step: format!("{}:write", out.step),
            op: Write::bind(out),
            inputs,
            schema,
        });
    }
    Ok(plan)
}
