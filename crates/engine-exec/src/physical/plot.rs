//! `plot`: a scatter of an embedding coloured by an obs column, as scanpy colours it, to PNG.

use super::write::ensure_dir;
use super::{Data, ExecNode, single};
use crate::annotations::embedding;
use crate::context::RunContext;
use engine_common::{Error, Result};
use engine_matrix::DynArray;
use engine_store::Column;
use engine_store::write::AtomicTarget;
use std::borrow::Cow;
use std::path::Path;

#[derive(Debug)]
pub(crate) struct PlotNode {
    pub basis: String,
    pub components: (usize, usize),
    pub color: Option<String>,
    pub path: String,
}

impl ExecNode for PlotNode {
    fn name(&self) -> &'static str {
        "Plot"
    }

    fn stages(&self) -> Vec<String> {
        vec!["in memory: scatter -> PNG".into()]
    }

    fn is_sink(&self) -> bool {
        true
    }

    fn execute(&self, inputs: Vec<Cow<'_, Data>>, cx: &mut RunContext<'_>) -> Result<Option<Data>> {
        let data = single(inputs, "Plot")?;
        let a = &data.ann;
        let (basis, components, color, path) =
            (&self.basis, self.components, &self.color, &self.path);
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
        ensure_dir(Path::new(path))?;
        let target = AtomicTarget::new(Path::new(path), cx.opts.overwrite)?;
        let label = |c: usize| {
            if basis == "pca" {
                format!("PC{}", c + 1)
            } else {
                format!("{}{}", basis.to_uppercase(), c + 1)
            }
        };
        let plot = engine_plot::Scatter {
            x: &x,
            y: &y,
            colour: match &colours {
                None => engine_plot::Colouring::Single,
                Some(Colours::Groups(g, n)) => engine_plot::Colouring::Groups(g, n),
                Some(Colours::Values(v)) => engine_plot::Colouring::Values(v),
            },
            title: color.clone().unwrap_or_else(|| basis.clone()),
            x_label: label(components.0),
            y_label: label(components.1),
        };
        engine_plot::scatter_png(&plot, target.tmp_path()).map_err(|e| target.blame(e))?;
        cx.output(target);
        cx.stage("plot", 0);
        Ok(None)
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
