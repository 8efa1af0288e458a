//! A node converted to a typed argument and checked against its [`ParamType`].

use super::params::parse_override;
use super::{Arg, Cx};
use crate::diag::{Diagnostic, Span, did_you_mean};
use crate::ops::ParamType;
use crate::tree::{Node, Value};

impl Cx {
    /// Converts a node to a typed argument, substituting `${param}` references.
    pub(super) fn typed(&mut self, node: &Node, ty: ParamType, what: &str) -> Option<Arg> {
        let value = match &node.value {
            Value::Str(s) if s.contains("${") => match self.substitute(s, node.span) {
                Some(Arg::Str(text))
                    if !matches!(
                        ty,
                        ParamType::Str
                            | ParamType::Path
                            | ParamType::Choice(_)
                            | ParamType::Indices
                            | ParamType::Step
                            | ParamType::Names
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
            // A YAML list of names is their comma-separated text.
            Value::Seq(items) if ty == ParamType::Names => {
                let mut names = Vec::with_capacity(items.len());
                for item in items {
                    match &item.value {
                        Value::Str(s) if !s.contains(',') => names.push(s.clone()),
                        Value::Int(i) => names.push(i.to_string()),
                        _ => {
                            self.err(
                                item.span,
                                format!("{what}: each name must be a string without commas"),
                            );
                            return None;
                        }
                    }
                }
                Arg::Str(names.join(","))
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
            (
                Arg::Str(_),
                ParamType::Str | ParamType::Path | ParamType::Step | ParamType::Names,
            ) => true,
            (Arg::Int(_), ParamType::Indices) => true,
            (Arg::Str(text), ParamType::Indices) => {
                if let Err(e) = crate::index_expr::parse(text) {
                    let at = e.at.unwrap_or(0);
                    // Point into the string when it is written inline (after a quote).
                    let quoted = node.span.len > text.len();
                    let span =
                        Span::new(node.span.line, node.span.col + at + usize::from(quoted), 1);
                    self.err(span, format!("{what}: {e}"));
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
}
