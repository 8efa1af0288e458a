//! The HDF5 (`.h5ad`) backend, on hdf5-metno with a statically built HDF5.
//!
//! HDF5 serialises every call behind one process-wide lock, so this backend is correct from
//! any thread but does not read in parallel; see `benches/` for raw-chunk reading.

use crate::backend::{
    ArrayInfo, ArrayOptions, Attrs, Compression, NodeKind, Store, StoreFormat, StoreWriter,
    StoredType,
};
use engine_common::{Error, Location, Result};
use engine_matrix::{DType, DynArray, dyn_map};
use hdf5::types::{FloatSize, IntSize, TypeDescriptor as TD, VarLenAscii, VarLenUnicode};
use hdf5::{Dataset, Hyperslab, LocationType, SliceOrIndex};
use ndarray::{ArrayD, IxDyn};
use serde_json::{Number, Value as Json};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Maps an HDF5 error onto the engine's error for an element.
fn h5err(file: &Path, element: &str, e: impl std::fmt::Display) -> Error {
    Error::format(
        Location::new(file, format!("/{element}")),
        format!("HDF5: {e}"),
    )
}

/// An open `.h5ad` file.
#[derive(Debug)]
pub struct H5Store {
    file: hdf5::File,
    path: PathBuf,
    /// The same file opened for positional reads of contiguous datasets, when HDF5
    /// addresses are file offsets (no user block before the superblock).
    raw: Option<std::fs::File>,
}

impl H5Store {
    /// Opens a file read-only.
    ///
    /// # Errors
    /// When the file is not HDF5 or cannot be opened.
    pub fn open(path: &Path) -> Result<H5Store> {
        let file = hdf5::File::open(path).map_err(|e| {
            Error::format(
                Location::file(path),
                format!("cannot open as HDF5 (truncated or not an .h5ad file?): {e}"),
            )
        })?;
        let raw = std::fs::File::open(path).ok().filter(|f| {
            use std::os::unix::fs::FileExt;
            let mut sig = [0u8; 8];
            f.read_exact_at(&mut sig, 0).is_ok() && &sig == b"\x89HDF\r\n\x1a\n"
        });
        Ok(H5Store {
            file,
            path: path.to_path_buf(),
            raw,
        })
    }

    fn dataset(&self, path: &str) -> Result<Dataset> {
        self.file
            .dataset(path)
            .map_err(|e| h5err(&self.path, path, e))
    }

    fn location(&self, path: &str) -> Result<hdf5::Location> {
        if path.is_empty() {
            return Ok((**self.file).clone());
        }
        match self.node(path)? {
            Some(NodeKind::Group) => Ok((*self
                .file
                .group(path)
                .map_err(|e| h5err(&self.path, path, e))?)
            .clone()),
            Some(NodeKind::Array) => Ok((**self.dataset(path)?).clone()),
            None => Err(Error::format(
                Location::new(&self.path, format!("/{path}")),
                "no such element",
            )),
        }
    }
}

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

fn hyperslab(sel: &[Range<u64>]) -> Hyperslab {
    Hyperslab::from(
        sel.iter()
            .map(|r| SliceOrIndex::from(r.start as usize..r.end as usize))
            .collect::<Vec<_>>(),
    )
}

/// Reads fixed-length strings of a run-time length by widening them into a large enough
/// const-size buffer (HDF5 converts between fixed lengths of the same character set).
fn read_fixed(
    ds: &Dataset,
    n: usize,
    utf8: bool,
    sel: Option<Hyperslab>,
) -> hdf5::Result<ArrayD<String>> {
    use hdf5::types::{FixedAscii, FixedUnicode};
    macro_rules! go {
        ($($N:literal)*) => {$(
            if n <= $N {
                return Ok(if utf8 {
                    let a: ArrayD<FixedUnicode<$N>> = match sel { Some(s) => ds.read_slice(s)?, None => ds.read_dyn()? };
                    a.mapv(|s| String::from_utf8_lossy(s.as_bytes()).into_owned())
                } else {
                    let a: ArrayD<FixedAscii<$N>> = match sel { Some(s) => ds.read_slice(s)?, None => ds.read_dyn()? };
                    a.mapv(|s| String::from_utf8_lossy(s.as_bytes()).into_owned())
                });
            }
        )*};
    }
    go!(16 64 256 1024 4096);
    Err(format!("fixed-length strings of {n} bytes are too long").into())
}

fn read_typed(ds: &Dataset, td: &TD, sel: &[Range<u64>]) -> hdf5::Result<DynArray> {
    let slab = if sel.is_empty() {
        None
    } else {
        Some(hyperslab(sel))
    };
    macro_rules! rd {
        ($t:ty, $v:ident) => {
            DynArray::$v(match slab {
                Some(s) => ds.read_slice::<$t, _, IxDyn>(s)?,
                None => ds.read_dyn::<$t>()?,
            })
        };
    }
    Ok(match td {
        TD::Integer(IntSize::U1) => rd!(i8, I8),
        TD::Integer(IntSize::U2) => rd!(i16, I16),
        TD::Integer(IntSize::U4) => rd!(i32, I32),
        TD::Integer(IntSize::U8) => rd!(i64, I64),
        TD::Unsigned(IntSize::U1) => rd!(u8, U8),
        TD::Unsigned(IntSize::U2) => rd!(u16, U16),
        TD::Unsigned(IntSize::U4) => rd!(u32, U32),
        TD::Unsigned(IntSize::U8) => rd!(u64, U64),
        TD::Float(FloatSize::U4) => rd!(f32, F32),
        TD::Float(FloatSize::U8) => rd!(f64, F64),
        TD::Boolean => rd!(bool, Bool),
        TD::VarLenUnicode => {
            let a: ArrayD<VarLenUnicode> = match slab {
                Some(s) => ds.read_slice(s)?,
                None => ds.read_dyn()?,
            };
            DynArray::Str(a.mapv(|s| String::from_utf8_lossy(s.as_bytes()).into_owned()))
        }
        TD::VarLenAscii => {
            let a: ArrayD<VarLenAscii> = match slab {
                Some(s) => ds.read_slice(s)?,
                None => ds.read_dyn()?,
            };
            DynArray::Str(a.mapv(|s| String::from_utf8_lossy(s.as_bytes()).into_owned()))
        }
        TD::FixedAscii(n) => DynArray::Str(read_fixed(ds, *n, false, slab)?),
        TD::FixedUnicode(n) => DynArray::Str(read_fixed(ds, *n, true, slab)?),
        other => return Err(format!("unsupported HDF5 type {other}").into()),
    })
}

/// Converts one attribute to JSON; `None` for kinds with no JSON form (object references).
fn attr_json(a: &hdf5::Attribute) -> hdf5::Result<Option<Json>> {
    let td = a.dtype()?.to_descriptor()?;
    let scalar = a.ndim() == 0;
    let strings = |v: Vec<String>| -> Json {
        if scalar {
            Json::String(v.into_iter().next().unwrap_or_default())
        } else {
            Json::Array(v.into_iter().map(Json::String).collect())
        }
    };
    Ok(Some(match td {
        TD::VarLenUnicode => strings(
            a.read_raw::<VarLenUnicode>()?
                .iter()
                .map(|s| String::from_utf8_lossy(s.as_bytes()).into_owned())
                .collect(),
        ),
        TD::VarLenAscii => strings(
            a.read_raw::<VarLenAscii>()?
                .iter()
                .map(|s| String::from_utf8_lossy(s.as_bytes()).into_owned())
                .collect(),
        ),
        TD::FixedAscii(_) | TD::FixedUnicode(_) => {
            // Attributes cannot be sliced; read as bytes of a widened fixed type.
            use hdf5::types::{FixedAscii, FixedUnicode};
            let v: Vec<String> = if matches!(td, TD::FixedAscii(_)) {
                a.read_raw::<FixedAscii<4096>>()?
                    .iter()
                    .map(|s| String::from_utf8_lossy(s.as_bytes()).into_owned())
                    .collect()
            } else {
                a.read_raw::<FixedUnicode<4096>>()?
                    .iter()
                    .map(|s| String::from_utf8_lossy(s.as_bytes()).into_owned())
                    .collect()
            };
            strings(v)
        }
        TD::Boolean => {
            let v = a.read_raw::<bool>()?;
            if scalar {
                Json::Bool(v.first().copied().unwrap_or(false))
            } else {
                Json::Array(v.into_iter().map(Json::Bool).collect())
            }
        }
        TD::Integer(_) | TD::Unsigned(_) => {
            let v = a.read_raw::<i64>()?;
            if scalar {
                Json::Number(v.first().copied().unwrap_or(0).into())
            } else {
                Json::Array(v.into_iter().map(|x| Json::Number(x.into())).collect())
            }
        }
        TD::Float(_) => {
            let v = a.read_raw::<f64>()?;
            let num = |x: f64| Number::from_f64(x).map_or(Json::Null, Json::Number);
            if scalar {
                num(v.first().copied().unwrap_or(f64::NAN))
            } else {
                Json::Array(v.into_iter().map(num).collect())
            }
        }
        _ => return Ok(None),
    }))
}

fn filter_names(ds: &Dataset) -> Vec<String> {
    use hdf5::filters::Filter;
    ds.filters()
        .into_iter()
        .map(|f| match f {
            Filter::Deflate(l) => format!("gzip({l})"),
            Filter::Shuffle => "shuffle".into(),
            Filter::Fletcher32 => "fletcher32".into(),
            Filter::LZF => "lzf".into(),
            Filter::Blosc(c, l, s) => format!("blosc({c:?}, {l}, {s:?})").to_lowercase(),
            Filter::User(id, _) => format!("filter#{id}"),
            other => format!("{other:?}").to_lowercase(),
        })
        .collect()
}

impl Store for H5Store {
    fn path(&self) -> &Path {
        &self.path
    }

    fn format(&self) -> StoreFormat {
        StoreFormat::H5ad
    }

    fn node(&self, path: &str) -> Result<Option<NodeKind>> {
        if path.is_empty() {
            return Ok(Some(NodeKind::Group));
        }
        // link_exists fails quietly when an intermediate group is missing; check each level.
        let mut prefix = String::new();
        for part in path.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            if !self.file.link_exists(&prefix) {
                return Ok(None);
            }
        }
        match self.file.loc_type_by_name(path) {
            Ok(LocationType::Group) => Ok(Some(NodeKind::Group)),
            Ok(LocationType::Dataset) => Ok(Some(NodeKind::Array)),
            Ok(_) => Ok(None),
            Err(e) => Err(h5err(&self.path, path, e)),
        }
    }

    fn children(&self, group: &str) -> Result<Vec<String>> {
        let g = if group.is_empty() {
            (*self.file).clone()
        } else {
            self.file
                .group(group)
                .map_err(|e| h5err(&self.path, group, e))?
        };
        let mut names = g.member_names().map_err(|e| h5err(&self.path, group, e))?;
        names.sort();
        Ok(names)
    }

    fn attributes(&self, path: &str) -> Result<Attrs> {
        let loc = self.location(path)?;
        let mut out = Attrs::new();
        for name in loc.attr_names().map_err(|e| h5err(&self.path, path, e))? {
            let a = loc.attr(&name).map_err(|e| h5err(&self.path, path, e))?;
            // Unreadable attributes (object references, exotic types) are skipped, not fatal.
            if let Ok(Some(v)) = attr_json(&a) {
                out.insert(name, v);
            } else if name == "categories" {
                // anndata 0.7 stores a categorical's categories as an object reference.
                out.insert(name, Json::Null);
            }
        }
        Ok(out)
    }

    fn array_info(&self, path: &str) -> Result<ArrayInfo> {
        let ds = self.dataset(path)?;
        let td = ds
            .dtype()
            .and_then(|t| t.to_descriptor())
            .map_err(|e| h5err(&self.path, path, e))?;
        Ok(ArrayInfo {
            shape: ds.shape().into_iter().map(|s| s as u64).collect(),
            dtype: stored_type(&td),
            chunks: ds
                .chunk()
                .map(|c| c.into_iter().map(|s| s as u64).collect()),
            shards: None,
            compression: filter_names(&ds),
            stored_bytes: Some(ds.storage_size()),
        })
    }

    fn read(&self, path: &str, sel: &[Range<u64>]) -> Result<DynArray> {
        let ds = self.dataset(path)?;
        let shape = ds.shape();
        if sel.len() != shape.len()
            || sel
                .iter()
                .zip(&shape)
                .any(|(r, &n)| r.start > r.end || r.end > n as u64)
        {
            return Err(Error::internal(format!(
                "read of /{path} with selection {sel:?} outside shape {shape:?}"
            )));
        }
        let td = ds
            .dtype()
            .and_then(|t| t.to_descriptor())
            .map_err(|e| h5err(&self.path, path, e))?;
        if sel.iter().any(|r| r.is_empty()) {
            let out: Vec<usize> = sel.iter().map(|r| (r.end - r.start) as usize).collect();
            return match stored_type(&td) {
                StoredType::Plain(d) => Ok(DynArray::zeros(d, &out)),
                other => Err(Error::unsupported(
                    Location::new(&self.path, format!("/{path}")),
                    format!("element type {other}"),
                )),
            };
        }
        if let Some(raw) = &self.raw
            && let Some(a) = parallel::read_contiguous(raw, &ds, &td, sel)
                .map_err(|e| h5err(&self.path, path, e))?
        {
            return Ok(a);
        }
        if let Some(plan) = parallel::plan(&ds, &td, sel) {
            return parallel::read(&ds, &plan, sel).map_err(|e| h5err(&self.path, path, e));
        }
        read_typed(&ds, &td, sel).map_err(|e| h5err(&self.path, path, e))
    }

    fn read_compound(&self, path: &str) -> Result<Vec<(String, DynArray)>> {
        let ds = self.dataset(path)?;
        let td = ds
            .dtype()
            .and_then(|t| t.to_descriptor())
            .map_err(|e| h5err(&self.path, path, e))?;
        let TD::Compound(ct) = td else {
            return Err(Error::format(
                Location::new(&self.path, format!("/{path}")),
                "not a compound dataset",
            ));
        };
        let mut out = Vec::new();
        for f in &ct.fields {
            let v = raw::compound_field(&ds, &f.name, &f.ty)
                .map_err(|e| h5err(&self.path, &format!("{path}.{}", f.name), e))?;
            out.push((f.name.clone(), v));
        }
        Ok(out)
    }
}

/// Parallel decompression of chunked, deflate-compressed datasets.
///
/// HDF5 runs its filters inside the global lock, so reads through the library use one core.
/// Here the raw (still compressed) chunks a hyperslab touches are fetched under the lock,
/// one after another, then inflated and unshuffled on all cores, then copied into place.
mod parallel {
    use super::raw;
    use engine_matrix::{DType, DynArray};
    use hdf5::Dataset;
    use hdf5::filters::Filter;
    use hdf5::types::TypeDescriptor as TD;
    use rayon::prelude::*;
    use std::io::Read;
    use std::ops::Range;

    /// What the fast path needs to know about a dataset.
    #[derive(Debug)]
    pub struct Plan {
        dtype: DType,
        elem: usize,
        chunk: Vec<u64>,
        /// Filters in pipeline order: `true` = shuffle, `false` = deflate.
        filters: Vec<bool>,
    }

    /// Uses the fast path for multi-chunk reads of little-endian numeric data filtered only
    /// by shuffle and deflate (what anndata and h5py write with `compression="gzip"`).
    pub fn plan(ds: &Dataset, td: &TD, sel: &[Range<u64>]) -> Option<Plan> {
        let dtype = match super::stored_type(td) {
            crate::backend::StoredType::Plain(d) if d.is_numeric() => d,
            _ => return None,
        };
        let chunk: Vec<u64> = ds.chunk()?.into_iter().map(|c| c as u64).collect();
        let mut filters = Vec::new();
        for f in ds.filters() {
            match f {
                Filter::Shuffle => filters.push(true),
                Filter::Deflate(_) => filters.push(false),
                _ => return None,
            }
        }
        if !filters.contains(&false)
            || ds.dtype().ok()?.byte_order() != hdf5::datatype::ByteOrder::LittleEndian
        {
            return None;
        }
        let touched: u64 = sel
            .iter()
            .zip(&chunk)
            .map(|(r, &c)| {
                if r.is_empty() {
                    0
                } else {
                    (r.end - 1) / c - r.start / c + 1
                }
            })
            .product();
        (touched > 1).then(|| Plan {
            dtype,
            elem: dtype.size(),
            chunk,
            filters,
        })
    }

    fn decode(raw: Vec<u8>, mask: u32, plan: &Plan, chunk_bytes: usize) -> hdf5::Result<Vec<u8>> {
        let mut buf = raw;
        for (i, &shuffle) in plan.filters.iter().enumerate().rev() {
            if mask & (1 << i) != 0 {
                continue;
            }
            buf = if shuffle {
                unshuffle(&buf, plan.elem)
            } else {
                let mut out = Vec::with_capacity(chunk_bytes);
                flate2::read::ZlibDecoder::new(&buf[..])
                    .read_to_end(&mut out)
                    .map_err(|e| format!("corrupt deflate chunk: {e}"))?;
                out
            };
        }
        if buf.len() != chunk_bytes {
            return Err(format!(
                "chunk decodes to {} bytes, expected {chunk_bytes}",
                buf.len()
            )
            .into());
        }
        Ok(buf)
    }

    /// Undoes HDF5's byte shuffle: byte `b` of element `i` was stored at `b * n + i`.
    fn unshuffle(src: &[u8], elem: usize) -> Vec<u8> {
        let n = src.len() / elem;
        let mut out = vec![0u8; src.len()];
        for b in 0..elem {
            let plane = &src[b * n..(b + 1) * n];
            for (i, &v) in plane.iter().enumerate() {
                out[i * elem + b] = v;
            }
        }
        // Bytes past a whole number of elements are stored unshuffled.
        out[n * elem..].copy_from_slice(&src[n * elem..]);
        out
    }

    pub fn read(ds: &Dataset, plan: &Plan, sel: &[Range<u64>]) -> hdf5::Result<DynArray> {
        let nd = sel.len();
        let out_shape: Vec<usize> = sel.iter().map(|r| (r.end - r.start) as usize).collect();
        let chunk_elems: usize = plan.chunk.iter().product::<u64>() as usize;
        let chunk_bytes = chunk_elems * plan.elem;
        // Every chunk coordinate the hyperslab intersects, in row-major order.
        let first: Vec<u64> = sel
            .iter()
            .zip(&plan.chunk)
            .map(|(r, &c)| r.start / c)
            .collect();
        let last: Vec<u64> = sel
            .iter()
            .zip(&plan.chunk)
            .map(|(r, &c)| (r.end - 1) / c)
            .collect();
        let mut coords = vec![first.clone()];
        loop {
            let mut next = coords.last().cloned().unwrap_or_default();
            let mut d = nd;
            loop {
                if d == 0 {
                    break;
                }
                d -= 1;
                if next[d] < last[d] {
                    next[d] += 1;
                    break;
                }
                next[d] = first[d];
            }
            if next == first {
                break;
            }
            coords.push(next);
        }
        let offsets: Vec<Vec<u64>> = coords
            .iter()
            .map(|c| c.iter().zip(&plan.chunk).map(|(&i, &s)| i * s).collect())
            .collect();
        // Each task fetches its raw chunk under HDF5's lock (so fetches are serial) and then
        // decodes outside it, overlapping one chunk's I/O with others' inflation.
        let decoded: Vec<Option<Vec<u8>>> = offsets
            .par_iter()
            .map(|o| {
                raw::read_chunk(ds, o)?
                    .map(|(bytes, mask)| decode(bytes, mask, plan, chunk_bytes))
                    .transpose()
            })
            .collect::<hdf5::Result<_>>()?;
        let mut array = DynArray::zeros(plan.dtype, &out_shape);
        let mut bool_bytes = Vec::new();
        let out: &mut [u8] = match &mut array {
            DynArray::Bool(a) => {
                bool_bytes = vec![0u8; a.len()];
                &mut bool_bytes
            }
            DynArray::Str(_) => return Err("strings have no fixed size".into()),
            other => pod_bytes(other),
        };
        // Row-major strides, in elements.
        let stride = |shape: &[usize]| -> Vec<usize> {
            let mut s = vec![1usize; shape.len()];
            for d in (0..shape.len().saturating_sub(1)).rev() {
                s[d] = s[d + 1] * shape[d + 1];
            }
            s
        };
        let chunk_shape: Vec<usize> = plan.chunk.iter().map(|&c| c as usize).collect();
        let (cs, os) = (stride(&chunk_shape), stride(&out_shape));
        for (off, data) in offsets.iter().zip(decoded) {
            let Some(data) = data else { continue }; // never written: fill value 0
            let lo: Vec<u64> = (0..nd).map(|d| sel[d].start.max(off[d])).collect();
            let hi: Vec<u64> = (0..nd)
                .map(|d| sel[d].end.min(off[d] + plan.chunk[d]))
                .collect();
            let run = (hi[nd - 1] - lo[nd - 1]) as usize * plan.elem;
            let mut idx = lo.clone();
            loop {
                let src: usize = (0..nd)
                    .map(|d| (idx[d] - off[d]) as usize * cs[d])
                    .sum::<usize>()
                    * plan.elem;
                let dst: usize = (0..nd)
                    .map(|d| (idx[d] - sel[d].start) as usize * os[d])
                    .sum::<usize>()
                    * plan.elem;
                out[dst..dst + run].copy_from_slice(&data[src..src + run]);
                let mut d = nd - 1;
                loop {
                    if d == 0 {
                        idx[0] = hi[0];
                        break;
                    }
                    d -= 1;
                    idx[d] += 1;
                    if idx[d] < hi[d] {
                        break;
                    }
                    idx[d] = lo[d];
                }
                if idx[0] >= hi[0] {
                    break;
                }
            }
        }
        if let DynArray::Bool(a) = &mut array {
            a.iter_mut()
                .zip(&bool_bytes)
                .for_each(|(v, &b)| *v = b != 0);
        }
        Ok(array)
    }

    /// Reads a hyperslab of a contiguous (unchunked, unfiltered) dataset straight from the
    /// file with positional reads on all cores, bypassing HDF5's lock. Only for selections
    /// that are one byte range: leading rows with every trailing element.
    pub fn read_contiguous(
        file: &std::fs::File,
        ds: &Dataset,
        td: &TD,
        sel: &[Range<u64>],
    ) -> hdf5::Result<Option<DynArray>> {
        use std::os::unix::fs::FileExt;
        let dtype = match super::stored_type(td) {
            crate::backend::StoredType::Plain(d) if d.is_numeric() && d != DType::Bool => d,
            _ => return Ok(None),
        };
        let shape = ds.shape();
        if sel.is_empty()
            || ds.is_chunked()
            || sel
                .iter()
                .zip(&shape)
                .skip(1)
                .any(|(r, &n)| r.start != 0 || r.end != n as u64)
        {
            return Ok(None);
        }
        let Some(base) = ds.offset() else {
            return Ok(None);
        };
        if ds.dtype()?.byte_order() != hdf5::datatype::ByteOrder::LittleEndian {
            return Ok(None);
        }
        let row_bytes = shape[1..].iter().product::<usize>() * dtype.size();
        let out_shape: Vec<usize> = sel.iter().map(|r| (r.end - r.start) as usize).collect();
        let mut array = DynArray::zeros(dtype, &out_shape);
        let out = pod_bytes(&mut array);
        let start = base + sel[0].start * row_bytes as u64;
        // Pieces of 4 MiB keep both cores busy without tiny reads.
        out.par_chunks_mut(4 << 20)
            .enumerate()
            .try_for_each(|(i, piece)| {
                file.read_exact_at(piece, start + (i * (4 << 20)) as u64)
                    .map_err(|e| hdf5::Error::from(e.to_string()))
            })?;
        Ok(Some(array))
    }

    /// The bytes of a freshly allocated numeric array, to decode chunks straight into.
    fn pod_bytes(a: &mut DynArray) -> &mut [u8] {
        macro_rules! bytes {
            ($v:expr) => {
                bytemuck::cast_slice_mut($v.as_slice_mut().expect("new arrays are contiguous"))
            };
        }
        match a {
            DynArray::I8(v) => bytes!(v),
            DynArray::I16(v) => bytes!(v),
            DynArray::I32(v) => bytes!(v),
            DynArray::I64(v) => bytes!(v),
            DynArray::U8(v) => bytes!(v),
            DynArray::U16(v) => bytes!(v),
            DynArray::U32(v) => bytes!(v),
            DynArray::U64(v) => bytes!(v),
            DynArray::F32(v) => bytes!(v),
            DynArray::F64(v) => bytes!(v),
            DynArray::Bool(_) | DynArray::Str(_) => &mut [],
        }
    }
}

/// Reads needing a memory type built at run time, which hdf5-metno has no safe API for.
#[allow(unsafe_code)]
mod raw {
    use engine_matrix::DynArray;
    use hdf5::types::{
        CompoundField, CompoundType, FloatSize, H5Type, IntSize, TypeDescriptor as TD, VarLenAscii,
        VarLenUnicode,
    };
    use hdf5::{Dataset, Datatype};
    use hdf5_sys::{h5d::H5Dread, h5p::H5P_DEFAULT, h5s::H5S_ALL};
    use ndarray::Array1;

    /// Reads one field of a compound dataset: HDF5 converts compound types field by field,
    /// matching names, so a one-field memory type reads just that column.
    fn field<T: H5Type>(ds: &Dataset, name: &str) -> hdf5::Result<Vec<T>> {
        let ty = T::type_descriptor();
        let mem = Datatype::from_descriptor(&TD::Compound(CompoundType {
            fields: vec![CompoundField::new(name, ty.clone(), 0, 0)],
            size: ty.size(),
        }))?;
        let n = ds.size();
        let mut out: Vec<T> = Vec::with_capacity(n);
        // SAFETY: `out` has room for `n` elements whose layout is the one-field compound
        // `mem`; HDF5 writes exactly `n` of them before we set the length.
        hdf5::sync::sync(|| unsafe {
            hdf5::h5check(H5Dread(
                ds.id(),
                mem.id(),
                H5S_ALL,
                H5S_ALL,
                H5P_DEFAULT,
                out.as_mut_ptr().cast(),
            ))
        })?;
        // SAFETY: H5Dread succeeded and initialised all `n` elements.
        unsafe { out.set_len(n) };
        Ok(out)
    }

    /// The raw, still-filtered bytes of the chunk starting at `offset`, with its filter mask;
    /// `None` when the chunk was never written.
    pub fn read_chunk(ds: &Dataset, offset: &[u64]) -> hdf5::Result<Option<(Vec<u8>, u32)>> {
        use hdf5_sys::h5d::{H5Dget_chunk_info_by_coord, H5Dread_chunk};
        let (mut mask, mut addr, mut size) = (0u32, 0u64, 0u64);
        // SAFETY: `offset` has one entry per dimension; the out-pointers are valid locals.
        hdf5::sync::sync(|| unsafe {
            hdf5::h5check(H5Dget_chunk_info_by_coord(
                ds.id(),
                offset.as_ptr(),
                &mut mask,
                &mut addr,
                &mut size,
            ))
        })?;
        if addr == hdf5_sys::h5::HADDR_UNDEF || size == 0 {
            return Ok(None);
        }
        let mut buf = vec![0u8; size as usize];
        let mut len = buf.len();
        // SAFETY: `buf` has `len` bytes of room, the stored size of this chunk.
        hdf5::sync::sync(|| unsafe {
            hdf5::h5check(H5Dread_chunk(
                ds.id(),
                H5P_DEFAULT,
                offset.as_ptr(),
                &mut mask,
                buf.as_mut_ptr().cast(),
                &mut len,
            ))
        })?;
        buf.truncate(len);
        Ok(Some((buf, mask)))
    }

    /// Reads one field of type `ty` (`width` bytes per record) of every record as raw bytes.
    fn field_bytes(ds: &Dataset, name: &str, ty: TD, width: usize) -> hdf5::Result<Vec<u8>> {
        let mem = Datatype::from_descriptor(&TD::Compound(CompoundType {
            fields: vec![CompoundField::new(name, ty, 0, 0)],
            size: width,
        }))?;
        let n = ds.size();
        let mut buf = vec![0u8; n * width];
        if n > 0 {
            // SAFETY: `buf` holds `n` records of `width` bytes, the size of `mem`.
            hdf5::sync::sync(|| unsafe {
                hdf5::h5check(H5Dread(
                    ds.id(),
                    mem.id(),
                    H5S_ALL,
                    H5S_ALL,
                    H5P_DEFAULT,
                    buf.as_mut_ptr().cast(),
                ))
            })?;
        }
        Ok(buf)
    }

    /// Reads a fixed-length string field of `len` bytes.
    fn fixed_field(ds: &Dataset, name: &str, td: &TD, len: usize) -> hdf5::Result<Vec<String>> {
        let buf = field_bytes(ds, name, td.clone(), len)?;
        Ok(buf
            .chunks_exact(len.max(1))
            .map(|c| {
                let end = c.iter().position(|&b| b == 0).unwrap_or(c.len());
                String::from_utf8_lossy(&c[..end]).into_owned()
            })
            .collect())
    }

    /// Reads a fixed-size numeric array field (`('X_pca', '<f4', (2,))`) as an `n × k` matrix.
    fn array_field(ds: &Dataset, name: &str, inner: &TD, k: usize) -> hdf5::Result<DynArray> {
        let n = ds.size();
        let buf = field_bytes(
            ds,
            name,
            TD::FixedArray(Box::new(inner.clone()), k),
            inner.size() * k,
        )?;
        macro_rules! decode {
            ($t:ty, $v:ident) => {{
                let vals: Vec<$t> = buf
                    .chunks_exact(std::mem::size_of::<$t>())
                    .map(|c| <$t>::from_ne_bytes(c.try_into().expect("chunk has the element size")))
                    .collect();
                DynArray::$v(
                    ndarray::Array2::from_shape_vec((n, k), vals)
                        .map_err(|e| e.to_string())?
                        .into_dyn(),
                )
            }};
        }
        Ok(match inner {
            TD::Integer(IntSize::U1) => decode!(i8, I8),
            TD::Integer(IntSize::U2) => decode!(i16, I16),
            TD::Integer(IntSize::U4) => decode!(i32, I32),
            TD::Integer(IntSize::U8) => decode!(i64, I64),
            TD::Unsigned(IntSize::U1) => decode!(u8, U8),
            TD::Unsigned(IntSize::U2) => decode!(u16, U16),
            TD::Unsigned(IntSize::U4) => decode!(u32, U32),
            TD::Unsigned(IntSize::U8) => decode!(u64, U64),
            TD::Float(FloatSize::U4) => decode!(f32, F32),
            TD::Float(FloatSize::U8) => decode!(f64, F64),
            other => return Err(format!("unsupported array field type {other}").into()),
        })
    }

    pub fn compound_field(ds: &Dataset, name: &str, ty: &TD) -> hdf5::Result<DynArray> {
        fn a<T>(v: Vec<T>) -> ndarray::ArrayD<T> {
            Array1::from_vec(v).into_dyn()
        }
        Ok(match ty {
            TD::Integer(IntSize::U1) => DynArray::I8(a(field::<i8>(ds, name)?)),
            TD::Integer(IntSize::U2) => DynArray::I16(a(field::<i16>(ds, name)?)),
            TD::Integer(IntSize::U4) => DynArray::I32(a(field::<i32>(ds, name)?)),
            TD::Integer(IntSize::U8) => DynArray::I64(a(field::<i64>(ds, name)?)),
            TD::Unsigned(IntSize::U1) => DynArray::U8(a(field::<u8>(ds, name)?)),
            TD::Unsigned(IntSize::U2) => DynArray::U16(a(field::<u16>(ds, name)?)),
            TD::Unsigned(IntSize::U4) => DynArray::U32(a(field::<u32>(ds, name)?)),
            TD::Unsigned(IntSize::U8) => DynArray::U64(a(field::<u64>(ds, name)?)),
            TD::Float(FloatSize::U4) => DynArray::F32(a(field::<f32>(ds, name)?)),
            TD::Float(FloatSize::U8) => DynArray::F64(a(field::<f64>(ds, name)?)),
            TD::Boolean => DynArray::Bool(a(field::<bool>(ds, name)?)),
            TD::VarLenUnicode => DynArray::Str(a(field::<VarLenUnicode>(ds, name)?
                .iter()
                .map(|s| String::from_utf8_lossy(s.as_bytes()).into_owned())
                .collect())),
            TD::VarLenAscii => DynArray::Str(a(field::<VarLenAscii>(ds, name)?
                .iter()
                .map(|s| String::from_utf8_lossy(s.as_bytes()).into_owned())
                .collect())),
            TD::FixedAscii(n) | TD::FixedUnicode(n) => {
                DynArray::Str(a(fixed_field(ds, name, ty, *n)?))
            }
            TD::FixedArray(inner, k) => array_field(ds, name, inner, *k)?,
            other => return Err(format!("unsupported compound field type {other}").into()),
        })
    }
}

/// Writes a new `.h5ad` file.
#[derive(Debug)]
pub struct H5Writer {
    file: hdf5::File,
    path: PathBuf,
}

impl H5Writer {
    /// Creates (truncates) the file.
    ///
    /// # Errors
    /// When the file cannot be created.
    pub fn create(path: &Path) -> Result<H5Writer> {
        let file = hdf5::File::create(path).map_err(|e| Error::io(Location::file(path), e))?;
        Ok(H5Writer {
            file,
            path: path.to_path_buf(),
        })
    }

    fn err(&self, path: &str, e: impl std::fmt::Display) -> Error {
        Error::io(Location::new(&self.path, format!("/{path}")), e)
    }
}

fn vlu(s: &str) -> hdf5::Result<VarLenUnicode> {
    s.replace('\0', "")
        .parse::<VarLenUnicode>()
        .map_err(|e| e.to_string().into())
}

/// Writes one attribute in the types h5py produces for the same Python values.
fn write_attr(loc: &hdf5::Location, name: &str, v: &Json) -> hdf5::Result<()> {
    if loc.attr_names()?.iter().any(|n| n == name) {
        loc.delete_attr(name)?;
    }
    match v {
        Json::String(s) => loc
            .new_attr::<VarLenUnicode>()
            .create(name)?
            .write_scalar(&vlu(s)?),
        Json::Bool(b) => loc.new_attr::<bool>().create(name)?.write_scalar(b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => loc.new_attr::<i64>().create(name)?.write_scalar(&i),
            None => loc
                .new_attr::<f64>()
                .create(name)?
                .write_scalar(&n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::Array(items) if items.is_empty() => {
            // anndata writes an empty column-order as an empty float64 array.
            loc.new_attr_builder()
                .with_data(&Vec::<f64>::new())
                .create(name)
                .map(|_| ())
        }
        Json::Array(items) if items.iter().all(|x| x.is_string()) => {
            let v: Vec<VarLenUnicode> = items
                .iter()
                .map(|x| vlu(x.as_str().unwrap_or("")))
                .collect::<hdf5::Result<_>>()?;
            loc.new_attr_builder()
                .with_data(&v)
                .create(name)
                .map(|_| ())
        }
        Json::Array(items) if items.iter().all(|x| x.is_i64()) => {
            let v: Vec<i64> = items.iter().filter_map(|x| x.as_i64()).collect();
            loc.new_attr_builder()
                .with_data(&v)
                .create(name)
                .map(|_| ())
        }
        Json::Array(items) if items.iter().all(|x| x.is_number()) => {
            let v: Vec<f64> = items.iter().filter_map(|x| x.as_f64()).collect();
            loc.new_attr_builder()
                .with_data(&v)
                .create(name)
                .map(|_| ())
        }
        Json::Array(items) if items.iter().all(|x| x.is_boolean()) => {
            let v: Vec<bool> = items.iter().filter_map(|x| x.as_bool()).collect();
            loc.new_attr_builder()
                .with_data(&v)
                .create(name)
                .map(|_| ())
        }
        other => loc
            .new_attr::<VarLenUnicode>()
            .create(name)?
            .write_scalar(&vlu(&other.to_string())?),
    }
}

impl StoreWriter for H5Writer {
    fn create_group(&mut self, path: &str, attrs: &Attrs) -> Result<()> {
        let loc = if path.is_empty() {
            (**self.file).clone()
        } else {
            match self.file.group(path) {
                Ok(g) => (*g).clone(),
                Err(_) => (*self
                    .file
                    .create_group(path)
                    .map_err(|e| self.err(path, e))?)
                .clone(),
            }
        };
        for (k, v) in attrs {
            write_attr(&loc, k, v).map_err(|e| self.err(path, e))?;
        }
        Ok(())
    }

    fn create_array(
        &mut self,
        path: &str,
        dtype: DType,
        shape: &[u64],
        opts: &ArrayOptions,
        attrs: &Attrs,
    ) -> Result<()> {
        let dims: Vec<usize> = shape.iter().map(|&s| s as usize).collect();
        let empty = dims.contains(&0);
        // Chunking only when asked for or needed by compression; scalars and empty arrays never.
        let chunk: Option<Vec<usize>> = if dims.is_empty() || empty {
            None
        } else {
            match (&opts.chunks, &opts.compression) {
                (Some(c), _) => Some(
                    crate::backend::fit_chunks(c, shape)
                        .into_iter()
                        .map(|c| c as usize)
                        .collect(),
                ),
                (None, Compression::None) => None,
                (None, _) => Some(
                    crate::write::default_chunks(shape, dtype)
                        .into_iter()
                        .map(|c| c as usize)
                        .collect(),
                ),
            }
        };
        macro_rules! build {
            ($t:ty) => {{
                let b = self.file.new_dataset::<$t>();
                if dims.is_empty() {
                    b.create(path)
                } else {
                    let mut b = b.shape(dims.clone());
                    if let Some(c) = &chunk {
                        b = b.chunk(c.clone());
                        b = match &opts.compression {
                            Compression::None => b,
                            Compression::Gzip(l) => b.shuffle().deflate(*l as u8),
                            Compression::Zstd(l) => b.blosc_zstd((*l).clamp(0, 9) as u8, true),
                            Compression::Blosc { cname, clevel } => match cname.as_str() {
                                "zstd" => b.blosc_zstd(*clevel, true),
                                "zlib" => b.blosc_zlib(*clevel, true),
                                "blosclz" => b.blosc_blosclz(*clevel, true),
                                _ => b.blosc_lz4(*clevel, true),
                            },
                        };
                    }
                    b.create(path)
                }
            }};
        }
        let res = match dtype {
            DType::Bool => build!(bool),
            DType::I8 => build!(i8),
            DType::I16 => build!(i16),
            DType::I32 => build!(i32),
            DType::I64 => build!(i64),
            DType::U8 => build!(u8),
            DType::U16 => build!(u16),
            DType::U32 => build!(u32),
            DType::U64 => build!(u64),
            DType::F32 => build!(f32),
            DType::F64 => build!(f64),
            DType::Str => build!(VarLenUnicode),
        };
        let ds = res.map_err(|e| self.err(path, e))?;
        for (k, v) in attrs {
            write_attr(&ds, k, v).map_err(|e| self.err(path, e))?;
        }
        Ok(())
    }

    fn create_null(&mut self, path: &str, attrs: &Attrs) -> Result<()> {
        // anndata's `h5py.Empty("f")`: float32 with a null dataspace.
        let ds = self
            .file
            .new_dataset::<f32>()
            .shape(hdf5::Extents::Null)
            .create(path)
            .map_err(|e| self.err(path, e))?;
        for (k, v) in attrs {
            write_attr(&ds, k, v).map_err(|e| self.err(path, e))?;
        }
        Ok(())
    }

    fn write(&mut self, path: &str, offset: &[u64], data: &DynArray) -> Result<()> {
        let ds = self.file.dataset(path).map_err(|e| self.err(path, e))?;
        let shape = data.shape().to_vec();
        if shape.is_empty() {
            let r = dyn_map!(data, a => {
                let v = a.iter().next().cloned().ok_or_else(|| Error::internal("empty scalar"))?;
                write_scalar(&ds, v)
            });
            return r.map_err(|e| self.err(path, e));
        }
        if shape.contains(&0) {
            return Ok(());
        }
        let sel: Vec<Range<u64>> = offset
            .iter()
            .zip(&shape)
            .map(|(&o, &n)| o..o + n as u64)
            .collect();
        let slab = hyperslab(&sel);
        let r = match data {
            DynArray::Str(a) => {
                let v: hdf5::Result<ArrayD<VarLenUnicode>> = a
                    .iter()
                    .map(|s| vlu(s))
                    .collect::<hdf5::Result<Vec<_>>>()
                    .map(|v| ArrayD::from_shape_vec(IxDyn(&shape), v).expect("same element count"));
                v.and_then(|v| ds.write_slice(&v, slab))
            }
            DynArray::Bool(a) => ds.write_slice(&a.as_standard_layout(), slab),
            DynArray::I8(a) => ds.write_slice(&a.as_standard_layout(), slab),
            DynArray::I16(a) => ds.write_slice(&a.as_standard_layout(), slab),
            DynArray::I32(a) => ds.write_slice(&a.as_standard_layout(), slab),
            DynArray::I64(a) => ds.write_slice(&a.as_standard_layout(), slab),
            DynArray::U8(a) => ds.write_slice(&a.as_standard_layout(), slab),
            DynArray::U16(a) => ds.write_slice(&a.as_standard_layout(), slab),
            DynArray::U32(a) => ds.write_slice(&a.as_standard_layout(), slab),
            DynArray::U64(a) => ds.write_slice(&a.as_standard_layout(), slab),
            DynArray::F32(a) => ds.write_slice(&a.as_standard_layout(), slab),
            DynArray::F64(a) => ds.write_slice(&a.as_standard_layout(), slab),
        };
        r.map_err(|e| self.err(path, e))
    }

    fn finish(self: Box<Self>) -> Result<()> {
        let path = self.path.clone();
        self.file
            .close()
            .map_err(|e| Error::io(Location::file(&path), e))
    }
}

/// Writes a 0-d dataset's value.
trait ScalarWrite {
    fn write_to(&self, ds: &Dataset) -> hdf5::Result<()>;
}

macro_rules! scalar_write {
    ($($t:ty),*) => {$(
        impl ScalarWrite for $t {
            fn write_to(&self, ds: &Dataset) -> hdf5::Result<()> { ds.write_scalar(self) }
        }
    )*};
}
scalar_write!(bool, i8, i16, i32, i64, u8, u16, u32, u64, f32, f64);

impl ScalarWrite for String {
    fn write_to(&self, ds: &Dataset) -> hdf5::Result<()> {
        ds.write_scalar(&vlu(self)?)
    }
}

fn write_scalar<T: ScalarWrite>(ds: &Dataset, v: T) -> hdf5::Result<()> {
    v.write_to(ds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::ArrayOptions;

    /// The parallel raw-chunk path returns exactly what HDF5's own filter pipeline returns,
    /// for edge chunks, never-written chunks and every hyperslab shape.
    #[test]
    fn parallel_chunk_path_matches_the_library() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.h5");
        let mut w = H5Writer::create(&path).unwrap();
        let opts = ArrayOptions {
            chunks: Some(vec![3, 4]),
            shards: None,
            compression: Compression::Gzip(5),
        };
        w.create_array("m", DType::I32, &[10, 9], &opts, &Attrs::new())
            .unwrap();
        // Rows 6..10 stay unwritten: those chunks do not exist in the file.
        let a = ndarray::Array2::from_shape_fn((6, 9), |(i, j)| (i * 1000 + j) as i32 - 3000);
        w.write("m", &[0, 0], &DynArray::I32(a.into_dyn())).unwrap();
        Box::new(w).finish().unwrap();
        let s = H5Store::open(&path).unwrap();
        let ds = s.dataset("m").unwrap();
        let td = ds.dtype().unwrap().to_descriptor().unwrap();
        let mut checked = 0;
        for r0 in 0..10u64 {
            for r1 in r0 + 1..=10 {
                for (c0, c1) in [(0u64, 9u64), (2, 7), (4, 5), (8, 9)] {
                    let sel = [r0..r1, c0..c1];
                    let lib = read_typed(&ds, &td, &sel).unwrap();
                    if let Some(plan) = parallel::plan(&ds, &td, &sel) {
                        assert_eq!(parallel::read(&ds, &plan, &sel).unwrap(), lib, "{sel:?}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(
            checked > 100,
            "the fast path was exercised ({checked} hyperslabs)"
        );
    }
}
