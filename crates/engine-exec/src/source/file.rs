//! An .h5ad or .zarr dataset's X, read by selection, with its obs, var and elements.

use super::BlockSource;
use crate::annotations::{Annotations, Verbatim, drop_unused_categories};
use crate::block::XBlock;
use engine_common::{Error, Location, Result};
use engine_matrix::Csr;
use engine_matrix::{AxisSelection, Block, SparseFormat};
use engine_plan::{Scan, Schema};
use engine_store::{Dataset, Matrix, ReadCounter};
use ndarray::Array2;
use std::ops::Range;
use std::sync::Arc;

#[derive(Debug)]
pub(crate) struct FileSource {
    ds: Dataset,
    matrix: Matrix,
    /// Rows between selected runs up to which one read covers both (a chunk's height).
    gap: usize,
    /// Counts X's reads and the elements' (obsm, varm, obsp) alike.
    counter: ReadCounter,
}

impl FileSource {
    /// Opens `path`'s X; reads of it count in `counter`.
    pub fn open(
        path: &str,
        options: &engine_store::ReadOptions,
        chunk_starts: Option<&[usize]>,
        counter: &ReadCounter,
    ) -> Result<Self> {
        let ds = Dataset::open_with(path, options)?;
        let matrix = ds
            .x()?
            .ok_or_else(|| Error::usage(format!("{path}: the dataset has no X")))?
            .counted(counter.clone());
        let gap = chunk_starts
            .and_then(|s| s.windows(2).next().map(|w| w[1] - w[0]))
            .unwrap_or(64);
        Ok(FileSource {
            ds,
            matrix,
            gap,
            counter: counter.clone(),
        })
    }

    pub fn dataset(&self) -> &Dataset {
        &self.ds
    }
}

impl BlockSource for FileSource {
    fn shape(&self) -> (usize, usize) {
        (self.matrix.n_rows(), self.matrix.n_cols())
    }

    fn read(&self, rows: &AxisSelection, cols: &AxisSelection) -> Result<XBlock> {
        // A remote matrix reads each chunk a selection touches once and keeps only the
        // selected rows of it (`Matrix::read_block`): a cover of the runs would hold every
        // row in between.
        if self.matrix.is_remote() {
            return read_file_block(&self.matrix, rows, cols);
        }
        // Scattered rows: read each cluster of nearby runs as one range and keep the
        // selected rows in memory, so a chunk is decoded once per block rather than
        // once per run.
        let gap = self.gap;
        let mut parts = Vec::new();
        let mut group: Vec<Range<usize>> = Vec::new();
        let flush = |group: &mut Vec<Range<usize>>, parts: &mut Vec<XBlock>| {
            if group.is_empty() {
                return Ok::<_, Error>(());
            }
            let cover = group[0].start..group[group.len() - 1].end;
            let x = read_file_block(&self.matrix, &AxisSelection::range(cover.clone()), cols)?;
            let local: Vec<usize> = group
                .iter()
                .flat_map(|r| r.start - cover.start..r.end - cover.start)
                .collect();
            parts.push(if local.len() == cover.len() {
                x
            } else {
                x.take_rows(&local)
            });
            group.clear();
            Ok(())
        };
        for r in rows.runs() {
            if group.last().is_some_and(|l| r.start - l.end > gap) {
                flush(&mut group, &mut parts)?;
            }
            group.push(r.clone());
        }
        flush(&mut group, &mut parts)?;
        XBlock::concat(parts, cols.len())
    }

    /// A file's X is read as it is stored: sparse (CSR or CSC) as CSR blocks, dense as dense.
    fn sparse(&self) -> Option<bool> {
        Some(self.matrix.sparse_format().is_some())
    }

    /// A CSR matrix's row pointers give the values of whole rows.
    fn stored_nnz(&self, rows: &AxisSelection, cols: &AxisSelection) -> Result<Option<u64>> {
        if self.matrix.sparse_format() != Some(SparseFormat::Csr)
            || !cols.is_full(self.matrix.n_cols())
        {
            return Ok(None);
        }
        let Some(indptr) = self.matrix.indptr()? else {
            return Ok(None);
        };
        Ok(Some(
            rows.runs()
                .iter()
                .map(|r| indptr[r.end] - indptr[r.start])
                .sum(),
        ))
    }

    fn annotations(
        &self,
        scan: &Scan,
        schema: &Schema,
        rows: &AxisSelection,
        cols: &AxisSelection,
    ) -> Result<Annotations> {
        let (n_all, m_all) = self.shape();
        let obs = self.ds.obs(scan.obs_columns.as_deref())?;
        let var = self.ds.var(None)?;
        let mut a = Annotations {
            obs: if rows.is_full(n_all) {
                obs
            } else {
                obs.take(&rows.indices().collect::<Vec<_>>())
            },
            var: if cols.is_full(m_all) {
                var
            } else {
                var.take(&cols.indices().collect::<Vec<_>>())
            },
            ..Default::default()
        };
        load_elements(&self.ds, &self.counter, schema, scan, rows, cols, &mut a)?;
        // A selection pushed into the read is a view, as anndata makes it.
        if !rows.is_full(n_all) {
            drop_unused_categories(&mut a.obs, &mut a.uns);
        }
        if !cols.is_full(m_all) {
            drop_unused_categories(&mut a.var, &mut a.uns);
        }
        Ok(a)
    }
}

/// Rows `rows`, columns `cols` of a stored matrix: CSR stays sparse, anything else is dense.
fn read_file_block(matrix: &Matrix, rows: &AxisSelection, cols: &AxisSelection) -> Result<XBlock> {
    let numeric = || Error::usage("X is not numeric");
    match matrix.read_block(rows, cols)? {
        Block::Dense(a) => {
            let v = a.to_f64_vec().ok_or_else(numeric)?;
            Array2::from_shape_vec((rows.len(), cols.len()), v)
                .map(XBlock::Dense)
                .map_err(|e| Error::internal(e.to_string()))
        }
        Block::Sparse(c) => {
            let c = if c.format == SparseFormat::Csc {
                c.transpose_format()
            } else {
                c
            };
            Ok(XBlock::Sparse {
                x: Csr::from_stored(c).map_err(|_| numeric())?,
                fill: None,
            })
        }
    }
}

/// Reads the obsm/varm/obsp/uns elements of a file that the scan keeps, restricted to its
/// rows and columns as a view would be.
fn load_elements(
    ds: &Dataset,
    counter: &ReadCounter,
    schema: &Schema,
    scan: &Scan,
    rows: &AxisSelection,
    cols: &AxisSelection,
    a: &mut Annotations,
) -> Result<()> {
    let wanted = |p: &str| {
        scan.elements
            .as_ref()
            .is_none_or(|e| e.iter().any(|x| x == p))
    };
    let all = |m: &engine_store::Matrix| AxisSelection::all(m.n_cols());
    for (k, _) in &schema.obsm {
        let path = format!("obsm/{k}");
        if wanted(&path) {
            let m = ds.matrix(&path)?.counted(counter.clone());
            a.obsm
                .insert(k.clone(), Arc::new(m.read_block(rows, &all(&m))?));
        }
    }
    for (k, _) in &schema.varm {
        let path = format!("varm/{k}");
        if wanted(&path) {
            let m = ds.matrix(&path)?.counted(counter.clone());
            a.varm
                .insert(k.clone(), Arc::new(m.read_block(cols, &all(&m))?));
        }
    }
    for k in &schema.obsp {
        let path = format!("obsp/{k}");
        if wanted(&path) {
            let graph = match ds
                .matrix(&path)?
                .counted(counter.clone())
                .read_block(rows, rows)?
            {
                Block::Sparse(c) => c,
                Block::Dense(_) => {
                    return Err(Error::unsupported(
                        Location::new(ds.path(), format!("/{path}")),
                        "a dense obsp matrix (expected CSR or CSC)",
                    ));
                }
            };
            a.obsp.insert(k.clone(), Arc::new(graph));
        }
    }
    for k in &schema.uns {
        let path = format!("uns/{k}");
        if wanted(&path) {
            match engine_store::encoding::read_value(ds.store().as_ref(), &path) {
                Ok(v) => {
                    a.uns.insert(k.clone(), v);
                }
                // An encoding or type the engine does not read stops nothing: the element is
                // written back as stored.
                Err(e) if e.kind() == "unsupported" => {
                    a.uns_verbatim.insert(
                        k.clone(),
                        Verbatim {
                            store: ds.store().clone(),
                            path,
                        },
                    );
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}
