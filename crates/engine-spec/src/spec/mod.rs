//! The pipeline as the user wrote it: parsed from YAML, parameters substituted, every value
//! type-checked against the operator catalogue, references resolved into a DAG. Every
//! problem is collected, so one `engine check` run reports them all. No I/O happens here.

mod dag;
mod outputs;
mod params;
mod steps;
mod typecheck;

use crate::diag::{Diagnostic, Diagnostics, Span, did_you_mean};
use crate::ops::{OpDef, ParamType};
use crate::tree::{self, Node, Value};
use std::collections::{BTreeMap, HashMap};

/// A typed argument value.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
}

impl Arg {
    /// Left out (a parameter scanpy documents as `None`).
    pub fn is_null(&self) -> bool {
        matches!(self, Arg::Null)
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Arg::Int(i) => Some(*i),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Arg::Int(i) => Some(*i as f64),
            Arg::Float(f) => Some(*f),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Arg::Bool(b) => Some(*b),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Arg::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// A declared pipeline parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub ty: ParamType,
    pub value: Arg,
    pub span: Span,
}

/// One step: an operator applied to its inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub id: String,
    pub op: &'static OpDef,
    pub inputs: Vec<String>,
    /// Every parameter of the operator, defaults filled in.
    pub args: BTreeMap<String, Arg>,
    pub span: Span,
}

impl Step {
    pub fn arg(&self, name: &str) -> &Arg {
        self.args.get(name).unwrap_or(&Arg::Null)
    }
}

/// Where a step's result is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub step: String,
    pub path: String,
    /// `h5ad`, `zarr2` or `zarr3`; `None` means from the extension.
    pub format: Option<String>,
    /// Chunk shape; 0 = whole axis.
    pub chunks: Option<Vec<u64>>,
    pub compression: Option<String>,
    /// Another step whose X is stored as X (`x: logged`), restricted to the output's cells
    /// and genes; `None` stores the output step's own X.
    pub x: Option<String>,
    /// A step whose X and var are stored as `raw` (`raw: logged`, as `adata.raw = adata`),
    /// restricted to the output's cells, all of its genes kept.
    pub raw: Option<String>,
    /// Layers as `(name, step)`: that step's X restricted to the output's cells and genes.
    pub layers: Vec<(String, String)>,
    /// Storage of single elements (`storage: {layers/*: {chunks: [all, 25]}}`), over
    /// `chunks` and `compression`.
    pub storage: Vec<ElementStorage>,
    pub span: Span,
}

/// How one element (or a `*` pattern of them) of an output is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ElementStorage {
    /// `X`, `raw/X`, `layers/NAME`, `obsm/*`, …
    pub element: String,
    /// Chunk shape; 0 = whole axis.
    pub chunks: Option<Vec<u64>>,
    /// Shard shape (zarr v3).
    pub shards: Option<Vec<u64>>,
    pub compression: Option<String>,
    pub span: Span,
}

impl Output {
    /// The steps the output takes matrices from besides its own, in a fixed order: `x`,
    /// `raw`, then the layers.
    pub fn sources(&self) -> Vec<&str> {
        self.x
            .iter()
            .chain(&self.raw)
            .map(String::as_str)
            .chain(self.layers.iter().map(|(_, s)| s.as_str()))
            .collect()
    }
}

/// A validated pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineSpec {
    pub name: Option<String>,
    pub params: Vec<Param>,
    /// Steps in a topological order (inputs before consumers).
    pub steps: Vec<Step>,
    pub outputs: Vec<Output>,
}

impl PipelineSpec {
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }
}

const TOP_KEYS: [&str; 5] = ["version", "name", "params", "steps", "outputs"];

/// Parses and validates pipeline YAML. `overrides` are `--param name=value` pairs.
///
/// # Errors
/// Every problem found, each with its position.
pub fn parse_yaml(
    file: &str,
    source: &str,
    overrides: &[(String, String)],
) -> Result<PipelineSpec, Diagnostics> {
    validate(file, source, tree::parse(source), overrides)
}

/// Parses and validates a pipeline in the SQL-like form (see [`crate::sqlform`]); it gives
/// the same spec as the equivalent YAML.
///
/// # Errors
/// Every problem found, each with its position in the SQL text.
pub fn parse_sql(
    file: &str,
    source: &str,
    overrides: &[(String, String)],
) -> Result<PipelineSpec, Diagnostics> {
    validate(file, source, crate::sqlform::parse(source), overrides)
}

fn validate(
    file: &str,
    source: &str,
    tree: Result<Node, Diagnostic>,
    overrides: &[(String, String)],
) -> Result<PipelineSpec, Diagnostics> {
    let mut cx = Cx {
        diags: vec![],
        params: HashMap::new(),
    };
    let spec = match tree {
        Ok(root) => cx.pipeline(&root, overrides),
        Err(d) => {
            cx.diags.push(d);
            None
        }
    };
    match spec {
        Some(spec) if cx.diags.is_empty() => Ok(spec),
        _ => Err(Diagnostics {
            file: file.to_string(),
            source: source.to_string(),
            items: cx.diags,
        }),
    }
}

/// A parsed step with its input references not yet resolved.
type Unresolved = (Step, Vec<(String, Span)>);

struct Cx {
    diags: Vec<Diagnostic>,
    params: HashMap<String, (Arg, ParamType)>,
}

impl Cx {
    fn err(&mut self, span: Span, msg: impl Into<String>) {
        self.diags.push(Diagnostic::new(span, msg));
    }

    fn pipeline(&mut self, root: &Node, overrides: &[(String, String)]) -> Option<PipelineSpec> {
        let Some(entries) = root.entries() else {
            self.err(
                root.span,
                format!(
                    "a pipeline is a mapping with `version` and `steps`, found {}",
                    root.value.kind()
                ),
            );
            return None;
        };
        for (k, _) in entries {
            let key = k.as_str().unwrap_or("");
            if !TOP_KEYS.contains(&key) {
                let d = Diagnostic::new(k.span, format!("unknown key `{key}`"));
                self.diags.push(match did_you_mean(key, TOP_KEYS) {
                    Some(h) => d.with_help(h),
                    None => d.with_help(format!(
                        "a pipeline has {}",
                        TOP_KEYS.map(|k| format!("`{k}`")).join(", ")
                    )),
                });
            }
        }
        match root.get("version") {
            Some(Node {
                value: Value::Int(1),
                ..
            }) => {}
            Some(v) => self.err(v.span, "unsupported `version`: this engine reads version 1"),
            None => self.err(root.span, "missing `version: 1`"),
        }
        let name = root.get("name").and_then(|n| n.as_str()).map(String::from);
        let params = root
            .get("params")
            .map(|p| self.declare_params(p, overrides))
            .unwrap_or_default();
        if root.get("params").is_none() {
            for (k, _) in overrides {
                self.err(
                    Span::new(1, 1, 1),
                    format!("--param {k}: the pipeline declares no parameters"),
                );
            }
        }
        let mut steps = match root.get("steps") {
            Some(s) => self.steps(s),
            None => {
                self.err(root.span, "missing `steps`");
                vec![]
            }
        };
        self.layers_as_reads(&mut steps);
        self.named_steps_upstream(&steps);
        let outputs = root
            .get("outputs")
            .map(|o| self.outputs(o, &steps))
            .unwrap_or_default();
        let steps = self.order(steps);
        Some(PipelineSpec {
            name,
            params,
            steps,
            outputs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const GOOD: &str = "\
version: 1
name: blobs
params:
  n_obs: 1000
  out: {type: path, default: out}
steps:
  - id: clusters
    op: leiden
    input: graph
  - id: data
    op: synthetic
    n_obs: ${n_obs}
    n_vars: 20
  - id: graph
    op: neighbors
    input: pcs
  - id: scaled
    op: scale
    input: data
  - id: pcs
    op: pca
    input: scaled
    n_comps: 10
outputs:
  - step: clusters
    path: ${out}/result.h5ad
    chunks: [100, all]
";

    #[test]
    fn every_error_is_reported_with_its_position() {
        let src = "\
version: 1
stesp: []
steps:
  - id: data
    op: synthetc
  - id: s
    op: scale
    input: dat
    zero_centre: true
  - id: p
    op: pca
    input: s
    n_comps: fifty
  - id: a
    op: scale
    input: b
  - id: b
    op: scale
    input: a
  - id: p
    op: leiden
  - id: n
    op: neighbors
    input: p
    metric: cosine
outputs:
  - step: n
    path: out.h5ad
    chunks: [0, all]
";
        let e = parse_yaml("pipeline.yaml", src, &[]).unwrap_err();
        let got: Vec<String> = {
            let mut items = e.items.clone();
            items.sort_by_key(|d| (d.span.line, d.span.col));
            items
                .iter()
                .map(|d| {
                    format!(
                        "{}:{}: {}{}",
                        d.span.line,
                        d.span.col,
                        d.message,
                        d.help
                            .as_ref()
                            .map(|h| format!(" ({h})"))
                            .unwrap_or_default()
                    )
                })
                .collect()
        };
        assert_eq!(
            got,
            [
                "2:1: unknown key `stesp` (did you mean `steps`?)",
                "5:9: unknown op `synthetc` (did you mean `synthetic`?)",
                "8:12: no step with id `dat`",
                "9:5: unknown key `zero_centre` for op `scale` (did you mean `zero_center`?)",
                "13:14: `n_comps` of op `pca` must be an integer, found \"fifty\"",
                "16:12: steps form a cycle through `a`",
                "20:9: duplicate step id `p` (first defined at line 10)",
                "21:9: op `leiden` needs an `input` step",
                "25:13: `metric` of op `neighbors` must be one of `euclidean`, found `cosine`",
                "29:14: a chunk size is a positive integer or `all`",
            ]
        );
        let text = e.render();
        assert!(text.starts_with("pipeline.yaml:2:1: error: unknown key `stesp`\n  |\n2 | stesp: []\n  | ^^^^^\n  = help: did you mean `steps`?"), "{text}");
    }

    #[test]
    fn syntax_errors_and_empty_files() {
        let e = parse_yaml("p.yaml", "", &[]).unwrap_err();
        assert!(e.items[0].message.contains("empty"));
        let e = parse_yaml("p.yaml", "version: 1\nsteps: [\n", &[]).unwrap_err();
        assert!(e.render().starts_with("p.yaml:"), "{}", e.render());
        let e = parse_yaml("p.yaml", "- just\n- a list\n", &[]).unwrap_err();
        assert!(e.items[0].message.contains("a pipeline is a mapping"));
    }
}
