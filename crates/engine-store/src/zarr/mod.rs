//! The zarr backend (v2 and v3, sharded or not), on zarrs.
//!
//! Metadata (node kinds, attributes, chunking, codecs) is read straight from the JSON
//! documents so errors can name the exact key; array data goes through zarrs, which decodes
//! the chunks a selection intersects in parallel.
//!
//! - `read`: [`ZarrStore`], the [`Store`](crate::backend::Store) implementation (a directory,
//!   or a zip archive through [`crate::zip`]).
//! - `write`: [`ZarrWriter`], the [`StoreWriter`](crate::backend::StoreWriter) implementation.
//! - `records`: structured (record) arrays, packed and unpacked as raw bytes.

mod dtype;
mod legacy;
// blosc's C decoder, called on validated buffers.
#[allow(unsafe_code)]
mod ranges;
mod read;
mod records;
mod remote_read;
mod shards;
mod write;

pub use read::ZarrStore;
pub use write::ZarrWriter;

use zarrs::storage::ReadableWritableListableStorageTraits;

/// What the writer writes through.
type DynStore = dyn ReadableWritableListableStorageTraits;

fn key(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}/{name}")
    }
}

fn node_path(path: &str) -> String {
    format!("/{path}")
}

/// Base64 of `n` zero bytes: the fill value of a raw-bits array.
fn zero_base64(n: usize) -> String {
    let pad = (3 - n % 3) % 3;
    "A".repeat(4 * n.div_ceil(3) - pad) + &"=".repeat(pad)
}

/// `meta` with its element type replaced by raw bytes of `width` (zarr v2 `|V{width}`, v3
/// `r{8 width}`), for element types zarrs has no type for; codecs and chunking stay.
fn raw_metadata(
    mut meta: serde_json::Value,
    width: usize,
) -> Result<zarrs::metadata::ArrayMetadata, serde_json::Error> {
    use serde_json::json;
    if meta.get("zarr_format").and_then(|v| v.as_u64()) == Some(3) {
        meta["data_type"] = json!(format!("r{}", width * 8));
        meta["fill_value"] = json!(vec![0u8; width]);
        serde_json::from_value(meta).map(zarrs::metadata::ArrayMetadata::V3)
    } else {
        meta["dtype"] = json!(format!("|V{width}"));
        meta["fill_value"] = json!(zero_base64(width));
        serde_json::from_value(meta).map(zarrs::metadata::ArrayMetadata::V2)
    }
}
