//! SQL over the obs and var tables of AnnData datasets, with DataFusion.
//!
//! Each dataset's obs and var become tables (`obs`/`var` when there is one dataset,
//! `name.obs`/`name.var` always). Tables read lazily: schemas come from metadata, and a scan
//! reads only the columns the query projects (predicate columns included). Categoricals are
//! dictionary columns, nullable encodings give SQL NULLs. `gene('CD3E')` in a query over obs
//! is one gene's expression per cell, read from X for just the genes named.

mod error;
mod table;

pub use error::sql_error;

use datafusion::arrow::array::{Array, BooleanArray, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, Value as SqlValue,
    visit_expressions_mut,
};
use engine_common::{Error, Result};
use engine_store::ReadOptions;
use engine_store::{Dataset, Frame};
use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;
use table::{Axis, FrameTable};

/// The prefix of the hidden obs columns `gene('X')` is rewritten to.
const GENE_PREFIX: &str = "gene:";

/// A `gene('NAME')` or `gene('NAME', 'LAYER')` call: a gene, and the layer read instead of X.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GeneRef {
    pub name: String,
    pub layer: Option<String>,
}

impl GeneRef {
    /// The hidden obs column the call is rewritten to: `gene:NAME`, or `gene:LAYER/NAME`.
    fn column(&self) -> String {
        match &self.layer {
            None => format!("{GENE_PREFIX}{}", self.name),
            Some(l) => format!("{GENE_PREFIX}{l}/{}", self.name),
        }
    }

    /// The call as the user wrote it, for messages.
    fn call(&self) -> String {
        match &self.layer {
            None => format!("gene('{}')", self.name),
            Some(l) => format!("gene('{}', '{l}')", self.name),
        }
    }
}

/// A set of datasets to query; a glob's files are one dataset whose tables hold all of
/// their rows.
#[derive(Debug)]
pub struct SqlSession {
    datasets: Vec<(String, Vec<Arc<Dataset>>)>,
    partitions: usize,
}

impl SqlSession {
    pub fn new() -> SqlSession {
        SqlSession {
            datasets: Vec::new(),
            partitions: 0,
        }
    }

    /// Answers queries on one thread, keeping rows in table order (for masks).
    fn ordered(mut self) -> SqlSession {
        self.partitions = 1;
        self
    }

    /// Adds a dataset under `name` (default: the file stem).
    ///
    /// # Errors
    /// When the dataset cannot be opened or the name is taken.
    pub fn add(&mut self, name: Option<&str>, path: &Path) -> Result<()> {
        self.add_with(name, path, &ReadOptions::default())
    }

    /// [`SqlSession::add`], with how a 10x input is read.
    ///
    /// # Errors
    /// As [`SqlSession::add`].
    pub fn add_with(
        &mut self,
        name: Option<&str>,
        path: &Path,
        options: &ReadOptions,
    ) -> Result<()> {
        let glob = engine_store::glob::is_glob(path);
        let name = match name {
            Some(n) => n.to_string(),
            // A glob is named after its directory.
            None if glob => path
                .parent()
                .and_then(|d| d.file_name())
                .and_then(|s| s.to_str())
                .unwrap_or("data")
                .to_string(),
            None => path
                .file_stem()
                .and_then(|s| s.to_str())
                .map(|s| s.trim_end_matches(".h5ad").to_string())
                .unwrap_or_else(|| "data".into()),
        };
        if self.datasets.iter().any(|(n, _)| *n == name) {
            return Err(Error::usage(format!(
                "two datasets are named `{name}`; name them with --data NAME=PATH"
            )));
        }
        let files = if glob {
            engine_store::glob::expand(path)?
        } else {
            vec![path.to_path_buf()]
        };
        let parts = files
            .iter()
            .map(|f| Dataset::open_with(f, options).map(Arc::new))
            .collect::<Result<Vec<_>>>()?;
        self.datasets.push((name, parts));
        Ok(())
    }

    /// A DataFusion context with every dataset's tables, obs tables offering `genes`.
    fn context(&self, genes: &BTreeSet<GeneRef>) -> Result<SessionContext> {
        let mut config = SessionConfig::new().with_information_schema(true);
        // Source spans let errors point at the offending identifier.
        config.options_mut().sql_parser.collect_spans = true;
        if self.partitions > 0 {
            config = config.with_target_partitions(self.partitions);
        }
        let ctx = SessionContext::new_with_config(config);
        let catalog = ctx
            .catalog("datafusion")
            .ok_or_else(|| Error::internal("DataFusion has no default catalog"))?;
        for (name, parts) in &self.datasets {
            let schema = Arc::new(MemorySchemaProvider::new());
            for axis in [Axis::Obs, Axis::Var] {
                let genes = if axis == Axis::Obs {
                    genes.clone()
                } else {
                    BTreeSet::new()
                };
                let t: Arc<dyn datafusion::catalog::TableProvider> = if let [ds] = parts.as_slice()
                {
                    Arc::new(FrameTable::open(ds.clone(), axis, &genes)?)
                } else {
                    Self::union_of_files(&ctx, parts, axis, &genes)?
                };
                schema
                    .register_table(axis.name().to_string(), t.clone())
                    .map_err(|e| Error::internal(e.to_string()))?;
                if self.datasets.len() == 1 {
                    ctx.register_table(axis.name(), t)
                        .map_err(|e| Error::internal(e.to_string()))?;
                }
            }
            catalog
                .register_schema(name, schema)
                .map_err(|e| Error::internal(e.to_string()))?;
        }
        Ok(ctx)
    }

    /// One table of a glob's files: each file's table with a `src_path` column naming it, stacked
    /// by column name (a column some file lacks is NULL there).
    fn union_of_files(
        ctx: &SessionContext,
        parts: &[Arc<Dataset>],
        axis: Axis,
        genes: &BTreeSet<GeneRef>,
    ) -> Result<Arc<dyn datafusion::catalog::TableProvider>> {
        let mut frames = Vec::new();
        for ds in parts {
            let t = Arc::new(FrameTable::open(ds.clone(), axis, genes)?);
            let df = ctx
                .read_table(t)
                .and_then(|df| {
                    let path = ds.path().display().to_string();
                    let mut cols: Vec<datafusion::prelude::Expr> = df
                        .schema()
                        .fields()
                        .iter()
                        .map(|f| {
                            datafusion::prelude::col(datafusion::common::Column::new_unqualified(
                                f.name(),
                            ))
                        })
                        .collect();
                    cols.push(datafusion::prelude::lit(path).alias("src_path"));
                    df.select(cols)
                })
                .map_err(|e| Error::internal(e.to_string()))?;
            frames.push(df);
        }
        let mut it = frames.into_iter();
        let first = it
            .next()
            .ok_or_else(|| Error::internal("a glob without files"))?;
        let all = it
            .try_fold(first, |acc, df| acc.union_by_name(df))
            .map_err(|e| {
                Error::usage(format!(
                    "the files' {} tables cannot be stacked: {e}",
                    axis.name()
                ))
            })?;
        Ok(all.into_view())
    }

    /// Plans `sql`, rewriting `gene('X')` calls into reads of X.
    fn plan(&self, sql: &str) -> Result<(SessionContext, datafusion::logical_expr::LogicalPlan)> {
        check_size(sql)?;
        let probe = SessionContext::new();
        let mut statement = probe
            .state()
            .sql_to_statement(sql, &datafusion::config::Dialect::Generic)
            .map_err(|e| sql_error(sql, &e))?;
        let genes = rewrite_genes(&mut statement)?;
        let ctx = self.context(&genes)?;
        let plan =
            block_on(ctx.state().statement_to_plan(statement)).map_err(|e| sql_error(sql, &e))?;
        // Queries only: no COPY, INSERT, CREATE/DROP, SET; a query never writes or reaches
        // outside the datasets it was given.
        datafusion::execution::context::SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)
            .map_err(|e| {
                Error::usage(format!(
                    "engine sql runs queries only (SELECT, WITH, EXPLAIN): {}",
                    e.strip_backtrace()
                ))
            })?;
        Ok((ctx, plan))
    }

    /// Runs a query and collects its result.
    ///
    /// # Errors
    /// On SQL errors (usage errors pointing into the text) and read failures.
    pub fn query(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let (ctx, plan) = self.plan(sql)?;
        block_on(async {
            let df = ctx.execute_logical_plan(plan).await?;
            let schema = df.schema().inner().clone();
            Ok::<_, datafusion::error::DataFusionError>((schema, df.collect().await?))
        })
        .map_err(|e| sql_error(sql, &e))
    }

    /// Runs a query and writes the result to `path` as CSV, JSON (one object per line) or
    /// Parquet, by extension; the file appears only once complete.
    ///
    /// # Errors
    /// On SQL errors, an unknown extension or write failures.
    pub fn query_to_file(&self, sql: &str, path: &Path, overwrite: bool) -> Result<()> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !matches!(ext, "csv" | "json" | "parquet") {
            return Err(Error::usage(format!(
                "{}: the output format comes from the extension: .csv, .json or .parquet",
                path.display()
            )));
        }
        let target = engine_store::write::AtomicTarget::new(path, overwrite)?;
        let tmp = target.tmp_path().to_string_lossy().to_string();
        let (ctx, plan) = self.plan(sql)?;
        block_on(async {
            use datafusion::dataframe::DataFrameWriteOptions;
            let df = ctx.execute_logical_plan(plan).await?;
            let opts = DataFrameWriteOptions::new().with_single_file_output(true);
            match ext {
                "csv" => df.write_csv(&tmp, opts, None).await?,
                "json" => df.write_json(&tmp, opts, None).await?,
                _ => df.write_parquet(&tmp, opts, None).await?,
            };
            Ok::<_, datafusion::error::DataFusionError>(())
        })
        .map_err(|e| target.blame(sql_error(sql, &e)))?;
        target.commit()
    }
}

impl Default for SqlSession {
    fn default() -> Self {
        SqlSession::new()
    }
}

/// The rows (or, for `Axis::Var`, columns) of a dataset where `predicate` holds, as a mask.
/// NULL counts as false, as in a WHERE clause.
///
/// # Errors
/// On SQL errors (pointing into the predicate) and read failures.
pub fn mask(path: &Path, options: &ReadOptions, var: bool, predicate: &str) -> Result<Vec<bool>> {
    let mut s = SqlSession::new().ordered();
    s.add_with(Some("data"), path, options)?;
    let table = if var { "var" } else { "obs" };
    let (_, batches) = s
        .query(&mask_sql(predicate, table)?)
        .map_err(predicate_error)?;
    let n = {
        let parts = &s.datasets[0].1;
        parts
            .iter()
            .map(|ds| if var { ds.n_vars() } else { ds.n_obs() })
            .sum()
    };
    collect_mask(&batches, n, predicate, table)
}

/// Evaluates `predicate` over an in-memory obs (or var) frame, for `where` steps over columns
/// computed in a pipeline.
///
/// # Errors
/// On SQL errors (usage errors pointing into the predicate).
pub fn mask_frame(frame: &Frame, var: bool, predicate: &str) -> Result<Vec<bool>> {
    let table = if var { "var" } else { "obs" };
    let batch = engine_store::arrow::frame_to_batch(frame)?;
    let n = batch.num_rows();
    let mut config = SessionConfig::new().with_target_partitions(1);
    config.options_mut().sql_parser.collect_spans = true;
    let ctx = SessionContext::new_with_config(config);
    let mem = datafusion::datasource::MemTable::try_new(batch.schema(), vec![vec![batch]])
        .map_err(|e| Error::internal(e.to_string()))?;
    ctx.register_table(table, Arc::new(mem))
        .map_err(|e| Error::internal(e.to_string()))?;
    let sql = mask_sql(predicate, table)?;
    let batches = block_on(async { ctx.sql(&sql).await?.collect().await })
        .map_err(|e| predicate_error(sql_error(&sql, &e)))?;
    collect_mask(&batches, n, predicate, table)
}

/// The query behind a mask. The predicate sits alone on line 2, so error columns are columns
/// of the user's text.
fn mask_sql(predicate: &str, table: &str) -> Result<String> {
    check_size(predicate)
        .map_err(|e| Error::usage(e.to_string().replace("<query>", "<predicate>")))?;
    one_expression(predicate)?;
    Ok(format!(
        "SELECT (\n{predicate}\n) IS TRUE AS keep FROM {table}"
    ))
}

/// How many operators a query may hold. The planner and optimizer walk expressions
/// recursively, so `1 + 1 + … + 1` with 10,000 terms overflowed the stack; a query a person
/// writes holds far fewer.
pub const MAX_OPERATORS: usize = 1000;

/// Refuses a query with more than [`MAX_OPERATORS`] operators, counted on its tokens (the
/// tokenizer is iterative, and nothing recursive has seen the text yet), at the first one past
/// the limit.
fn check_size(sql: &str) -> Result<()> {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::keywords::Keyword;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    let dialect = GenericDialect {};
    // A text the tokenizer refuses is left for the parser to report.
    let Ok(tokens) = Tokenizer::new(&dialect, sql).tokenize_with_location() else {
        return Ok(());
    };
    let mut operators = 0usize;
    for t in tokens {
        let counts = match &t.token {
            Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::Mod
            | Token::DuckIntDiv
            | Token::Eq
            | Token::DoubleEq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq
            | Token::Spaceship
            | Token::StringConcat
            | Token::Ampersand
            | Token::Pipe
            | Token::Caret
            | Token::ShiftLeft
            | Token::ShiftRight
            | Token::LParen => true,
            Token::Word(w) => matches!(
                w.keyword,
                Keyword::AND | Keyword::OR | Keyword::NOT | Keyword::XOR | Keyword::CASE
            ),
            _ => false,
        };
        operators += usize::from(counts);
        if operators > MAX_OPERATORS {
            let l = t.span.start;
            return Err(Error::usage(format!(
                "<query>:{}:{}: error: the query is too large: more than {MAX_OPERATORS} operators",
                l.line, l.column
            )));
        }
    }
    Ok(())
}

/// Refuses a predicate that is not exactly one SQL expression, so the text cannot change the
/// query it is placed in (`true) UNION SELECT (…`).
fn one_expression(predicate: &str) -> Result<()> {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    use datafusion::sql::sqlparser::tokenizer::Token;
    let bad = |m: String| Error::usage(format!("<predicate>: {m}"));
    let dialect = GenericDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(predicate)
        .map_err(|e| bad(e.to_string()))?;
    parser.parse_expr().map_err(|e| bad(e.to_string()))?;
    match parser.peek_token().token {
        Token::EOF => Ok(()),
        t => Err(bad(format!(
            "a predicate is one expression; `{t}` follows it (quote names and strings?)"
        ))),
    }
}

/// A query error re-pointed from the mask query into the predicate.
fn predicate_error(e: Error) -> Error {
    match e {
        Error::Usage(_) => Error::usage(e.to_string().replace("<query>:2:", "<predicate>:1:")),
        other => other,
    }
}

/// The boolean column of a mask query, NULL as false; exactly `n` rows.
fn collect_mask(
    batches: &[RecordBatch],
    n: usize,
    predicate: &str,
    table: &str,
) -> Result<Vec<bool>> {
    let mut out = Vec::with_capacity(n);
    for b in batches {
        let col = b
            .column(0)
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| Error::internal("mask column is not boolean"))?;
        out.extend((0..col.len()).map(|i| col.is_valid(i) && col.value(i)));
    }
    if out.len() != n {
        return Err(Error::usage(format!(
            "`{predicate}` must be one condition on the columns of {table}, not a query"
        )));
    }
    Ok(out)
}

/// Batches as an aligned text table.
///
/// # Errors
/// Only on internal inconsistencies.
pub fn format_table(batches: &[RecordBatch]) -> Result<String> {
    datafusion::arrow::util::pretty::pretty_format_batches(batches)
        .map(|t| t.to_string())
        .map_err(|e| Error::internal(e.to_string()))
}

/// Replaces `gene('NAME')` and `gene('NAME', 'LAYER')` with hidden columns and returns the
/// calls.
fn rewrite_genes(statement: &mut DfStatement) -> Result<BTreeSet<GeneRef>> {
    let DfStatement::Statement(s) = statement else {
        return Ok(BTreeSet::new());
    };
    let mut genes = BTreeSet::new();
    let mut bad = None;
    let quoted = |a: &FunctionArg| match a {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(SqlExpr::Value(v))) => match &v.value {
            SqlValue::SingleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    };
    let _ = visit_expressions_mut(s.as_mut(), |e| {
        if let SqlExpr::Function(f) = e
            && f.name.to_string().eq_ignore_ascii_case("gene")
        {
            let arg = match &f.args {
                FunctionArguments::List(l) => match l.args.as_slice() {
                    [g] => quoted(g).map(|name| GeneRef { name, layer: None }),
                    [g, layer] => quoted(g).zip(quoted(layer)).map(|(name, l)| GeneRef {
                        name,
                        layer: Some(l),
                    }),
                    _ => None,
                },
                _ => None,
            };
            match arg {
                Some(g) => {
                    *e = SqlExpr::Identifier(Ident::with_quote('"', g.column()));
                    genes.insert(g);
                }
                None => bad = Some(f.to_string()),
            }
        }
        ControlFlow::<()>::Continue(())
    });
    if let Some(b) = bad {
        return Err(Error::usage(format!(
            "{b}: gene() takes a gene name and optionally a layer, in single quotes, e.g. gene('CD3E') or gene('CD3E', 'counts')"
        )));
    }
    Ok(genes)
}

/// Runs a future to completion on a private current-thread runtime.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread tokio runtime starts")
        .block_on(f)
}
