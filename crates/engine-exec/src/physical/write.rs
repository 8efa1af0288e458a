//! `write`: X streamed block by block into an .h5ad or .zarr at a temporary path, then obs,
//! var and the elements; renamed into place only when complete.

use super::{Data, ExecNode};
use crate::annotations::Annotations;
use crate::block::XBlock;
use crate::context::{RunContext, workers};
use crate::lineage::Lineage;
use crate::pass::map_pass;
use engine_common::{Error, Location, Result};
use engine_matrix::{AxisSelection, Block, Compressed, DType, DynArray};
use engine_plan::Slot;
use engine_plan::io;
use engine_store::backend::{ArrayOptions, Compression, StoreFormat};
use engine_store::write::{self, AtomicTarget};
use engine_store::{Frame, Value};
use indicatif::ProgressBar;
use ndarray::Array1;
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
    /// Storage of single elements, over `chunks` and `compression`.
    pub elements: engine_store::ElementOptions,
    /// The type X is stored in: the plan's (float64 stays float64).
    pub dtype: DType,
    /// What the inputs after the first give, in input order, with their X's stored type.
    pub slots: Vec<(Slot, DType)>,
    /// Bytes the X blocks of a pass may take (see `io::max_block_rows`): a matrix written
    /// dense gets rows as wide as it is, whatever its source stores.
    pub block_budget: usize,
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
        let mut passes = vec![
            match self.slots.iter().find(|(s, _)| matches!(s, Slot::X { .. })) {
                Some((s, _)) => format!(
                    "pass over `{}`'s X (the output's cells and genes): stream blocks into X; then obs/var/obsm/varm/obsp/uns",
                    s.step()
                ),
                None => {
                    "pass over X: stream blocks into the writer; then obs/var/obsm/varm/obsp/uns"
                        .into()
                }
            },
        ];
        for (slot, _) in &self.slots {
            match slot {
                Slot::X { .. } => {}
                Slot::Raw { step } => passes.push(format!(
                    "pass over `{step}`'s X (the output's cells, all its genes) -> raw/X, its var -> raw/var"
                )),
                Slot::Layer { name, step } => passes.push(format!(
                    "pass over `{step}`'s X (the output's cells and genes) -> layers/{name}"
                )),
            }
        }
        passes
    }

    fn is_sink(&self) -> bool {
        true
    }

    fn execute(&self, inputs: Vec<Cow<'_, Data>>, cx: &mut RunContext<'_>) -> Result<Option<Data>> {
        if inputs.len() != 1 + self.slots.len() {
            return Err(Error::internal(format!(
                "a writer with {} slots got {} inputs",
                self.slots.len(),
                inputs.len()
            )));
        }
        let (target, blocks) = write_anndata(&inputs[0], &inputs[1..], self, cx)?;
        cx.output(target);
        cx.stage("write", blocks);
        Ok(None)
    }
}

/// Writes X block by block, then everything else, at a temporary; returns it, to be
/// committed with the run's other outputs, and the blocks written.
fn write_anndata(
    main: &Data,
    slots: &[Cow<'_, Data>],
    w: &WriteNode,
    cx: &RunContext<'_>,
) -> Result<(AtomicTarget, usize)> {
    let path = w.path.as_str();
    ensure_dir(Path::new(path))?;
    let target = AtomicTarget::new(Path::new(path), cx.opts.overwrite)?;
    let blocks = write_into(main, slots, w, cx, &target).map_err(|e| target.blame(e))?;
    Ok((target, blocks))
}

/// Positions in `from` of the names in `to` (an obs or var index), or `None` when they are
/// the same names in the same order.
fn positions(to: &Frame, from: &Frame, axis: &str, step: &str) -> Result<Option<AxisSelection>> {
    let (n_to, n_from) = (to.n_rows(), from.n_rows());
    if n_to == n_from && (0..n_to).all(|i| to.index.render(i) == from.index.render(i)) {
        return Ok(None);
    }
    let mut at = std::collections::HashMap::with_capacity(n_from);
    for i in 0..n_from {
        if at.insert(from.index.render(i), i).is_some() {
            return Err(Error::step(
                step,
                format!(
                    "the {axis} names of step `{step}` are not unique, so its {axis} cannot be matched to the output's by name (make them unique first)"
                ),
            ));
        }
    }
    let picked = (0..n_to)
        .map(|i| {
            let name = to.index.render(i);
            at.get(&name).copied().ok_or_else(|| {
                Error::internal(format!(
                    "{axis} `{name}` of the output is not in step `{step}`, which is upstream of it"
                ))
            })
        })
        .collect::<Result<Vec<usize>>>()?;
    Ok(Some(AxisSelection::from_indices(&picked)))
}

/// `src`'s X as the output `main` holds its cells (and, with `genes`, its genes).
pub(super) fn aligned(main: &Annotations, src: &Data, step: &str, genes: bool) -> Result<Lineage> {
    let rows = positions(&main.obs, &src.ann.obs, "obs", step)?;
    let cols = if genes {
        positions(&main.var, &src.ann.var, "var", step)?
    } else {
        None
    };
    Ok(match (&rows, &cols) {
        (None, None) => src.x.clone(),
        _ => src.x.select(rows.as_ref(), cols.as_ref()),
    })
}

/// [`write_anndata`]'s work, into the temporary of `target`.
fn write_into(
    main: &Data,
    slots: &[Cow<'_, Data>],
    w: &WriteNode,
    cx: &RunContext<'_>,
    target: &AtomicTarget,
) -> Result<usize> {
    let a = &main.ann;
    let mut out = write::create_store(w.format, target.tmp_path())?;
    write::write_root(out.as_mut())?;
    write::write_frame(out.as_mut(), "obs", &a.obs)?;
    write::write_frame(out.as_mut(), "var", &a.var)?;
    let matrices = ArrayOptions {
        chunks: w.chunks.clone(),
        shards: None,
        compression: w.compression.clone(),
    };
    let x_opts = |lin: &Lineage, path: &str| {
        w.elements
            .for_shape(path, &matrices, &[lin.n_obs() as u64, lin.n_vars() as u64])
    };
    let other_opts = |path: &str, shape: &[usize]| {
        let shape: Vec<u64> = shape.iter().map(|&s| s as u64).collect();
        w.elements.for_shape(path, &ArrayOptions::default(), &shape)
    };
    let mut x = None;
    let mut layers = Vec::new();
    let mut raw = None;
    for ((slot, dtype), data) in w.slots.iter().zip(slots) {
        match slot {
            Slot::X { step } => x = Some((aligned(a, data, step, true)?, *dtype)),
            Slot::Layer { name, step } => {
                layers.push((name, aligned(a, data, step, true)?, *dtype));
            }
            Slot::Raw { step } => {
                raw = Some((aligned(a, data, step, false)?, &data.ann.var, *dtype))
            }
        }
    }
    let (lin, dtype) = x.unwrap_or_else(|| (main.x.clone(), w.dtype));
    let mut blocks = write_matrix(out.as_mut(), "X", &lin, dtype, &x_opts(&lin, "X"), cx, w)?;
    let group = |w: &mut dyn engine_store::StoreWriter, name: &str| {
        w.create_group(name, &write::enc_attrs("dict", "0.1.0"))
    };
    for (name, elements) in [("obsm", &a.obsm), ("varm", &a.varm)] {
        group(out.as_mut(), name)?;
        for (k, v) in elements {
            let path = format!("{name}/{k}");
            match &**v {
                Block::Dense(d) => {
                    let opts = other_opts(&path, d.shape());
                    write::write_array(out.as_mut(), &path, d, &opts)?
                }
                Block::Sparse(c) => {
                    let opts = other_opts(&path, &c.shape);
                    write::write_sparse(out.as_mut(), &path, c, &opts)?
                }
            }
        }
    }
    group(out.as_mut(), "obsp")?;
    for (k, v) in &a.obsp {
        let path = format!("obsp/{k}");
        write::write_sparse(out.as_mut(), &path, v, &other_opts(&path, &v.shape))?;
    }
    group(out.as_mut(), "varp")?;
    group(out.as_mut(), "layers")?;
    for (name, lin, dtype) in &layers {
        let path = format!("layers/{name}");
        blocks += write_matrix(out.as_mut(), &path, lin, *dtype, &x_opts(lin, &path), cx, w)?;
    }
    if let Some((lin, var, dtype)) = &raw {
        out.create_group("raw", &write::enc_attrs("raw", "0.1.0"))?;
        blocks += write_matrix(
            out.as_mut(),
            "raw/X",
            lin,
            *dtype,
            &x_opts(lin, "raw/X"),
            cx,
            w,
        )?;
        write::write_frame(out.as_mut(), "raw/var", var)?;
        group(out.as_mut(), "raw/varm")?;
    }
    let mut uns = a.uns.clone();
    if let Some(p) = &cx.opts.provenance {
        uns.insert("engine".into(), p.clone());
    }
    write::write_value(
        out.as_mut(),
        "uns",
        &Value::Dict(uns),
        &ArrayOptions::default(),
    )?;
    for (k, v) in &a.uns_verbatim {
        // A step that wrote its own entry under the same key replaced the stored one.
        let ours = k == "engine" && cx.opts.provenance.is_some();
        if !(a.uns.contains_key(k) || ours) {
            engine_store::convert::copy_verbatim(
                v.store.as_ref(),
                out.as_mut(),
                &v.path,
                &format!("uns/{k}"),
            )?;
        }
    }
    out.finish()?;
    Ok(blocks)
}

/// Streams `lin` into the matrix at `path` as `dtype`: unscaled sparse as CSR (as scanpy
/// keeps it), anything else dense, in blocks computed in parallel windows and written in
/// order. Returns the blocks written.
fn write_matrix(
    out: &mut dyn engine_store::StoreWriter,
    path: &str,
    lin: &Lineage,
    dtype: DType,
    opts: &ArrayOptions,
    cx: &RunContext<'_>,
    w: &WriteNode,
) -> Result<usize> {
    let target = &w.path;
    let (n_obs, n_vars) = (lin.n_obs(), lin.n_vars());
    let chunk_rows = opts.chunks.as_ref().map_or(0, |c| c[0] as usize);
    // Known from the source's layout where possible: the probe reads a chunk, which for a
    // remote store is a request.
    let sparse = match lin.is_sparse() {
        Some(s) => s,
        None => n_obs > 0 && matches!(lin.block(0..1)?, XBlock::Sparse { fill: None, .. }),
    };
    // Dense rows are as wide as the matrix (a scaled sparse source becomes dense here).
    let dense_rows = lin
        .max_rows
        .min(io::max_block_rows(n_vars, w.block_budget, workers()));
    let ranges = if sparse || (chunk_rows == 0 && dense_rows == lin.max_rows) {
        lin.blocks()
    } else if chunk_rows > 0 {
        // Whole output chunks per block so none is rewritten.
        io::even_blocks(n_obs, dense_rows.div_ceil(chunk_rows) * chunk_rows)
    } else {
        io::even_blocks(n_obs, dense_rows)
    };
    let workers = workers();
    let bar = cx.progress(&format!("write {target}:{path}"), ranges.len());
    let cast = |v: &[f64]| match dtype {
        DType::F64 => DynArray::F64(Array1::from(v.to_vec()).into_dyn()),
        _ => DynArray::F32(Array1::from_iter(v.iter().map(|&v| v as f32)).into_dyn()),
    };
    if sparse {
        // The writer sizes `data` up front: the source's row pointers give the stored values,
        // or a first pass counts them.
        let nnz = match lin.stored_nnz()? {
            Some(n) => n,
            None => {
                let (counts, _) = map_pass(lin, &ProgressBar::hidden(), |_, x| {
                    Ok(x.to_csr()?.nnz() as u64)
                })?;
                counts.iter().sum()
            }
        };
        let mut sw = write::SparseWriter::create(
            out,
            path,
            engine_matrix::SparseFormat::Csr,
            [n_obs, n_vars],
            dtype,
            nnz,
            opts,
        )?;
        for window in ranges.chunks(workers) {
            bar.inc(window.len() as u64);
            let blocks: Vec<Compressed> = window
                .par_iter()
                .map(|r| Ok(lin.block(r.clone())?.to_csr()?.to_stored(cast)))
                .collect::<Result<_>>()?;
            for b in &blocks {
                sw.append(out, b)?;
            }
        }
        sw.finish(out)?;
    } else {
        out.create_array(
            path,
            dtype,
            &[n_obs as u64, n_vars as u64],
            opts,
            &write::enc_attrs("array", "0.2.0"),
        )?;
        for window in ranges.chunks(workers) {
            bar.inc(window.len() as u64);
            let blocks: Vec<(Range<usize>, DynArray)> = window
                .par_iter()
                .map(|r| {
                    lin.block(r.clone()).map(|x| {
                        let d = x.into_dense();
                        let a = match dtype {
                            DType::F64 => DynArray::F64(d.into_dyn()),
                            _ => DynArray::F32(d.mapv(|v| v as f32).into_dyn()),
                        };
                        (r.clone(), a)
                    })
                })
                .collect::<Result<_>>()?;
            for (r, b) in blocks {
                out.write(path, &[r.start as u64, 0], &b)?;
            }
        }
    }
    bar.finish_and_clear();
    Ok(ranges.len())
}

pub(super) fn ensure_dir(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(Location::file(dir), e))?;
    }
    Ok(())
}
