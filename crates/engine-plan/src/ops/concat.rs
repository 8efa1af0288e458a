//! `concat`: files read as one AnnData along obs, with `anndata.concat`'s semantics. X stays
//! the sources' chunks side by side: the concatenation is a scan whose source is the list of
//! files, so every selection the optimizer pushes into a scan (rows, genes, obs columns,
//! elements) is split per file by the reader, and nothing is copied until a step or an output
//! reads it.
//!
//! ```text
//! read a ─┐
//! read b ─┼─ concat  =  Scan(concat(a, b, c; join, label, ...))
//! read c ─┘
//! ```

use super::Bind;
use crate::plan::{Op, Scan, Source, Storage};
use crate::schema::{ColType, Schema};
use engine_common::Result;
use engine_matrix::DType;
use engine_store::ReadOptions;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

/// How the genes of the parts are joined (anndata's `join`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    /// The genes every part has, in the first part's order.
    Inner,
    /// Every part's genes (sorted, as pandas' `Index.union`, unless all parts agree); a part
    /// lacking a gene gets `fill_value` there.
    Outer,
}

/// How var columns (`merge`) and uns entries (`uns_merge`) of the parts are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// Elements equal in every part.
    Same,
    /// Elements with one possible value among the parts that have them.
    Unique,
    /// The first part's element for each key.
    First,
    /// Elements only one part has.
    Only,
}

impl Merge {
    pub fn parse(s: &str) -> Option<Merge> {
        Some(match s {
            "same" => Merge::Same,
            "unique" => Merge::Unique,
            "first" => Merge::First,
            "only" => Merge::Only,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Merge::Same => "same",
            Merge::Unique => "unique",
            Merge::First => "first",
            Merge::Only => "only",
        }
    }
}

/// One file of a concatenation.
#[derive(Debug, Clone, PartialEq)]
pub struct ConcatPart {
    /// The `read` step it came from.
    pub step: String,
    pub path: String,
    pub options: ReadOptions,
    pub storage: Storage,
    /// What the file holds.
    pub schema: Schema,
    /// Per gene of the concatenation, its column in this part (`None`: filled).
    pub columns: Arc<Vec<Option<usize>>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Concat {
    pub parts: Vec<ConcatPart>,
    pub join: Join,
    /// An obs column naming each cell's part by its key.
    pub label: Option<String>,
    /// The parts' keys: `keys`, or their positions `0`, `1`, ….
    pub keys: Vec<String>,
    /// Cell names become `name{index_unique}key`.
    pub index_unique: Option<String>,
    /// What an outer join puts where a part lacks a gene: by default 0 when any part's X is
    /// sparse and NaN otherwise, as anndata.
    pub fill_value: Option<f64>,
    pub merge: Option<Merge>,
    pub uns_merge: Option<Merge>,
    /// The genes of the concatenation.
    pub var_names: Arc<Vec<String>>,
}

impl Concat {
    /// Rows of the whole concatenation.
    pub fn n_obs(&self) -> usize {
        self.parts.iter().map(|p| p.schema.n_obs).sum()
    }

    /// Where each part's rows begin, and the end.
    pub fn offsets(&self) -> Vec<usize> {
        let mut at = vec![0];
        for p in &self.parts {
            at.push(at[at.len() - 1] + p.schema.n_obs);
        }
        at
    }

    /// EXPLAIN's text of the source.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "concat({}; join={}",
            self.parts
                .iter()
                .map(|p| format!(
                    "{} ({} {})",
                    p.path,
                    p.storage.encoding.name(),
                    p.storage.dtype
                ))
                .collect::<Vec<_>>()
                .join(", "),
            match self.join {
                Join::Inner => "inner",
                Join::Outer => "outer",
            }
        );
        if let Some(l) = &self.label {
            let _ = write!(s, ", label={l}, keys={}", self.keys.join(","));
        }
        if let Some(u) = &self.index_unique {
            let _ = write!(s, ", index_unique={u}");
        }
        if let Some(f) = self.fill_value {
            let _ = write!(s, ", fill_value={f}");
        }
        if let Some(m) = self.merge {
            let _ = write!(s, ", merge={}", m.name());
        }
        if let Some(m) = self.uns_merge {
            let _ = write!(s, ", uns_merge={}", m.name());
        }
        s + ")"
    }
}

/// Binds `concat`: its inputs must be `read` steps of files.
pub(crate) fn bind(b: &Bind<'_>) -> Result<(Op, Schema)> {
    let step = b.step;
    if step.arg("axis").as_str() == Some("var") {
        return Err(b.error(
            "`axis: var` (side by side along genes) is not supported yet; concat joins cells (`axis: obs`)",
        ));
    }
    if b.inputs.len() < 2 {
        return Err(b.error(format!(
            "`concat` joins two or more `read` steps, got {}",
            b.inputs.len()
        )));
    }
    let mut parts = Vec::new();
    for &id in b.inputs {
        let node = b.plan.node(id);
        let (path, storage, options) = match &node.op {
            Op::Scan(Scan {
                source:
                    Source::File {
                        path,
                        storage,
                        options,
                    },
                ..
            }) => (path, storage, options),
            other => {
                return Err(b.error(format!(
                    "`concat` joins `read` steps of files; input `{}` is a {} step (a concatenation of computed steps is not supported yet: concatenate first, then compute)",
                    node.step,
                    other.name()
                )));
            }
        };
        parts.push(ConcatPart {
            step: node.step.clone(),
            path: path.clone(),
            options: options.clone(),
            storage: storage.clone(),
            schema: node.schema.clone(),
            columns: Arc::new(Vec::new()),
        });
    }
    assemble(b, parts)
}

/// The concatenation of `parts` (their `columns` still to fill) with the step's arguments
/// (`join`, `label`, … or their defaults): a `concat` step's, or a `read` of a glob's.
pub(crate) fn assemble(b: &Bind<'_>, mut parts: Vec<ConcatPart>) -> Result<(Op, Schema)> {
    let step = b.step;
    let join = match step.arg("join").as_str() {
        Some("outer") => Join::Outer,
        _ => Join::Inner,
    };
    let mut names: Vec<Vec<String>> = Vec::new();
    for p in &parts {
        let path = &p.path;
        let var = b
            .catalog
            .var_names(path, &p.options)
            .ok_or_else(|| b.error(format!("the genes (var index) of `{path}` cannot be read")))?;
        let mut seen = HashSet::new();
        if let Some(d) = var.iter().find(|g| !seen.insert(g.as_str())) {
            return Err(b.error(format!(
                "`{path}` names gene `{d}` twice: concat aligns genes by name, so they must be unique (anndata's `var_names_make_unique`)"
            )));
        }
        names.push(var);
    }
    let var_names = join_genes(&names, join);
    for (p, own) in parts.iter_mut().zip(&names) {
        let at: HashMap<&str, usize> = own
            .iter()
            .enumerate()
            .map(|(i, g)| (g.as_str(), i))
            .collect();
        p.columns = Arc::new(
            var_names
                .iter()
                .map(|g| at.get(g.as_str()).copied())
                .collect(),
        );
    }
    let keys = match b.names("keys") {
        Some(k) if k.len() != parts.len() => {
            return Err(b.error(format!(
                "`keys` names {} parts, and concat has {} inputs",
                k.len(),
                parts.len()
            )));
        }
        Some(k) => k,
        None => (0..parts.len()).map(|i| i.to_string()).collect(),
    };
    let fill_value = step.arg("fill_value").as_f64();
    if fill_value.is_some() && join == Join::Inner {
        return Err(b.error(
            "`fill_value` fills the genes a part lacks in an outer join; with `join: inner` there are none",
        ));
    }
    let merge = step.arg("merge").as_str().and_then(Merge::parse);
    let uns_merge = step.arg("uns_merge").as_str().and_then(Merge::parse);
    let label = step.arg("label").as_str().map(str::to_string);
    let concat = Concat {
        parts,
        join,
        label,
        keys,
        index_unique: step.arg("index_unique").as_str().map(str::to_string),
        fill_value,
        merge,
        uns_merge,
        var_names: Arc::new(var_names),
    };
    let schema = schema(&concat);
    Ok((
        Op::Scan(Scan::new(Source::Concat(Arc::new(concat)))),
        schema,
    ))
}

/// The genes of the concatenation, as `anndata.concat` merges the parts' var indexes: pandas'
/// `intersection` (the left's order) or `union` (sorted unless both sides are equal), pair
/// by pair from the first.
pub fn join_genes(names: &[Vec<String>], join: Join) -> Vec<String> {
    let mut it = names.iter();
    let Some(first) = it.next() else {
        return Vec::new();
    };
    let mut acc = first.clone();
    for next in it {
        if *next == acc {
            continue;
        }
        match join {
            Join::Inner => {
                let keep: HashSet<&str> = next.iter().map(String::as_str).collect();
                acc.retain(|g| keep.contains(g.as_str()));
            }
            Join::Outer => {
                if next.is_empty() {
                    continue;
                }
                if acc.is_empty() {
                    acc = next.clone();
                    continue;
                }
                let mut all: Vec<String> = acc.iter().chain(next).cloned().collect();
                all.sort();
                all.dedup();
                acc = all;
            }
        }
    }
    acc
}

/// The concatenation's schema: cells of every part, the joined genes, obs columns of all parts
/// (inner) or any (outer) with pandas' type promotion, the `label` column, the obsm keys every
/// part has, and the var columns and uns keys a merge strategy may keep.
fn schema(c: &Concat) -> Schema {
    let schemas: Vec<&Schema> = c.parts.iter().map(|p| &p.schema).collect();
    let first = schemas[0];
    // anndata builds the filled genes from a given `fill_value` in float64, which makes X
    // float64 wherever a part lacks a gene.
    let filled = c.fill_value.is_some()
        && c.parts
            .iter()
            .any(|p| p.columns.iter().any(Option::is_none));
    let x_dtype = if schemas.iter().all(|s| s.x_dtype == first.x_dtype) && !filled {
        first.x_dtype
    } else {
        Some(DType::F64)
    };
    let mut obs = joined_columns(schemas.iter().map(|s| &s.obs), c.join);
    if let Some(l) = &c.label {
        obs.retain(|(k, _)| k != l);
        obs.push((l.clone(), ColType::Category));
    }
    let var = match c.merge {
        None => Vec::new(),
        Some(Merge::First) => joined_columns(schemas.iter().map(|s| &s.var), Join::Outer),
        Some(Merge::Only) => {
            let all = joined_columns(schemas.iter().map(|s| &s.var), Join::Outer);
            all.into_iter()
                .filter(|(k, _)| schemas.iter().filter(|s| s.has_var(k)).count() == 1)
                .collect()
        }
        // Which of these keep their values is known when they are read.
        Some(Merge::Same | Merge::Unique) => {
            joined_columns(schemas.iter().map(|s| &s.var), Join::Inner)
        }
    };
    let obsm = first
        .obsm
        .iter()
        .filter(|(k, w)| {
            schemas
                .iter()
                .all(|s| s.obsm.iter().any(|(k2, w2)| k2 == k && w2 == w))
        })
        .cloned()
        .collect();
    let uns = match c.uns_merge {
        None => Vec::new(),
        Some(_) => {
            let mut keys: Vec<String> = Vec::new();
            for s in &schemas {
                for k in &s.uns {
                    if !keys.contains(k) {
                        keys.push(k.clone());
                    }
                }
            }
            keys
        }
    };
    Schema {
        n_obs: c.n_obs(),
        n_vars: c.var_names.len(),
        x_dtype,
        x_sparse: schemas.iter().any(|s| s.x_sparse),
        obs_index: if schemas.iter().all(|s| s.obs_index == first.obs_index) {
            first.obs_index.clone()
        } else {
            "_index".into()
        },
        var_index: "_index".into(),
        obs,
        var,
        obsm,
        uns,
        ..Default::default()
    }
}

/// Columns of several frames as `pd.concat(join=…)` keeps them: those in every frame (inner)
/// or in any, in order of appearance (outer); a column some frames lack, or whose types
/// differ, takes the type pandas promotes it to.
fn joined_columns<'a>(
    frames: impl Iterator<Item = &'a Vec<(String, ColType)>>,
    join: Join,
) -> Vec<(String, ColType)> {
    let frames: Vec<&Vec<(String, ColType)>> = frames.collect();
    let mut out: Vec<(String, ColType)> = Vec::new();
    for f in &frames {
        for (k, _) in f.iter() {
            if out.iter().any(|(o, _)| o == k) {
                continue;
            }
            let types: Vec<ColType> = frames
                .iter()
                .filter_map(|g| g.iter().find(|(n, _)| n == k).map(|(_, t)| *t))
                .collect();
            let missing = types.len() < frames.len();
            if missing && join == Join::Inner {
                continue;
            }
            out.push((k.clone(), promote(&types, missing)));
        }
    }
    out
}

/// The type of a concatenated column (anndata's `unify_dtypes`, then pandas).
pub fn promote(types: &[ColType], missing: bool) -> ColType {
    let all = |t: ColType| types.iter().all(|x| *x == t);
    if all(ColType::Category) {
        ColType::Category
    } else if all(ColType::Bool) {
        ColType::Bool
    } else if all(ColType::Int) && !missing {
        ColType::Int
    } else if types
        .iter()
        .all(|t| matches!(t, ColType::Int | ColType::Float))
    {
        ColType::Float
    } else {
        ColType::Str
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    /// pandas: `Index(['b','a','c']).intersection(['c','b'])` is `['b','c']`;
    /// `Index(['b','a']).union(['c','a'])` is `['a','b','c']`; equal indexes stay unsorted.
    #[test]
    fn genes_join_as_pandas_indexes_do() {
        assert_eq!(
            join_genes(&[v(&["b", "a", "c"]), v(&["c", "b"])], Join::Inner),
            v(&["b", "c"])
        );
        assert_eq!(
            join_genes(&[v(&["b", "a"]), v(&["c", "a"])], Join::Outer),
            v(&["a", "b", "c"])
        );
        assert_eq!(
            join_genes(&[v(&["b", "a"]), v(&["b", "a"])], Join::Outer),
            v(&["b", "a"])
        );
    }

    #[test]
    fn columns_promote_as_pandas_does() {
        assert_eq!(promote(&[ColType::Int, ColType::Int], true), ColType::Float);
        assert_eq!(
            promote(&[ColType::Int, ColType::Float], false),
            ColType::Float
        );
        assert_eq!(promote(&[ColType::Int], false), ColType::Int);
        assert_eq!(
            promote(&[ColType::Category, ColType::Str], false),
            ColType::Str
        );
        assert_eq!(promote(&[ColType::Bool], true), ColType::Bool);
    }
}
