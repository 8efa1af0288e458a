//! `outputs:` entries: which step is written where, and how.

use super::{Arg, Cx, ElementStorage, Output, Unresolved};
use crate::diag::{Diagnostic, did_you_mean};
use crate::ops::ParamType;
use crate::tree::{Node, Value};

const OUTPUT_KEYS: [&str; 9] = [
    "step",
    "path",
    "format",
    "chunks",
    "compression",
    "x",
    "raw",
    "layers",
    "storage",
];

const STORAGE_KEYS: [&str; 3] = ["chunks", "shards", "compression"];

impl Cx {
    pub(super) fn outputs(&mut self, node: &Node, steps: &[Unresolved]) -> Vec<Output> {
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
                    Some(s) if self.no_data(s, n.span, steps) => continue,
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
            let chunks = item.get("chunks").and_then(|n| self.shape(n, "`chunks`"));
            let compression = item.get("compression").and_then(|n| {
                match self.typed(n, ParamType::Str, "`compression`") {
                    Some(Arg::Str(s)) => Some(s),
                    _ => None,
                }
            });
            let upstream = |cx: &mut Cx, n: &Node, what: &str| -> Option<String> {
                // A step id, or a `${param}` naming one.
                let s = match &n.value {
                    Value::Str(_) => match cx.typed(n, ParamType::Step, what)? {
                        Arg::Str(s) => s,
                        _ => return None,
                    },
                    _ => {
                        cx.err(n.span, format!("{what} is a step id"));
                        return None;
                    }
                };
                let s = s.as_str();
                if !steps.iter().any(|(st, _)| st.id == s) {
                    cx.unknown_step(s, n.span, steps);
                    return None;
                }
                if cx.no_data(s, n.span, steps) {
                    return None;
                }
                if !is_upstream(steps, s, &step) {
                    cx.err(
                        n.span,
                        format!(
                            "{what}: step `{s}` is not `{step}` or a step before it, so its cells and genes cannot be matched to the output's"
                        ),
                    );
                    return None;
                }
                Some(s.to_string())
            };
            // The output's own step is the default: the same output, the same plan.
            let x = item
                .get("x")
                .and_then(|n| upstream(self, n, "`x`"))
                .filter(|x| *x != step);
            let raw = item.get("raw").and_then(|n| upstream(self, n, "`raw`"));
            let mut layers = Vec::new();
            if let Some(n) = item.get("layers") {
                match n.entries() {
                    Some(entries) => {
                        for (k, v) in entries {
                            let name = k.as_str().unwrap_or_default();
                            if name.is_empty() || name.contains('/') {
                                self.err(k.span, "a layer name is a non-empty name without `/`");
                            } else if let Some(st) = upstream(self, v, &format!("layer `{name}`")) {
                                layers.push((name.to_string(), st));
                            }
                        }
                    }
                    None => self.err(
                        n.span,
                        "`layers` maps layer names to steps, like {counts: data}",
                    ),
                }
            }
            let storage = item
                .get("storage")
                .map(|n| self.storage(n))
                .unwrap_or_default();
            out.push(Output {
                step,
                path,
                format,
                chunks,
                compression,
                x,
                raw,
                layers,
                storage,
                span: item.span,
            });
        }
        out
    }
}

impl Cx {
    /// A chunk or shard shape: `[1000, all]`, or `all` for the whole element.
    fn shape(&mut self, n: &Node, what: &str) -> Option<Vec<u64>> {
        match &n.value {
            Value::Str(s) if s == "all" => Some(vec![0]),
            Value::Seq(v) if v.is_empty() || v.len() > 2 => {
                self.err(
                    n.span,
                    format!("{what} gives rows and columns, like [1000, all]"),
                );
                None
            }
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
                self.err(
                    n.span,
                    format!("{what} is a list like [1000, all], or `all`"),
                );
                None
            }
        }
    }

    /// `storage:`: element (or `*` pattern) to `{chunks, shards, compression}`.
    fn storage(&mut self, node: &Node) -> Vec<ElementStorage> {
        let Some(entries) = node.entries() else {
            self.err(
                node.span,
                "`storage` maps elements to how they are stored, like {X: {chunks: [all, 25]}}",
            );
            return vec![];
        };
        let mut out = Vec::new();
        for (k, v) in entries {
            let element = k.as_str().unwrap_or_default().to_string();
            let Some(fields) = v.entries() else {
                self.err(
                    v.span,
                    "an element's storage is a mapping like {chunks: [all, 25]}",
                );
                continue;
            };
            for (f, _) in fields {
                let key = f.as_str().unwrap_or("");
                if !STORAGE_KEYS.contains(&key) {
                    let d = Diagnostic::new(f.span, format!("unknown key `{key}` in `storage`"));
                    self.diags.push(match did_you_mean(key, STORAGE_KEYS) {
                        Some(h) => d.with_help(h),
                        None => d,
                    });
                }
            }
            let compression = v.get("compression").and_then(|n| {
                match self.typed(n, ParamType::Str, "`compression`") {
                    Some(Arg::Str(s)) => Some(s),
                    _ => None,
                }
            });
            out.push(ElementStorage {
                element,
                chunks: v.get("chunks").and_then(|n| self.shape(n, "`chunks`")),
                shards: v.get("shards").and_then(|n| self.shape(n, "`shards`")),
                compression,
                span: k.span,
            });
        }
        out
    }

    /// A step named by an argument (`raw: logged`) must be the step's input or a step before
    /// it, so the step's cells can be found in it; or a `read` of the file a step before it
    /// reads (its raw, or a layer), which has the same cells.
    pub(super) fn named_steps_upstream(&mut self, steps: &[Unresolved]) {
        for (st, inputs) in steps {
            // A concatenation's inputs are its parts, not values at its cells.
            if st.op.inputs == crate::ops::VARIADIC {
                continue;
            }
            let Some((main, _)) = inputs.first() else {
                continue;
            };
            for (name, span) in &inputs[1..] {
                if steps.iter().any(|(s, _)| &s.id == name)
                    && !is_upstream(steps, name, main)
                    && !reads_an_upstream_file(steps, name, main)
                {
                    self.err(
                        *span,
                        format!(
                            "step `{name}` is not `{main}`, a step before it or a `read` of the file one reads, so the cells of step `{}` cannot be found in it",
                            st.id
                        ),
                    );
                }
            }
        }
    }
}

/// Whether step `name` is a `read` of the same file as a `read` step upstream of `to`.
fn reads_an_upstream_file(steps: &[Unresolved], name: &str, to: &str) -> bool {
    let path_of = |id: &str| {
        steps
            .iter()
            .find(|(s, _)| s.id == id && s.op.name == "read")
            .and_then(|(s, _)| s.arg("path").as_str().map(str::to_string))
    };
    let Some(path) = path_of(name) else {
        return false;
    };
    steps.iter().any(|(s, _)| {
        s.id != name
            && path_of(&s.id).as_deref() == Some(path.as_str())
            && is_upstream(steps, &s.id, to)
    })
}

/// Whether step `from` is `to` or one of its (transitive) inputs.
fn is_upstream(steps: &[Unresolved], from: &str, to: &str) -> bool {
    let inputs: std::collections::HashMap<&str, &Vec<(String, crate::diag::Span)>> =
        steps.iter().map(|(st, i)| (st.id.as_str(), i)).collect();
    let mut stack = vec![to];
    let mut seen = std::collections::HashSet::new();
    while let Some(at) = stack.pop() {
        if at == from {
            return true;
        }
        if !seen.insert(at) {
            continue;
        }
        if let Some(i) = inputs.get(at) {
            stack.extend(i.iter().map(|(i, _)| i.as_str()));
        }
    }
    false
}
