//! `dotplot` and `stacked_violin`, over X (or `raw`'s X at these cells).
//! - Dots: one pass gathering, per group and chosen gene, the cells expressing it and their
//!   sum; then scanpy's dot plot of fractions and means.
//! - Stacked violins: the chosen genes' values, a block of genes per pass within the working
//!   set; per group and gene a density and a median; then scanpy's rows of violins.

use super::plot::{format_name, gene_source, write_image};
use super::violin::violin_body;
use super::{Data, ExecNode};
use crate::annotations::obs_groups;
use crate::context::RunContext;
use crate::distribute::Kernel;
use crate::lineage::Lineage;
use crate::pass::{fold_kernel, gather_columns};
use engine_common::{Error, Result};
use engine_matrix::DynArray;
use engine_ops::expression::standard_scale;
use engine_ops::hierarchy;
use engine_plan::{DotGenes, Dotplot, MarkerKind};
use engine_store::Value;
use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

#[derive(Debug)]
pub(crate) struct DotplotNode {
    pub params: Dotplot,
    /// Bytes the stacked violins' gathered values may take at once.
    pub working_set: usize,
}

impl ExecNode for DotplotNode {
    fn name(&self) -> &'static str {
        match self.params.kind {
            MarkerKind::Dots { .. } => "Dotplot",
            MarkerKind::StackedViolin => "StackedViolin",
        }
    }

    fn stages(&self) -> Vec<String> {
        let format = format_name(&self.params.path);
        let x = self
            .params
            .raw
            .as_ref()
            .map_or(String::new(), |r| format!("{r}'s "));
        match self.params.kind {
            MarkerKind::Dots { .. } => vec![
                format!(
                    "pass over {x}X: per group of obs['{}'], each gene's expressing cells and sum",
                    self.params.groupby
                ),
                format!("in memory: dot plot -> {format}"),
            ],
            MarkerKind::StackedViolin => vec![
                format!("passes over {x}X, a block of genes each: the genes' values"),
                format!(
                    "in memory: per group of obs['{}'] and gene a density and median; stacked violins -> {format}",
                    self.params.groupby
                ),
            ],
        }
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
        let raw = inputs.next();
        let (x, var) = gene_source(&main, raw.as_deref(), p.raw.as_deref(), "Dotplot")?;
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
        let cells = match p.kind {
            MarkerKind::Dots {
                expression_cutoff,
                mean_only_expressed,
            } => {
                let bar = cx.progress("dot plot", x.blocks().len());
                let kernel = Kernel::Expression {
                    columns: columns.clone(),
                    group_of: group_of.clone(),
                    n_groups: n_cat,
                    cutoff: expression_cutoff,
                };
                let (partial, blocks) = fold_kernel(&x, cx, &bar, &kernel)?;
                let acc = partial.expression()?;
                cx.stage("dot plot", blocks);
                let (mut fraction, mut colour) = (Vec::new(), Vec::new());
                for &g in &rows {
                    for &s in &slot_of {
                        let (f, m) = acc.fraction_mean(g, s, mean_only_expressed);
                        fraction.push(f);
                        colour.push(m);
                    }
                }
                match p.standard_scale.as_deref() {
                    Some("var") => standard_scale(&mut colour, genes.len(), false),
                    Some("group") => standard_scale(&mut colour, genes.len(), true),
                    _ => {}
                }
                Cellwise::Dots(fraction, colour)
            }
            MarkerKind::StackedViolin => {
                let (bodies, medians) = violins(
                    &x,
                    &group_of,
                    &rows,
                    &columns,
                    p.standard_scale.as_deref(),
                    self.working_set,
                    cx,
                )?;
                let k = columns.len();
                let (mut cells, mut colour) = (Vec::new(), Vec::new());
                for r in 0..rows.len() {
                    for &s in &slot_of {
                        cells.push(bodies[r * k + s].clone());
                        colour.push(medians[r * k + s]);
                    }
                }
                Cellwise::Violins(cells, colour)
            }
        };
        let groups: Vec<String> = rows.iter().map(|&g| categories[g].clone()).collect();
        let path = &p.path;
        let (drawn, colour, colour_title) = match &cells {
            Cellwise::Dots(fraction, colour) => (
                engine_plot::Cells::Dots(fraction),
                colour,
                "Mean expression\nin group",
            ),
            Cellwise::Violins(bodies, colour) => (
                engine_plot::Cells::Violins(bodies),
                colour,
                "Median expression\nin group",
            ),
        };
        let plot = engine_plot::Dotplot {
            genes: &genes,
            groups: &groups,
            cells: drawn,
            colour,
            brackets: &brackets,
            title: p.title.clone(),
            colour_title: colour_title.into(),
            tree: tree.as_deref(),
        };
        write_image(cx, path, p.dpi, |format, dpi, tmp| {
            engine_plot::dotplot(&plot, format, dpi, tmp)
        })?;
        Ok(None)
    }
}

/// A violin, or the one value of a group without spread.
type Drawn = std::result::Result<engine_plot::Body, f64>;

/// Each cell's drawing and colour value, row by row.
enum Cellwise {
    Dots(Vec<f64>, Vec<f64>),
    Violins(Vec<Drawn>, Vec<f64>),
}

/// Per row group (`rows`, row by row) and gene column (`columns`): the violin of the group's
/// values (or its one value) and their median. The values are gathered a block of genes per
/// pass, the block as large as `working_set` allows (each gene's float32 values, beside one
/// gene's float64 copy, a group's and the median's). `scale` is scanpy's `standard_scale` of
/// the values: `var` per gene over all cells, `group` per cell over the chosen genes (which
/// takes a first sweep for the cells' ranges when the genes do not fit one block).
fn violins(
    x: &Lineage,
    group_of: &[Option<usize>],
    rows: &[usize],
    columns: &[usize],
    scale: Option<&str>,
    working_set: usize,
    cx: &mut RunContext<'_>,
) -> Result<(Vec<Drawn>, Vec<f64>)> {
    let n = x.n_obs();
    let per_block = (working_set.saturating_sub(24 * n) / (4 * n).max(1)).max(1);
    let blocks: Vec<&[usize]> = columns.chunks(per_block).collect();
    let slot: HashMap<usize, usize> = rows.iter().enumerate().map(|(k, &g)| (g, k)).collect();
    let mut members = vec![Vec::new(); rows.len()];
    for (cell, g) in group_of.iter().enumerate() {
        if let Some(&k) = g.as_ref().and_then(|g| slot.get(g)) {
            members[k].push(cell);
        }
    }
    let gather = |cols: &[usize], cx: &mut RunContext<'_>| -> Result<Vec<Vec<f32>>> {
        let bar = cx.progress("gene values", x.blocks().len());
        let (values, passes) = gather_columns(x, cx, &bar, cols)?;
        cx.stage("gene values", passes);
        Ok(values)
    };
    // scanpy's `standard_scale='group'`: each cell's range over the chosen genes.
    let mut kept = None;
    let cell_range = if scale == Some("group") {
        let (mut lo, mut hi) = (vec![f32::INFINITY; n], vec![f32::NEG_INFINITY; n]);
        for cols in &blocks {
            let values = gather(cols, cx)?;
            for column in &values {
                for (c, v) in column.iter().enumerate() {
                    lo[c] = lo[c].min(*v);
                    hi[c] = hi[c].max(*v);
                }
            }
            if blocks.len() == 1 {
                kept = Some(values);
            }
        }
        Some((lo, hi))
    } else {
        None
    };
    let k = columns.len();
    let mut bodies = vec![Err(0.0); rows.len() * k];
    let mut medians = vec![0.0; rows.len() * k];
    let mut at = 0;
    for cols in &blocks {
        let values = match kept.take() {
            Some(v) => v,
            None => gather(cols, cx)?,
        };
        for column in values {
            let mut v: Vec<f64> = column.iter().map(|x| f64::from(*x)).collect();
            drop(column);
            match (&cell_range, scale) {
                (Some((lo, hi)), _) => {
                    for (c, x) in v.iter_mut().enumerate() {
                        let span = f64::from(hi[c]) - f64::from(lo[c]);
                        // pandas' `fillna(0)` of 0 / 0.
                        *x = if span > 0.0 {
                            (*x - f64::from(lo[c])) / span
                        } else {
                            0.0
                        };
                    }
                }
                (None, Some("var")) => {
                    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
                    let span = v.iter().copied().fold(f64::NEG_INFINITY, f64::max) - lo;
                    for x in &mut v {
                        *x = if span > 0.0 { (*x - lo) / span } else { 0.0 };
                    }
                }
                _ => {}
            }
            for (r, cells) in members.iter().enumerate() {
                let mine: Vec<f64> = cells.iter().map(|&c| v[c]).collect();
                medians[r * k + at] = engine_ops::stats::median(&mine);
                bodies[r * k + at] = violin_body(&mine, 0.0);
            }
            at += 1;
        }
    }
    Ok((bodies, medians))
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
pub(super) fn ranked_genes(
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
