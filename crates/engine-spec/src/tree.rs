//! YAML parsed into a small tree whose every node knows where it came from.
//!
//! saphyr does the YAML 1.2 parsing and keeps positions; this module flattens its generic
//! node type into the few shapes a pipeline uses.

use crate::diag::{Diagnostic, Span};
use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

/// A YAML value with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub span: Span,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys in document order, each with its own span.
    Map(Vec<(Node, Node)>),
}

impl Value {
    /// What the user wrote, named for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Entries of a mapping node.
    pub fn entries(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The value for `key` in a mapping node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }
}

fn span_of(y: &MarkedYaml<'_>) -> Span {
    let s = y.span.start;
    let e = y.span.end;
    let len = if e.line() == s.line() {
        e.col().saturating_sub(s.col())
    } else {
        1
    };
    Span::new(s.line(), s.col() + 1, len.max(1))
}

fn convert(y: &MarkedYaml<'_>) -> Result<Node, Diagnostic> {
    let span = span_of(y);
    let value = match &y.data {
        YamlData::Value(s) => match s {
            Scalar::Null => Value::Null,
            Scalar::Boolean(b) => Value::Bool(*b),
            Scalar::Integer(i) => Value::Int(*i),
            Scalar::FloatingPoint(f) => Value::Float(f.into_inner()),
            Scalar::String(s) => Value::Str(s.to_string()),
        },
        YamlData::Representation(s, _, _) => Value::Str(s.to_string()),
        YamlData::Sequence(items) => {
            Value::Seq(items.iter().map(convert).collect::<Result<_, _>>()?)
        }
        YamlData::Mapping(m) => Value::Map(
            m.iter()
                .map(|(k, v)| Ok((convert(k)?, convert(v)?)))
                .collect::<Result<_, _>>()?,
        ),
        YamlData::Tagged(_, inner) => return convert(inner),
        YamlData::Alias(_) => {
            return Err(Diagnostic::new(
                span,
                "YAML aliases are not supported in pipelines",
            ));
        }
        YamlData::BadValue => return Err(Diagnostic::new(span, "this value cannot be read")),
    };
    Ok(Node { span, value })
}

/// How deeply lists and mappings may nest. A pipeline needs about five levels; the limit keeps
/// the recursive tree walks (and their drops) far from the end of the stack.
pub const MAX_DEPTH: usize = 64;

/// Refuses text nested deeper than [`MAX_DEPTH`], at the first node past it. The event parser
/// is iterative, so this runs before anything recursive sees the text; syntax errors are left
/// for the loader to report.
fn check_depth(source: &str) -> Result<(), Diagnostic> {
    use saphyr_parser::{Event, Parser};
    let mut depth = 0usize;
    for event in Parser::new_from_str(source) {
        let Ok((event, span)) = event else {
            return Ok(());
        };
        match event {
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    let m = span.start;
                    return Err(Diagnostic::new(
                        Span::new(m.line(), m.col() + 1, 1),
                        format!("lists and mappings nest more than {MAX_DEPTH} levels deep here"),
                    ));
                }
            }
            Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Parses pipeline text into a tree.
///
/// # Errors
/// A diagnostic at the first YAML syntax error, at nesting deeper than [`MAX_DEPTH`], or when
/// the text holds no document or more than one.
pub fn parse(source: &str) -> Result<Node, Diagnostic> {
    check_depth(source)?;
    let docs = MarkedYaml::load_from_str(source).map_err(|e| {
        let m = e.marker();
        Diagnostic::new(
            Span::new(m.line(), m.col() + 1, 1),
            format!("invalid YAML: {}", e.info()),
        )
    })?;
    match docs.as_slice() {
        [doc] => convert(doc),
        [] => Err(Diagnostic::new(
            Span::new(1, 1, 1),
            "the file is empty: expected a pipeline with `steps`",
        )),
        [_, second, ..] => Err(Diagnostic::new(
            span_of(second),
            "only one YAML document per pipeline file",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_point_at_keys_and_values() {
        let n = parse("version: 1\nsteps:\n  - id: pca\n    n_comps: 30\n").unwrap();
        let (k, v) = &n.entries().unwrap()[0];
        assert_eq!((k.span.line, k.span.col, k.span.len), (1, 1, 7));
        assert_eq!(v.value, Value::Int(1));
        let step = &n.get("steps").unwrap();
        let Value::Seq(items) = &step.value else {
            panic!()
        };
        let (k, v) = &items[0].entries().unwrap()[1];
        assert_eq!(k.as_str(), Some("n_comps"));
        assert_eq!((k.span.line, k.span.col), (4, 5));
        assert_eq!(
            (v.span.line, v.span.col, v.value.clone()),
            (4, 14, Value::Int(30))
        );
    }

    #[test]
    fn deep_nesting_is_refused_at_the_place() {
        // Block style: each level one more indent; 2,000 levels overflowed the stack before.
        let mut text = String::new();
        for i in 0..2000 {
            text.push_str(&" ".repeat(i));
            text.push_str("a:\n");
        }
        let e = parse(&text).unwrap_err();
        assert_eq!((e.span.line, e.span.col), (MAX_DEPTH + 1, MAX_DEPTH + 1));
        assert!(e.message.contains("nest more than 64"), "{}", e.message);
        // Flow style, and one level under the limit still parses.
        let flow = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        assert!(parse(&flow).is_err());
        let ok = format!("{}1{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("steps:\n  - id: a\n   bad: [1, 2\n").unwrap_err();
        assert!(e.span.line >= 3, "{e:?}");
        assert!(e.message.starts_with("invalid YAML"));
    }
}
