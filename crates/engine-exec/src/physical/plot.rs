//! `plot`: a scatter of an embedding coloured by an obs column, as scanpy draws it (stored
//! `uns['<color>_colors']` or the step's palette first), or by a gene's values gathered in one
//! pass over X (or `raw`'s X), to PNG, SVG or PDF.

use super::write::{aligned, ensure_dir};
use super::{Data, ExecNode};
use crate::annotations::embedding;
use crate::context::RunContext;
use crate::pass::gather_columns;
use engine_common::{Error, Result};
use engine_matrix::DynArray;
use engine_store::write::AtomicTarget;
use engine_store::{Column, Value};
use std::borrow::Cow;
use std::path::Path;

#[derive(Debug)]
pub(crate) struct PlotNode {
    pub params: engine_plan::Plot,
}

impl ExecNode for PlotNode {
    fn name(&self) -> &'static str {
        "Plot"
    }

    fn stages(&self) -> Vec<String> {
        let format = format_name(&self.params.path);
        let mut stages = Vec::new();
        if let (true, Some(g)) = (self.params.gene, &self.params.color) {
            stages.push(format!(
                "pass over {}X: gene `{g}`'s values",
                self.params
                    .raw
                    .as_ref()
                    .map_or(String::new(), |r| format!("{r}'s "))
            ));
        }
        stages.push(format!("in memory: scatter -> {format}"));
        stages
    }

    fn is_sink(&self) -> bool {
        true
    }

    fn execute(&self, inputs: Vec<Cow<'_, Data>>, cx: &mut RunContext<'_>) -> Result<Option<Data>> {
        let mut inputs = inputs.into_iter();
        let data = inputs
            .next()
            .ok_or_else(|| Error::internal("Plot node without an input"))?;
        let raw = inputs.next();
        let a = &data.ann;
        let p = &self.params;
        let (basis, components, color, path) = (&p.basis, p.components, &p.color, &p.path);
        let step = cx.step().to_string();
        let key = format!("X_{basis}");
        let emb = a
            .obsm
            .get(&key)
            .ok_or_else(|| Error::step(&step, format!("no obsm['{key}']")))?;
        let emb = embedding(emb, &key)?;
        if components.0 >= emb.ncols() || components.1 >= emb.ncols() {
            return Err(Error::step(
                &step,
                format!("X_{basis} has {} components", emb.ncols()),
            ));
        }
        let (x, y) = (
            emb.column(components.0).mapv(f64::from).to_vec(),
            emb.column(components.1).mapv(f64::from).to_vec(),
        );
        let colours = match color {
            // A gene's values, from `raw`'s X at these cells or the input's X.
            Some(g) if p.gene => {
                let (x, var) = gene_source(&data, raw.as_deref(), p.raw.as_deref(), "Plot")?;
                let col = (0..var.n_rows())
                    .find(|&i| var.index.render(i) == *g)
                    .ok_or_else(|| {
                        Error::step(
                            &step,
                            format!(
                                "gene `{g}` is not in {}'s var",
                                p.raw.as_deref().unwrap_or("the input")
                            ),
                        )
                    })?;
                let bar = cx.progress("gene values", x.blocks().len());
                let (mut values, blocks) = gather_columns(&x, cx, &bar, &[col])?;
                cx.stage("gene values", blocks);
                Some(Colours::Values(
                    values
                        .pop()
                        .unwrap_or_default()
                        .into_iter()
                        .map(f64::from)
                        .collect(),
                ))
            }
            Some(c) => {
                let col = a
                    .obs
                    .column(c)
                    .ok_or_else(|| Error::step(&step, format!("no obs['{c}']")))?;
                Some(colours(col).ok_or_else(|| {
                    Error::step(
                        &step,
                        format!("cannot colour by obs['{c}'] ({})", col.encoding()),
                    )
                })?)
            }
            None => None,
        };
        let label = |c: usize| {
            if basis == "pca" {
                format!("PC{}", c + 1)
            } else {
                format!("{}{}", basis.to_uppercase(), c + 1)
            }
        };
        // Category colours: the step's palette, else those stored beside the column (as
        // scanpy keeps them in `uns['<color>_colors']`), else scanpy's defaults.
        let group_colours = match (&colours, color) {
            (Some(Colours::Groups(_, names)), Some(c)) => {
                let given = p.palette.clone().or_else(|| stored_colours(&a.uns, c));
                let mut list: Vec<engine_plot::Rgb> = given
                    .iter()
                    .flatten()
                    .filter_map(|s| engine_plot::parse_colour(s))
                    .collect();
                if list.len() < names.len() {
                    if p.palette.is_some() && !list.is_empty() {
                        // A short palette repeats, as matplotlib cycles it.
                        let cycle = list.clone();
                        list = (0..names.len()).map(|i| cycle[i % cycle.len()]).collect();
                    } else {
                        list = engine_plot::default_colours(names.len());
                    }
                }
                list
            }
            _ => Vec::new(),
        };
        let plot = engine_plot::Scatter {
            x: &x,
            y: &y,
            colour: match &colours {
                None => engine_plot::Colouring::Single,
                Some(Colours::Groups(g, n)) => engine_plot::Colouring::Groups(g, n, &group_colours),
                Some(Colours::Values(v)) => engine_plot::Colouring::Values(v),
            },
            title: p
                .title
                .clone()
                .unwrap_or_else(|| color.clone().unwrap_or_else(|| basis.clone())),
            x_label: label(components.0),
            y_label: label(components.1),
            size: p.size,
            legend: match p.legend_loc.as_str() {
                "on data" => engine_plot::LegendLoc::OnData,
                "none" => engine_plot::LegendLoc::Hidden,
                _ => engine_plot::LegendLoc::RightMargin,
            },
        };
        write_image(cx, path, p.dpi, |format, dpi, tmp| {
            engine_plot::scatter(&plot, format, dpi, tmp)
        })?;
        Ok(None)
    }
}

/// An image's format as EXPLAIN names it, from the path's extension (checked at planning).
pub(super) fn format_name(path: &str) -> &'static str {
    match engine_plot::Format::of_path(path) {
        Some(engine_plot::Format::Svg) => "SVG",
        Some(engine_plot::Format::Pdf) => "PDF",
        _ => "PNG",
    }
}

/// The X and var a plot's gene values come from: `raw`'s X at the main input's cells (the
/// plot's `raw` step, scanpy's `use_raw`), or the main input's own.
pub(super) fn gene_source<'d>(
    main: &'d Data,
    raw: Option<&'d Data>,
    raw_step: Option<&str>,
    node: &str,
) -> Result<(crate::lineage::Lineage, &'d engine_store::Frame)> {
    match (raw_step, raw) {
        (Some(r), Some(raw)) => Ok((aligned(&main.ann, raw, r, false)?, &raw.ann.var)),
        (None, None) => Ok((main.x.clone(), &main.ann.var)),
        _ => Err(Error::internal(format!("{node} inputs do not match `raw`"))),
    }
}

/// Draws an image to `path` through a temporary renamed into place when the run commits:
/// `draw` renders in the path's format at `dpi` into the temporary it is given.
pub(super) fn write_image(
    cx: &mut RunContext<'_>,
    path: &str,
    dpi: u32,
    draw: impl FnOnce(engine_plot::Format, f64, &Path) -> Result<()>,
) -> Result<()> {
    ensure_dir(Path::new(path))?;
    let target = AtomicTarget::new(Path::new(path), cx.opts.overwrite)?;
    let format = engine_plot::Format::of_path(path)
        .ok_or_else(|| Error::internal(format!("plot path {path} passed check")))?;
    draw(format, f64::from(dpi), target.tmp_path()).map_err(|e| target.blame(e))?;
    cx.output(target);
    cx.stage("plot", 0);
    Ok(())
}

/// The colours stored for obs column `column` (`uns['<column>_colors']`), as strings.
pub(super) fn stored_colours(
    uns: &std::collections::BTreeMap<String, Value>,
    column: &str,
) -> Option<Vec<String>> {
    match uns.get(&format!("{column}_colors"))? {
        Value::Array(DynArray::Str(a)) => Some(a.iter().cloned().collect()),
        _ => None,
    }
}

/// A plot's colours, owned.
enum Colours {
    Groups(Vec<u32>, Vec<String>),
    Values(Vec<f64>),
}

/// How scanpy colours by an obs column: categories (and booleans and strings, which it
/// makes categorical) by group, numbers on a continuous scale; missing values apart.
fn colours(col: &Column) -> Option<Colours> {
    let groups_of = |labels: Vec<Option<String>>| {
        let mut names: Vec<String> = labels.iter().flatten().cloned().collect();
        names.sort();
        names.dedup();
        let codes = labels
            .iter()
            .map(|l| match l {
                Some(l) => names
                    .binary_search(l)
                    .map_or(engine_plot::MISSING, |k| k as u32),
                None => engine_plot::MISSING,
            })
            .collect();
        Colours::Groups(codes, names)
    };
    match col {
        Column::Categorical {
            codes, categories, ..
        } => {
            let codes = codes
                .to_i64_vec()?
                .into_iter()
                .map(|v| u32::try_from(v).unwrap_or(engine_plot::MISSING))
                .collect();
            let names = (0..categories.len())
                .map(|i| engine_store::value::render_scalar(categories, i))
                .collect();
            Some(Colours::Groups(codes, names))
        }
        Column::Plain(DynArray::Bool(b)) => Some(groups_of(
            b.iter()
                .map(|v| Some(if *v { "True" } else { "False" }.to_string()))
                .collect(),
        )),
        Column::Plain(DynArray::Str(s)) => Some(groups_of(s.iter().cloned().map(Some).collect())),
        Column::Plain(a) => a.to_f64_vec().map(Colours::Values),
        Column::Nullable { values, mask, .. } => match values {
            DynArray::Bool(b) => Some(groups_of(
                b.iter()
                    .zip(mask)
                    .map(|(v, m)| (!m).then(|| if *v { "True" } else { "False" }.to_string()))
                    .collect(),
            )),
            DynArray::Str(s) => Some(groups_of(
                s.iter()
                    .zip(mask)
                    .map(|(v, m)| (!m).then(|| v.clone()))
                    .collect(),
            )),
            other => {
                let v = other.to_f64_vec()?;
                Some(Colours::Values(
                    v.into_iter()
                        .zip(mask)
                        .map(|(x, m)| if *m { f64::NAN } else { x })
                        .collect(),
                ))
            }
        },
    }
}
