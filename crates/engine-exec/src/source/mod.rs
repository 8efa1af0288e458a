//! Where X's blocks (and the rest of a scan's AnnData value) come from. The executor sees
//! every source through [`BlockSource`]: a file scan, the synthetic generators; a
//! concatenation of many sources, a remote store or a permuted read for shuffling are further
//! implementations, not special cases in the nodes.

pub(crate) mod bands;
pub(crate) mod blobs;
mod columns;
mod concat;
pub(crate) mod counts;
pub(crate) mod file;

use crate::annotations::Annotations;
use crate::block::XBlock;
use engine_common::Result;
use engine_matrix::AxisSelection;
use engine_plan::{Scan, Schema, Source};
use engine_store::ReadCounter;
use std::sync::Arc;

/// A matrix source read block by block.
pub(crate) trait BlockSource: std::fmt::Debug + Send + Sync {
    /// Rows and columns of the whole source.
    fn shape(&self) -> (usize, usize);

    /// Rows `rows` (source positions, ascending) and columns `cols` of X as one block.
    ///
    /// # Errors
    /// On read failures or damaged data.
    fn read(&self, rows: &AxisSelection, cols: &AxisSelection) -> Result<XBlock>;

    /// Whether blocks come out sparse (without a fill), when known without reading X.
    fn sparse(&self) -> Option<bool> {
        None
    }

    /// Values stored in rows `rows` × columns `cols`, when known without reading X.
    ///
    /// # Errors
    /// On read failures.
    fn stored_nnz(&self, _rows: &AxisSelection, _cols: &AxisSelection) -> Result<Option<u64>> {
        Ok(None)
    }

    /// obs, var and the obsm/varm/obsp/uns elements the scan keeps, restricted to `rows` ×
    /// `cols` as a view would be.
    ///
    /// # Errors
    /// On read failures or damaged data.
    fn annotations(
        &self,
        scan: &Scan,
        schema: &Schema,
        rows: &AxisSelection,
        cols: &AxisSelection,
    ) -> Result<Annotations>;
}

/// Opens the source a scan reads; file reads count their bytes in `counter`.
///
/// # Errors
/// When a file cannot be opened or has no X.
pub(crate) fn open(scan: &Scan, counter: &ReadCounter) -> Result<Arc<dyn BlockSource>> {
    match (
        &scan.source,
        crate::distribute::SourceSpec::of(&scan.source),
    ) {
        (Source::Concat(c), _) => Ok(Arc::new(concat::ConcatSource::open(c, counter)?)),
        (_, Some(spec)) => spec.open(scan.chunk_starts.as_deref().map(Vec::as_slice), counter),
        (_, None) => Err(engine_common::Error::internal(
            "a source without a description that is not a concatenation",
        )),
    }
}

/// Whether a scan reads obs column `name` (`prune_elements` may have dropped it).
pub(crate) fn wants_obs(scan: &Scan, name: &str) -> bool {
    scan.obs_columns
        .as_ref()
        .is_none_or(|c| c.iter().any(|c| c == name))
}

/// An opened source with the rows and columns a scan reads (all, or a selection).
#[derive(Debug)]
pub(crate) struct ScanSource {
    pub source: Arc<dyn BlockSource>,
    pub rows: AxisSelection,
    pub cols: AxisSelection,
    /// Source rows where storage chunks begin, which pass blocks do not cross.
    pub chunk_starts: Option<Arc<Vec<usize>>>,
    /// A remote source with chunks taller than a block, read in bands (see [`bands`]), and
    /// the rows per block the bands are cut into.
    pub bands: Option<(bands::Bands, usize)>,
    /// The source as another process reopens it, for passes that run there (`None`: a
    /// concatenation, read here).
    pub spec: Option<crate::distribute::SourceSpec>,
    /// The run's stop request, looked at before every read.
    pub cancel: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl ScanSource {
    /// The scan's rows at positions `pos`, every selected column.
    pub fn read(&self, pos: &AxisSelection) -> Result<XBlock> {
        crate::options::check_cancel(self.cancel.as_ref())?;
        match &self.bands {
            Some((b, _)) => b.read(pos, self.rows.len(), self.cols.len(), |w| {
                self.source.read(&self.rows.slice(w), &self.cols)
            }),
            None => self.source.read(&self.rows.compose(pos), &self.cols),
        }
    }

    /// The same source read at positions `rows` and `cols` of this scan's selection.
    pub fn select(&self, rows: Option<&AxisSelection>, cols: Option<&AxisSelection>) -> Self {
        let rows = rows.map_or_else(|| self.rows.clone(), |r| self.rows.compose(r));
        let cols = cols.map_or_else(|| self.cols.clone(), |c| self.cols.compose(c));
        let bands = self
            .bands
            .as_ref()
            .map(|(b, max_rows)| (b.reselect(rows.len(), cols.len(), *max_rows), *max_rows));
        ScanSource {
            source: self.source.clone(),
            rows,
            cols,
            chunk_starts: self.chunk_starts.clone(),
            bands,
            spec: self.spec.clone(),
            cancel: self.cancel.clone(),
        }
    }
}
