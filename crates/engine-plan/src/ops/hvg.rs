//! `highly_variable_genes`: scanpy's `seurat`, `cell_ranger` and `seurat_v3` flavours.

use super::{Bind, LogicalOp, Reads, XEffect, add, col};
use crate::plan::Op;
use crate::schema::{ColType, Schema};
use engine_common::{Error, Result};
use std::fmt::Write as _;

/// scanpy's `flavor` of `highly_variable_genes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HvgFlavor {
    /// Dispersions of the exponentiated log data, normalised per mean bin.
    Seurat,
    /// Dispersions normalised by the median and MAD per mean bin.
    CellRanger,
    /// Variances of the counts against a LOESS trend (two passes).
    SeuratV3,
}

impl HvgFlavor {
    pub fn parse(name: &str) -> Option<HvgFlavor> {
        match name {
            "seurat" => Some(HvgFlavor::Seurat),
            "cell_ranger" => Some(HvgFlavor::CellRanger),
            "seurat_v3" => Some(HvgFlavor::SeuratV3),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            HvgFlavor::Seurat => "seurat",
            HvgFlavor::CellRanger => "cell_ranger",
            HvgFlavor::SeuratV3 => "seurat_v3",
        }
    }
}

/// `n_top_genes` of `seurat_v3` when the step gives none (scanpy's default there).
pub const SEURAT_V3_N_TOP: usize = 2000;

/// Highly-variable-gene selection.
#[derive(Debug, Clone, PartialEq)]
pub struct HvgParams {
    pub flavor: HvgFlavor,
    pub n_top_genes: Option<usize>,
    pub min_disp: f64,
    pub max_disp: f64,
    pub min_mean: f64,
    pub max_mean: f64,
    pub n_bins: usize,
    pub subset: bool,
    pub batch_key: Option<String>,
    /// `seurat_v3`'s LOESS span.
    pub span: f64,
    /// Set by `merge_passes` when a `scale` reads this step's output: the gene-statistics
    /// pass also sums the values themselves, which are scale's column moments.
    pub column_moments: bool,
}

impl Default for HvgParams {
    /// `sc.pp.highly_variable_genes`' defaults.
    fn default() -> Self {
        HvgParams {
            flavor: HvgFlavor::Seurat,
            n_top_genes: None,
            min_disp: 0.5,
            max_disp: f64::INFINITY,
            min_mean: 0.0125,
            max_mean: 3.0,
            n_bins: 20,
            subset: false,
            batch_key: None,
            span: 0.3,
            column_moments: false,
        }
    }
}

impl HvgParams {
    pub(crate) fn bind(b: &Bind<'_>) -> Result<(Op, Schema)> {
        let step = b.step;
        let mut s = b.input_schema();
        let batch_key = step.arg("batch_key").as_str().map(String::from);
        if let Some(key) = &batch_key {
            b.need(&format!("obs['{key}'] (the batch_key)"), s.has_obs(key))?;
            // What the run would refuse after the passes before it, refused at planning.
            if let Some((_, t)) = s.obs.iter().find(|(c, _)| c == key)
                && *t != ColType::Category
            {
                return Err(b.error(format!(
                    "`batch_key` obs['{key}'] is {}, and batches need a categorical column",
                    t.name()
                )));
            }
        }
        let d = HvgParams::default();
        let flavor = match step.arg("flavor").as_str() {
            None => d.flavor,
            Some(f) => HvgFlavor::parse(f).ok_or_else(|| {
                b.error(format!(
                    "unknown flavor `{f}`: use seurat, cell_ranger or seurat_v3"
                ))
            })?,
        };
        let h = HvgParams {
            flavor,
            n_top_genes: step.arg("n_top_genes").as_i64().map(|v| v.max(0) as usize),
            min_disp: step.arg("min_disp").as_f64().unwrap_or(d.min_disp),
            max_disp: step.arg("max_disp").as_f64().unwrap_or(d.max_disp),
            min_mean: step.arg("min_mean").as_f64().unwrap_or(d.min_mean),
            max_mean: step.arg("max_mean").as_f64().unwrap_or(d.max_mean),
            n_bins: b.positive("n_bins")?,
            subset: step.arg("subset").as_bool().unwrap_or(d.subset),
            batch_key,
            span: step.arg("span").as_f64().unwrap_or(d.span),
            column_moments: false,
        };
        let v3 = h.flavor == HvgFlavor::SeuratV3;
        if v3 && !(h.span > 0.0 && h.span <= 1.0) {
            return Err(Error::step(
                &step.id,
                format!("`span` must be in (0, 1], got {}", h.span),
            ));
        }
        let columns: &[&str] = if v3 {
            &[
                "highly_variable",
                "highly_variable_rank",
                "means",
                "variances",
                "variances_norm",
            ]
        } else {
            &[
                "highly_variable",
                "means",
                "dispersions",
                "dispersions_norm",
            ]
        };
        for v in columns {
            let ty = if *v == "highly_variable" {
                ColType::Bool
            } else {
                ColType::Float
            };
            col(&mut s.var, v, ty);
        }
        if h.batch_key.is_some() {
            col(&mut s.var, "highly_variable_nbatches", ColType::Int);
            if !v3 {
                col(&mut s.var, "highly_variable_intersection", ColType::Bool);
            }
        }
        add(&mut s.uns, "hvg");
        if h.subset {
            s.var_bound = true;
        }
        Ok((Op::Hvg(h), s))
    }
}

impl LogicalOp for HvgParams {
    fn describe(&self) -> String {
        let h = self;
        if h.flavor == HvgFlavor::SeuratV3 {
            let mut d = format!(
                "flavor=seurat_v3, n_top_genes={}, span={}, subset={}",
                h.n_top_genes.unwrap_or(SEURAT_V3_N_TOP),
                h.span,
                h.subset
            );
            if let Some(b) = &h.batch_key {
                let _ = write!(d, ", batch_key={b}");
            }
            return d;
        }
        let mut d = format!("flavor={}", h.flavor.name());
        match h.n_top_genes {
            Some(n) => {
                let _ = write!(d, ", n_top_genes={n}");
            }
            None => {
                let _ = write!(
                    d,
                    ", min_mean={}, max_mean={}, min_disp={}, max_disp={}",
                    h.min_mean, h.max_mean, h.min_disp, h.max_disp
                );
            }
        }
        let _ = write!(d, ", n_bins={}, subset={}", h.n_bins, h.subset);
        if let Some(b) = &h.batch_key {
            let _ = write!(d, ", batch_key={b}");
        }
        if h.column_moments {
            d.push_str(", with scale's column moments");
        }
        d
    }

    /// The batch key is an obs column.
    fn reads(&self) -> Reads {
        Reads::Some {
            obs: self.batch_key.iter().cloned().collect(),
            elements: vec![],
        }
    }

    fn x_effect(&self) -> XEffect {
        XEffect::Keeps
    }
}
