//! The HDF5 (`.h5ad`) backend, on hdf5-metno with a statically built HDF5.
//!
//! HDF5 serialises every call behind one process-wide lock, so this backend is correct from
//! any thread but does not read in parallel; see `benches/` for raw-chunk reading.
//!
//! - `read`: [`H5Store`], the [`Store`](crate::backend::Store) implementation.
//! - `write`: [`H5Writer`], the [`StoreWriter`](crate::backend::StoreWriter) implementation.
//! - `attrs`: attributes to and from JSON.
//! - `parallel`: reads that bypass HDF5's lock (positional reads, parallel inflate).
//! - `filters`: decoders for hdf5plugin's zstd, LZ4 and bitshuffle, built in.
//! - `watchdog`: a deadline for reads through HDF5's global heap, which can loop forever.
//! - `raw`: the FFI hdf5-metno has no safe API for (run-time memory types, raw chunks,
//!   filter registration);
//! - `remote`: the virtual file driver that reads `.h5ad` by URL. These two hold the only
//!   unsafe code here.

mod attrs;
mod filters;
mod parallel;
// The modules in the store allowed unsafe code (see ARCHITECTURE.md): FFI.
#[allow(unsafe_code)]
mod raw;
mod read;
#[allow(unsafe_code)]
mod remote;
mod vlen_guard;
mod watchdog;
mod write;

pub use read::H5Store;
pub use write::H5Writer;

use crate::backend::StoredType;
use engine_matrix::DType;
use hdf5::types::{FloatSize, IntSize, TypeDescriptor as TD, VarLenUnicode};
use hdf5::{Hyperslab, SliceOrIndex};
use std::ops::Range;

/// The engine's view of an HDF5 type.
fn stored_type(td: &TD) -> StoredType {
    StoredType::Plain(match td {
        TD::Integer(IntSize::U1) => DType::I8,
        TD::Integer(IntSize::U2) => DType::I16,
        TD::Integer(IntSize::U4) => DType::I32,
        TD::Integer(IntSize::U8) => DType::I64,
        TD::Unsigned(IntSize::U1) => DType::U8,
        TD::Unsigned(IntSize::U2) => DType::U16,
        TD::Unsigned(IntSize::U4) => DType::U32,
        TD::Unsigned(IntSize::U8) => DType::U64,
        TD::Float(FloatSize::U4) => DType::F32,
        TD::Float(FloatSize::U8) => DType::F64,
        TD::Boolean => DType::Bool,
        TD::VarLenUnicode | TD::VarLenAscii | TD::FixedAscii(_) | TD::FixedUnicode(_) => DType::Str,
        TD::Compound(c) => {
            return StoredType::Compound(c.fields.iter().map(|f| f.name.clone()).collect());
        }
        other => return StoredType::Other(format!("HDF5 {other}")),
    })
}

/// The HDF5 type of a numeric element type.
fn descriptor(d: DType) -> TD {
    use hdf5::types::H5Type;
    match d {
        DType::Bool => bool::type_descriptor(),
        DType::I8 => i8::type_descriptor(),
        DType::I16 => i16::type_descriptor(),
        DType::I32 => i32::type_descriptor(),
        DType::I64 => i64::type_descriptor(),
        DType::U8 => u8::type_descriptor(),
        DType::U16 => u16::type_descriptor(),
        DType::U32 => u32::type_descriptor(),
        DType::U64 => u64::type_descriptor(),
        DType::F32 => f32::type_descriptor(),
        DType::F64 => f64::type_descriptor(),
        DType::Str => VarLenUnicode::type_descriptor(),
    }
}

fn hyperslab(sel: &[Range<u64>]) -> Hyperslab {
    Hyperslab::from(
        sel.iter()
            .map(|r| SliceOrIndex::from(r.start as usize..r.end as usize))
            .collect::<Vec<_>>(),
    )
}

fn vlu(s: &str) -> hdf5::Result<VarLenUnicode> {
    s.replace('\0', "")
        .parse::<VarLenUnicode>()
        .map_err(|e| e.to_string().into())
}
