//! `violin`: scanpy's `sc.pl.violin`, the distribution of genes' or obs columns' values per
//! group, to PNG, SVG or PDF.

use super::plot::{dpi, image_path};
use super::{Bind, LogicalOp, Reads};
use crate::plan::Op;
use crate::schema::{ColType, Schema};
use engine_common::Result;

/// A violin's values.
#[derive(Debug, Clone, PartialEq)]
pub enum ViolinKey {
    /// A numeric obs column.
    Obs(String),
    /// A gene: its values from X (or `raw`'s X).
    Gene(String),
}

impl ViolinKey {
    pub fn name(&self) -> &str {
        match self {
            ViolinKey::Obs(k) | ViolinKey::Gene(k) => k,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Violin {
    pub keys: Vec<ViolinKey>,
    /// The categorical obs column whose groups are the violins; `None`: one violin per key,
    /// each in its own panel.
    pub groupby: Option<String>,
    /// The step whose X gives the genes' values (scanpy's `use_raw`): the op's second input.
    pub raw: Option<String>,
    pub stripplot: bool,
    /// How far either side of its group a point may be moved (seaborn's `jitter`).
    pub jitter: f64,
    /// The points' diameter in points.
    pub size: f64,
    /// The group names upright (`rotation: 90`).
    pub upright: bool,
    pub xlabel: Option<String>,
    pub path: String,
    pub dpi: u32,
}

impl Violin {
    pub(crate) fn bind(b: &Bind<'_>) -> Result<(Op, Schema)> {
        let step = b.step;
        let s = b.input_schema();
        let raw = step.arg("raw").as_str().map(str::to_string);
        let names = b.names("keys").unwrap_or_default();
        // Each key once, in order (as scanpy).
        let mut seen = std::collections::HashSet::new();
        let names: Vec<String> = names
            .into_iter()
            .filter(|k| seen.insert(k.clone()))
            .collect();
        if names.is_empty() {
            return Err(b.error("`keys` names no gene or obs column"));
        }
        // scanpy's order: an obs column, else a gene.
        let mut keys = Vec::with_capacity(names.len());
        for k in names {
            match s.obs.iter().find(|(c, _)| *c == k) {
                Some((_, ColType::Int | ColType::Float | ColType::Bool)) => {
                    keys.push(ViolinKey::Obs(k));
                }
                Some((_, t)) => {
                    return Err(b.error(format!(
                        "`keys`: obs['{k}'] is {}, and a violin needs numbers",
                        t.name()
                    )));
                }
                None => keys.push(ViolinKey::Gene(k)),
            }
        }
        let genes: Vec<String> = keys
            .iter()
            .filter_map(|k| match k {
                ViolinKey::Gene(g) => Some(g.clone()),
                ViolinKey::Obs(_) => None,
            })
            .collect();
        let values = if raw.is_some() {
            b.inputs.last()
        } else {
            b.inputs.first()
        };
        if let Some(problem) = values.and_then(|&i| b.missing_gene(&genes, i)) {
            return Err(b.error(format!(
                "`keys`: not an obs column of the input, and {problem}"
            )));
        }
        if raw.is_some() && genes.is_empty() {
            return Err(b.error("`raw` gives genes' values: `keys` names no gene"));
        }
        let groupby = step.arg("groupby").as_str().map(str::to_string);
        if let Some(g) = &groupby {
            match s.obs.iter().find(|(c, _)| c == g) {
                Some((_, ColType::Category)) => {}
                Some((_, t)) => {
                    return Err(b.error(format!(
                        "`groupby` obs['{g}'] is {}, and groups need a categorical column",
                        t.name()
                    )));
                }
                None => return Err(b.error(format!("`groupby`: the input has no obs['{g}']"))),
            }
        }
        let jitter = step.arg("jitter").as_f64().unwrap_or(0.1);
        if !(0.0..=0.5).contains(&jitter) {
            return Err(b.error(format!(
                "`jitter` must be between 0 and 0.5 (a share of a group's width), got {jitter}"
            )));
        }
        let size = step.arg("size").as_f64().unwrap_or(1.0);
        if !(size > 0.0 && size <= 100.0) {
            return Err(b.error(format!(
                "`size` must be a diameter in points above 0 and at most 100, got {size}"
            )));
        }
        let upright = match step.arg("rotation").as_f64() {
            None => false,
            Some(0.0) => false,
            Some(90.0) => true,
            Some(r) => {
                return Err(b.error(format!("`rotation` must be 0 or 90, got {r}")));
            }
        };
        let op = Op::Violin(Violin {
            keys,
            groupby,
            raw,
            stripplot: step.arg("stripplot").as_bool().unwrap_or(true),
            jitter,
            size,
            upright,
            xlabel: step.arg("xlabel").as_str().map(str::to_string),
            path: image_path(b)?,
            dpi: dpi(b)?,
        });
        Ok((op, s))
    }
}

impl LogicalOp for Violin {
    fn describe(&self) -> String {
        let keys: Vec<String> = self
            .keys
            .iter()
            .map(|k| match k {
                ViolinKey::Obs(c) => format!("obs[{c}]"),
                ViolinKey::Gene(g) => g.clone(),
            })
            .collect();
        let mut text = format!(
            "keys={}, groupby={}",
            keys.join(","),
            self.groupby.as_deref().unwrap_or("none")
        );
        if let Some(r) = &self.raw {
            text += &format!(", raw={r}");
        }
        if !self.stripplot {
            text += ", stripplot=false";
        }
        if self.dpi != 150 {
            text += &format!(", dpi={}", self.dpi);
        }
        text + &format!(", path={}", self.path)
    }

    /// Its group column, its obs keys, and the group colours stored beside the column.
    fn reads(&self) -> Reads {
        Reads::Some {
            obs: self
                .groupby
                .iter()
                .cloned()
                .chain(self.keys.iter().filter_map(|k| match k {
                    ViolinKey::Obs(c) => Some(c.clone()),
                    ViolinKey::Gene(_) => None,
                }))
                .collect(),
            elements: self
                .groupby
                .iter()
                .map(|g| format!("uns/{g}_colors"))
                .collect(),
        }
    }
}
