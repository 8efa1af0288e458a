//! `violin`: the keys' values per cell (genes gathered in one pass over X, or `raw`'s X at
//! these cells; obs columns as they are), a density per key and group, then seaborn's violins.

use super::plot::{format_name, gene_source, stored_colours, write_image};
use super::{Data, ExecNode};
use crate::annotations::{numeric_values, obs_groups};
use crate::context::RunContext;
use crate::pass::gather_columns;
use engine_common::{Error, Result};
use engine_plan::{Violin, ViolinKey};
use std::borrow::Cow;

/// Points along each violin (seaborn's `gridsize`).
const GRID: usize = 100;

/// One violin of `values`: seaborn's density, cut `cut` bandwidths past the extremes, or
/// (`Err`) the line at their mean when they do not vary.
pub(super) fn violin_body(values: &[f64], cut: f64) -> std::result::Result<engine_plot::Body, f64> {
    match engine_ops::kde::violin_density(values, GRID, cut) {
        Some((support, density)) => Ok(engine_plot::Body { support, density }),
        None => Err(values.iter().sum::<f64>() / values.len().max(1) as f64),
    }
}

#[derive(Debug)]
pub(crate) struct ViolinNode {
    pub params: Violin,
}

impl ExecNode for ViolinNode {
    fn name(&self) -> &'static str {
        "Violin"
    }

    fn stages(&self) -> Vec<String> {
        let format = format_name(&self.params.path);
        let genes: Vec<&str> = self
            .params
            .keys
            .iter()
            .filter_map(|k| match k {
                ViolinKey::Gene(g) => Some(g.as_str()),
                ViolinKey::Obs(_) => None,
            })
            .collect();
        let mut stages = Vec::new();
        if !genes.is_empty() {
            stages.push(format!(
                "pass over {}X: the values of {}",
                self.params
                    .raw
                    .as_ref()
                    .map_or(String::new(), |r| format!("{r}'s ")),
                genes.join(", ")
            ));
        }
        stages.push(format!("in memory: densities and violins -> {format}"));
        stages
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
            .ok_or_else(|| Error::internal("Violin node without an input"))?;
        let raw = inputs.next();
        let a = &main.ann;
        let n = a.obs.n_rows();
        // The genes' values, in one pass.
        let genes: Vec<&str> = p
            .keys
            .iter()
            .filter_map(|k| match k {
                ViolinKey::Gene(g) => Some(g.as_str()),
                ViolinKey::Obs(_) => None,
            })
            .collect();
        let mut gathered = if genes.is_empty() {
            Vec::new()
        } else {
            let (x, var) = gene_source(&main, raw.as_deref(), p.raw.as_deref(), "Violin")?;
            let names: Vec<String> = (0..var.n_rows()).map(|i| var.index.render(i)).collect();
            let cols = genes
                .iter()
                .map(|g| {
                    names.iter().position(|v| v == g).ok_or_else(|| {
                        Error::step(
                            &step,
                            format!(
                                "gene `{g}` is not in {}'s var",
                                p.raw.as_deref().unwrap_or("the input")
                            ),
                        )
                    })
                })
                .collect::<Result<Vec<usize>>>()?;
            let bar = cx.progress("gene values", x.blocks().len());
            let (values, blocks) = gather_columns(&x, cx, &bar, &cols)?;
            cx.stage("gene values", blocks);
            values
        }
        .into_iter();
        let mut values: Vec<Vec<f32>> = Vec::with_capacity(p.keys.len());
        for k in &p.keys {
            values.push(match k {
                ViolinKey::Gene(_) => gathered
                    .next()
                    .ok_or_else(|| Error::internal("a gene's values were not gathered"))?,
                ViolinKey::Obs(c) => {
                    let col = a
                        .obs
                        .column(c)
                        .ok_or_else(|| Error::step(&step, format!("no obs['{c}']")))?;
                    numeric_values(col)
                        .ok_or_else(|| Error::step(&step, format!("obs['{c}'] is not numeric")))?
                        .into_iter()
                        .map(|v| v as f32)
                        .collect()
                }
            });
        }
        // The groups: the column's categories, or one per key (each its own panel).
        let (codes, groups, colours): (Vec<u32>, Vec<String>, Vec<engine_plot::Rgb>) =
            match &p.groupby {
                Some(g) => {
                    let (codes, categories) = obs_groups(&a.obs, g, &step)?;
                    let k = categories.len();
                    let codes = codes
                        .iter()
                        .map(|&c| {
                            u32::try_from(c)
                                .ok()
                                .filter(|&c| (c as usize) < k)
                                .unwrap_or(u32::MAX)
                        })
                        .collect();
                    let stored: Vec<engine_plot::Rgb> = stored_colours(&a.uns, g)
                        .iter()
                        .flatten()
                        .filter_map(|c| engine_plot::parse_colour(c))
                        .collect();
                    let colours = if stored.len() >= k {
                        stored
                    } else {
                        engine_plot::default_colours(k)
                    };
                    (codes, categories, colours)
                }
                None => (
                    vec![0; n],
                    vec![String::new()],
                    engine_plot::default_colours(1),
                ),
            };
        let density = |values: &[f32], codes: &[u32], g: u32| {
            let mine: Vec<f64> = values
                .iter()
                .zip(codes)
                .filter(|(v, c)| **c == g && v.is_finite())
                .map(|(v, _)| f64::from(*v))
                .collect();
            if mine.is_empty() {
                return None;
            }
            Some(violin_body(&mine, 0.0))
        };
        // Without groups each key is its own panel, its one violin named after it.
        let panels: Vec<engine_plot::ViolinPanel> = p
            .keys
            .iter()
            .zip(&values)
            .map(|(k, v)| engine_plot::ViolinPanel {
                key: k.name().to_string(),
                names: if p.groupby.is_some() {
                    groups.clone()
                } else {
                    vec![k.name().to_string()]
                },
                values: v,
                codes: &codes,
                bodies: (0..groups.len() as u32)
                    .map(|g| density(v, &codes, g))
                    .collect(),
            })
            .collect();
        let path = &p.path;
        let x_label = match (&p.xlabel, &p.groupby) {
            (Some(l), _) => l.clone(),
            // scanpy names the axis after the groups unless the names are turned.
            (None, Some(g)) if !p.upright => g.replace('_', " "),
            _ => String::new(),
        };
        let plot = engine_plot::Violin {
            groups: &groups,
            colours: &colours,
            panels,
            x_label,
            upright: p.upright,
            stripplot: p.stripplot,
            jitter: p.jitter,
            size: p.size,
        };
        write_image(cx, path, p.dpi, |format, dpi, tmp| {
            engine_plot::violin(&plot, format, dpi, tmp)
        })?;
        Ok(None)
    }
}
