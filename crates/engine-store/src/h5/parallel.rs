//! Parallel decompression of chunked, deflate-compressed datasets.
//!
//! HDF5 runs its filters inside the global lock, so reads through the library use one core.
//! Here the raw (still compressed) chunks a hyperslab touches are fetched under the lock,
//! one after another, then inflated and unshuffled on all cores, then copied into place.

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
pub(super) fn unshuffle(src: &[u8], elem: usize) -> Vec<u8> {
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

/// `remote`: the file's bytes when it is read by URL; the chunks are then fetched ahead,
/// concurrently, before HDF5 reads them one by one.
pub fn read(
    ds: &Dataset,
    plan: &Plan,
    sel: &[Range<u64>],
    remote: Option<&super::remote::RemoteFile>,
) -> hdf5::Result<DynArray> {
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
    if let Some(remote) = remote {
        let mut ranges = Vec::with_capacity(offsets.len());
        for o in &offsets {
            if let Some((addr, size)) = raw::chunk_location(ds, o)? {
                ranges.push(addr..addr + size);
            }
        }
        remote.prefetch(&ranges).map_err(hdf5::Error::from)?;
    }
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
