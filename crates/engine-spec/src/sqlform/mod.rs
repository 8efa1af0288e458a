//! The SQL-like pipeline form: a `.sql` file of piped statements that compiles into the same
//! tree the YAML form parses into, so both share one validator and one planner, and errors
//! point into the `.sql` text.
//!
//! ```text
//! PARAM out PATH = 'out';
//! FROM 'pbmc.h5ad' AS data
//!   |> WHERE n_genes > 200 AND cell_type <> 'doublet' AS cells   -- select(where => …)
//!   |> VAR WHERE highly_variable                                -- select(var_where => …)
//!   |> CALL scale(max_value => 10)
//!   |> CALL pca(n_comps => 50) AS pcs;
//! FROM pcs |> CALL plot(color => 'cell_type', path => '${out}/pca.png');
//! WRITE pcs TO '${out}/result.h5ad' WITH (compression => 'gzip');
//! WRITE pcs TO '${out}/result.zarr' WITH (storage => (X => (chunks => [all, 5]),
//!                                                     'layers/*' => (chunks => [all, 25])));
//! ```
//!
//! - `FROM 'path'` reads a dataset (`FROM 'path' WITH (layer => 'counts')` passes `read`'s
//!   arguments), `FROM op(arg => value, …)` starts from a source operator
//!   (e.g. `synthetic`), `FROM name` continues from a named step.
//! - `FROM 'a.h5ad', 'b.zarr' CONCAT (label => 'batch')` reads several datasets as one
//!   (`concat`'s arguments in the parentheses, which may be left out).
//! - `|> CALL op(…)` applies an operator with scanpy's parameter names; `|> WHERE pred` and
//!   `|> VAR WHERE pred` are views by a SQL predicate over obs / var; `AS name` names the step
//!   so later statements and `WRITE` can refer to it (unnamed steps are called after their op).
//! - `PARAM name TYPE = default` declares a parameter (`INT`, `FLOAT`, `BOOL`, `STRING`, `PATH`);
//!   `${name}` uses it, as in YAML. `--` starts a comment.

use crate::diag::{Diagnostic, Span};
use crate::tree::{Node, Value};
use std::collections::HashMap;

mod lexer;
use lexer::{Lexer, Tok};

fn node(span: Span, value: Value) -> Node {
    Node { span, value }
}

fn s(span: Span, text: &str) -> Node {
    node(span, Value::Str(text.to_string()))
}

struct Parser {
    lx: Lexer,
    tok: Tok,
    span: Span,
    steps: Vec<Node>,
    outputs: Vec<Node>,
    params: Vec<(Node, Node)>,
    used_ids: HashMap<String, usize>,
    /// Lists and argument lists being parsed, one inside the other.
    depth: usize,
}

impl Parser {
    fn advance(&mut self) -> Result<(), Diagnostic> {
        let (t, sp) = self.lx.next()?;
        self.tok = t;
        self.span = sp;
        Ok(())
    }

    fn keyword(&self, kw: &str) -> bool {
        matches!(&self.tok, Tok::Ident(i) if i.eq_ignore_ascii_case(kw))
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), Diagnostic> {
        if self.keyword(kw) {
            self.advance()
        } else {
            Err(self.unexpected(&format!("`{kw}`")))
        }
    }

    fn unexpected(&self, want: &str) -> Diagnostic {
        let found = match &self.tok {
            Tok::Ident(i) => format!("`{i}`"),
            Tok::Str(s) => format!("'{s}'"),
            Tok::Int(i) => i.to_string(),
            Tok::Float(f) => f.to_string(),
            Tok::Param(p) => format!("${{{p}}}"),
            Tok::Pipe => "`|>`".into(),
            Tok::Arrow => "`=>`".into(),
            Tok::Sym(c) => format!("`{c}`"),
            Tok::Eof => "the end of the file".into(),
        };
        Diagnostic::new(self.span, format!("expected {want}, found {found}"))
    }

    fn ident(&mut self, what: &str) -> Result<(String, Span), Diagnostic> {
        match &self.tok {
            Tok::Ident(i) => {
                let out = (i.clone(), self.span);
                self.advance()?;
                Ok(out)
            }
            _ => Err(self.unexpected(what)),
        }
    }

    fn sym(&mut self, c: char) -> Result<(), Diagnostic> {
        if self.tok == Tok::Sym(c) {
            self.advance()
        } else {
            Err(self.unexpected(&format!("`{c}`")))
        }
    }

    fn literal(&mut self) -> Result<Node, Diagnostic> {
        if self.depth >= crate::tree::MAX_DEPTH {
            return Err(Diagnostic::new(
                self.span,
                format!("values nest deeper than {} levels", crate::tree::MAX_DEPTH),
            ));
        }
        self.depth += 1;
        let value = self.literal_at_depth();
        self.depth -= 1;
        value
    }

    fn literal_at_depth(&mut self) -> Result<Node, Diagnostic> {
        let span = self.span;
        let value = match &self.tok {
            Tok::Str(s) => Value::Str(s.clone()),
            Tok::Int(i) => Value::Int(*i),
            Tok::Float(f) => Value::Float(*f),
            Tok::Param(p) => Value::Str(format!("${{{p}}}")),
            Tok::Ident(i) if i.eq_ignore_ascii_case("true") => Value::Bool(true),
            Tok::Ident(i) if i.eq_ignore_ascii_case("false") => Value::Bool(false),
            Tok::Ident(i) if i.eq_ignore_ascii_case("null") => Value::Null,
            // A step named in an argument (`raw => logged`).
            Tok::Ident(i) => Value::Str(i.clone()),
            // Nested arguments (`layers => (counts => data)`) as a mapping.
            Tok::Sym('(') => {
                let entries = self.args()?;
                return Ok(node(span, Value::Map(entries)));
            }
            Tok::Sym('[') => {
                self.advance()?;
                let mut items = Vec::new();
                while self.tok != Tok::Sym(']') {
                    items.push(self.literal()?);
                    if self.tok == Tok::Sym(',') {
                        self.advance()?;
                    } else if self.tok != Tok::Sym(']') {
                        return Err(self.unexpected("`,` or `]`"));
                    }
                }
                self.advance()?;
                return Ok(node(span, Value::Seq(items)));
            }
            _ => {
                return Err(self.unexpected(
                    "a value (number, 'string', TRUE, FALSE, NULL, ${param}, a step name, [list] or (name => value, …))",
                ));
            }
        };
        self.advance()?;
        Ok(node(span, value))
    }

    /// `(name => value, …)` as mapping entries.
    fn args(&mut self) -> Result<Vec<(Node, Node)>, Diagnostic> {
        self.sym('(')?;
        let mut out = Vec::new();
        while self.tok != Tok::Sym(')') {
            // A quoted name for what is not an identifier (`'layers/*' => …` in `storage`).
            let (name, span) = match &self.tok {
                Tok::Str(n) => {
                    let out = (n.clone(), self.span);
                    self.advance()?;
                    out
                }
                _ => self.ident("a parameter name")?,
            };
            if self.tok != Tok::Arrow {
                return Err(self.unexpected("`=>` (parameters are passed as name => value)"));
            }
            self.advance()?;
            out.push((s(span, &name), self.literal()?));
            if self.tok == Tok::Sym(',') {
                self.advance()?;
            } else if self.tok != Tok::Sym(')') {
                return Err(self.unexpected("`,` or `)`"));
            }
        }
        self.advance()?;
        Ok(out)
    }

    /// An id for an unnamed step: its op, numbered when the op repeats.
    fn auto_id(&mut self, op: &str) -> String {
        let n = self.used_ids.entry(op.to_string()).or_insert(0);
        *n += 1;
        if *n == 1 {
            op.to_string()
        } else {
            format!("{op}_{n}")
        }
    }

    /// `AS name`, if present.
    fn alias(&mut self) -> Result<Option<(String, Span)>, Diagnostic> {
        if self.keyword("as") {
            self.advance()?;
            return self.ident("a step name after AS").map(Some);
        }
        Ok(None)
    }

    /// A read's arguments: its path, and those of `WITH (layer => 'counts')` if given.
    fn read_args(&mut self, span: Span, path: &str) -> Result<Vec<(Node, Node)>, Diagnostic> {
        let mut args = vec![(s(span, "path"), s(span, path))];
        if self.keyword("with") {
            self.advance()?;
            args.extend(self.args()?);
        }
        Ok(args)
    }

    fn push_step(
        &mut self,
        op: (&str, Span),
        input: Option<(String, Span)>,
        args: Vec<(Node, Node)>,
    ) -> Result<String, Diagnostic> {
        let named = self.alias()?;
        Ok(self.push_named(op, input, args, named))
    }

    /// Adds a step named `named` (or after its op).
    fn push_named(
        &mut self,
        op: (&str, Span),
        input: Option<(String, Span)>,
        mut args: Vec<(Node, Node)>,
        named: Option<(String, Span)>,
    ) -> String {
        let (id, id_span) = match named {
            Some((id, sp)) => {
                self.used_ids.entry(id.clone()).or_insert(1);
                (id, sp)
            }
            None => (self.auto_id(op.0), op.1),
        };
        let mut entries = vec![
            (s(id_span, "id"), s(id_span, &id)),
            (s(op.1, "op"), s(op.1, op.0)),
        ];
        if let Some((inp, sp)) = input {
            entries.push((s(sp, "input"), s(sp, &inp)));
        }
        entries.append(&mut args);
        self.steps.push(node(op.1, Value::Map(entries)));
        id
    }

    /// `FROM 'a', 'b', … [CONCAT (args)] [AS name]`: a `read` per dataset and a `concat` of
    /// them; `first` is the first dataset's `read` arguments, already parsed.
    fn concat_sources(
        &mut self,
        span: Span,
        first: Vec<(Node, Node)>,
    ) -> Result<String, Diagnostic> {
        let mut reads = vec![(span, first)];
        while self.tok == Tok::Sym(',') {
            self.advance()?;
            let at = self.span;
            let path = match self.tok.clone() {
                Tok::Str(p) => p,
                Tok::Param(p) => format!("${{{p}}}"),
                _ => return Err(self.unexpected("another dataset's 'path'")),
            };
            self.advance()?;
            let args = self.read_args(at, &path)?;
            reads.push((at, args));
        }
        let mut ids = Vec::new();
        for (at, args) in reads {
            let id = self.push_named(("read", at), None, args, None);
            ids.push(node(at, Value::Str(id)));
        }
        let mut args = vec![(s(span, "inputs"), node(span, Value::Seq(ids)))];
        let op_span = self.span;
        if self.keyword("concat") {
            self.advance()?;
            if self.tok == Tok::Sym('(') {
                args.extend(self.args()?);
            }
        }
        self.push_step(("concat", op_span), None, args)
    }

    fn statement(&mut self) -> Result<(), Diagnostic> {
        if self.keyword("param") {
            self.advance()?;
            let (name, span) = self.ident("a parameter name")?;
            let mut spec = Vec::new();
            if let Tok::Ident(t) = &self.tok {
                let ty = match t.to_ascii_lowercase().as_str() {
                    "int" | "integer" => "int",
                    "float" | "double" | "real" => "float",
                    "bool" | "boolean" => "bool",
                    "string" | "text" | "varchar" => "string",
                    "path" => "path",
                    other => {
                        return Err(Diagnostic::new(
                            self.span,
                            format!(
                                "unknown parameter type `{other}`: INT, FLOAT, BOOL, STRING or PATH"
                            ),
                        ));
                    }
                };
                spec.push((s(self.span, "type"), s(self.span, ty)));
                self.advance()?;
            }
            if self.tok == Tok::Sym('=') || self.keyword("default") {
                self.advance()?;
                spec.push((s(self.span, "default"), self.literal()?));
            }
            self.params
                .push((s(span, &name), node(span, Value::Map(spec))));
            return Ok(());
        }
        if self.keyword("write") {
            self.advance()?;
            let (step, span) = self.ident("the name of the step to write")?;
            self.expect_kw("to")?;
            let path = self.literal()?;
            let mut entries = vec![
                (s(span, "step"), s(span, &step)),
                (s(path.span, "path"), path),
            ];
            if self.keyword("with") {
                self.advance()?;
                entries.extend(self.args()?);
            }
            self.outputs.push(node(span, Value::Map(entries)));
            return Ok(());
        }
        if !self.keyword("from") {
            return Err(self.unexpected("FROM, WRITE or PARAM"));
        }
        self.advance()?;
        // The source.
        let src_span = self.span;
        let mut current = match self.tok.clone() {
            Tok::Str(path) => {
                self.advance()?;
                let args = self.read_args(src_span, &path)?;
                if self.tok == Tok::Sym(',') {
                    self.concat_sources(src_span, args)?
                } else {
                    self.push_step(("read", src_span), None, args)?
                }
            }
            Tok::Param(p) => {
                self.advance()?;
                let args = self.read_args(src_span, &format!("${{{p}}}"))?;
                if self.tok == Tok::Sym(',') {
                    self.concat_sources(src_span, args)?
                } else {
                    self.push_step(("read", src_span), None, args)?
                }
            }
            Tok::Ident(name) => {
                self.advance()?;
                if self.tok == Tok::Sym('(') {
                    let args = self.args()?;
                    self.push_step((&name, src_span), None, args)?
                } else {
                    // A named step; `AS` gives the continuation a new name only via a stage.
                    name
                }
            }
            _ => return Err(self.unexpected("a 'path', a source like synthetic(…) or a step name")),
        };
        let mut current_span = src_span;
        while self.tok == Tok::Pipe {
            self.advance()?;
            // The keyword is the current token and the lexer stands right after it, so a
            // predicate is read from the raw text that follows.
            let Tok::Ident(kw) = self.tok.clone() else {
                return Err(self.unexpected("CALL, WHERE or VAR WHERE after |>"));
            };
            let kw_span = self.span;
            let input = Some((current.clone(), current_span));
            current = match kw.to_ascii_lowercase().as_str() {
                "call" => {
                    self.advance()?;
                    let (op, op_span) = self.ident("an operator name")?;
                    let args = self.args()?;
                    self.push_step((&op, op_span), input, args)?
                }
                "where" => {
                    let (pred, span) = self.lx.predicate()?;
                    self.advance()?;
                    let args = vec![(s(kw_span, "where"), s(span, &pred))];
                    self.push_step(("select", kw_span), input, args)?
                }
                "var" => {
                    self.lx.skip_space();
                    let (w, _) = self.lx.next()?;
                    if !matches!(&w, Tok::Ident(i) if i.eq_ignore_ascii_case("where")) {
                        return Err(Diagnostic::new(kw_span, "expected VAR WHERE <predicate>"));
                    }
                    let (pred, span) = self.lx.predicate()?;
                    self.advance()?;
                    let args = vec![(s(kw_span, "var_where"), s(span, &pred))];
                    self.push_step(("select", kw_span), input, args)?
                }
                other => {
                    return Err(Diagnostic::new(
                        kw_span,
                        format!(
                            "`{other}` is not a pipe stage: use CALL op(…), WHERE <predicate> or VAR WHERE <predicate>"
                        ),
                    ));
                }
            };
            current_span = kw_span;
        }
        Ok(())
    }
}

/// Parses the SQL-like form into the tree the YAML form gives.
///
/// # Errors
/// A diagnostic at the first syntax error.
pub fn parse(source: &str) -> Result<Node, Diagnostic> {
    let mut p = Parser {
        lx: Lexer::new(source),
        tok: Tok::Eof,
        span: Span::new(1, 1, 1),
        steps: vec![],
        outputs: vec![],
        params: vec![],
        used_ids: HashMap::new(),
        depth: 0,
    };
    p.advance()?;
    while p.tok != Tok::Eof {
        p.statement()?;
        match p.tok {
            Tok::Sym(';') => p.advance()?,
            Tok::Eof => {}
            _ => return Err(p.unexpected("`;`, `|>` or the end of the statement")),
        }
    }
    if p.steps.is_empty() {
        return Err(Diagnostic::new(
            Span::new(1, 1, 1),
            "the pipeline has no steps: start one with FROM",
        ));
    }
    let at = Span::new(1, 1, 1);
    let mut top = vec![(s(at, "version"), node(at, Value::Int(1)))];
    if !p.params.is_empty() {
        top.push((s(at, "params"), node(at, Value::Map(p.params))));
    }
    top.push((s(at, "steps"), node(at, Value::Seq(p.steps))));
    if !p.outputs.is_empty() {
        top.push((s(at, "outputs"), node(at, Value::Seq(p.outputs))));
    }
    Ok(node(at, Value::Map(top)))
}

#[cfg(test)]
mod tests {
    use crate::{parse_sql, parse_yaml};

    const YAML: &str = "version: 1
params:
  out: {type: path, default: o}
steps:
  - id: data
    op: read
    path: in.h5ad
    layer: counts
  - id: cells
    op: select
    input: data
    where: \"n_genes > 200 AND kind = 'a|>b'\"
  - id: select
    op: select
    input: cells
    var_where: highly_variable
  - id: pcs
    op: pca
    input: select
    n_comps: 20
outputs:
  - step: pcs
    path: ${out}/r.h5ad
    compression: gzip
";

    const SQL: &str = "PARAM out PATH = 'o';
-- a comment
FROM 'in.h5ad' WITH (layer => 'counts') AS data
  |> WHERE n_genes > 200 -- don't keep empty cells; (really)
          AND kind = 'a|>b' AS cells
  |> VAR WHERE highly_variable
  |> CALL pca(n_comps => 20) AS pcs;
WRITE pcs TO '${out}/r.h5ad' WITH (compression => 'gzip');
";

    #[test]
    fn the_sql_form_gives_the_yaml_spec() {
        let y = parse_yaml("p.yaml", YAML, &[]).unwrap();
        let s = parse_sql("p.sql", SQL, &[]).unwrap();
        let shape = |p: &crate::PipelineSpec| {
            p.steps
                .iter()
                .map(|st| {
                    let mut args: Vec<String> =
                        st.args.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                    args.sort();
                    format!(
                        "{} {} {:?} {}",
                        st.id,
                        st.op.name,
                        st.inputs,
                        args.join(" ")
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(shape(&s), shape(&y));
        assert_eq!(s.outputs.len(), 1);
        assert_eq!(s.outputs[0].path, y.outputs[0].path);
        assert_eq!(s.outputs[0].compression, y.outputs[0].compression);
    }

    #[test]
    fn per_element_storage_reads_as_in_yaml() {
        let yaml = "version: 1\nsteps:\n  - {id: d, op: read, path: x.h5ad}\noutputs:\n  - step: d\n    path: o.zarr\n    storage:\n      X: {chunks: [all, 5]}\n      layers/*: {chunks: [all, 25], compression: 'zstd:3'}\n";
        let sql = "FROM 'x.h5ad' AS d;\nWRITE d TO 'o.zarr' WITH (storage => (X => (chunks => [all, 5]), 'layers/*' => (chunks => [all, 25], compression => 'zstd:3')));\n";
        let y = parse_yaml("p.yaml", yaml, &[]).unwrap();
        let s = parse_sql("p.sql", sql, &[]).unwrap();
        let strip = |p: &crate::PipelineSpec| -> Vec<(String, Option<Vec<u64>>, Option<String>)> {
            p.outputs[0]
                .storage
                .iter()
                .map(|e| (e.element.clone(), e.chunks.clone(), e.compression.clone()))
                .collect()
        };
        assert_eq!(
            strip(&s),
            vec![
                ("X".to_string(), Some(vec![0, 5]), None),
                (
                    "layers/*".to_string(),
                    Some(vec![0, 25]),
                    Some("zstd:3".to_string())
                ),
            ]
        );
        assert_eq!(strip(&s), strip(&y));
    }

    #[test]
    fn deep_values_are_a_diagnostic() {
        let text = format!(
            "FROM 'x.h5ad' AS d;\nWRITE d TO 'o.h5ad' WITH (layers => {}1{});",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let e = parse_sql("p.sql", &text, &[]).unwrap_err().render();
        assert!(
            e.contains("nest deeper than 64 levels") && e.contains("p.sql:2:"),
            "{e}"
        );
    }

    #[test]
    fn unclosed_quotes_and_parentheses_in_a_predicate_are_errors() {
        // Before, both swallowed the rest of the file, WRITE included, and the run wrote
        // nothing.
        let e = parse_sql(
            "p.sql",
            "FROM 'x.h5ad'\n  |> WHERE (n_genes > 200\n  |> CALL log1p() AS l;\nWRITE l TO 'o.h5ad';\n",
            &[],
        )
        .unwrap_err();
        let text = e.render();
        assert!(
            text.contains("p.sql:2:12") && text.contains("never closed"),
            "{text}"
        );
        let e = parse_sql(
            "p.sql",
            "FROM 'x.h5ad'\n  |> WHERE cell_type = 'B AS b;\nWRITE b TO 'o.h5ad';\n",
            &[],
        )
        .unwrap_err();
        let text = e.render();
        assert!(text.contains("never closed"), "{text}");
        let e = parse_sql("p.sql", "FROM 'x.h5ad' |> WHERE a > 1) AS b;", &[]).unwrap_err();
        assert!(e.render().contains("without a `(`"), "{}", e.render());
        // Quoted names may hold quotes and parentheses.
        parse_sql(
            "p.sql",
            "FROM 'x.h5ad' |> WHERE \"5' UTR (n)\" > 1 AS b;\nWRITE b TO 'o.h5ad';",
            &[],
        )
        .unwrap();
    }

    #[test]
    fn errors_point_into_the_sql_text() {
        let e = parse_sql(
            "p.sql",
            "FROM 'x.h5ad'\n  |> CALL pca(n_comps => 'many')",
            &[],
        )
        .unwrap_err();
        assert!(
            e.render()
                .contains("p.sql:2:26: error: `n_comps` of op `pca` must be an integer"),
            "{}",
            e.render()
        );
        let e = parse_sql("p.sql", "FROM 'x.h5ad' |> CALL pcaa()", &[]).unwrap_err();
        assert!(
            e.render().contains("p.sql:1:23: error: unknown op `pcaa`"),
            "{}",
            e.render()
        );
        let e = parse_sql("p.sql", "FROM 'x.h5ad' |> CALL pca(n_comps 5)", &[]).unwrap_err();
        assert!(
            e.render().contains("p.sql:1:35: error: expected `=>`"),
            "{}",
            e.render()
        );
        let e = parse_sql("p.sql", "FROM 'x.h5ad' |> WHERE", &[]).unwrap_err();
        assert!(
            e.render()
                .contains("p.sql:1:23: error: expected a SQL predicate"),
            "{}",
            e.render()
        );
        let e = parse_sql("p.sql", "WRITE nothing TO 'o.h5ad'; FROM 'x.h5ad'", &[]).unwrap_err();
        assert!(
            e.render()
                .contains("p.sql:1:7: error: no step with id `nothing`"),
            "{}",
            e.render()
        );
    }
}
