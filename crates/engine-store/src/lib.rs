//! AnnData storage: the on-disk spec over two backends (HDF5 `.h5ad` and zarr v2/v3), lazy
//! dataset handles that read matrices block by block and obs/var column by column, and
//! atomic writers that Python anndata reads back identically.
//!
//! Layers, bottom up:
//! - [`backend`]: the narrow [`Store`]/[`StoreWriter`] interface (groups, arrays, attributes);
//!   [`h5`] and [`zarr`] implement it.
//! - [`encoding`]: the anndata IO spec (`encoding-type`/`encoding-version`, and pre-spec files).
//! - [`matrix`], [`dataset`]: lazy handles; [`write`], [`convert`]: writers.

pub mod arrow;
pub mod backend;
pub mod convert;
pub mod dataset;
pub mod encoding;
pub mod glob;
pub mod h5;
pub mod matrix;
pub mod mem;
mod remap;
pub mod remote;
pub mod target;
pub mod tenx;
pub mod validate;
pub mod value;
pub mod write;
pub mod zarr;
pub mod zarr_lz4;
pub mod zip;

pub use backend::{
    ArrayInfo, ArrayOptions, Compression, ElementOptions, ElementRule, NodeKind, Store,
    StoreFormat, StoreWriter, StoredType,
};
pub use convert::{ConvertOptions, ConvertReport, convert};
pub use dataset::{Dataset, ElementSummary, ReadOptions, open_store};
pub use encoding::Encoding;
pub use matrix::{Matrix, MatrixLayout, ReadCounter, bytes_mut};
pub use remap::missing_layer;
pub use value::{Column, Frame, Value};
