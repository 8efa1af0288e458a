//! `dotplot`: one pass over X (or `raw`'s X at these cells) gathering, per group and chosen
//! gene, the cells expressing it and their sum; then scanpy's dot plot of fractions and means.

use super::plot::{format_name, write_image};
use super::write::aligned;
use super::{Data, ExecNode};
use crate::annotations::obs_groups;
use crate::context::RunContext;
use crate::pass::fold_pass;
use engine_common::{Error, Result};
use engine_matrix::DynArray;
use engine_ops::expression::{GroupExpression, standard_scale};
use engine_ops::hierarchy;
use engine_plan::{DotGenes, Dotplot};
use engine_store::Value;
use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

#[derive(Debug)]
pub(crate) struct DotplotNode {
    pub params: Dotplot,
}

impl ExecNode for DotplotNode {
    fn name(&self) -> &'static str {
        "Dotplot"
    }

    fn stages(&self) -> Vec<String> {
        let format = format_name(&self.params.path);
        vec![
            format!(
                "pass over {}X: per group of obs['{}'], each gene's expressing cells and sum",
                self.params
                    .raw
                    .as_ref()
                    .map_or(String::new(), |r| format!("{r}'s ")),
                self.params.groupby
            ),
            format!("in memory: dot plot -> {format}"),
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
            .ok_or_else(|| Error::internal("Dotplot node without an input"))?;
        let a = &main.ann;
        // The values: `raw`'s X and genes at these cells, as scanpy's `use_raw`.
        let (x, var) = match (&p.raw, inputs.next()) {
            (Some(r), Some(raw)) => (aligned(a, &raw, r, false)?, raw.ann.var.clone()),
            (None, None) => (main.x.clone(), a.var.clone()),
            _ => return Err(Error::internal("Dotplot inputs do not match `raw`")),
        };
        let (codes, categories) = obs_groups(&a.obs, &p.groupby, &step)?;
        let n_cat = categories.len();
        let group_of: Vec<Option<usize>> = codes
            .iter()
            .map(|&c| usize::try_from(c).ok().filter(|&c| c < n_cat))
            .collect();
        // Rows: the groups that have cells (pandas' `observed=True`), in category order or
        // in the dendrogram's.
        let mut cells = vec![0usize; n_cat];
        for g in group_of.iter().flatten() {
            cells[*g] += 1;
        }
        let mut rows: Vec<usize> = (0..n_cat).filter(|&g| cells[g] > 0).collect();
        if rows.is_empty() {
            return Err(Error::step(
                &step,
                format!("no cell has a group in obs['{}']", p.groupby),
            ));
        }
        let tree = if p.dendrogram && rows.len() > 1 {
            let (order, branches) = dendrogram_of(a, &group_of, &rows, &step)?;
            rows = order.iter().map(|&k| rows[k]).collect();
            Some(branches)
        } else {
            None
        };
        // The genes, in order, and the brackets over each group's; brackets named after the
        // rows follow the rows' order, as scanpy reorders them after its dendrogram.
        let (mut genes, mut brackets) = match &p.genes {
            DotGenes::Names(v) => (v.clone(), Vec::new()),
            DotGenes::Ranked {
                key,
                n_genes,
                groups,
            } => ranked_genes(&a.uns, key, *n_genes, groups.as_deref(), &step)?,
        };
        if tree.is_some() {
            let names: std::collections::HashSet<&str> =
                rows.iter().map(|&g| categories[g].as_str()).collect();
            let labels: std::collections::HashSet<&str> =
                brackets.iter().map(|(l, _)| l.as_str()).collect();
            if !brackets.is_empty() && names == labels {
                let (mut g2, mut b2) = (Vec::new(), Vec::new());
                for &g in &rows {
                    if let Some((label, r)) = brackets.iter().find(|(l, _)| *l == categories[g]) {
                        let start = g2.len();
                        g2.extend_from_slice(&genes[r.clone()]);
                        b2.push((label.clone(), start..g2.len()));
                    }
                }
                (genes, brackets) = (g2, b2);
            }
        }
        let position: HashMap<String, usize> = (0..var.n_rows())
            .map(|i| (var.index.render(i), i))
            .collect();
        let mut columns: Vec<usize> = Vec::new();
        let mut slot_of = Vec::with_capacity(genes.len());
        for g in &genes {
            let Some(&c) = position.get(g) else {
                return Err(Error::step(
                    &step,
                    format!(
                        "gene `{g}` is not in {}'s var",
                        p.raw.as_deref().unwrap_or("the input")
                    ),
                ));
            };
            let s = columns.iter().position(|&k| k == c).unwrap_or_else(|| {
                columns.push(c);
                columns.len() - 1
            });
            slot_of.push(s);
        }
        let bar = cx.progress("dot plot", x.blocks().len());
        let (acc, blocks) = fold_pass(
            &x,
            &bar,
            || GroupExpression::new(x.n_vars(), &columns, n_cat, p.expression_cutoff),
            |acc, r, block| {
                let m = block.to_csr()?;
                acc.add(&m, &group_of[r]);
                Ok(())
            },
            |a, b| a.merge(&b),
        )?;
        cx.stage("dot plot", blocks);
        let (mut fraction, mut colour) = (Vec::new(), Vec::new());
        for &g in &rows {
            for &s in &slot_of {
                let (f, m) = acc.fraction_mean(g, s, p.mean_only_expressed);
                fraction.push(f);
                colour.push(m);
            }
        }
        match p.standard_scale.as_deref() {
            Some("var") => standard_scale(&mut colour, genes.len(), false),
            Some("group") => standard_scale(&mut colour, genes.len(), true),
            _ => {}
        }
        let groups: Vec<String> = rows.iter().map(|&g| categories[g].clone()).collect();
        let path = &p.path;
        let plot = engine_plot::Dotplot {
            genes: &genes,
            groups: &groups,
            fraction: &fraction,
            colour: &colour,
            brackets: &brackets,
            title: p.title.clone(),
            colour_title: "Mean expression\nin group".into(),
            tree: tree.as_deref(),
        };
        write_image(cx, path, p.dpi, |format, dpi, tmp| {
            engine_plot::dotplot(&plot, format, dpi, tmp)
        })?;
        Ok(None)
    }
}

/// scanpy's `sc.tl.dendrogram` of the `rows` groups (their indices among the categories):
/// complete linkage of `1 - pearson` between the groups' mean `X_pca`. The rows' new order
/// (indices into `rows`) and the tree's branches.
fn dendrogram_of(
    a: &crate::annotations::Annotations,
    group_of: &[Option<usize>],
    rows: &[usize],
    step: &str,
) -> Result<(Vec<usize>, Vec<hierarchy::Branch>)> {
    let block = a
        .obsm
        .get("X_pca")
        .ok_or_else(|| Error::step(step, "the dendrogram needs obsm['X_pca']"))?;
    let pcs = crate::annotations::embedding(block, "X_pca")?;
    let slot: std::collections::HashMap<usize, usize> =
        rows.iter().enumerate().map(|(k, &g)| (g, k)).collect();
    let mut sums = vec![vec![0f64; pcs.ncols()]; rows.len()];
    let mut counts = vec![0usize; rows.len()];
    for (cell, g) in group_of.iter().enumerate() {
        if let Some(&k) = g.as_ref().and_then(|g| slot.get(g)) {
            counts[k] += 1;
            for (s, v) in sums[k].iter_mut().zip(pcs.row(cell)) {
                *s += f64::from(*v);
            }
        }
    }
    for (s, n) in sums.iter_mut().zip(&counts) {
        for v in s.iter_mut() {
            *v /= *n as f64;
        }
    }
    let merges = hierarchy::complete_linkage(&hierarchy::correlation_distances(&sums));
    Ok(hierarchy::dendrogram(&merges))
}

/// A label over a run of the plot's genes.
type Bracket = (String, Range<usize>);

/// Each group's top `n` genes in `uns[key]['names']` (the groups in the order they were
/// ranked, or `groups`), and a bracket over each group's run, as
/// `rank_genes_groups_dotplot` lists them.
fn ranked_genes(
    uns: &std::collections::BTreeMap<String, Value>,
    key: &str,
    n: usize,
    groups: Option<&[String]>,
    step: &str,
) -> Result<(Vec<String>, Vec<Bracket>)> {
    let names = match uns.get(key) {
        Some(Value::Dict(d)) => d.get("names"),
        _ => None,
    };
    let Some(Value::Records(fields)) = names else {
        return Err(Error::step(
            step,
            format!("uns['{key}'] has no `names` record array (run `rank_genes_groups` first)"),
        ));
    };
    let order: Vec<&str> = match groups {
        Some(g) => g.iter().map(String::as_str).collect(),
        None => fields.iter().map(|(f, _)| f.as_str()).collect(),
    };
    let (mut genes, mut brackets) = (Vec::new(), Vec::new());
    for group in order {
        let Some((_, DynArray::Str(list))) = fields.iter().find(|(f, _)| f == group) else {
            return Err(Error::step(
                step,
                format!(
                    "uns['{key}'] ranks no group `{group}` (it ranks {})",
                    fields
                        .iter()
                        .map(|(f, _)| f.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        };
        let start = genes.len();
        genes.extend(list.iter().filter(|g| !g.is_empty()).take(n).cloned());
        if genes.len() > start {
            brackets.push((group.to_string(), start..genes.len()));
        }
    }
    if genes.is_empty() {
        return Err(Error::step(step, format!("uns['{key}'] names no genes")));
    }
    Ok((genes, brackets))
}
