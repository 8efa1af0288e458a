//! `write` (a pipeline's `outputs`): the value as an .h5ad or .zarr.

use super::{LogicalOp, Reads};
use crate::plan::Op;
use engine_spec::{ElementStorage, Output};

#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub path: String,
    pub format: Option<String>,
    pub chunks: Option<Vec<u64>>,
    pub compression: Option<String>,
    /// How single elements are stored, over `chunks` and `compression`.
    pub storage: Vec<ElementStorage>,
    /// What each input after the first (the output step) gives, in input order.
    pub slots: Vec<Slot>,
}

/// A matrix an output takes from another step than its own.
#[derive(Debug, Clone, PartialEq)]
pub enum Slot {
    /// That step's X is stored as X (the output's cells and genes).
    X { step: String },
    /// That step's X and var are stored as `raw` (the output's cells, all its genes).
    Raw { step: String },
    /// That step's X is stored as `layers/NAME` (the output's cells and genes).
    Layer { name: String, step: String },
}

impl Slot {
    pub fn step(&self) -> &str {
        match self {
            Slot::X { step } | Slot::Raw { step } | Slot::Layer { step, .. } => step,
        }
    }

    fn describe(&self) -> String {
        match self {
            Slot::X { step } => format!("x={step}"),
            Slot::Raw { step } => format!("raw={step}"),
            Slot::Layer { name, step } => format!("layers/{name}={step}"),
        }
    }
}

impl Write {
    /// The writer of one of the pipeline's outputs; its inputs are the output step and then
    /// [`Output::sources`], one per slot.
    pub(crate) fn bind(out: &Output) -> Op {
        let mut slots = Vec::new();
        if let Some(step) = &out.x {
            slots.push(Slot::X { step: step.clone() });
        }
        if let Some(step) = &out.raw {
            slots.push(Slot::Raw { step: step.clone() });
        }
        for (name, step) in &out.layers {
            slots.push(Slot::Layer {
                name: name.clone(),
                step: step.clone(),
            });
        }
        Op::Write(Write {
            path: out.path.clone(),
            format: out.format.clone(),
            chunks: out.chunks.clone(),
            compression: out.compression.clone(),
            storage: out.storage.clone(),
            slots,
        })
    }
}

impl LogicalOp for Write {
    fn describe(&self) -> String {
        format!(
            "path={}, format={}{}",
            self.path,
            self.format.as_deref().unwrap_or("auto"),
            self.chunks
                .as_ref()
                .map_or(String::new(), |c| format!(", chunks={c:?}"))
        ) + &self
            .storage
            .iter()
            .map(|e| {
                format!(
                    ", {}:chunks={:?}",
                    e.element,
                    e.chunks.as_deref().unwrap_or(&[])
                )
            })
            .collect::<String>()
            + &self
                .slots
                .iter()
                .map(|s| format!(", {}", s.describe()))
                .collect::<String>()
    }

    /// An output holds everything.
    fn reads(&self) -> Reads {
        Reads::Everything
    }
}
