//! `rank_genes_groups_plot`: scanpy's marker-gene panels from `uns[key]`'s names and scores.

use super::plot::{format_name, write_image};
use super::{Data, ExecNode, single};
use crate::context::RunContext;
use engine_common::{Error, Result};
use engine_matrix::DynArray;
use engine_plan::RankGenesGroupsPlot;
use engine_store::Value;
use std::borrow::Cow;

#[derive(Debug)]
pub(crate) struct RankGenesGroupsPlotNode {
    pub params: RankGenesGroupsPlot,
}

impl ExecNode for RankGenesGroupsPlotNode {
    fn name(&self) -> &'static str {
        "RankGenesGroupsPlot"
    }

    fn stages(&self) -> Vec<String> {
        let format = format_name(&self.params.path);
        vec![format!(
            "in memory: a panel per group of uns['{}'] -> {format}",
            self.params.key
        )]
    }

    fn is_sink(&self) -> bool {
        true
    }

    fn execute(&self, inputs: Vec<Cow<'_, Data>>, cx: &mut RunContext<'_>) -> Result<Option<Data>> {
        let data = single(inputs, "RankGenesGroupsPlot")?;
        let p = &self.params;
        let step = cx.step().to_string();
        let missing = |what: &str| {
            Error::step(
                &step,
                format!(
                    "uns['{}'] has no {what} (is it a `rank_genes_groups` result?)",
                    p.key
                ),
            )
        };
        let Some(Value::Dict(ranking)) = data.ann.uns.get(&p.key) else {
            return Err(missing("marker genes"));
        };
        let records = |name: &str| match ranking.get(name) {
            Some(Value::Records(fields)) => Ok(fields),
            _ => Err(missing(&format!("`{name}` record array"))),
        };
        let (names, scores) = (records("names")?, records("scores")?);
        let reference = match ranking.get("params") {
            Some(Value::Dict(params)) => match params.get("reference") {
                Some(Value::String(r)) => r.clone(),
                Some(Value::Array(DynArray::Str(a))) if a.len() == 1 => {
                    a.iter().next().cloned().unwrap_or_default()
                }
                _ => "rest".to_string(),
            },
            _ => "rest".to_string(),
        };
        let order: Vec<&str> = match &p.groups {
            Some(g) => g.iter().map(String::as_str).collect(),
            None => names.iter().map(|(f, _)| f.as_str()).collect(),
        };
        let mut panels = Vec::with_capacity(order.len());
        for group in order {
            let field = |fields: &[(String, DynArray)]| {
                fields
                    .iter()
                    .find(|(f, _)| f == group)
                    .map(|(_, a)| a.clone())
            };
            let (Some(DynArray::Str(genes)), Some(score)) = (field(names), field(scores)) else {
                return Err(Error::step(
                    &step,
                    format!(
                        "uns['{}'] ranks no group `{group}` (it ranks {})",
                        p.key,
                        names
                            .iter()
                            .map(|(f, _)| f.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            };
            let score = score
                .to_f64_vec()
                .ok_or_else(|| missing(&format!("numeric scores for `{group}`")))?;
            let n = p.n_genes.min(genes.len()).min(score.len());
            panels.push(engine_plot::RankPanel {
                title: format!("{group} vs. {reference}"),
                genes: genes.iter().take(n).cloned().collect(),
                scores: score[..n].to_vec(),
            });
        }
        let path = &p.path;
        let plot = engine_plot::RankPanels {
            panels,
            n_genes: p.n_genes,
            ncols: p.ncols,
            sharey: p.sharey,
            fontsize: f64::from(p.fontsize),
        };
        write_image(cx, path, p.dpi, |format, dpi, tmp| {
            engine_plot::rank_panels(&plot, format, dpi, tmp)
        })?;
        Ok(None)
    }
}
