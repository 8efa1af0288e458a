//! `write` (a pipeline's `outputs`): the value as an .h5ad or .zarr.

use super::{LogicalOp, Reads};
use crate::plan::Op;
use engine_spec::Output;

#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub path: String,
    pub format: Option<String>,
    pub chunks: Option<Vec<u64>>,
    pub compression: Option<String>,
}

impl Write {
    /// The writer of one of the pipeline's outputs.
    pub(crate) fn bind(out: &Output) -> Op {
        Op::Write(Write {
            path: out.path.clone(),
            format: out.format.clone(),
            chunks: out.chunks.clone(),
            compression: out.compression.clone(),
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
        )
    }

    /// An output holds everything.
    fn reads(&self) -> Reads {
        Reads::Everything
    }
}
