//! `rank_genes_groups_violin`: per ranked group, its genes' values gathered in a pass over X
//! (or `raw`'s X at these cells; one pass for all groups with `gene_names`), split into the group's cells and the reference's, a
//! density per side, then seaborn's split violins, one image per group.

use super::dotplot::ranked_genes;
use super::plot::{format_name, gene_source, write_image};
use super::violin::violin_body;
use super::{Data, ExecNode};
use crate::annotations::obs_groups;
use crate::context::RunContext;
use crate::pass::gather_columns;
use engine_common::{Error, Result};
use engine_plan::RankGenesGroupsViolin;
use engine_store::Value;
use std::borrow::Cow;
use std::collections::HashMap;

/// seaborn's default `cut`: each density reaches two bandwidths past the extremes.
const CUT: f64 = 2.0;

#[derive(Debug)]
pub(crate) struct RankGenesGroupsViolinNode {
    pub params: RankGenesGroupsViolin,
}

impl ExecNode for RankGenesGroupsViolinNode {
    fn name(&self) -> &'static str {
        "RankGenesGroupsViolin"
    }

    fn stages(&self) -> Vec<String> {
        let p = &self.params;
        vec![
            format!(
                "pass over {}X per group (one for `gene_names`): its genes' values",
                p.raw.as_ref().map_or(String::new(), |r| format!("{r}'s "))
            ),
            format!(
                "in memory: densities and split violins -> {} per group",
                format_name(&p.path)
            ),
        ]
    }

    fn is_sink(&self) -> bool {
        true
    }

    fn execute(&self, inputs: Vec<Cow<'_, Data>>, cx: &mut RunContext<'_>) -> Result<Option<Data>> {
        let p = &self.params;
        let step = cx.step().to_string();
        let mut inputs = inputs.into_iter();
        let main = inputs
            .next()
            .ok_or_else(|| Error::internal("RankGenesGroupsViolin node without an input"))?;
        let a = &main.ann;
        let raw = inputs.next();
        let (x, var) = gene_source(
            &main,
            raw.as_deref(),
            p.raw.as_deref(),
            "RankGenesGroupsViolin",
        )?;
        let params = match a.uns.get(&p.key) {
            Some(Value::Dict(d)) => match d.get("params") {
                Some(Value::Dict(params)) => Some(params),
                _ => None,
            },
            _ => None,
        };
        let reference = match params.and_then(|d| d.get("reference")) {
            Some(Value::String(r)) => r.clone(),
            _ => "rest".to_string(),
        };
        let (codes, categories) = obs_groups(&a.obs, &p.groupby, &step)?;
        let category = |name: &str| categories.iter().position(|c| c == name);
        let groups: Vec<String> = match &p.groups {
            Some(g) => g.clone(),
            None => match a.uns.get(&p.key) {
                Some(Value::Dict(d)) => match d.get("names") {
                    Some(Value::Records(fields)) => fields.iter().map(|(f, _)| f.clone()).collect(),
                    _ => Vec::new(),
                },
                _ => Vec::new(),
            },
        };
        if groups.is_empty() {
            return Err(Error::step(
                &step,
                format!(
                    "uns['{}'] has no `names` record array of ranked groups (run `rank_genes_groups` first)",
                    p.key
                ),
            ));
        }
        // Two groups whose names differ only by a `/` would write one file.
        let mut paths = HashMap::new();
        for g in &groups {
            if let Some(other) = paths.insert(p.group_path(g), g) {
                return Err(Error::step(
                    &step,
                    format!(
                        "groups `{other}` and `{g}` would both be drawn to {}",
                        p.group_path(g)
                    ),
                ));
            }
        }
        let reference_code = if reference == "rest" {
            None
        } else {
            Some(category(&reference).ok_or_else(|| {
                Error::step(
                    &step,
                    format!(
                        "the reference `{reference}` is not a group of obs['{}']",
                        p.groupby
                    ),
                )
            })?)
        };
        let position: HashMap<String, usize> = (0..var.n_rows())
            .map(|i| (var.index.render(i), i))
            .collect();
        let cols_of = |genes: &[String]| {
            genes
                .iter()
                .map(|g| {
                    position.get(g).copied().ok_or_else(|| {
                        Error::step(
                            &step,
                            format!(
                                "gene `{g}` is not in {}'s var",
                                p.raw.as_deref().unwrap_or("the input")
                            ),
                        )
                    })
                })
                .collect::<Result<Vec<usize>>>()
        };
        // The same genes for every group are gathered once.
        let shared = match &p.gene_names {
            Some(genes) => {
                let cols = cols_of(genes)?;
                let bar = cx.progress("gene values", x.blocks().len());
                let (values, passes) = gather_columns(&x, cx, &bar, &cols)?;
                cx.stage("gene values", passes);
                Some(values)
            }
            None => None,
        };
        for group in &groups {
            let genes = match &p.gene_names {
                Some(g) => g.clone(),
                None => {
                    ranked_genes(
                        &a.uns,
                        &p.key,
                        p.n_genes,
                        Some(std::slice::from_ref(group)),
                        &step,
                    )?
                    .0
                }
            };
            let code = category(group).ok_or_else(|| {
                Error::step(
                    &step,
                    format!(
                        "uns['{}'] ranks `{group}`, which is not a group of obs['{}']",
                        p.key, p.groupby
                    ),
                )
            })?;
            let gathered;
            let values: &[Vec<f32>] = match &shared {
                Some(values) => values,
                None => {
                    let cols = cols_of(&genes)?;
                    let bar = cx.progress("gene values", x.blocks().len());
                    let (values, passes) = gather_columns(&x, cx, &bar, &cols)?;
                    cx.stage("gene values", passes);
                    gathered = values;
                    &gathered
                }
            };
            // Each cell's side: the group's (0), the reference's (1), or neither (a cell of
            // another group when the reference is a group).
            let side: Vec<Option<usize>> = codes
                .iter()
                .map(|&c| {
                    let c = usize::try_from(c).ok();
                    if c == Some(code) {
                        Some(0)
                    } else if reference_code.is_none() || c == reference_code {
                        Some(1)
                    } else {
                        None
                    }
                })
                .collect();
            let split: Vec<[Vec<f32>; 2]> = values
                .iter()
                .map(|column| {
                    let mut halves = [Vec::new(), Vec::new()];
                    for (&v, s) in column.iter().zip(&side) {
                        if let Some(s) = s {
                            halves[*s].push(v);
                        }
                    }
                    halves
                })
                .collect();
            let density = |vals: &[f32]| -> engine_plot::Side {
                let v: Vec<f64> = vals
                    .iter()
                    .filter(|x| x.is_finite())
                    .map(|x| f64::from(*x))
                    .collect();
                if v.is_empty() {
                    return None;
                }
                Some(violin_body(&v, CUT))
            };
            let plot = engine_plot::SplitViolin {
                title: format!("{group} vs. {reference}"),
                sides: split
                    .iter()
                    .map(|[g, r]| [density(g), density(r)])
                    .collect(),
                values: split
                    .iter()
                    .map(|[g, r]| [g.as_slice(), r.as_slice()])
                    .collect(),
                genes,
                split: p.split,
                strip: p.strip,
                jitter: p.jitter,
                size: p.size,
            };
            write_image(cx, &p.group_path(group), p.dpi, |format, dpi, tmp| {
                engine_plot::split_violin(&plot, format, dpi, tmp)
            })?;
        }
        Ok(None)
    }
}
