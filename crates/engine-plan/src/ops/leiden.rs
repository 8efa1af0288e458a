//! `leiden`: clusters of the connectivities (`obs[key_added]`, `uns[key_added]`).

use super::{Bind, LogicalOp, Reads, col};
use crate::plan::Op;
use crate::schema::{ColType, Schema};
use engine_common::Result;

#[derive(Debug, Clone, PartialEq)]
pub struct Leiden {
    pub resolution: f64,
    pub random_state: i64,
    pub n_iterations: i64,
    pub key_added: String,
}

impl Leiden {
    pub(crate) fn bind(b: &Bind<'_>) -> Result<(Op, Schema)> {
        let step = b.step;
        let mut s = b.input_schema();
        b.need(
            "obsp['connectivities'] (run `neighbors` first)",
            s.obsp.iter().any(|k| k == "connectivities"),
        )?;
        let key = step
            .arg("key_added")
            .as_str()
            .unwrap_or("leiden")
            .to_string();
        col(&mut s.obs, &key, ColType::Category);
        s.uns.push(key.clone());
        let resolution = step.arg("resolution").as_f64().unwrap_or(1.0);
        // NaN made every cell its own cluster; zero or less has no meaning either.
        if !(resolution.is_finite() && resolution > 0.0) {
            return Err(b.error(format!(
                "`resolution` must be a positive number, got {resolution}"
            )));
        }
        let op = Op::Leiden(Leiden {
            resolution,
            random_state: b.int("random_state"),
            n_iterations: b.int("n_iterations"),
            key_added: key,
        });
        Ok((op, s))
    }
}

impl LogicalOp for Leiden {
    fn describe(&self) -> String {
        format!(
            "resolution={}, random_state={}, n_iterations={}, key_added={}",
            self.resolution, self.random_state, self.n_iterations, self.key_added
        )
    }

    fn reads(&self) -> Reads {
        Reads::elements(&["obsp/connectivities"])
    }
}
