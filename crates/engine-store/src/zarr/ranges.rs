//! Element ranges of a local sharded 1-D zarr v3 array decoded straight into the caller's
//! buffer: the shape a preshuffled collection's X has (annbatch's and ours: sparse `data` and
//! `indices`, inner chunks `bytes` then `blosc`, or `bytes` alone). Each touched inner chunk's
//! encoded bytes are read once through its shard's cached index, and only the blosc blocks a
//! range covers are decompressed (`blosc_getitem`), into their place in the output.
//!
//! zarrs' own partial read decodes each range into a new array that the caller then copies
//! again. For a minibatch loader, which reads hundreds of short runs of the same arrays per
//! load, those copies and whole-block decodes were most of its time.

use super::read::ZArray;
use serde_json::Value as Json;
use std::ffi::c_void;
use std::ops::Range;
use std::sync::Arc;
use zarrs::array::{ArrayShardedReadableExt, ArrayShardedReadableExtCache};

/// What stands between an inner chunk's stored bytes and its elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InnerCodec {
    /// Little-endian elements as they are.
    Raw,
    /// Little-endian elements compressed by blosc.
    Blosc,
}

/// A sharded 1-D array read by element ranges.
pub(crate) struct ShardedRanges {
    array: Arc<ZArray>,
    cache: ArrayShardedReadableExtCache,
    /// Elements per inner chunk.
    inner: u64,
    /// Bytes per decoded inner chunk (`inner · elem`, checked to fit blosc's `i32`).
    want: usize,
    /// Bytes per element.
    elem: usize,
    len: u64,
    codec: InnerCodec,
}

impl std::fmt::Debug for ShardedRanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedRanges")
            .field("inner", &self.inner)
            .field("elem", &self.elem)
            .field("codec", &self.codec)
            .finish()
    }
}

impl ShardedRanges {
    /// The direct reader of `array` (whose metadata is `meta`) when it has the layout this
    /// reader knows: zarr v3, one dimension, a fixed-size numeric type, `sharding_indexed`
    /// with inner `bytes` (little-endian) and at most `blosc`, a zero fill value. `None`
    /// sends reads through zarrs.
    pub(crate) fn open(array: Arc<ZArray>, meta: &Json, elem: usize) -> Option<ShardedRanges> {
        // Elements are copied as little-endian bytes into native memory.
        if !cfg!(target_endian = "little") || meta.get("zarr_format")?.as_u64()? != 3 {
            return None;
        }
        if meta.get("chunk_grid")?.get("name")?.as_str()? != "regular" {
            return None;
        }
        let shape = meta.get("shape")?.as_array()?;
        if shape.len() != 1 || elem == 0 {
            return None;
        }
        let len = shape[0].as_u64()?;
        // A missing inner chunk reads as the fill value, and only zero is written for one.
        if meta.get("fill_value")?.as_f64()? != 0.0 {
            return None;
        }
        let codecs = meta.get("codecs")?.as_array()?;
        let [sharding] = codecs.as_slice() else {
            return None;
        };
        if sharding.get("name")?.as_str()? != "sharding_indexed" {
            return None;
        }
        let conf = sharding.get("configuration")?;
        let inner = conf.get("chunk_shape")?.as_array()?;
        let [inner] = inner.as_slice() else {
            return None;
        };
        let inner = inner.as_u64().filter(|&n| n > 0)?;
        // A damaged chunk shape must not overflow the sizes below.
        let want = usize::try_from(inner)
            .ok()?
            .checked_mul(elem)
            .filter(|&w| i32::try_from(w).is_ok())?;
        let codec = match conf.get("codecs")?.as_array()?.as_slice() {
            [bytes] if little_endian(bytes, elem) => InnerCodec::Raw,
            [bytes, blosc]
                if little_endian(bytes, elem) && blosc.get("name")?.as_str()? == "blosc" =>
            {
                InnerCodec::Blosc
            }
            _ => return None,
        };
        let cache = ArrayShardedReadableExtCache::new(&array);
        cache
            .array_is_exclusively_sharded()
            .then_some(ShardedRanges {
                array,
                cache,
                inner,
                want,
                elem,
                len,
                codec,
            })
    }

    /// Bytes `ranges` (element ranges, ascending or not) fill in `out`: their elements back
    /// to back.
    pub(crate) fn bytes_for(&self, ranges: &[Range<u64>]) -> usize {
        ranges
            .iter()
            .map(|r| (r.end.saturating_sub(r.start)) as usize * self.elem)
            .sum()
    }

    /// Reads `ranges`' elements into `out` (exactly `bytes_for(ranges)` long), in order.
    ///
    /// # Errors
    /// Text for the caller's damaged-data error: a range past the end, a missing or damaged
    /// chunk, or a store failure.
    pub(crate) fn read_into(&self, ranges: &[Range<u64>], out: &mut [u8]) -> Result<(), String> {
        // `ZarrStore::read_ranges_into` refuses a buffer of another length first.
        debug_assert_eq!(out.len(), self.bytes_for(ranges));
        // The last inner chunk fetched: neighbouring ranges often share one.
        let mut held: Option<(u64, Option<Vec<u8>>)> = None;
        let mut at = 0usize;
        for r in ranges {
            if r.start > r.end || r.end > self.len {
                return Err(format!(
                    "elements {}..{} of an array of {}",
                    r.start, r.end, self.len
                ));
            }
            let mut pos = r.start;
            while pos < r.end {
                let k = pos / self.inner;
                let chunk_end = (k * self.inner).saturating_add(self.inner).min(r.end);
                let (a, b) = (
                    (pos - k * self.inner) as usize,
                    (chunk_end - k * self.inner) as usize,
                );
                let n = (b - a) * self.elem;
                let dest = &mut out[at..at + n];
                if held.as_ref().is_none_or(|(hk, _)| *hk != k) {
                    let encoded = self
                        .array
                        .retrieve_encoded_subchunk(&self.cache, &[k])
                        .map_err(|e| format!("inner chunk {k}: {e}"))?;
                    if let Some(e) = &encoded {
                        self.check(e, k)?;
                    }
                    held = Some((k, encoded));
                }
                match held.as_ref().and_then(|(_, e)| e.as_deref()) {
                    None => dest.fill(0),
                    Some(encoded) => self.decode(encoded, a * self.elem, dest, k)?,
                }
                at += n;
                pos = chunk_end;
            }
        }
        Ok(())
    }

    /// Checks an inner chunk's encoded bytes before anything reads inside them.
    fn check(&self, encoded: &[u8], k: u64) -> Result<(), String> {
        let want = self.want;
        match self.codec {
            InnerCodec::Raw if encoded.len() == want => Ok(()),
            InnerCodec::Raw => Err(format!(
                "inner chunk {k} holds {} bytes, not {want}",
                encoded.len()
            )),
            InnerCodec::Blosc => {
                let mut nbytes = 0usize;
                // SAFETY: validate reads at most `encoded.len()` bytes of the buffer it is given.
                let ok = unsafe {
                    blosc_src::blosc_cbuffer_validate(
                        encoded.as_ptr().cast::<c_void>(),
                        encoded.len(),
                        &mut nbytes,
                    )
                } == 0;
                if ok && nbytes == want {
                    Ok(())
                } else {
                    Err(format!(
                        "inner chunk {k} is not a blosc buffer of {want} bytes"
                    ))
                }
            }
        }
    }

    /// Bytes `offset..offset + dest.len()` of a checked inner chunk's elements into `dest`.
    fn decode(&self, encoded: &[u8], offset: usize, dest: &mut [u8], k: u64) -> Result<(), String> {
        match self.codec {
            InnerCodec::Raw => {
                dest.copy_from_slice(&encoded[offset..offset + dest.len()]);
                Ok(())
            }
            InnerCodec::Blosc => {
                let (mut typesize, mut flags) = (0usize, 0i32);
                // SAFETY: the header was validated above; metainfo reads its first bytes.
                unsafe {
                    blosc_src::blosc_cbuffer_metainfo(
                        encoded.as_ptr().cast::<c_void>(),
                        &mut typesize,
                        &mut flags,
                    );
                }
                if typesize == 0
                    || !offset.is_multiple_of(typesize)
                    || !dest.len().is_multiple_of(typesize)
                {
                    return Err(format!("inner chunk {k}: blosc type size {typesize}"));
                }
                let (start, items) = (
                    i32::try_from(offset / typesize).map_err(|e| e.to_string())?,
                    i32::try_from(dest.len() / typesize).map_err(|e| e.to_string())?,
                );
                // SAFETY: the header was validated against the buffer's length and as holding
                // `inner · elem` bytes, the items lie inside them, and `dest` has room for
                // exactly those items. c-blosc (1.21, pinned through blosc-src) checks each
                // block's offsets and sizes against the compressed size before reading it.
                let got = unsafe {
                    blosc_src::blosc_getitem(
                        encoded.as_ptr().cast::<c_void>(),
                        start,
                        items,
                        dest.as_mut_ptr().cast::<c_void>(),
                    )
                };
                if usize::try_from(got).ok() == Some(dest.len()) {
                    Ok(())
                } else {
                    Err(format!(
                        "inner chunk {k}: blosc could not decode it ({got})"
                    ))
                }
            }
        }
    }
}

/// A `bytes` codec that leaves elements little-endian (or names no order for 1-byte ones).
fn little_endian(codec: &Json, elem: usize) -> bool {
    codec.get("name").and_then(Json::as_str) == Some("bytes")
        && match codec
            .get("configuration")
            .and_then(|c| c.get("endian"))
            .and_then(Json::as_str)
        {
            Some(e) => e == "little",
            None => elem == 1,
        }
}
