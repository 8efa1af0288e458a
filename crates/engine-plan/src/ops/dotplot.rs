//! `dotplot` and `stacked_violin`: a row per group and a column per gene (scanpy's
//! `sc.pl.dotplot`, `sc.pl.stacked_violin` and their `rank_genes_groups_` forms), to PNG, SVG
//! or PDF. The two share how genes, groups, raw values and the dendrogram are chosen.

use super::plot::{dpi, image_path};
use super::{Bind, LogicalOp, Reads};
use crate::plan::Op;
use crate::schema::{ColType, Schema};
use engine_common::Result;

/// Which genes a dot plot shows.
#[derive(Debug, Clone, PartialEq)]
pub enum DotGenes {
    /// These, in this order (`var_names`).
    Names(Vec<String>),
    /// Each group's top `n_genes` in `uns[key]['names']`, bracketed by group
    /// (`rank_genes_groups_dotplot`); `groups` limits the groups.
    Ranked {
        key: String,
        n_genes: usize,
        groups: Option<Vec<String>>,
    },
}

/// What each group × gene cell of the plot shows.
#[derive(Debug, Clone, PartialEq)]
pub enum MarkerKind {
    /// A dot: its area the fraction of the group's cells expressing the gene (a value above
    /// `expression_cutoff`), its colour their mean (over the expressing cells only with
    /// `mean_only_expressed`).
    Dots {
        expression_cutoff: f64,
        mean_only_expressed: bool,
    },
    /// A violin of the group's values, coloured by their median (`sc.pl.stacked_violin`).
    StackedViolin,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Dotplot {
    pub kind: MarkerKind,
    pub groupby: String,
    pub genes: DotGenes,
    /// The step whose X and genes give the values (scanpy's `use_raw`): the op's second
    /// input.
    pub raw: Option<String>,
    /// `var` or `group`: scaled to 0..1 per gene or per group (the dots' colours) or per
    /// cell (the violins' values), as scanpy does.
    pub standard_scale: Option<String>,
    /// Groups ordered by scanpy's dendrogram (from `X_pca`) and the tree drawn beside them.
    pub dendrogram: bool,
    pub path: String,
    pub title: Option<String>,
    pub dpi: u32,
}

impl Dotplot {
    pub(crate) fn bind(b: &Bind<'_>, stacked_violin: bool) -> Result<(Op, Schema)> {
        let step = b.step;
        let s = b.input_schema();
        let key = step
            .arg("key")
            .as_str()
            .unwrap_or("rank_genes_groups")
            .to_string();
        let n_genes = step.arg("n_genes").as_i64();
        let genes = match (b.names("var_names"), n_genes) {
            (Some(_), Some(_)) => {
                return Err(b.error(
                    "`var_names` and `n_genes` are mutually exclusive (as in scanpy): give one",
                ));
            }
            (Some(v), None) if v.is_empty() => {
                return Err(b.error("`var_names` names no gene"));
            }
            (Some(v), None) => {
                // The values' genes: `raw`'s (the op's last input) or the input's.
                let values = if step.arg("raw").as_str().is_some() {
                    b.inputs.last()
                } else {
                    b.inputs.first()
                };
                if let Some(problem) = values.and_then(|&i| b.missing_gene(&v, i)) {
                    return Err(b.error(format!("`var_names`: {problem}")));
                }
                if step.arg("groups").as_str().is_some() {
                    return Err(b.error(
                        "`groups` picks the groups of `uns[key]` whose top genes are shown; with `var_names`, leave it out",
                    ));
                }
                DotGenes::Names(v)
            }
            (None, n) => {
                let n_genes = match n {
                    None => 10,
                    Some(n) if n >= 1 => n as usize,
                    Some(n) => {
                        return Err(b.error(format!("`n_genes` must be at least 1, got {n}")));
                    }
                };
                b.need(
                    &format!("uns['{key}'] (a `rank_genes_groups` step, or give `var_names`)"),
                    s.uns.contains(&key),
                )?;
                DotGenes::Ranked {
                    key: key.clone(),
                    n_genes,
                    groups: b.names("groups"),
                }
            }
        };
        // Without `groupby`, the groups the marker genes were ranked by, as scanpy reads
        // `uns[key]['params']['groupby']`.
        let groupby = match step.arg("groupby").as_str() {
            Some(g) => g.to_string(),
            None => match (&genes, ranked_by(b, &key)) {
                (DotGenes::Ranked { .. }, Some(g)) => g,
                _ => {
                    return Err(b.error(
                        "`groupby` is needed: the categorical obs column whose groups are the rows",
                    ));
                }
            },
        };
        match s.obs.iter().find(|(c, _)| *c == groupby) {
            Some((_, ColType::Category)) => {}
            Some((_, t)) => {
                return Err(b.error(format!(
                    "`groupby` obs['{groupby}'] is {}, and groups need a categorical column",
                    t.name()
                )));
            }
            None => {
                return Err(b.error(format!("`groupby`: the input has no obs['{groupby}']")));
            }
        }
        // scanpy's default: a dendrogram for ranked genes (`rank_genes_groups_dotplot`), none
        // for a gene list (`dotplot`); it clusters the groups' mean `X_pca`.
        let has_pca = s.obsm.iter().any(|(k, _)| k == "X_pca");
        let dendrogram = match step.arg("dendrogram").as_bool() {
            Some(true) if !has_pca => {
                return Err(b.error(
                    "`dendrogram` clusters the groups' mean obsm['X_pca']: the input has none (add a `pca` step first)",
                ));
            }
            Some(d) => d,
            None => matches!(genes, DotGenes::Ranked { .. }) && has_pca,
        };
        let kind = if stacked_violin {
            MarkerKind::StackedViolin
        } else {
            let expression_cutoff = step.arg("expression_cutoff").as_f64().unwrap_or(0.0);
            if !expression_cutoff.is_finite() {
                return Err(b.error(format!(
                    "`expression_cutoff` must be a finite number, got {expression_cutoff}"
                )));
            }
            MarkerKind::Dots {
                expression_cutoff,
                mean_only_expressed: step.arg("mean_only_expressed").as_bool().unwrap_or(false),
            }
        };
        let op = Op::Dotplot(Dotplot {
            kind,
            groupby,
            genes,
            raw: step.arg("raw").as_str().map(str::to_string),
            standard_scale: step.arg("standard_scale").as_str().map(str::to_string),
            dendrogram,
            path: image_path(b)?,
            title: step.arg("title").as_str().map(str::to_string),
            dpi: dpi(b)?,
        });
        Ok((op, s))
    }
}

/// The `groupby` of the `rank_genes_groups` step upstream that wrote `uns[key]`, or the one
/// recorded in the input file's `uns[key]['params']` (as scanpy reads it).
pub(crate) fn ranked_by(b: &Bind<'_>, key: &str) -> Option<String> {
    let mut at = b.inputs.first().copied();
    while let Some(id) = at {
        let node = b.plan.node(id);
        match &node.op {
            Op::RankGenesGroups(r) if r.key_added == key => return Some(r.groupby.clone()),
            Op::Scan(scan) => {
                let crate::plan::Source::File { path, options, .. } = &scan.source else {
                    return None;
                };
                return b.catalog.stored_string(
                    path,
                    options,
                    &format!("uns/{key}/params/groupby"),
                );
            }
            _ => {}
        }
        at = node.inputs.first().copied();
    }
    None
}

impl LogicalOp for Dotplot {
    fn describe(&self) -> String {
        let genes = match &self.genes {
            DotGenes::Names(v) => format!("var_names={}", v.join(",")),
            DotGenes::Ranked {
                key,
                n_genes,
                groups,
            } => format!(
                "top {n_genes} genes per group of uns['{key}']{}",
                groups
                    .as_ref()
                    .map_or(String::new(), |g| format!(" for {}", g.join(",")))
            ),
        };
        let mut text = format!("groupby={}, {genes}", self.groupby);
        if let Some(r) = &self.raw {
            text += &format!(", raw={r}");
        }
        if let MarkerKind::Dots {
            expression_cutoff,
            mean_only_expressed,
        } = self.kind
        {
            if expression_cutoff != 0.0 {
                text += &format!(", expression_cutoff={expression_cutoff}");
            }
            if mean_only_expressed {
                text += ", mean_only_expressed";
            }
        }
        if let Some(s) = &self.standard_scale {
            text += &format!(", standard_scale={s}");
        }
        if self.dendrogram {
            text += ", dendrogram";
        }
        if let Some(t) = &self.title {
            text += &format!(", title={t}");
        }
        if self.dpi != 150 {
            text += &format!(", dpi={}", self.dpi);
        }
        text + &format!(", path={}", self.path)
    }

    /// Its group column and, for ranked genes, the ranking.
    fn reads(&self) -> Reads {
        Reads::Some {
            obs: vec![self.groupby.clone()],
            elements: match &self.genes {
                DotGenes::Ranked { key, .. } => vec![format!("uns/{key}")],
                DotGenes::Names(_) => vec![],
            }
            .into_iter()
            .chain(self.dendrogram.then(|| "obsm/X_pca".to_string()))
            .collect(),
        }
    }
}
