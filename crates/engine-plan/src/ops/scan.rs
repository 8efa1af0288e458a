//! `Scan`: where X comes from (the synthetic generators, or a file the catalogue describes),
//! with what the optimizer pushed into the read.

use super::{Bind, LogicalOp, Reads};
use crate::catalog::SourceInfo;
use crate::ops::select::Selection;
use crate::plan::Op;
use crate::schema::{ColType, Schema};
use engine_common::Result;
use engine_matrix::DType;
use engine_store::ReadOptions;
use std::fmt::Write as _;
use std::sync::Arc;

/// Where X comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Gaussian blobs generated block by block.
    Synthetic {
        n_obs: usize,
        n_vars: usize,
        centers: usize,
        cluster_std: f64,
        seed: u64,
        dtype: DType,
    },
    /// Sparse single-cell-like counts generated block by block.
    Counts {
        n_obs: usize,
        n_vars: usize,
        n_types: usize,
        n_batches: usize,
        library_size: f64,
        seed: u64,
    },
    /// An .h5ad or .zarr dataset.
    File {
        path: String,
        storage: Storage,
        /// How a 10x input is read (ignored for AnnData files).
        options: ReadOptions,
    },
    /// Files one after another along obs (`concat`).
    Concat(Arc<super::concat::Concat>),
}

/// How a file's X is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XEncoding {
    Dense,
    Csr,
    Csc,
}

impl XEncoding {
    pub fn name(self) -> &'static str {
        match self {
            XEncoding::Dense => "dense",
            XEncoding::Csr => "csr",
            XEncoding::Csc => "csc",
        }
    }
}

/// How a file's X is stored, learnt at plan time from metadata (and, for CSR, the row
/// pointers), so EXPLAIN can say what a scan reads and `align_chunks` can follow the chunks.
#[derive(Debug, Clone, PartialEq)]
pub struct Storage {
    pub encoding: XEncoding,
    pub shape: [usize; 2],
    pub dtype: DType,
    /// Bytes per value and, for sparse, per stored column index.
    pub value_bytes: usize,
    pub index_bytes: usize,
    /// Chunk shape of the dense array, or the 1-D chunk of a sparse matrix's `data`;
    /// `None` when contiguous.
    pub chunks: Option<Vec<u64>>,
    pub compression: Vec<String>,
    /// CSR row pointers.
    pub indptr: Option<Arc<Vec<u64>>>,
    /// Shard shape of a sharded zarr v3 array (`chunks` is then the inner chunk).
    pub shards: Option<Vec<u64>>,
    /// Read over a network: every chunk read is a request, which EXPLAIN counts.
    pub remote: bool,
}

/// A read of X and obs from a source, with what the optimizer pushed into it.
#[derive(Debug, Clone, PartialEq)]
pub struct Scan {
    pub source: Source,
    /// Rows and columns read, as positions in the source (`push_down_selection`).
    pub rows: Option<Selection>,
    pub cols: Option<Selection>,
    /// The obs columns read; `None` reads all (`prune_elements`).
    pub obs_columns: Option<Vec<String>>,
    /// The obsm/varm/obsp/uns elements read from a file, as paths (`obsm/X_pca`); `None`
    /// reads all (`prune_elements`).
    pub elements: Option<Vec<String>>,
    /// Source rows where storage chunks begin, which pass blocks should not cross
    /// (`align_chunks`).
    pub chunk_starts: Option<Arc<Vec<usize>>>,
}

impl Scan {
    pub fn new(source: Source) -> Scan {
        Scan {
            source,
            rows: None,
            cols: None,
            obs_columns: None,
            elements: None,
            chunk_starts: None,
        }
    }

    /// Rows and columns of the full source.
    pub fn source_shape(&self) -> (usize, usize) {
        match &self.source {
            Source::Synthetic { n_obs, n_vars, .. } | Source::Counts { n_obs, n_vars, .. } => {
                (*n_obs, *n_vars)
            }
            Source::File { storage, .. } => (storage.shape[0], storage.shape[1]),
            Source::Concat(c) => (c.n_obs(), c.var_names.len()),
        }
    }
}

impl LogicalOp for Scan {
    /// Parameters as stable text for EXPLAIN.
    fn describe(&self) -> String {
        let scan = self;
        let mut d = match &scan.source {
            Source::Synthetic {
                n_obs,
                n_vars,
                centers,
                cluster_std,
                seed,
                dtype,
            } => format!(
                "synthetic(n_obs={n_obs}, n_vars={n_vars}, centers={centers}, cluster_std={cluster_std}, seed={seed}, dtype={dtype})"
            ),
            Source::Counts {
                n_obs,
                n_vars,
                n_types,
                n_batches,
                library_size,
                seed,
            } => format!(
                "synthetic_counts(n_obs={n_obs}, n_vars={n_vars}, n_types={n_types}, n_batches={n_batches}, library_size={library_size}, seed={seed})"
            ),
            Source::File {
                path,
                storage,
                options,
            } => {
                let mut s = format!("file({path}, {} {}", storage.encoding.name(), storage.dtype);
                if let Some(g) = &options.genome {
                    let _ = write!(s, ", genome={g}");
                }
                if !options.gex_only {
                    s += ", gex_only=false";
                }
                if let Some(l) = &options.layer {
                    let _ = write!(s, ", layer={l}");
                }
                if options.use_raw {
                    s += ", use_raw";
                }
                s + ")"
            }
            Source::Concat(c) => c.describe(),
        };
        let (n, m) = scan.source_shape();
        if let Some(r) = &scan.rows {
            let _ = write!(d, ", rows={}", r.describe(n));
        }
        if let Some(c) = &scan.cols {
            let _ = write!(d, ", cols={}", c.describe(m));
        }
        if let Some(o) = &scan.obs_columns {
            let _ = write!(d, ", obs=[{}]", o.join(","));
        }
        if let Some(e) = &scan.elements {
            let _ = write!(d, ", elements=[{}]", e.join(","));
        }
        if let Some(a) = &scan.chunk_starts {
            let _ = write!(d, ", blocks aligned to {} chunk boundaries", a.len());
        }
        d
    }

    /// A source reads nothing of an input.
    fn reads(&self) -> Reads {
        Reads::Nothing
    }
}

/// The most cells a generated dataset may have (2^32; the largest atlases hold ~10^8).
pub const MAX_OBS: usize = 1 << 32;
/// The most genes: anndata's sparse indices are 32-bit.
pub const MAX_VARS: usize = i32::MAX as usize;

/// The most blobs, cell types or batches (each a category label and a row of parameters).
pub const MAX_GROUPS: usize = 1 << 16;

/// `synthetic`: Gaussian blobs.
pub(crate) fn bind_synthetic(b: &Bind<'_>) -> Result<(Op, Schema)> {
    let step = b.step;
    let dtype = if step.arg("dtype").as_str() == Some("float64") {
        DType::F64
    } else {
        DType::F32
    };
    let (n_obs, n_vars) = (b.bounded("n_obs", MAX_OBS)?, b.bounded("n_vars", MAX_VARS)?);
    let src = Source::Synthetic {
        n_obs,
        n_vars,
        centers: b.bounded("centers", MAX_GROUPS)?,
        cluster_std: b.finite("cluster_std", 1.0, false)?,
        seed: b.int("seed") as u64,
        dtype,
    };
    let schema = Schema {
        n_obs,
        n_vars,
        x_dtype: Some(dtype),
        obs_index: "_index".into(),
        var_index: "_index".into(),
        obs: vec![("blob".into(), ColType::Category)],
        ..Default::default()
    };
    Ok((Op::Scan(Scan::new(src)), schema))
}

/// `synthetic_counts`: negative-binomial counts with cell types and batches.
pub(crate) fn bind_counts(b: &Bind<'_>) -> Result<(Op, Schema)> {
    let (n_obs, n_vars) = (b.bounded("n_obs", MAX_OBS)?, b.bounded("n_vars", MAX_VARS)?);
    let src = Source::Counts {
        n_obs,
        n_vars,
        n_types: b.bounded("n_types", MAX_GROUPS)?,
        n_batches: b.bounded("n_batches", MAX_GROUPS)?,
        library_size: b.finite("library_size", 3000.0, true)?,
        seed: b.int("seed") as u64,
    };
    let schema = Schema {
        n_obs,
        n_vars,
        x_dtype: Some(DType::F32),
        x_sparse: true,
        obs_index: "_index".into(),
        var_index: "_index".into(),
        obs: vec![
            ("cell_type".into(), ColType::Category),
            ("batch".into(), ColType::Category),
        ],
        ..Default::default()
    };
    Ok((Op::Scan(Scan::new(src)), schema))
}

/// `read`: an .h5ad or .zarr, as the catalogue describes it.
pub(crate) fn bind_read(b: &Bind<'_>) -> Result<(Op, Schema)> {
    let path = b.step.arg("path").as_str().unwrap_or_default().to_string();
    let options = ReadOptions {
        genome: b.step.arg("genome").as_str().map(String::from),
        gex_only: b.step.arg("gex_only").as_bool().unwrap_or(true),
        layer: b.step.arg("layer").as_str().map(String::from),
        use_raw: b.step.arg("use_raw").as_bool().unwrap_or(false),
    };
    if options.layer.is_some() && options.use_raw {
        return Err(b.error("`layer` and `use_raw` cannot both be set: raw has no layers"));
    }
    // A glob (`runs/*.h5ad`) reads its files as one: their concatenation (inner join).
    let literal = std::path::Path::new(&path);
    if engine_store::glob::is_glob(literal) && !literal.exists() {
        let files = engine_store::glob::expand(literal).map_err(|e| b.error(e.to_string()))?;
        if files.len() > 1 {
            let mut parts = Vec::new();
            for f in files {
                let file = f.display().to_string();
                let SourceInfo { schema, storage } =
                    b.catalog.describe(&file, &options).map_err(|e| match e {
                        engine_common::Error::Usage(m) => b.error(m),
                        e => e,
                    })?;
                parts.push(super::concat::ConcatPart {
                    step: f
                        .file_name()
                        .map_or(file.clone(), |n| n.to_string_lossy().into_owned()),
                    path: file,
                    options: options.clone(),
                    storage,
                    schema,
                    columns: Arc::new(Vec::new()),
                });
            }
            return super::concat::assemble(b, parts);
        }
    }
    // A mistake in what the step asks of the file (a layer it lacks) points at the step.
    let SourceInfo { schema, storage } =
        b.catalog.describe(&path, &options).map_err(|e| match e {
            engine_common::Error::Usage(m) => b.error(m),
            e => e,
        })?;
    Ok((
        Op::Scan(Scan::new(Source::File {
            path,
            storage,
            options,
        })),
        schema,
    ))
}
