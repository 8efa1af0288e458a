//! The pipeline as the user wrote it: parsed from YAML, parameters substituted, every value
//! type-checked against the operator catalogue, references resolved into a DAG. Every
//! problem is collected, so one `engine check` run reports them all. No I/O happens here.

use crate::diag::{Diagnostic, Diagnostics, Span, did_you_mean};
use crate::ops::{self, DefaultValue as D, OpDef, ParamType};
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
    pub span: Span,
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
const OUTPUT_KEYS: [&str; 5] = ["step", "path", "format", "chunks", "compression"];
const PARAM_KEYS: [&str; 2] = ["type", "default"];

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
        let steps = match root.get("steps") {
            Some(s) => self.steps(s),
            None => {
                self.err(root.span, "missing `steps`");
                vec![]
            }
        };
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

    fn declare_params(&mut self, node: &Node, overrides: &[(String, String)]) -> Vec<Param> {
        let Some(entries) = node.entries() else {
            self.err(
                node.span,
                format!(
                    "`params` must be a mapping of name to default, found {}",
                    node.value.kind()
                ),
            );
            return vec![];
        };
        let mut out = Vec::new();
        for (k, v) in entries {
            let name = k.as_str().unwrap_or("").to_string();
            // `name: default` or `name: {type: int, default: 3}`.
            let (ty, default) = match v.get("default").or_else(|| v.get("type").map(|_| v)) {
                Some(_) if v.entries().is_some() => {
                    for (pk, _) in v.entries().unwrap_or_default() {
                        let key = pk.as_str().unwrap_or("");
                        if !PARAM_KEYS.contains(&key) {
                            let d = Diagnostic::new(
                                pk.span,
                                format!("unknown key `{key}` in parameter `{name}`"),
                            );
                            self.diags.push(match did_you_mean(key, PARAM_KEYS) {
                                Some(h) => d.with_help(h),
                                None => d.with_help("a parameter has `type` and `default`"),
                            });
                        }
                    }
                    let ty = match v.get("type").and_then(|t| t.as_str()) {
                        Some("int") => ParamType::Int,
                        Some("float") => ParamType::Float,
                        Some("bool") => ParamType::Bool,
                        Some("string" | "str") => ParamType::Str,
                        Some("path") => ParamType::Path,
                        Some(other) => {
                            let t = v.get("type").map_or(v.span, |t| t.span);
                            let d = Diagnostic::new(t, format!("unknown parameter type `{other}`"));
                            self.diags.push(
                                match did_you_mean(
                                    other,
                                    ["int", "float", "bool", "string", "path"],
                                ) {
                                    Some(h) => d.with_help(h),
                                    None => d.with_help("types are int, float, bool, string, path"),
                                },
                            );
                            continue;
                        }
                        None => infer_type(v.get("default").map_or(&Value::Null, |d| &d.value)),
                    };
                    (ty, v.get("default").cloned())
                }
                _ => (infer_type(&v.value), Some(v.clone())),
            };
            let mut value = match &default {
                Some(d) => self
                    .typed(d, ty, &format!("parameter `{name}`"))
                    .unwrap_or(Arg::Null),
                None => Arg::Null,
            };
            if let Some((_, raw)) = overrides.iter().find(|(n, _)| *n == name) {
                match parse_override(raw, ty) {
                    Some(a) => value = a,
                    None => self.err(
                        k.span,
                        format!("--param {name}={raw}: expected {}", ty.describe()),
                    ),
                }
            }
            self.params.insert(name.clone(), (value.clone(), ty));
            out.push(Param {
                name,
                ty,
                value,
                span: k.span,
            });
        }
        for (n, _) in overrides {
            if !self.params.contains_key(n) {
                let d = Diagnostic::new(node.span, format!("--param {n}: no such parameter"));
                let names: Vec<&str> = out.iter().map(|p| p.name.as_str()).collect();
                self.diags
                    .push(match did_you_mean(n, names.iter().copied()) {
                        Some(h) => d.with_help(h),
                        None => d.with_help(format!("parameters are {}", names.join(", "))),
                    });
            }
        }
        out
    }

    /// Converts a node to a typed argument, substituting `${param}` references.
    fn typed(&mut self, node: &Node, ty: ParamType, what: &str) -> Option<Arg> {
        let value = match &node.value {
            Value::Str(s) if s.contains("${") => match self.substitute(s, node.span) {
                Some(Arg::Str(text))
                    if !matches!(
                        ty,
                        ParamType::Str
                            | ParamType::Path
                            | ParamType::Choice(_)
                            | ParamType::Indices
                    ) =>
                {
                    // A string built from parameters, where a number was wanted.
                    return match parse_override(&text, ty) {
                        Some(a) => Some(a),
                        None => {
                            self.err(
                                node.span,
                                format!("{what} must be {}, found \"{text}\"", ty.describe()),
                            );
                            None
                        }
                    };
                }
                Some(a) => return self.check(node, a, ty, what),
                None => return None,
            },
            Value::Null => Arg::Null,
            Value::Bool(b) => Arg::Bool(*b),
            Value::Int(i) => Arg::Int(*i),
            Value::Float(f) => Arg::Float(*f),
            Value::Str(s) => Arg::Str(s.clone()),
            // A YAML list of integers is an index list.
            Value::Seq(items)
                if ty == ParamType::Indices
                    && items.iter().all(|i| matches!(i.value, Value::Int(_))) =>
            {
                Arg::Str(
                    items
                        .iter()
                        .map(|i| match i.value {
                            Value::Int(v) => v.to_string(),
                            _ => String::new(),
                        })
                        .collect::<Vec<_>>()
                        .join(","),
                )
            }
            Value::Seq(_) | Value::Map(_) => {
                self.err(
                    node.span,
                    format!(
                        "{what} must be {}, found {}",
                        ty.describe(),
                        node.value.kind()
                    ),
                );
                return None;
            }
        };
        self.check(node, value, ty, what)
    }

    fn check(&mut self, node: &Node, a: Arg, ty: ParamType, what: &str) -> Option<Arg> {
        let ok = match (&a, ty) {
            (Arg::Null, _) => true,
            (Arg::Int(_), ParamType::Int | ParamType::Float) => true,
            (Arg::Float(_), ParamType::Float) => true,
            (Arg::Bool(_), ParamType::Bool) => true,
            (Arg::Str(_), ParamType::Str | ParamType::Path) => true,
            (Arg::Int(_), ParamType::Indices) => true,
            (Arg::Str(text), ParamType::Indices) => {
                if let Err((at, msg)) = crate::index_expr::parse(text) {
                    // Point into the string when it is written inline (after a quote).
                    let quoted = node.span.len > text.len();
                    let span =
                        Span::new(node.span.line, node.span.col + at + usize::from(quoted), 1);
                    self.err(span, format!("{what}: {msg}"));
                    return None;
                }
                true
            }
            (Arg::Str(s), ParamType::Choice(c)) => {
                if !c.contains(&s.as_str()) {
                    let d = Diagnostic::new(
                        node.span,
                        format!("{what} must be {}, found `{s}`", ty.describe()),
                    );
                    self.diags.push(match did_you_mean(s, c.iter().copied()) {
                        Some(h) => d.with_help(h),
                        None => d,
                    });
                    return None;
                }
                true
            }
            _ => false,
        };
        if !ok {
            let found = match &a {
                Arg::Str(s) => format!("\"{s}\""),
                Arg::Int(i) => i.to_string(),
                Arg::Float(f) => f.to_string(),
                Arg::Bool(b) => b.to_string(),
                Arg::Null => "null".into(),
            };
            self.err(
                node.span,
                format!("{what} must be {}, found {found}", ty.describe()),
            );
            return None;
        }
        Some(match (a, ty) {
            (Arg::Int(i), ParamType::Float) => Arg::Float(i as f64),
            (Arg::Int(i), ParamType::Indices) => Arg::Str(i.to_string()),
            (a, _) => a,
        })
    }

    /// `${name}` alone takes the parameter's typed value; inside text it is interpolated.
    fn substitute(&mut self, s: &str, span: Span) -> Option<Arg> {
        if let Some(name) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}'))
            && !name.contains("${")
        {
            return self.lookup(name, span).map(|(a, _)| a);
        }
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let Some(j) = rest[i..].find('}') else {
                self.err(span, "unclosed `${` in a parameter reference");
                return None;
            };
            let (a, _) = self.lookup(&rest[i + 2..i + j], span)?;
            out.push_str(&match a {
                Arg::Str(s) => s,
                Arg::Int(i) => i.to_string(),
                Arg::Float(f) => f.to_string(),
                Arg::Bool(b) => b.to_string(),
                Arg::Null => String::new(),
            });
            rest = &rest[i + j + 1..];
        }
        out.push_str(rest);
        Some(Arg::Str(out))
    }

    fn lookup(&mut self, name: &str, span: Span) -> Option<(Arg, ParamType)> {
        match self.params.get(name) {
            Some(v) => Some(v.clone()),
            None => {
                let names: Vec<String> = self.params.keys().cloned().collect();
                let d = Diagnostic::new(span, format!("unknown parameter `{name}`"));
                self.diags
                    .push(match did_you_mean(name, names.iter().map(String::as_str)) {
                        Some(h) => d.with_help(h),
                        None => d.with_help("declare it under `params:`"),
                    });
                None
            }
        }
    }

    fn steps(&mut self, node: &Node) -> Vec<Unresolved> {
        let Value::Seq(items) = &node.value else {
            self.err(
                node.span,
                format!("`steps` must be a list, found {}", node.value.kind()),
            );
            return vec![];
        };
        let mut out = Vec::new();
        let mut seen: HashMap<String, Span> = HashMap::new();
        for item in items {
            let Some(entries) = item.entries() else {
                self.err(
                    item.span,
                    format!(
                        "a step is a mapping with `id` and `op`, found {}",
                        item.value.kind()
                    ),
                );
                continue;
            };
            let id = match item.get("id") {
                Some(n) => match n.as_str() {
                    Some(s)
                        if !s.is_empty()
                            && s.chars()
                                .all(|c| c.is_alphanumeric() || c == '_' || c == '-') =>
                    {
                        if let Some(first) = seen.get(s) {
                            self.err(
                                n.span,
                                format!(
                                    "duplicate step id `{s}` (first defined at line {})",
                                    first.line
                                ),
                            );
                        }
                        seen.insert(s.to_string(), n.span);
                        s.to_string()
                    }
                    _ => {
                        self.err(
                            n.span,
                            "a step `id` is a name of letters, digits, `_` and `-`",
                        );
                        continue;
                    }
                },
                None => {
                    self.err(item.span, "step without an `id`");
                    continue;
                }
            };
            let Some(op_node) = item.get("op") else {
                self.err(item.span, format!("step `{id}` has no `op`"));
                continue;
            };
            let op_name = op_node.as_str().unwrap_or("");
            let Some(op) = ops::op(op_name) else {
                let d = Diagnostic::new(op_node.span, format!("unknown op `{op_name}`"));
                self.diags.push(
                    match did_you_mean(op_name, ops::OPS.iter().map(|o| o.name)) {
                        Some(h) => d.with_help(h),
                        None => d.with_help(format!(
                            "ops are {}",
                            ops::OPS
                                .iter()
                                .map(|o| o.name)
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                    },
                );
                continue;
            };
            let mut inputs = Vec::new();
            match item.get("input") {
                Some(n) => match &n.value {
                    Value::Str(s) => inputs.push((s.clone(), n.span)),
                    Value::Seq(v) => {
                        for x in v {
                            match x.as_str() {
                                Some(s) => inputs.push((s.to_string(), x.span)),
                                None => self.err(x.span, "an input is a step id"),
                            }
                        }
                    }
                    other => self.err(
                        n.span,
                        format!("`input` must be a step id, found {}", other.kind()),
                    ),
                },
                None if op.inputs > 0 => self.err(
                    op_node.span,
                    format!("op `{op_name}` needs an `input` step"),
                ),
                None => {}
            }
            if op.inputs == 0 && !inputs.is_empty() {
                self.err(
                    item.get("input").map_or(item.span, |n| n.span),
                    format!("op `{op_name}` is a source and takes no `input`"),
                );
            } else if op.inputs > 0 && inputs.len() > op.inputs {
                self.err(
                    item.get("input").map_or(item.span, |n| n.span),
                    format!(
                        "op `{op_name}` takes {} input(s), got {}",
                        op.inputs,
                        inputs.len()
                    ),
                );
            }
            let mut args = BTreeMap::new();
            for (k, v) in entries {
                let key = k.as_str().unwrap_or("");
                if matches!(key, "id" | "op" | "input") {
                    continue;
                }
                match op.param(key) {
                    Some(p) => {
                        if let Some(a) = self.typed(v, p.ty, &format!("`{key}` of op `{op_name}`"))
                        {
                            args.insert(key.to_string(), a);
                        }
                    }
                    None => {
                        let d = Diagnostic::new(
                            k.span,
                            format!("unknown key `{key}` for op `{op_name}`"),
                        );
                        let names = op
                            .params
                            .iter()
                            .map(|p| p.name)
                            .chain(["id", "op", "input"]);
                        self.diags.push(match did_you_mean(key, names) {
                            Some(h) => d.with_help(h),
                            None => d.with_help(format!(
                                "`{op_name}` takes {}",
                                op.params
                                    .iter()
                                    .map(|p| format!("`{}`", p.name))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )),
                        });
                    }
                }
            }
            for p in op.params {
                if args.contains_key(p.name) {
                    continue;
                }
                let a = match p.default {
                    D::Required => {
                        self.err(
                            op_node.span,
                            format!("op `{op_name}` needs `{}` ({})", p.name, p.ty.describe()),
                        );
                        continue;
                    }
                    D::Null => Arg::Null,
                    D::Int(i) => Arg::Int(i),
                    D::Float(f) => Arg::Float(f),
                    D::Bool(b) => Arg::Bool(b),
                    D::Str(s) => Arg::Str(s.to_string()),
                };
                args.insert(p.name.to_string(), a);
            }
            out.push((
                Step {
                    id,
                    op,
                    inputs: vec![],
                    args,
                    span: item.span,
                },
                inputs,
            ));
        }
        out
    }

    fn outputs(&mut self, node: &Node, steps: &[Unresolved]) -> Vec<Output> {
        let Value::Seq(items) = &node.value else {
            self.err(
                node.span,
                format!("`outputs` must be a list, found {}", node.value.kind()),
            );
            return vec![];
        };
        let mut out = Vec::new();
        for item in items {
            let Some(entries) = item.entries() else {
                self.err(item.span, "an output is a mapping with `step` and `path`");
                continue;
            };
            for (k, _) in entries {
                let key = k.as_str().unwrap_or("");
                if !OUTPUT_KEYS.contains(&key) {
                    let d = Diagnostic::new(k.span, format!("unknown key `{key}` in an output"));
                    self.diags.push(match did_you_mean(key, OUTPUT_KEYS) {
                        Some(h) => d.with_help(h),
                        None => d,
                    });
                }
            }
            let step = match item.get("step") {
                Some(n) => match n.as_str() {
                    Some(s) if steps.iter().any(|(st, _)| st.id == s) => s.to_string(),
                    Some(s) => {
                        self.unknown_step(s, n.span, steps);
                        continue;
                    }
                    None => {
                        self.err(n.span, "`step` is a step id");
                        continue;
                    }
                },
                None => {
                    self.err(item.span, "output without a `step`");
                    continue;
                }
            };
            let path = match item.get("path") {
                Some(n) => match self.typed(n, ParamType::Path, "`path`") {
                    Some(Arg::Str(s)) => s,
                    _ => continue,
                },
                None => {
                    self.err(item.span, "output without a `path`");
                    continue;
                }
            };
            let format = item.get("format").and_then(|n| {
                match self.typed(
                    n,
                    ParamType::Choice(&["h5ad", "zarr2", "zarr3"]),
                    "`format`",
                ) {
                    Some(Arg::Str(s)) => Some(s),
                    _ => None,
                }
            });
            let chunks = item.get("chunks").and_then(|n| match &n.value {
                Value::Seq(v) => v
                    .iter()
                    .map(|x| match &x.value {
                        Value::Int(i) if *i > 0 => Some(*i as u64),
                        Value::Str(s) if s == "all" => Some(0),
                        _ => {
                            self.err(x.span, "a chunk size is a positive integer or `all`");
                            None
                        }
                    })
                    .collect::<Option<Vec<u64>>>(),
                _ => {
                    self.err(n.span, "`chunks` is a list like [1000, all]");
                    None
                }
            });
            let compression = item.get("compression").and_then(|n| {
                match self.typed(n, ParamType::Str, "`compression`") {
                    Some(Arg::Str(s)) => Some(s),
                    _ => None,
                }
            });
            out.push(Output {
                step,
                path,
                format,
                chunks,
                compression,
                span: item.span,
            });
        }
        out
    }

    fn unknown_step(&mut self, s: &str, span: Span, steps: &[Unresolved]) {
        let d = Diagnostic::new(span, format!("no step with id `{s}`"));
        self.diags.push(
            match did_you_mean(s, steps.iter().map(|(st, _)| st.id.as_str())) {
                Some(h) => d.with_help(h),
                None => d,
            },
        );
    }

    /// Resolves inputs and orders steps so inputs come first; reports dangling references and
    /// cycles. The DAG comes from the references, never from the order in the file.
    fn order(&mut self, steps: Vec<Unresolved>) -> Vec<Step> {
        let index: HashMap<String, usize> = steps
            .iter()
            .enumerate()
            .map(|(i, (s, _))| (s.id.clone(), i))
            .collect();
        let mut edges: Vec<Vec<usize>> = vec![vec![]; steps.len()];
        for (i, (step, inputs)) in steps.iter().enumerate() {
            for (name, span) in inputs {
                match index.get(name) {
                    Some(&j) if j == i => {
                        self.err(*span, format!("step `{}` uses itself as input", step.id))
                    }
                    Some(&j) => edges[i].push(j),
                    None => self.unknown_step(name, *span, &steps),
                }
            }
        }
        // Depth-first topological sort; a grey node seen again closes a cycle.
        let mut state = vec![0u8; steps.len()];
        let mut order = Vec::with_capacity(steps.len());
        fn visit(
            i: usize,
            edges: &[Vec<usize>],
            state: &mut [u8],
            order: &mut Vec<usize>,
            cycle: &mut Option<usize>,
        ) {
            state[i] = 1;
            for &j in &edges[i] {
                match state[j] {
                    0 => visit(j, edges, state, order, cycle),
                    1 => *cycle = cycle.or(Some(j)),
                    _ => {}
                }
            }
            state[i] = 2;
            order.push(i);
        }
        for i in 0..steps.len() {
            if state[i] == 0 {
                let mut cycle = None;
                visit(i, &edges, &mut state, &mut order, &mut cycle);
                if let Some(j) = cycle {
                    let (s, inputs) = &steps[j];
                    let span = inputs.first().map_or(s.span, |(_, sp)| *sp);
                    self.err(span, format!("steps form a cycle through `{}`", s.id));
                }
            }
        }
        let mut steps: Vec<Option<Unresolved>> = steps.into_iter().map(Some).collect();
        order
            .into_iter()
            .filter_map(|i| steps[i].take())
            .map(|(mut s, inputs)| {
                s.inputs = inputs.into_iter().map(|(n, _)| n).collect();
                s
            })
            .collect()
    }
}

fn infer_type(v: &Value) -> ParamType {
    match v {
        Value::Int(_) => ParamType::Int,
        Value::Float(_) => ParamType::Float,
        Value::Bool(_) => ParamType::Bool,
        _ => ParamType::Str,
    }
}

fn parse_override(raw: &str, ty: ParamType) -> Option<Arg> {
    match ty {
        ParamType::Int => raw.replace('_', "").parse().ok().map(Arg::Int),
        ParamType::Float => raw.parse().ok().map(Arg::Float),
        ParamType::Bool => match raw {
            "true" => Some(Arg::Bool(true)),
            "false" => Some(Arg::Bool(false)),
            _ => None,
        },
        ParamType::Str | ParamType::Path => Some(Arg::Str(raw.to_string())),
        ParamType::Indices => crate::index_expr::parse(raw)
            .is_ok()
            .then(|| Arg::Str(raw.to_string())),
        ParamType::Choice(c) => c.contains(&raw).then(|| Arg::Str(raw.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
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
    fn steps_follow_references_not_file_order() {
        let spec = parse_yaml("p.yaml", GOOD, &[]).unwrap();
        let ids: Vec<&str> = spec.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["data", "scaled", "pcs", "graph", "clusters"]);
        let pcs = spec.step("pcs").unwrap();
        assert_eq!(pcs.arg("n_comps"), &Arg::Int(10));
        assert_eq!(
            pcs.arg("svd_solver"),
            &Arg::Str("auto".into()),
            "defaults are filled in"
        );
        assert_eq!(spec.step("data").unwrap().arg("n_obs"), &Arg::Int(1000));
        assert_eq!(
            spec.step("data").unwrap().arg("cluster_std"),
            &Arg::Float(1.0)
        );
        assert_eq!(spec.step("graph").unwrap().arg("n_pcs"), &Arg::Null);
        assert_eq!(spec.outputs[0].path, "out/result.h5ad");
        assert_eq!(spec.outputs[0].chunks, Some(vec![100, 0]));
    }

    #[test]
    fn params_can_be_overridden() {
        let o = vec![
            ("n_obs".to_string(), "5_000_000".to_string()),
            ("out".to_string(), "/data".to_string()),
        ];
        let spec = parse_yaml("p.yaml", GOOD, &o).unwrap();
        assert_eq!(
            spec.step("data").unwrap().arg("n_obs"),
            &Arg::Int(5_000_000)
        );
        assert_eq!(spec.outputs[0].path, "/data/result.h5ad");
        let bad = vec![("n_obs".to_string(), "many".to_string())];
        let e = parse_yaml("p.yaml", GOOD, &bad).unwrap_err();
        assert_eq!(
            e.items[0].message,
            "--param n_obs=many: expected an integer"
        );
        let unknown = vec![("n_ob".to_string(), "3".to_string())];
        let e = parse_yaml("p.yaml", GOOD, &unknown).unwrap_err();
        assert_eq!(e.items[0].help.as_deref(), Some("did you mean `n_obs`?"));
    }

    #[test]
    fn a_misspelt_key_in_a_typed_parameter_is_reported() {
        let src = "version: 1\nparams:\n  k: {type: int, defualt: 3}\nsteps:\n  - id: data\n    op: synthetic\n";
        let e = parse_yaml("p.yaml", src, &[]).unwrap_err();
        let d = &e.items[0];
        assert_eq!((d.span.line, d.span.col), (3, 18));
        assert_eq!(d.message, "unknown key `defualt` in parameter `k`");
        assert_eq!(d.help.as_deref(), Some("did you mean `default`?"));
    }

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
