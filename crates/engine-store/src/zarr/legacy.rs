//! What zarrs has no type or codec for, read around it: element types as raw bytes per
//! element (records, fixed-width numpy strings) through zarrs' chunking and codecs, and
//! numcodecs' `json2` object arrays (anndata 0.6's categories) decoded chunk by chunk.

use super::read::{ZArray, ZarrStore, u64s, zarr_err};
use super::{key, node_path, raw_metadata};
use engine_common::{Error, Result};
use engine_matrix::DynArray;
use ndarray::ArrayD;
use serde_json::Value as Json;
use std::ops::Range;
use zarrs::array::{Array, ArraySubset};
use zarrs::storage::StoreKey;

impl ZarrStore {
    /// Opens the array at `path` as raw bytes of `width` per element (zarr v2 `|V{width}`,
    /// v3 `r{8 width}`), for element types zarrs has no type for; codecs and chunking stay.
    pub(super) fn raw_array(&self, path: &str, meta: Json, width: usize) -> Result<ZArray> {
        let md = raw_metadata(meta, width)
            .map_err(|e| Error::format(self.loc(path), format!("zarr: {e}")))?;
        Array::new_with_metadata(self.store.clone(), &node_path(path), md)
            .map_err(|e| Error::format(self.loc(path), format!("cannot open zarr array: {e}")))
    }

    /// Reads `sel` of an array opened by [`Self::raw_array`] as bytes.
    pub(super) fn raw_bytes(
        &self,
        path: &str,
        array: &ZArray,
        sel: &[Range<u64>],
    ) -> Result<Vec<u8>> {
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            array.retrieve_array_subset::<zarrs::array::ArrayBytes<'static>>(
                &ArraySubset::new_with_ranges(sel),
            )
        }));
        let bytes = match res {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                return Err(zarr_err(
                    self.loc(path),
                    format!("cannot read chunk data (corrupt or truncated?): {e}"),
                ));
            }
            Err(_) => {
                return Err(zarr_err(
                    self.loc(path),
                    "corrupt chunk data (decoder failed)",
                ));
            }
        };
        bytes
            .into_fixed()
            .map(|b| b.into_owned())
            .map_err(|e| Error::internal(e.to_string()))
    }

    /// Reads zarr v2 fixed-width strings: zarrs has no such type, so the array is opened as
    /// raw bytes of the same width and decoded here.
    pub(super) fn read_fixed_width(
        &self,
        path: &str,
        meta: Json,
        sel: &[Range<u64>],
        width: usize,
        utf32: bool,
        shape: &[usize],
    ) -> Result<DynArray> {
        let array = self.raw_array(path, meta, width)?;
        let raw = self.raw_bytes(path, &array, sel)?;
        let strings: Vec<String> = raw
            .chunks_exact(width)
            .map(|c| {
                if utf32 {
                    c.chunks_exact(4)
                        .map(|u| u32::from_le_bytes([u[0], u[1], u[2], u[3]]))
                        .take_while(|&u| u != 0)
                        .map(|u| char::from_u32(u).unwrap_or(char::REPLACEMENT_CHARACTER))
                        .collect()
                } else {
                    let end = c.iter().position(|&b| b == 0).unwrap_or(c.len());
                    String::from_utf8_lossy(&c[..end]).into_owned()
                }
            })
            .collect();
        ArrayD::from_shape_vec(ndarray::IxDyn(shape), strings)
            .map(DynArray::Str)
            .map_err(|e| Error::internal(e.to_string()))
    }
}

/// A zarr v2 object array encoded with numcodecs' `json2` filter (anndata 0.6 wrote
/// categories this way); zarrs has no such codec.
pub(super) fn is_json2(meta: &Json) -> bool {
    meta.get("dtype").and_then(Json::as_str) == Some("|O")
        && meta
            .get("filters")
            .and_then(Json::as_array)
            .is_some_and(|f| {
                f.iter()
                    .any(|c| c.get("id").and_then(Json::as_str) == Some("json2"))
            })
}

impl ZarrStore {
    /// Reads a 1-D `json2` object array: each chunk is decompressed with the array's
    /// compressor (through zarrs' codec) and holds a JSON list of its values followed by its
    /// shape.
    pub(super) fn read_json2(
        &self,
        path: &str,
        meta: &Json,
        shape: &[u64],
        sel: &[Range<u64>],
    ) -> Result<DynArray> {
        use zarrs::array::codec::api::{BytesRepresentation, Codec, CodecOptions};
        let unsupported = |why: String| Error::unsupported(self.loc(path), why);
        if shape.len() != 1 || meta.get("filters").and_then(Json::as_array).map(Vec::len) != Some(1)
        {
            return Err(unsupported(
                "json2-encoded object arrays other than 1-D with json2 as the only filter".into(),
            ));
        }
        let chunk = u64s(meta.get("chunks"))
            .and_then(|c| c.first().copied())
            .filter(|&c| c > 0)
            .ok_or_else(|| Error::format(self.loc(path), "array metadata has no chunks"))?;
        // The compressor as zarrs' v3 bytes-to-bytes codecs (its v2 conversion supplies the
        // `bytes` codec first, which is skipped).
        let mut compressors = Vec::new();
        if let Some(c) = meta.get("compressor").filter(|c| !c.is_null()) {
            let bad =
                |e: &dyn std::fmt::Display| Error::format(self.loc(path), format!("zarr: {e}"));
            let md: zarrs::metadata::v2::MetadataV2 =
                serde_json::from_value(c.clone()).map_err(|e| bad(&e))?;
            let v3 = zarrs::convert::codec_metadata_v2_to_v3(
                zarrs::metadata::v2::ArrayMetadataV2Order::C,
                1,
                &zarrs::metadata::v3::MetadataV3::new("uint8"),
                None,
                &None,
                &Some(md),
            )
            .map_err(|e| bad(&e))?;
            for m in &v3 {
                match Codec::from_metadata(m) {
                    Ok(Codec::BytesToBytes(c)) => compressors.push(c),
                    Ok(_) => {}
                    Err(e) => return Err(unsupported(format!("compressor {c} ({e})"))),
                }
            }
        }
        // Only the chunks the selection touches.
        let r = &sel[0];
        let first = r.start / chunk;
        let mut values = Vec::with_capacity((r.end - first * chunk) as usize);
        for i in first..r.end.div_ceil(chunk) {
            let k = key(path, &i.to_string());
            let sk = StoreKey::new(k.as_str()).map_err(|e| Error::internal(e.to_string()))?;
            let want = (chunk.min(shape[0] - i * chunk)) as usize;
            let Some(bytes) = self
                .store
                .get(&sk)
                .map_err(|e| Error::io(self.loc(path), e))?
            else {
                values.extend(std::iter::repeat_n(String::new(), want));
                continue;
            };
            let mut raw: Vec<u8> = bytes.to_vec();
            for c in compressors.iter().rev() {
                raw = c
                    .decode(
                        std::borrow::Cow::Owned(raw),
                        &BytesRepresentation::UnboundedSize,
                        &CodecOptions::default(),
                    )
                    .map_err(|e| {
                        zarr_err(self.loc(path), format!("cannot decompress chunk {i}: {e}"))
                    })?
                    .into_owned();
            }
            let items: Vec<Json> = serde_json::from_slice(&raw).map_err(|e| {
                zarr_err(self.loc(path), format!("chunk {i} is not json2 data: {e}"))
            })?;
            // numcodecs' json2 appends the dtype and the shape after the values; edge chunks
            // hold a full chunk of values.
            let n = items.len().saturating_sub(2);
            if n < want {
                return Err(zarr_err(
                    self.loc(path),
                    format!("chunk {i} holds {n} values, expected {want}"),
                ));
            }
            values.extend(items.into_iter().take(want).map(|v| match v {
                Json::String(s) => s,
                other => other.to_string(),
            }));
        }
        let skip = (r.start - first * chunk) as usize;
        let picked: Vec<String> = values[skip..skip + (r.end - r.start) as usize].to_vec();
        Ok(DynArray::Str(ndarray::Array1::from(picked).into_dyn()))
    }
}
