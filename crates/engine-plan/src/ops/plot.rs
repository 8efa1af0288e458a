//! `plot`: a scatter of an embedding coloured by an obs column, to PNG.

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
    pub path: String,
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
        let color = match step.arg("color") {
            Arg::Str(c) => {
                b.need(&format!("obs['{c}']"), s.has_obs(c))?;
                Some(c.clone())
            }
            _ => None,
        };
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
        let path = step.arg("path").as_str().unwrap_or_default().to_string();
        // The image is a PNG; another extension would fail only after all the compute.
        let ext = std::path::Path::new(&path)
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("");
        if !ext.eq_ignore_ascii_case("png") {
            return Err(b.error(format!(
                "`path` must end in .png (plots are written as PNG), got \"{path}\""
            )));
        }
        Ok((
            Op::Plot(Plot {
                basis,
                components,
                color,
                path,
            }),
            s,
        ))
    }
}

impl LogicalOp for Plot {
    fn describe(&self) -> String {
        format!(
            "basis={}, components={},{}, color={}, path={}",
            self.basis,
            self.components.0 + 1,
            self.components.1 + 1,
            self.color.as_deref().unwrap_or("none"),
            self.path
        )
    }

    /// Its colour column and its basis.
    fn reads(&self) -> Reads {
        Reads::Some {
            obs: self.color.iter().cloned().collect(),
            elements: vec![format!("obsm/X_{}", self.basis)],
        }
    }
}
