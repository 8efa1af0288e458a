//! `preshuffle`: the input's cells into a collection annbatch's `Loader` reads (root group
//! attributes `encoding-type: annbatch-preshuffled`, datasets `dataset_0`, `dataset_1`, … each
//! an AnnData with X sharded as annbatch shards it). Blocks of `shuffle_chunk_size`
//! contiguous cells are dealt to the datasets in a seeded random order; each dataset's cells
//! are read together (runs of whole blocks, large sequential reads), permuted in memory,
//! stably sorted by `groupby` and written; one dataset is held at a time.

use super::write::ensure_dir;
use super::{Data, ExecNode, single};
use crate::block::XBlock;
use crate::context::RunContext;
use crate::pass::map_pass;
use engine_common::{Error, Result};
use engine_matrix::{AxisSelection, Compressed, Csr, DType, DynArray};
use engine_plan::{Preshuffle, Size};
use engine_store::backend::{ArrayOptions, Compression, StoreFormat, StoreWriter};
use engine_store::write::{self, AtomicTarget};
use engine_store::{Column, Frame};
use ndarray::Array1;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use std::borrow::Cow;
use std::ops::Range;

/// The blosc block size asked for in a collection's arrays. blosc multiplies it by the type
/// size for lz4 and keeps at least 64 KiB, so 4-byte values get 64 KiB blocks (about 12
/// cells of 20,000-gene counts), against 256 KiB automatically.
const LOADER_BLOSC_BLOCK: usize = 16 << 10;

#[derive(Debug)]
pub(crate) struct PreshuffleNode {
    pub params: Preshuffle,
    /// Cells per dataset, from `dataset_size` or what the memory limit holds.
    pub dataset_rows: usize,
    pub dtype: DType,
}

impl ExecNode for PreshuffleNode {
    fn name(&self) -> &'static str {
        "Preshuffle"
    }

    fn stages(&self) -> Vec<String> {
        vec![format!(
            "per dataset of {} cells: read its blocks of {} cells, permute in memory, write -> {}",
            self.dataset_rows, self.params.shuffle_chunk_size, self.params.path
        )]
    }

    fn is_sink(&self) -> bool {
        true
    }

    fn execute(&self, inputs: Vec<Cow<'_, Data>>, cx: &mut RunContext<'_>) -> Result<Option<Data>> {
        let p = &self.params;
        let data = single(inputs, "Preshuffle")?;
        let (lin, ann) = (&data.x, &data.ann);
        let step = cx.step().to_string();
        let n = lin.n_obs();
        if n == 0 {
            return Err(Error::step(&step, "no cells to shuffle"));
        }
        // The genes kept, in the input's order.
        let genes = match &p.var_subset {
            Some(keep) => {
                let keep: std::collections::HashSet<&str> =
                    keep.iter().map(String::as_str).collect();
                let pos: Vec<usize> = (0..ann.var.n_rows())
                    .filter(|&i| keep.contains(ann.var.index.render(i).as_str()))
                    .collect();
                if pos.is_empty() {
                    return Err(Error::step(
                        &step,
                        "`var_subset` names none of the input's genes",
                    ));
                }
                Some(AxisSelection::from_indices(&pos))
            }
            None => None,
        };
        let var = match &genes {
            Some(g) => ann.var.take(&g.indices().collect::<Vec<_>>()),
            None => ann.var.clone(),
        };
        let datasets = deal(
            n,
            p.shuffle_chunk_size,
            self.dataset_rows,
            p.shuffle,
            p.seed,
        );
        ensure_dir(std::path::Path::new(&p.path))?;
        let target = AtomicTarget::new(std::path::Path::new(&p.path), cx.opts.overwrite)?;
        let mut out = write::create_store(StoreFormat::Zarr3, target.tmp_path())
            .map_err(|e| target.blame(e))?;
        out.create_group("", &write::enc_attrs("annbatch-preshuffled", "0.1.0"))?;
        let compression = match Compression::parse(&p.compression)
            .map_err(|e| Error::internal(format!("compression passed check: {e}")))?
        {
            // A loader reads short runs of cells: small blosc blocks let it decompress only
            // the blocks a run covers (100k counts: 108k -> 135k cells/s from `engine
            // batches`, 57k -> 65k from annbatch's Loader; 1.3% larger).
            Compression::Blosc { cname, clevel, .. } => Compression::Blosc {
                cname,
                clevel,
                blocksize: LOADER_BLOSC_BLOCK,
            },
            other => other,
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(p.seed.wrapping_add(1));
        for (d, runs) in datasets.iter().enumerate() {
            let rows = AxisSelection::from_runs(runs.clone());
            let sel = lin.select(Some(&rows), genes.as_ref());
            let bar = cx.progress(&format!("dataset_{d}"), sel.blocks().len());
            let (blocks, _) = map_pass(&sel, &bar, |_, x| Ok(x.clone()))?;
            let mut order: Vec<usize> = (0..rows.len()).collect();
            if p.shuffle {
                order.shuffle(&mut rng);
            }
            let cells: Vec<usize> = rows.indices().collect();
            let obs_all = ann.obs.take(&cells);
            if !p.groupby.is_empty() {
                sort_by_columns(&mut order, &obs_all, &p.groupby, &step)?;
            }
            // The blocks are dropped before the write: one copy of the dataset at a time.
            let x = match sparse_parts(blocks) {
                Ok(parts) => {
                    Shuffled::Stored(gather_stored(&parts, &order, sel.n_vars(), self.dtype))
                }
                Err(blocks) => {
                    let gathered = XBlock::concat(blocks, sel.n_vars())?;
                    Shuffled::Block(gathered.take_rows(&order))
                }
            };
            let obs = obs_all.take(&order);
            write_dataset(
                out.as_mut(),
                &format!("dataset_{d}"),
                (x, order.len(), sel.n_vars()),
                &obs,
                &var,
                self.dtype,
                p,
                &compression,
            )
            .map_err(|e| target.blame(e))?;
            // Each dataset's buffers go back to the system before the next one's.
            cx.opts.release_freed();
            cx.stage(&format!("dataset_{d}"), 1);
        }
        out.finish().map_err(|e| target.blame(e))?;
        cx.output(target);
        Ok(None)
    }
}

/// A dataset's X in its shuffled order.
enum Shuffled {
    /// CSR in the stored value type, gathered in one copy.
    Stored(Compressed),
    /// Any other block (dense, or sparse with a fill), as the lineage gives it.
    Block(XBlock),
}

/// The blocks' CSR matrices when every block is sparse without a fill; the blocks otherwise.
fn sparse_parts(blocks: Vec<XBlock>) -> std::result::Result<Vec<Csr>, Vec<XBlock>> {
    if !blocks
        .iter()
        .all(|b| matches!(b, XBlock::Sparse { fill: None, .. }))
    {
        return Err(blocks);
    }
    Ok(blocks
        .into_iter()
        .filter_map(|b| match b {
            XBlock::Sparse { x, .. } => Some(x),
            XBlock::Dense(_) => None,
        })
        .collect())
}

/// Rows `order` (positions among the parts' rows, back to back) of CSR parts as one CSR
/// matrix of `dtype` values, each output row copied once, rows in parallel. Concatenating,
/// permuting and casting took three single-threaded copies of the dataset (100k counts: 0.4 s
/// of each dataset's 0.95 s).
fn gather_stored(parts: &[Csr], order: &[usize], n_cols: usize, dtype: DType) -> Compressed {
    let mut starts = Vec::with_capacity(parts.len() + 1);
    starts.push(0usize);
    for p in parts {
        starts.push(starts[starts.len() - 1] + p.n_rows());
    }
    // Each output row's part and stored-value range.
    let source: Vec<(usize, usize, usize)> = order
        .iter()
        .map(|&r| {
            let b = starts.partition_point(|&s| s <= r) - 1;
            let local = r - starts[b];
            let x = &parts[b];
            (b, x.indptr[local] as usize, x.indptr[local + 1] as usize)
        })
        .collect();
    let mut indptr = Vec::with_capacity(order.len() + 1);
    indptr.push(0u64);
    for &(_, lo, hi) in &source {
        indptr.push(indptr[indptr.len() - 1] + (hi - lo) as u64);
    }
    let total = indptr[indptr.len() - 1] as usize;
    let mut indices = vec![0u32; total];
    // Runs of output rows, each a task: its rows' values are one slice of the output.
    let per = order
        .len()
        .div_ceil(rayon::current_num_threads().max(1) * 8)
        .max(1);
    macro_rules! gather {
        ($t:ty, $cast:expr) => {{
            let mut data: Vec<$t> = vec![<$t>::default(); total];
            let mut jobs = Vec::new();
            let (mut rest_i, mut rest_d) = (indices.as_mut_slice(), data.as_mut_slice());
            for (k, rows) in source.chunks(per).enumerate() {
                let n = (indptr[(k * per + rows.len())] - indptr[k * per]) as usize;
                let (i, ti) = rest_i.split_at_mut(n);
                let (d, td) = rest_d.split_at_mut(n);
                (rest_i, rest_d) = (ti, td);
                jobs.push((rows, i, d));
            }
            jobs.into_par_iter().for_each(|(rows, i, d)| {
                let mut at = 0;
                for &(b, lo, hi) in rows {
                    let n = hi - lo;
                    i[at..at + n].copy_from_slice(&parts[b].indices[lo..hi]);
                    for (o, v) in d[at..at + n].iter_mut().zip(&parts[b].data[lo..hi]) {
                        *o = $cast(*v);
                    }
                    at += n;
                }
            });
            Array1::from(data).into_dyn()
        }};
    }
    let data = match dtype {
        DType::F64 => DynArray::F64(gather!(f64, |v: f64| v)),
        _ => DynArray::F32(gather!(f32, |v: f64| v as f32)),
    };
    Compressed {
        format: engine_matrix::SparseFormat::Csr,
        shape: [order.len(), n_cols],
        indptr,
        indices,
        data,
    }
}

/// annbatch's deal of cells to datasets: blocks of `chunk` contiguous cells, in a seeded
/// random order (or in order), `dataset_rows / chunk` blocks per dataset (the last takes what
/// is left). Each dataset as its cells' sorted runs.
pub(crate) fn deal(
    n: usize,
    chunk: usize,
    dataset_rows: usize,
    shuffle: bool,
    seed: u64,
) -> Vec<Vec<Range<usize>>> {
    let chunk = chunk.max(1);
    let mut blocks: Vec<Range<usize>> = (0..n)
        .step_by(chunk)
        .map(|s| s..(s + chunk).min(n))
        .collect();
    if shuffle {
        blocks.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    }
    let per = (dataset_rows / chunk).max(1);
    blocks
        .chunks(per)
        .map(|group| {
            let mut runs = group.to_vec();
            runs.sort_by_key(|r| r.start);
            runs
        })
        .collect()
}

/// Stable sort of `order` (positions into `obs`) by the `groupby` columns' values, the first
/// column first: a categorical by its category order, numbers and text by value, missing last.
fn sort_by_columns(order: &mut [usize], obs: &Frame, groupby: &[String], step: &str) -> Result<()> {
    enum Key {
        Num(Vec<f64>),
        Text(Vec<Option<String>>),
    }
    let mut keys = Vec::with_capacity(groupby.len());
    for g in groupby {
        let col = obs
            .column(g)
            .ok_or_else(|| Error::step(step, format!("no obs['{g}'] to group by")))?;
        let numbers = |a: &DynArray| {
            a.to_f64_vec().ok_or_else(|| {
                Error::step(
                    step,
                    format!("obs['{g}'] cannot be sorted: it is {}", a.dtype()),
                )
            })
        };
        keys.push(match col {
            Column::Categorical { codes, .. } => Key::Num(
                numbers(codes)?
                    .into_iter()
                    .map(|k| if k < 0.0 { f64::INFINITY } else { k })
                    .collect(),
            ),
            Column::Plain(DynArray::Str(a)) => Key::Text(a.iter().cloned().map(Some).collect()),
            Column::Plain(a) => Key::Num(numbers(a)?),
            Column::Nullable {
                values: DynArray::Str(a),
                mask,
                ..
            } => Key::Text(
                a.iter()
                    .zip(mask)
                    .map(|(v, m)| (!m).then(|| v.clone()))
                    .collect(),
            ),
            Column::Nullable { values, mask, .. } => Key::Num(
                numbers(values)?
                    .into_iter()
                    .zip(mask)
                    .map(|(x, m)| if *m { f64::INFINITY } else { x })
                    .collect(),
            ),
        });
    }
    order.sort_by(|&a, &b| {
        keys.iter()
            .map(|k| match k {
                Key::Num(v) => v[a].total_cmp(&v[b]),
                // Missing (None) after every value.
                Key::Text(t) => match (&t[a], &t[b]) {
                    (Some(x), Some(y)) => x.cmp(y),
                    (x, y) => x.is_none().cmp(&y.is_none()),
                },
            })
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    Ok(())
}

/// One dataset: an AnnData group with X chunked and sharded as annbatch does (chunks of
/// `n_obs_per_chunk` cells' worth of values, shards of `shard_size`), obs and var.
#[allow(clippy::too_many_arguments)]
fn write_dataset(
    out: &mut dyn StoreWriter,
    group: &str,
    (x, rows, cols): (Shuffled, usize, usize),
    obs: &Frame,
    var: &Frame,
    dtype: DType,
    p: &Preshuffle,
    compression: &Compression,
) -> Result<()> {
    out.create_group(group, &write::enc_attrs("anndata", "0.1.0"))?;
    write::write_frame(out, &format!("{group}/obs"), obs)?;
    write::write_frame(out, &format!("{group}/var"), var)?;
    for name in ["obsm", "varm", "obsp", "varp", "layers", "uns"] {
        out.create_group(
            &format!("{group}/{name}"),
            &write::enc_attrs("dict", "0.1.0"),
        )?;
    }
    let cells_per_shard = |row_bytes: f64| -> usize {
        match p.shard_size {
            Size::Rows(r) => r,
            Size::Bytes(b) => ((b as f64 / row_bytes.max(1.0)) as usize).max(1),
        }
    };
    let cast = |v: &[f64]| match dtype {
        DType::F64 => DynArray::F64(Array1::from(v.to_vec()).into_dyn()),
        _ => DynArray::F32(Array1::from_iter(v.iter().map(|&v| v as f32)).into_dyn()),
    };
    let m: Compressed = match x {
        Shuffled::Stored(m) => m,
        Shuffled::Block(XBlock::Sparse { x, fill: None }) => x.to_stored(cast),
        Shuffled::Block(other) => {
            let a = other.into_dense();
            let chunk = p.n_obs_per_chunk.min(rows).max(1);
            let per_shard = cells_per_shard((cols * dtype.size()) as f64)
                .min(rows)
                .max(1);
            let shard = chunk.max(per_shard / chunk * chunk);
            let opts = ArrayOptions {
                chunks: Some(vec![chunk as u64, cols.max(1) as u64]),
                shards: Some(vec![shard as u64, cols.max(1) as u64]),
                compression: compression.clone(),
            };
            let values = match dtype {
                DType::F64 => DynArray::F64(a.into_dyn()),
                _ => DynArray::F32(a.mapv(|v| v as f32).into_dyn()),
            };
            return write::write_array(out, &format!("{group}/X"), &values, &opts);
        }
    };
    // Chunks and shards of `data` and `indices` as many stored values as that many cells
    // hold on average (the writer turns rows × all genes into values).
    let bytes_per_row = (m.nnz() * (dtype.size() + 4) + 8 * (rows + 1)) as f64 / rows.max(1) as f64;
    let opts = ArrayOptions {
        chunks: Some(vec![p.n_obs_per_chunk.min(rows).max(1) as u64, 0]),
        shards: Some(vec![
            cells_per_shard(bytes_per_row).min(rows).max(1) as u64,
            0,
        ]),
        compression: compression.clone(),
    };
    write::write_sparse(out, &format!("{group}/X"), &m, &opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first `groupby` column decides first; missing text sorts last; ties keep order.
    #[test]
    fn groupby_sorts_column_by_column() {
        let obs = Frame {
            index_name: "_index".into(),
            index: Column::Plain(DynArray::Str(
                Array1::from(
                    ["a", "b", "c", "d"]
                        .iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>(),
                )
                .into_dyn(),
            )),
            columns: vec![
                (
                    "donor".into(),
                    Column::Nullable {
                        values: DynArray::Str(
                            Array1::from(vec![
                                "y".to_string(),
                                "x".into(),
                                String::new(),
                                "x".into(),
                            ])
                            .into_dyn(),
                        ),
                        mask: vec![false, false, true, false],
                        na_value: None,
                    },
                ),
                (
                    "type".into(),
                    Column::Categorical {
                        codes: DynArray::I8(Array1::from(vec![0i8, 1, 0, 0]).into_dyn()),
                        categories: DynArray::Str(
                            Array1::from(vec!["B".to_string(), "T".into()]).into_dyn(),
                        ),
                        ordered: false,
                    },
                ),
            ],
        };
        let mut order = vec![0, 1, 2, 3];
        sort_by_columns(&mut order, &obs, &["donor".into(), "type".into()], "s").unwrap();
        assert_eq!(order, [3, 1, 0, 2]);
        let mut order = vec![0, 1, 2, 3];
        sort_by_columns(&mut order, &obs, &["type".into(), "donor".into()], "s").unwrap();
        assert_eq!(order, [3, 0, 2, 1]);
    }

    /// Every cell is dealt once; each dataset holds whole blocks (its last may be short) and
    /// `dataset_rows / chunk` of them; the same seed deals the same way.
    #[test]
    fn every_cell_is_dealt_once_in_whole_blocks() {
        let d = deal(380, 10, 100, true, 7);
        assert_eq!(
            d.iter()
                .map(|r| r.iter().map(|x| x.len()).sum::<usize>())
                .collect::<Vec<_>>(),
            [100, 100, 100, 80]
        );
        let mut all: Vec<usize> = d.iter().flatten().flat_map(|r| r.clone()).collect();
        all.sort_unstable();
        assert_eq!(all, (0..380).collect::<Vec<_>>());
        assert!(d.iter().flatten().all(|r| r.start % 10 == 0));
        assert_eq!(d, deal(380, 10, 100, true, 7));
        assert_ne!(d, deal(380, 10, 100, true, 8));
        assert_eq!(
            deal(25, 10, 100, false, 0),
            vec![vec![0..10, 10..20, 20..25]]
        );
    }
}
