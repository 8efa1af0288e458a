//! Remote zarr reads: a selection widened to whole chunks (each fetched once) and cropped
//! back, and a sharded array's indexes and touched inner chunks fetched ahead of zarrs.

use super::read::ZarrStore;
use crate::remote::ObjectStorage;
use engine_common::{Error, Result};
use engine_matrix::DynArray;
use std::ops::Range;
use zarrs::storage::StoreKey;

impl ZarrStore {
    /// Fetches what a read of `sel` needs from a sharded array before zarrs decodes it: the
    /// index of every shard it touches (one request each, concurrently), then the touched
    /// inner chunks of each shard as coalesced byte ranges. A shard the read covers is one
    /// request zarrs makes itself, or, with `whole`, one fetched here (for reads that then
    /// go chunk by chunk). Returns the keys held.
    pub(super) fn prefetch_shards(
        &self,
        objects: &ObjectStorage,
        path: &str,
        layout: &super::shards::ShardLayout,
        sel: &[Range<u64>],
        whole: bool,
    ) -> Result<Vec<String>> {
        use zarrs::storage::ReadableStorageTraits;
        let array = self.array(path)?;
        let (covered, shards): (Vec<Vec<u64>>, Vec<Vec<u64>>) = layout
            .shards(sel)
            .into_iter()
            .partition(|s| layout.covers(s, sel));
        let mut covered_keys = Vec::new();
        if whole && !covered.is_empty() {
            covered_keys = covered
                .iter()
                .map(|s| array.chunk_key(s).as_str().to_string())
                .collect();
            let all = zarrs::storage::byte_range::ByteRange::FromStart(0, None);
            objects
                .prefetch(
                    covered_keys
                        .iter()
                        .map(|k| (k.clone(), vec![all]))
                        .collect(),
                    true,
                )
                .map_err(|e| {
                    objects.release(&covered_keys);
                    Error::io(self.loc(path), e)
                })?;
        }
        let keys: Vec<String> = shards
            .iter()
            .map(|s| array.chunk_key(s).as_str().to_string())
            .collect();
        let index = layout.index_range();
        objects
            .prefetch(
                keys.iter().map(|k| (k.clone(), vec![index])).collect(),
                true,
            )
            .map_err(|e| Error::io(self.loc(path), e))?;
        let mut wants = Vec::new();
        for (shard, key) in shards.iter().zip(&keys) {
            let sk = StoreKey::new(key.clone()).map_err(|e| Error::internal(e.to_string()))?;
            let Ok(Some(bytes)) = objects.get_partial(&sk, index) else {
                continue;
            };
            if let Some(ranges) = layout.chunk_ranges(shard, sel, &bytes) {
                let ranges = ranges
                    .into_iter()
                    .map(|r| {
                        zarrs::storage::byte_range::ByteRange::FromStart(
                            r.start,
                            Some(r.end - r.start),
                        )
                    })
                    .collect();
                wants.push((key.clone(), ranges));
            }
        }
        if let Err(e) = objects.prefetch(wants, false) {
            objects.release(&keys);
            objects.release(&covered_keys);
            return Err(Error::io(self.loc(path), e));
        }
        Ok(keys.into_iter().chain(covered_keys).collect())
    }
}

impl ZarrStore {
    /// Holds what a read of `sel` (whole chunks of `chunks`) of the array with metadata
    /// `meta` needs, fetched ahead, until the guard drops: a sharded array's indexes and
    /// chunk ranges (covered shards whole with `whole_shards`), else its chunks. Nothing for
    /// a store that is not remote.
    pub(super) fn hold_ahead(
        &self,
        path: &str,
        meta: &serde_json::Value,
        chunks: &[u64],
        sel: &[Range<u64>],
        whole_shards: bool,
    ) -> Result<crate::backend::Prefetched> {
        let Some(objects) = self.objects.clone() else {
            return Ok(crate::backend::Prefetched::default());
        };
        let held = match super::shards::ShardLayout::from_meta(meta) {
            Some(layout) => self.prefetch_shards(&objects, path, &layout, sel, whole_shards)?,
            None => self.prefetch_chunks(&objects, path, chunks, sel)?,
        };
        Ok(crate::backend::Prefetched::new(move || {
            objects.release(&held)
        }))
    }

    /// Fetches the chunks a read of `sel` (whole chunks of `chunks`) covers, concurrently,
    /// before zarrs decodes them one by one. Returns the keys held; none for a single chunk,
    /// which zarrs fetches itself.
    pub(super) fn prefetch_chunks(
        &self,
        objects: &ObjectStorage,
        path: &str,
        chunks: &[u64],
        sel: &[Range<u64>],
    ) -> Result<Vec<String>> {
        let spans: Vec<Range<u64>> = sel
            .iter()
            .zip(chunks)
            .map(|(r, &c)| {
                let c = c.max(1);
                if r.is_empty() {
                    0..0
                } else {
                    r.start / c..r.end.div_ceil(c)
                }
            })
            .collect();
        let count: u64 = spans.iter().map(|s| s.end - s.start).product();
        if count <= 1 || spans.len() != chunks.len() {
            return Ok(Vec::new());
        }
        let array = self.array(path)?;
        let mut keys = Vec::with_capacity(count as usize);
        let mut at: Vec<u64> = spans.iter().map(|s| s.start).collect();
        'grid: loop {
            keys.push(array.chunk_key(&at).as_str().to_string());
            for d in (0..at.len()).rev() {
                at[d] += 1;
                if at[d] < spans[d].end {
                    continue 'grid;
                }
                at[d] = spans[d].start;
            }
            break;
        }
        let whole = zarrs::storage::byte_range::ByteRange::FromStart(0, None);
        objects
            .prefetch(
                keys.iter().map(|k| (k.clone(), vec![whole])).collect(),
                true,
            )
            .map_err(|e| {
                objects.release(&keys);
                Error::io(self.loc(path), e)
            })?;
        Ok(keys)
    }
}

/// `sel` widened to whole chunks (the last one clipped at the array's end).
pub(super) fn align(sel: &[Range<u64>], chunks: &[u64], shape: &[u64]) -> Vec<Range<u64>> {
    sel.iter()
        .zip(chunks.iter().zip(shape))
        .map(|(r, (&c, &n))| {
            if r.is_empty() || c == 0 {
                r.clone()
            } else {
                (r.start / c * c)..(r.end.div_ceil(c) * c).min(n)
            }
        })
        .chain(sel.iter().skip(chunks.len().min(shape.len())).cloned())
        .collect()
}

/// The part of `whole` (read at `aligned`) that `sel` asked for.
pub(super) fn crop(whole: DynArray, sel: &[Range<u64>], aligned: &[Range<u64>]) -> DynArray {
    let mut out = whole;
    for (axis, (r, a)) in sel.iter().zip(aligned).enumerate() {
        if r != a {
            let local = (r.start - a.start) as usize..(r.end - a.start) as usize;
            out =
                engine_matrix::select_axis(&out, axis, &engine_matrix::AxisSelection::range(local));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{align, crop};
    use engine_matrix::DynArray;

    #[test]
    fn reads_widen_to_whole_chunks_and_crop_back() {
        let sel = [3..4, 7..12];
        let aligned = align(&sel, &[5, 5], &[8, 13]);
        assert_eq!(aligned, vec![0..5, 5..13]);
        let whole = DynArray::F64(
            ndarray::Array2::from_shape_fn((5, 8), |(i, j)| (i * 100 + j + 5) as f64).into_dyn(),
        );
        let got = crop(whole, &sel, &aligned);
        let want: Vec<f64> = (7..12).map(|j| (300 + j) as f64).collect();
        assert_eq!(
            got,
            DynArray::F64(
                ndarray::Array2::from_shape_vec((1, 5), want)
                    .unwrap()
                    .into_dyn()
            )
        );
    }
}
