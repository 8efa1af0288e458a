//! `steps:` entries: ids, ops looked up in the catalogue, inputs, and arguments type-checked
//! against the op's parameters with defaults filled in.

use super::{Arg, Cx, Step, Unresolved};
use crate::diag::{Diagnostic, Span, did_you_mean};
use crate::ops::{self, DefaultValue as D, ParamType};
use crate::tree::{Node, Value};
use std::collections::{BTreeMap, HashMap};

impl Cx {
    pub(super) fn steps(&mut self, node: &Node) -> Vec<Unresolved> {
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
            // `inputs: [a, b]` reads as well for an operator of many inputs.
            let input_key = match (item.get("input"), item.get("inputs")) {
                (Some(_), Some(n)) => {
                    self.err(n.span, "give `input` or `inputs`, not both");
                    "input"
                }
                (None, Some(_)) => "inputs",
                _ => "input",
            };
            match item.get(input_key) {
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
                    item.get(input_key).map_or(item.span, |n| n.span),
                    format!("op `{op_name}` is a source and takes no `input`"),
                );
            } else if op.inputs > 0 && inputs.len() > op.inputs {
                self.err(
                    item.get(input_key).map_or(item.span, |n| n.span),
                    format!(
                        "op `{op_name}` takes {} input(s), got {}",
                        op.inputs,
                        inputs.len()
                    ),
                );
            }
            let mut args = BTreeMap::new();
            // Steps named by arguments (`raw: logged`) are inputs after the `input`.
            let mut named = Vec::new();
            for (k, v) in entries {
                let key = k.as_str().unwrap_or("");
                if matches!(key, "id" | "op" | "input" | "inputs") {
                    continue;
                }
                // Keeping the last of two values would hide a mistake.
                if args.contains_key(key) {
                    self.err(k.span, format!("`{key}` is given twice"));
                    continue;
                }
                match op.param(key) {
                    Some(p) => {
                        if let Some(a) = self.typed(v, p.ty, &format!("`{key}` of op `{op_name}`"))
                        {
                            if let (ParamType::Step, Arg::Str(s)) = (p.ty, &a) {
                                named.push((s.clone(), v.span));
                            }
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
            inputs.extend(named);
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

    /// `layer: NAME` on a step that takes values (scanpy's `layer=`): a `read` of that layer
    /// of the file the step's input comes from, added as `{id}.layer` and named as the step's
    /// `raw`, so the values are that layer at the step's cells.
    pub(super) fn layers_as_reads(&mut self, steps: &mut Vec<Unresolved>) {
        let mut added = Vec::new();
        for i in 0..steps.len() {
            let (st, inputs) = &steps[i];
            let Arg::Str(layer) = st.arg("layer").clone() else {
                continue;
            };
            if st.op.param("layer").is_none() || st.op.name == "read" {
                continue;
            }
            if !st.arg("raw").is_null() {
                self.err(
                    st.span,
                    format!(
                        "step `{}`: `layer` and `raw` both say where the values come from: give one",
                        st.id
                    ),
                );
                continue;
            }
            // The `read` the input comes from.
            let mut at = inputs.first().map(|(s, _)| s.clone());
            let mut root = None;
            let mut seen = std::collections::HashSet::new();
            while let Some(id) = at.take() {
                if !seen.insert(id.clone()) {
                    break;
                }
                match steps.iter().find(|(s, _)| s.id == id) {
                    Some((s, _)) if s.op.name == "read" => root = Some(s.clone()),
                    Some((_, i)) => at = i.first().map(|(s, _)| s.clone()),
                    None => {}
                }
            }
            let Some(root) = root else {
                self.err(
                    st.span,
                    format!(
                        "step `{}`: `layer` reads a layer of the file its input comes from, and its input does not come from a `read`",
                        st.id
                    ),
                );
                continue;
            };
            let id = format!("{}.layer", st.id);
            let mut args = root.args.clone();
            args.insert("layer".into(), Arg::Str(layer));
            args.insert("use_raw".into(), Arg::Bool(false));
            added.push((
                Step {
                    id: id.clone(),
                    op: root.op,
                    inputs: vec![],
                    args,
                    span: st.span,
                },
                Vec::new(),
            ));
            let span = st.span;
            let (st, inputs) = &mut steps[i];
            st.args.insert("raw".into(), Arg::Str(id.clone()));
            inputs.push((id, span));
        }
        steps.extend(added);
    }
}
