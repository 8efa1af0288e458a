//! `write`: X streamed block by block into an .h5ad or .zarr at a temporary path, then obs,
//! var and the elements; renamed into place only when complete.

use super::{Data, ExecNode, single};
use crate::annotations::Annotations;
use crate::block::XBlock;
use crate::context::{RunContext, workers};
use crate::lineage::Lineage;
use crate::pass::map_pass;
use engine_common::{Error, Location, Result};
use engine_matrix::{Block, Compressed, DynArray};
use engine_plan::io;
use engine_store::Value;
use engine_store::backend::{ArrayOptions, Compression, StoreFormat};
use engine_store::write::{self, AtomicTarget};
use indicatif::ProgressBar;
use ndarray::{Array1, Array2};
use rayon::prelude::*;
use std::borrow::Cow;
use std::ops::Range;
use std::path::Path;

#[derive(Debug)]
pub(crate) struct WriteNode {
    pub path: String,
    pub format: StoreFormat,
    /// X's chunk shape; the store's default when `None`.
    pub chunks: Option<Vec<u64>>,
    pub compression: Compression,
}

impl ExecNode for WriteNode {
    fn name(&self) -> &'static str {
        match self.format {
            StoreFormat::H5ad => "WriteH5ad",
            StoreFormat::Zarr2 => "WriteZarr2",
            StoreFormat::Zarr3 => "WriteZarr3",
            // Lowering only makes writers of the formats it can parse.
            StoreFormat::Tenx => "Write10x",
        }
    }

    fn stages(&self) -> Vec<String> {
        vec!["pass over X: stream blocks into the writer; then obs/var/obsm/varm/obsp/uns".into()]
    }

    fn is_sink(&self) -> bool {
        true
    }

    fn execute(&self, inputs: Vec<Cow<'_, Data>>, cx: &mut RunContext<'_>) -> Result<Option<Data>> {
        let data = single(inputs, self.name())?;
        let (target, blocks) = write_anndata(&data.x, &data.ann, self, cx)?;
        cx.output(target);
        cx.stage("write", blocks);
        Ok(None)
    }
}

/// Writes X block by block, then everything else, at a temporary; returns it, to be
/// committed with the run's other outputs, and the blocks written.
fn write_anndata(
    lin: &Lineage,
    a: &Annotations,
    w: &WriteNode,
    cx: &RunContext<'_>,
) -> Result<(AtomicTarget, usize)> {
    let path = w.path.as_str();
    ensure_dir(Path::new(path))?;
    let target = AtomicTarget::new(Path::new(path), cx.opts.overwrite)?;
    let blocks = write_into(lin, a, w, cx, &target).map_err(|e| target.blame(e))?;
    Ok((target, blocks))
}

/// [`write_anndata`]'s work, into the temporary of `target`.
fn write_into(
    lin: &Lineage,
    a: &Annotations,
    w: &WriteNode,
    cx: &RunContext<'_>,
    target: &AtomicTarget,
) -> Result<usize> {
    let (path, format) = (w.path.as_str(), w.format);
    let mut out = write::create_store(format, target.tmp_path())?;
    let (n_obs, n_vars) = (lin.n_obs(), lin.n_vars());
    write::write_root(out.as_mut())?;
    write::write_frame(out.as_mut(), "obs", &a.obs)?;
    write::write_frame(out.as_mut(), "var", &a.var)?;
    // X, streamed: blocks computed in parallel windows, written in order, as float32.
    let x_opts = ArrayOptions {
        chunks: w
            .chunks
            .as_ref()
            .map(|c| engine_store::backend::fit_chunks(c, &[n_obs as u64, n_vars as u64])),
        shards: None,
        compression: w.compression.clone(),
    };
    let chunk_rows = x_opts.chunks.as_ref().map_or(0, |c| c[0] as usize);
    // Unscaled sparse X is written as CSR, as scanpy keeps it; anything else dense.
    let sparse_x = n_obs > 0 && matches!(lin.block(0..1)?, XBlock::Sparse { fill: None, .. });
    let ranges = if chunk_rows > 0 && !sparse_x {
        // Whole output chunks per block so none is rewritten.
        io::even_blocks(n_obs, lin.max_rows.div_ceil(chunk_rows) * chunk_rows)
    } else {
        lin.blocks()
    };
    let workers = workers();
    let bar = cx.progress(&format!("write {path}"), ranges.len());
    if sparse_x {
        // The writer sizes `data` up front: a first pass counts the stored values.
        let (counts, _) = map_pass(lin, &ProgressBar::hidden(), |_, x| {
            Ok(x.to_csr()?.nnz() as u64)
        })?;
        let nnz: u64 = counts.iter().sum();
        let mut sw = write::SparseWriter::create(
            out.as_mut(),
            "X",
            engine_matrix::SparseFormat::Csr,
            [n_obs, n_vars],
            engine_matrix::DType::F32,
            nnz,
            &x_opts,
        )?;
        for window in ranges.chunks(workers) {
            bar.inc(window.len() as u64);
            let blocks: Vec<Compressed> = window
                .par_iter()
                .map(|r| {
                    let x = lin.block(r.clone())?;
                    let x = x.to_csr()?;
                    Ok(x.to_stored(|v| {
                        DynArray::F32(Array1::from_iter(v.iter().map(|&v| v as f32)).into_dyn())
                    }))
                })
                .collect::<Result<_>>()?;
            for b in &blocks {
                sw.append(out.as_mut(), b)?;
            }
        }
        sw.finish(out.as_mut())?;
    } else {
        out.create_array(
            "X",
            engine_matrix::DType::F32,
            &[n_obs as u64, n_vars as u64],
            &x_opts,
            &write::enc_attrs("array", "0.2.0"),
        )?;
        for window in ranges.chunks(workers) {
            bar.inc(window.len() as u64);
            let blocks: Vec<(Range<usize>, Array2<f32>)> = window
                .par_iter()
                .map(|r| {
                    lin.block(r.clone())
                        .map(|x| (r.clone(), x.into_dense().mapv(|v| v as f32)))
                })
                .collect::<Result<_>>()?;
            for (r, b) in blocks {
                out.write("X", &[r.start as u64, 0], &DynArray::F32(b.into_dyn()))?;
            }
        }
    }
    let group = |w: &mut dyn engine_store::StoreWriter, name: &str| {
        w.create_group(name, &write::enc_attrs("dict", "0.1.0"))
    };
    for (name, elements) in [("obsm", &a.obsm), ("varm", &a.varm)] {
        group(out.as_mut(), name)?;
        for (k, v) in elements {
            let path = format!("{name}/{k}");
            let opts = ArrayOptions::default();
            match &**v {
                Block::Dense(d) => write::write_array(out.as_mut(), &path, d, &opts)?,
                Block::Sparse(c) => write::write_sparse(out.as_mut(), &path, c, &opts)?,
            }
        }
    }
    group(out.as_mut(), "obsp")?;
    for (k, v) in &a.obsp {
        write::write_sparse(
            out.as_mut(),
            &format!("obsp/{k}"),
            v,
            &ArrayOptions::default(),
        )?;
    }
    group(out.as_mut(), "varp")?;
    group(out.as_mut(), "layers")?;
    write::write_value(
        out.as_mut(),
        "uns",
        &Value::Dict(a.uns.clone()),
        &ArrayOptions::default(),
    )?;
    for (k, v) in &a.uns_verbatim {
        // A step that wrote its own entry under the same key replaced the stored one.
        if !a.uns.contains_key(k) {
            engine_store::convert::copy_verbatim(
                v.store.as_ref(),
                out.as_mut(),
                &v.path,
                &format!("uns/{k}"),
            )?;
        }
    }
    bar.finish_and_clear();
    out.finish()?;
    Ok(ranges.len())
}

pub(super) fn ensure_dir(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(Location::file(dir), e))?;
    }
    Ok(())
}
