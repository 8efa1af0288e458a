//! `preshuffle`: cells shuffled into a collection of zarr v3 datasets with sharded X, as
//! annbatch's `DatasetCollection.add_adatas` writes it for its minibatch `Loader`. Blocks of
//! `shuffle_chunk_size` contiguous cells are dealt to the datasets in a random order (large
//! sequential reads of the input), each dataset is permuted in memory and written; one
//! dataset is in memory at a time. Its input may be any step: a filtered, normalised,
//! concatenated query.

use super::{Bind, LogicalOp, Reads};
use crate::plan::Op;
use crate::schema::Schema;
use engine_common::Result;

/// How large each dataset is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    Rows(usize),
    /// Bytes of X (its stored values and indices, uncompressed), turned into rows from the
    /// input's mean row size.
    Bytes(u64),
}

impl Size {
    /// `"100000"` (rows) or `"2G"`, `"500MB"`, `"1.5GiB"` (bytes).
    pub fn parse(s: &str) -> Option<Size> {
        let t = s.trim();
        if let Ok(r) = t.parse::<usize>() {
            return (r > 0).then_some(Size::Rows(r));
        }
        engine_common::parse_bytes(t)
            .ok()
            .filter(|b| *b > 0)
            .map(|b| Size::Bytes(b as u64))
    }

    fn describe(self) -> String {
        match self {
            Size::Rows(r) => format!("{r} cells"),
            Size::Bytes(b) => format!("{b} bytes"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Preshuffle {
    /// The collection (a directory, `.zarr`).
    pub path: String,
    /// `None`: as many cells as the memory limit holds.
    pub dataset_size: Option<Size>,
    pub shuffle_chunk_size: usize,
    /// Cells per zarr chunk of X (a shard holds several).
    pub n_obs_per_chunk: usize,
    pub shard_size: Size,
    pub shuffle: bool,
    pub seed: u64,
    /// Each dataset's cells sorted (stably) by these obs columns after shuffling.
    pub groupby: Vec<String>,
    /// Only these genes (in the input's order).
    pub var_subset: Option<Vec<String>>,
    pub compression: String,
}

impl Preshuffle {
    pub(crate) fn bind(b: &Bind<'_>) -> Result<(Op, Schema)> {
        let step = b.step;
        let s = b.input_schema();
        let path = step.arg("path").as_str().unwrap_or_default().to_string();
        if !path.trim_end_matches('/').ends_with(".zarr") {
            return Err(b.error(format!(
                "`path` of a collection must end in .zarr (a zarr v3 group of datasets), got `{path}`"
            )));
        }
        let size = |name: &str| -> Result<Option<Size>> {
            match step.arg(name).as_str() {
                None => Ok(None),
                Some(text) => Size::parse(text).map(Some).ok_or_else(|| {
                    b.error(format!(
                        "`{name}` is a number of cells (`100000`) or a size (`2G`, `500MB`), got `{text}`"
                    ))
                }),
            }
        };
        let dataset_size = size("dataset_size")?;
        let shard_size = size("shard_size")?.unwrap_or(Size::Bytes(1 << 30));
        let shuffle_chunk_size = b.positive("shuffle_chunk_size")?;
        if let Some(Size::Rows(r)) = dataset_size
            && shuffle_chunk_size > r
        {
            return Err(b.error(format!(
                "`shuffle_chunk_size` ({shuffle_chunk_size}) must not exceed `dataset_size` ({r} cells), as annbatch requires"
            )));
        }
        let groupby = b.names("groupby").unwrap_or_default();
        for g in &groupby {
            if !s.has_obs(g) {
                return Err(b.error(format!("`groupby`: the input has no obs['{g}']")));
            }
        }
        let compression = step
            .arg("compression")
            .as_str()
            .unwrap_or("blosc-lz4:3")
            .to_string();
        engine_store::Compression::parse(&compression)
            .map_err(|e| b.error(format!("`compression`: {e}")))?;
        let op = Op::Preshuffle(Preshuffle {
            path,
            dataset_size,
            shuffle_chunk_size,
            n_obs_per_chunk: b.positive("n_obs_per_chunk")?,
            shard_size,
            shuffle: step.arg("shuffle").as_bool().unwrap_or(true),
            seed: b.int("seed") as u64,
            groupby,
            var_subset: b.names("var_subset"),
            compression,
        });
        Ok((op, s))
    }
}

impl LogicalOp for Preshuffle {
    fn describe(&self) -> String {
        let mut text = format!(
            "dataset_size={}, shuffle_chunk_size={}, n_obs_per_chunk={}, shard_size={}, seed={}",
            self.dataset_size
                .map_or("as the memory limit holds".to_string(), Size::describe),
            self.shuffle_chunk_size,
            self.n_obs_per_chunk,
            self.shard_size.describe(),
            self.seed
        );
        if !self.shuffle {
            text += ", shuffle=false";
        }
        if !self.groupby.is_empty() {
            text += &format!(", groupby={}", self.groupby.join(","));
        }
        if let Some(v) = &self.var_subset {
            text += &format!(", var_subset={} genes", v.len());
        }
        text + &format!(", compression={}, path={}", self.compression, self.path)
    }

    /// Every obs column goes into the datasets.
    fn reads(&self) -> Reads {
        Reads::AllObs
    }
}
