//! `outputs:` entries: which step is written where, and how.

use super::{Arg, Cx, Output, Unresolved};
use crate::diag::{Diagnostic, did_you_mean};
use crate::ops::ParamType;
use crate::tree::{Node, Value};

const OUTPUT_KEYS: [&str; 5] = ["step", "path", "format", "chunks", "compression"];

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
                Value::Seq(v) if v.is_empty() || v.len() > 2 => {
                    self.err(n.span, "`chunks` gives rows and columns, like [1000, all]");
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
}
