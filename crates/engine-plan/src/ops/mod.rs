//! Logical operators, one file each. A file holds everything the plan knows of its operator:
//! its parameters, how a pipeline step binds to it (checking what the step needs of its input
//! and inferring the output's schema), its EXPLAIN description, and what it reads of its input
//! besides X (which `prune_elements` keeps in the scan), and what it does to X's values (which
//! `fuse_elementwise` asks). The last three are the [`LogicalOp`] trait; [`bind`] is the one
//! table from catalogue names to binders.

pub mod concat;
pub mod dotplot;
pub mod filter;
pub mod hvg;
pub mod leiden;
pub mod log1p;
pub mod neighbors;
pub mod normalize_total;
pub mod pca;
pub mod plot;
pub mod preshuffle;
pub mod qc;
pub mod rank_genes_groups;
pub mod rank_genes_groups_plot;
pub mod rank_genes_groups_violin;
pub mod scale;
pub mod scan;
pub mod select;
pub mod umap;
pub mod violin;
pub mod write;

use crate::catalog::Catalog;
use crate::plan::{LogicalPlan, NodeId, Op};
use crate::planner::Predicates;
use crate::schema::{ColType, Schema};
use engine_common::{Error, Result};
use engine_spec::Step;

/// What binding a step sees: the step, the plan so far and the step's inputs in it.
pub(crate) struct Bind<'a> {
    pub step: &'a Step,
    pub plan: &'a LogicalPlan,
    pub inputs: &'a [NodeId],
    pub catalog: &'a dyn Catalog,
    pub sql: &'a dyn Predicates,
}

impl Bind<'_> {
    /// The first input's schema (empty for a source).
    pub fn input_schema(&self) -> Schema {
        self.inputs
            .first()
            .map(|i| self.plan.node(*i).schema.clone())
            .unwrap_or_default()
    }

    /// A mistake in this step unless `ok`: it needs `what` from its input.
    pub fn need(&self, what: &str, ok: bool) -> Result<()> {
        if ok {
            Ok(())
        } else {
            Err(Error::step(
                &self.step.id,
                format!("`{}` needs {what} from its input", self.step.op.name),
            ))
        }
    }

    /// A `Names` argument (a YAML list or `"a, b"`) as its names; `None` when absent.
    pub fn names(&self, name: &str) -> Option<Vec<String>> {
        self.step.arg(name).as_str().map(|text| {
            text.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
    }

    /// An integer argument (0 when absent: the catalogue gives defaults).
    pub fn int(&self, name: &str) -> i64 {
        self.step.arg(name).as_i64().unwrap_or(0)
    }

    /// A positive integer argument.
    pub fn positive(&self, name: &str) -> Result<usize> {
        match self.step.arg(name).as_i64() {
            Some(v) if v > 0 => Ok(v as usize),
            Some(v) => Err(Error::step(
                &self.step.id,
                format!("`{name}` must be positive, got {v}"),
            )),
            None => Err(Error::step(
                &self.step.id,
                format!("`{name}` must be a positive whole number"),
            )),
        }
    }

    /// A positive integer argument of at most `max`.
    pub fn bounded(&self, name: &str, max: usize) -> Result<usize> {
        let v = self.positive(name)?;
        if v > max {
            return Err(self.error(format!("`{name}` must be at most {max}, got {v}")));
        }
        Ok(v)
    }

    /// A finite number, positive (or, without `strict`, zero or more).
    pub fn finite(&self, name: &str, default: f64, strict: bool) -> Result<f64> {
        let v = self.f64_or(name, default);
        if !v.is_finite() || v < 0.0 || (strict && v == 0.0) {
            let what = if strict { "positive" } else { "zero or more" };
            return Err(self.error(format!("`{name}` must be a finite number, {what}, got {v}")));
        }
        Ok(v)
    }

    pub fn f64_or(&self, name: &str, default: f64) -> f64 {
        self.step.arg(name).as_f64().unwrap_or(default)
    }

    /// Checks that `genes` are in the var of the file `input`'s X comes from, when planning
    /// can read it (a `read` step's file; a gene a later step drops is found by the run).
    /// The problem, if any, as text for the caller's message.
    pub fn missing_gene(&self, genes: &[String], input: NodeId) -> Option<String> {
        let mut at = Some(input);
        while let Some(id) = at {
            let node = self.plan.node(id);
            if let Op::Scan(scan) = &node.op {
                let crate::plan::Source::File { path, options, .. } = &scan.source else {
                    return None;
                };
                let names = self.catalog.var_names(path, options)?;
                let known: std::collections::HashSet<&str> =
                    names.iter().map(String::as_str).collect();
                let g = genes.iter().find(|g| !known.contains(g.as_str()))?;
                let hint = engine_spec::diag::did_you_mean(g, names.iter().map(String::as_str))
                    .map_or(String::new(), |h| format!(" ({h})"));
                return Some(format!("gene `{g}` is not in the var of `{path}`{hint}"));
            }
            at = node.inputs.first().copied();
        }
        None
    }

    /// The `key` of the ranking a marker-gene plot draws (`rank_genes_groups` by default),
    /// which the input must hold in `uns`.
    pub fn ranking_key(&self, s: &Schema) -> Result<String> {
        let key = self
            .step
            .arg("key")
            .as_str()
            .unwrap_or("rank_genes_groups")
            .to_string();
        self.need(
            &format!("uns['{key}'] (a `rank_genes_groups` step before it)"),
            s.uns.contains(&key),
        )?;
        Ok(key)
    }

    /// A mistake in this step.
    pub fn error(&self, message: impl Into<String>) -> Error {
        Error::step(&self.step.id, message)
    }
}

/// What the plan asks of every logical operator.
pub trait LogicalOp {
    /// Parameters as stable text for EXPLAIN.
    fn describe(&self) -> String;

    /// What it reads of its input besides X (`prune_elements`).
    fn reads(&self) -> Reads;

    /// What it does to X's values (`fuse_elementwise`).
    fn x_effect(&self) -> XEffect {
        XEffect::Other
    }

    /// A map's `fused` flag, which `fuse_elementwise` sets; `None` for other operators.
    fn fused_mut(&mut self) -> Option<&mut bool> {
        None
    }
}

/// What an operator does to X's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XEffect {
    /// An elementwise, per-row or per-column map, which can join the kernel before it.
    Map,
    /// The values pass through unchanged (rows or columns may be selected).
    Keeps,
    /// Anything else: a source, a step that replaces X, a sink.
    Other,
}

/// What an operator reads of its input besides X, for `prune_elements`.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Reads {
    /// Nothing beyond X (and what it computes itself).
    #[default]
    Nothing,
    /// These obs columns and elements (`obsm/X_pca`, `uns/neighbors`).
    Some {
        obs: Vec<String>,
        elements: Vec<String>,
    },
    /// Every obs column (a predicate whose columns only SQL knows), no element.
    AllObs,
    /// Everything (a writer).
    Everything,
}

impl Reads {
    pub fn elements(elements: &[&str]) -> Reads {
        Reads::Some {
            obs: vec![],
            elements: elements.iter().map(|e| e.to_string()).collect(),
        }
    }
}

/// Adds a name unless present (a recomputed element replaces the old one in place).
pub(crate) fn add(list: &mut Vec<String>, name: &str) {
    if !list.iter().any(|c| c == name) {
        list.push(name.to_string());
    }
}

/// Adds an obs/var column; one the step recomputes keeps its place and takes the new type.
pub(crate) fn col(list: &mut Vec<(String, ColType)>, name: &str, ty: ColType) {
    match list.iter_mut().find(|(c, _)| c == name) {
        Some(slot) => slot.1 = ty,
        None => list.push((name.to_string(), ty)),
    }
}

/// How EXPLAIN marks a map fused into the kernel before it.
pub(crate) fn fused_note(fused: bool, after_params: bool) -> String {
    match (fused, after_params) {
        (false, _) => String::new(),
        (true, true) => ", fused into the previous map's kernel".into(),
        (true, false) => "fused into the previous map's kernel".into(),
    }
}

/// Binds a step to its operator by the catalogue name of its op.
pub(crate) fn bind(b: &Bind<'_>) -> Result<(Op, Schema)> {
    match b.step.op.name {
        "synthetic" => scan::bind_synthetic(b),
        "synthetic_counts" => scan::bind_counts(b),
        "read" => scan::bind_read(b),
        "concat" => concat::bind(b),
        "calculate_qc_metrics" => qc::Qc::bind(b),
        "filter_cells" | "filter_genes" => filter::Filter::bind(b),
        "normalize_total" => normalize_total::NormalizeTotal::bind(b),
        "log1p" => log1p::Log1p::bind(b),
        "highly_variable_genes" => hvg::HvgParams::bind(b),
        "select" => select::bind(b),
        "scale" => scale::Scale::bind(b),
        "pca" => pca::Pca::bind(b),
        "neighbors" => neighbors::Neighbors::bind(b),
        "leiden" => leiden::Leiden::bind(b),
        "umap" => umap::Umap::bind(b),
        "plot" => plot::Plot::bind(b),
        "dotplot" => dotplot::Dotplot::bind(b, false),
        "stacked_violin" => dotplot::Dotplot::bind(b, true),
        "rank_genes_groups_plot" => rank_genes_groups_plot::RankGenesGroupsPlot::bind(b),
        "rank_genes_groups_violin" => rank_genes_groups_violin::RankGenesGroupsViolin::bind(b),
        "violin" => violin::Violin::bind(b),
        "rank_genes_groups" => rank_genes_groups::RankGenesGroups::bind(b),
        "preshuffle" => preshuffle::Preshuffle::bind(b),
        other => Err(Error::internal(format!(
            "op `{other}` is in the catalogue but has no logical operator"
        ))),
    }
}
