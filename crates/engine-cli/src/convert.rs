//! `engine convert`: h5ad <-> zarr and rechunking, streamed block by block.

use crate::args::{parse_bytes, parse_shape, usage};
use anyhow::{Result, bail};
use engine::{ArrayOptions, Compression, ConvertOptions, Dataset, StoreFormat};
use std::path::Path;

/// What `engine convert` was asked for, as given on the command line.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub input: &'a Path,
    pub output: &'a Path,
    pub format: Option<&'a str>,
    pub chunks: Option<&'a str>,
    pub shards: Option<&'a str>,
    pub compression: Option<&'a str>,
    /// `ELEMENT=SHAPE` chunk shapes of single elements.
    pub chunks_of: &'a [String],
    pub overwrite: bool,
    pub block_size: &'a str,
    /// 10x inputs: the genome to keep, and whether to keep every feature type.
    pub genome: Option<&'a str>,
    pub all_features: bool,
}

pub(crate) fn convert(r: &Request<'_>) -> Result<()> {
    let format = match r.format {
        Some(f) => StoreFormat::parse(f)
            .ok_or_else(|| usage(format!("unknown format `{f}`: use h5ad, zarr2 or zarr3")))?,
        None => format_from_extension(r.output)?,
    };
    let compression = match r.compression {
        Some(c) => Compression::parse(c).map_err(usage)?,
        None => Compression::None,
    };
    compression.check_for(format).map_err(usage)?;
    let mut elements = engine::ElementOptions::default();
    for spec in r.chunks_of {
        let Some((element, shape)) = spec.split_once('=') else {
            bail!(usage(format!(
                "--chunks-of `{spec}`: give ELEMENT=SHAPE, like `layers/*=all,25`"
            )));
        };
        let rule = engine::ElementRule {
            chunks: Some(parse_shape(shape)?),
            ..Default::default()
        };
        elements
            .add(element.trim(), rule)
            .map_err(|e| usage(format!("--chunks-of: {e}")))?;
    }
    let opts = ConvertOptions {
        elements,
        format,
        matrix: ArrayOptions {
            chunks: r.chunks.map(parse_shape).transpose()?,
            shards: r.shards.map(parse_shape).transpose()?,
            compression,
        },
        block_bytes: parse_bytes(r.block_size)?,
        overwrite: r.overwrite,
    };
    let options = engine::ReadOptions {
        genome: r.genome.map(String::from),
        gex_only: !r.all_features,
        ..Default::default()
    };
    let src = Dataset::open_with(r.input, &options)?;
    let t = std::time::Instant::now();
    let report = engine::convert(&src, r.output, &opts)?;
    eprintln!(
        "wrote {} ({}, {} × {}) in {:.2}s: {} elements, {} matrix blocks",
        r.output.display(),
        format.name(),
        src.n_obs(),
        src.n_vars(),
        t.elapsed().as_secs_f64(),
        report.elements,
        report.matrix_blocks
    );
    Ok(())
}

fn format_from_extension(p: &Path) -> Result<StoreFormat> {
    match p.extension().and_then(|e| e.to_str()) {
        Some("h5ad" | "h5") => Ok(StoreFormat::H5ad),
        Some("zarr") => Ok(StoreFormat::Zarr2),
        _ => bail!(engine::EngineError::usage(format!(
            "cannot tell the format of {}; pass --format h5ad|zarr2|zarr3",
            p.display()
        ))),
    }
}
