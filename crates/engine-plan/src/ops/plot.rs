//! `plot`: a scatter of an embedding coloured by an obs column or a gene, to PNG, SVG or PDF.

use super::{Bind, LogicalOp, Reads};
use crate::plan::Op;
use crate::schema::Schema;
use engine_common::Result;
use engine_spec::Arg;

#[derive(Debug, Clone, PartialEq)]
pub struct Plot {
    pub basis: String,
    /// 0-based.
    pub components: (usize, usize),
    pub color: Option<String>,
    /// `color` names a gene (its values from X, or `raw`'s X), not an obs column.
    pub gene: bool,
    /// The step whose X gives a gene's values (scanpy's `use_raw`): the op's second input.
    pub raw: Option<String>,
    pub path: String,
    /// The title; the colour key (or the basis) when `None`.
    pub title: Option<String>,
    /// Marker area in points²; scanpy's `120000 / n_cells` when `None`.
    pub size: Option<f64>,
    /// `right margin`, `on data` or `none`.
    pub legend_loc: String,
    /// Category colours given in the step, in category order.
    pub palette: Option<Vec<String>>,
    pub dpi: u32,
}

impl Plot {
    pub(crate) fn bind(b: &Bind<'_>) -> Result<(Op, Schema)> {
        let step = b.step;
        let s = b.input_schema();
        let basis = step.arg("basis").as_str().unwrap_or("pca").to_string();
        let key = format!("X_{basis}");
        b.need(
            &format!("obsm['{key}']"),
            s.obsm.iter().any(|(k, _)| *k == key),
        )?;
        let raw = step.arg("raw").as_str().map(str::to_string);
        // scanpy's order: an obs column, else a gene.
        let (color, gene) = match step.arg("color") {
            Arg::Str(c) if s.has_obs(c) => (Some(c.clone()), false),
            Arg::Str(c) => {
                let values = if raw.is_some() {
                    b.inputs.last()
                } else {
                    b.inputs.first()
                };
                if let Some(problem) =
                    values.and_then(|&i| b.missing_gene(std::slice::from_ref(c), i))
                {
                    return Err(b.error(format!(
                        "`color`: the input has no obs['{c}'], and {problem}"
                    )));
                }
                (Some(c.clone()), true)
            }
            _ => (None, false),
        };
        if raw.is_some() && !gene {
            return Err(b.error(
                "`raw` gives a gene's values: `color` must name a gene, not an obs column",
            ));
        }
        let comps = step.arg("components").as_str().unwrap_or("1,2");
        let parsed: Vec<usize> = comps
            .split(',')
            .filter_map(|c| c.trim().parse::<usize>().ok())
            .collect();
        let components = match parsed.as_slice() {
            [a, b] if *a >= 1 && *b >= 1 => (a - 1, b - 1),
            _ => {
                return Err(b.error(format!(
                    "components must be two 1-based numbers like \"1,2\", got \"{comps}\""
                )));
            }
        };
        let path = image_path(b)?;
        let size = match step.arg("size").as_f64() {
            Some(s) if !(s > 0.0 && s.is_finite()) => {
                return Err(b.error(format!(
                    "`size` must be a positive area in points², got {s}"
                )));
            }
            s => s,
        };
        let palette = match step.arg("palette").as_str() {
            Some(p) => {
                let colours: Vec<String> = p.split(',').map(|c| c.trim().to_string()).collect();
                if let Some(bad) = colours
                    .iter()
                    .find(|c| engine_plot::parse_colour(c).is_none())
                {
                    return Err(b.error(format!(
                        "`palette`: \"{bad}\" is not a colour (use #rrggbb, e.g. \"#1f77b4,#ff7f0e\")"
                    )));
                }
                Some(colours)
            }
            None => None,
        };
        let dpi = dpi(b)?;
        let title = step.arg("title").as_str().map(str::to_string);
        let legend_loc = step
            .arg("legend_loc")
            .as_str()
            .unwrap_or("right margin")
            .to_string();
        Ok((
            Op::Plot(Plot {
                basis,
                components,
                color,
                gene,
                raw,
                path,
                title,
                size,
                legend_loc,
                palette,
                dpi,
            }),
            s,
        ))
    }
}

/// A plot's `path`, whose extension names an image format: anything else would fail only
/// after all the compute.
pub(crate) fn image_path(b: &Bind<'_>) -> Result<String> {
    let path = b.step.arg("path").as_str().unwrap_or_default().to_string();
    if engine_plot::Format::of_path(&path).is_none() {
        return Err(b.error(format!(
            "`path` must end in .png, .svg or .pdf, got \"{path}\""
        )));
    }
    Ok(path)
}

/// A plot's `dpi` (scanpy saves at 150).
pub(crate) fn dpi(b: &Bind<'_>) -> Result<u32> {
    match b.step.arg("dpi").as_i64() {
        None => Ok(150),
        Some(d @ 10..=1200) => Ok(d as u32),
        Some(d) => Err(b.error(format!("`dpi` must be between 10 and 1200, got {d}"))),
    }
}

impl LogicalOp for Plot {
    fn describe(&self) -> String {
        let mut text = format!(
            "basis={}, components={},{}, color={}, path={}",
            self.basis,
            self.components.0 + 1,
            self.components.1 + 1,
            self.color.as_deref().unwrap_or("none"),
            self.path
        );
        if self.gene {
            text += " (gene)";
        }
        if let Some(r) = &self.raw {
            text += &format!(", raw={r}");
        }
        // Only what differs from scanpy's defaults.
        if let Some(t) = &self.title {
            text += &format!(", title={t}");
        }
        if let Some(s) = self.size {
            text += &format!(", size={s}");
        }
        if self.legend_loc != "right margin" {
            text += &format!(", legend_loc={}", self.legend_loc);
        }
        if let Some(p) = &self.palette {
            text += &format!(", palette={}", p.join(","));
        }
        if self.dpi != 150 {
            text += &format!(", dpi={}", self.dpi);
        }
        text
    }

    /// Its colour column, the colours stored for it, and its basis.
    fn reads(&self) -> Reads {
        Reads::Some {
            obs: self.color.iter().filter(|_| !self.gene).cloned().collect(),
            elements: std::iter::once(format!("obsm/X_{}", self.basis))
                .chain(self.color.iter().map(|c| format!("uns/{c}_colors")))
                .collect(),
        }
    }
}
