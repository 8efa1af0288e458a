//! `Scan`: opens a source with the selection pushed into it; X becomes a lineage over it.

use super::{Data, ExecNode};
use crate::context::{RunContext, workers};
use crate::lineage::Lineage;
use crate::source::{self, ScanSource, bands};
use engine_common::Result;
use engine_matrix::AxisSelection;
use engine_plan::{Scan, Schema, io};
use std::borrow::Cow;
use std::sync::Arc;

#[derive(Debug)]
pub(crate) struct ScanNode {
    pub scan: Scan,
    /// The scan's schema: which elements a file scan loads.
    pub schema: Schema,
    /// Rows per block of every pass over this scan, within the memory budget.
    pub max_rows: usize,
    /// The blocks of a pass straight over the scan.
    pub blocks: Vec<std::ops::Range<usize>>,
    /// Bytes for gathering a remote scan's rows in bands, when its chunks are taller than
    /// a block (see `source::bands`).
    pub band_budget: Option<usize>,
}

impl ScanNode {
    fn rows(&self) -> AxisSelection {
        let (n, _) = self.scan.source_shape();
        self.scan
            .rows
            .as_ref()
            .map_or_else(|| AxisSelection::all(n), |s| s.sel.clone())
    }

    fn cols(&self) -> AxisSelection {
        let (_, m) = self.scan.source_shape();
        self.scan
            .cols
            .as_ref()
            .map_or_else(|| AxisSelection::all(m), |s| s.sel.clone())
    }
}

impl ExecNode for ScanNode {
    fn name(&self) -> &'static str {
        match self.scan.source {
            engine_plan::Source::File { .. } => "FileScan",
            engine_plan::Source::Concat(_) => "ConcatScan",
            _ => "GeneratedScan",
        }
    }

    fn stages(&self) -> Vec<String> {
        vec![]
    }

    fn header(&self, step: &str) -> Option<String> {
        let mut text = format!("scan {step}: each pass {}", reads(&self.scan, &self.blocks));
        if let Some(budget) = self.band_budget {
            // What a pass fetches is then each band's chunks, once.
            let (n, m) = (self.rows().len(), self.cols().len());
            let (rows, held) = bands::sizes(budget, n, m, workers(), self.max_rows);
            let bands = io::even_blocks(n, rows);
            let fetched =
                io::scan_io(&self.scan, &bands).map_or_else(String::new, |r| r.describe());
            text = format!(
                "scan {step}: each pass {fetched} in {} bands of up to {rows} rows ({held} held, {} MiB), cut into {} blocks",
                bands.len(),
                (rows * m * bands::BYTES_PER_VALUE * held) >> 20,
                self.blocks.len()
            );
        }
        // A concatenation's reads, file by file.
        if let engine_plan::Source::Concat(c) = &self.scan.source {
            let rows = self.rows();
            let block_rows: Vec<AxisSelection> =
                self.blocks.iter().map(|b| rows.slice(b.clone())).collect();
            for (part, io) in io::concat_io(c, &block_rows, &self.cols()) {
                text += &format!("\n  {part}: {}", io.describe());
            }
        }
        Some(text)
    }

    fn execute(&self, _: Vec<Cow<'_, Data>>, cx: &mut RunContext<'_>) -> Result<Option<Data>> {
        let (rows, cols) = (self.rows(), self.cols());
        let src = source::open(&self.scan, &cx.bytes)?;
        let ann = src.annotations(&self.scan, &self.schema, &rows, &cols)?;
        let (n_obs, n_vars) = (rows.len(), cols.len());
        let x = Lineage {
            source: Arc::new(ScanSource {
                source: src,
                rows,
                cols,
                chunk_starts: self.scan.chunk_starts.clone(),
                bands: self.band_budget.map(|budget| {
                    (
                        bands::Bands::new(budget, n_obs, n_vars, workers(), self.max_rows),
                        self.max_rows,
                    )
                }),
                spec: crate::distribute::SourceSpec::of(&self.scan.source),
                cancel: cx.opts.cancel.clone(),
            }),
            steps: vec![],
            n_obs,
            n_vars,
            max_rows: self.max_rows,
            moments: None,
        };
        Ok(Some(Data { x, ann }))
    }
}

/// What a pass in `blocks` over `scan` reads, as EXPLAIN text.
pub(crate) fn reads(scan: &Scan, blocks: &[std::ops::Range<usize>]) -> String {
    match io::scan_io(scan, blocks) {
        Some(r) => format!("{} in {} blocks", r.describe(), blocks.len()),
        None => format!("generated in {} blocks, nothing read", blocks.len()),
    }
}
