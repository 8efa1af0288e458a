//! `dotplot`: per group and gene, the fraction of cells expressing the gene and their mean
//! (scanpy's `sc.pl.dotplot` and `sc.pl.rank_genes_groups_dotplot`), to PNG, SVG or PDF.

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

#[derive(Debug, Clone, PartialEq)]
pub struct Dotplot {
    pub groupby: String,
    pub genes: DotGenes,
    /// The step whose X and genes give the values (scanpy's `use_raw`): the op's second
    /// input.
    pub raw: Option<String>,
    /// A cell expresses a gene above this value.
    pub expression_cutoff: f64,
    /// Means over the expressing cells only.
    pub mean_only_expressed: bool,
    /// `var` or `group`: colours scaled to 0..1 per gene or per group.
    pub standard_scale: Option<String>,
    /// Groups ordered by scanpy's dendrogram (from `X_pca`) and the tree drawn beside them.
    pub dendrogram: bool,
    pub path: String,
    pub title: Option<String>,
    pub dpi: u32,
}

impl Dotplot {
    pub(crate) fn bind(b: &Bind<'_>) -> Result<(Op, Schema)> {
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
        let expression_cutoff = step.arg("expression_cutoff").as_f64().unwrap_or(0.0);
        if !expression_cutoff.is_finite() {
            return Err(b.error(format!(
                "`expression_cutoff` must be a finite number, got {expression_cutoff}"
            )));
        }
        let op = Op::Dotplot(Dotplot {
            groupby,
            genes,
            raw: step.arg("raw").as_str().map(str::to_string),
            expression_cutoff,
            mean_only_expressed: step.arg("mean_only_expressed").as_bool().unwrap_or(false),
            standard_scale: step.arg("standard_scale").as_str().map(str::to_string),
            dendrogram,
            path: image_path(b)?,
            title: step.arg("title").as_str().map(str::to_string),
            dpi: dpi(b)?,
        });
        Ok((op, s))
    }
}

/// The `groupby` of the `rank_genes_groups` step upstream that wrote `uns[key]`.
fn ranked_by(b: &Bind<'_>, key: &str) -> Option<String> {
    let mut at = b.inputs.first().copied();
    while let Some(id) = at {
        let node = b.plan.node(id);
        if let Op::RankGenesGroups(r) = &node.op
            && r.key_added == key
        {
            return Some(r.groupby.clone());
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
        if self.expression_cutoff != 0.0 {
            text += &format!(", expression_cutoff={}", self.expression_cutoff);
        }
        if self.mean_only_expressed {
            text += ", mean_only_expressed";
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
