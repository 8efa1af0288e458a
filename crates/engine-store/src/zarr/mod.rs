//! The zarr backend (v2 and v3, sharded or not), on zarrs.
//!
//! Metadata (node kinds, attributes, chunking, codecs) is read straight from the JSON
//! documents so errors can name the exact key; array data goes through zarrs, which decodes
//! the chunks a selection intersects in parallel.
//!
//! - `read`: [`ZarrStore`], the [`Store`](crate::backend::Store) implementation (a directory,
//!   or a zip archive through [`crate::zip`]).
//! - `write`: [`ZarrWriter`], the [`StoreWriter`](crate::backend::StoreWriter) implementation.

mod read;
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
