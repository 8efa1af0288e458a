//! Checks the lengths a variable-length string dataset claims before HDF5 reads it.
//!
//! HDF5 sizes (and zeroes) its conversion buffer from each element's stored length before it
//! looks at the heap object behind it, so one damaged length makes a read take up to 4 GiB
//! (found by fuzzing `Dataset::open`). A string cannot be longer than the file that holds
//! it: the stored descriptors (length, heap address, index) are read from the file first and
//! any length past the file's size is reported as damage.

use hdf5::Dataset;
use hdf5::filters::Filter;
use std::io::Read;
use std::ops::Range;
use std::os::unix::fs::FileExt;

/// Bytes of one stored descriptor: a 4-byte length, a heap address and a 4-byte index.
fn descriptor_size(ds: &Dataset) -> hdf5::Result<usize> {
    let addr: usize = ds.file()?.fcpl()?.sizes().sizeof_addr.into();
    Ok(4 + addr + 4)
}

/// Where the descriptors lie: every `stride` bytes, `offset` bytes in (a compound's field).
#[derive(Clone, Copy)]
struct Layout {
    stride: usize,
    offset: usize,
}

/// The first element whose length is past `limit`, with that length.
fn too_long(bytes: &[u8], at: Layout, limit: u64) -> Option<(usize, u64)> {
    bytes
        .chunks_exact(at.stride)
        .enumerate()
        .find_map(|(i, e)| {
            let d = &e[at.offset..at.offset + 4];
            let len = u64::from(u32::from_le_bytes([d[0], d[1], d[2], d[3]]));
            (len > limit).then_some((i, len))
        })
}

fn damaged(i: usize, len: u64, limit: u64) -> hdf5::Error {
    format!("damaged string: element {i} claims {len} bytes, more than the file's {limit}").into()
}

/// Undoes a chunk's filters, or `None` when one is not shuffle, deflate or Fletcher-32 (the
/// check is then left to HDF5).
fn unfilter(
    raw: Vec<u8>,
    mask: u32,
    filters: &[Filter],
    elem: usize,
    want: usize,
) -> Option<Vec<u8>> {
    let mut buf = raw;
    for (i, f) in filters.iter().enumerate().rev() {
        if mask & (1 << i) != 0 {
            continue;
        }
        buf = match f {
            Filter::Shuffle => super::parallel::unshuffle(&buf, elem),
            Filter::Fletcher32 => {
                let keep = buf.len().checked_sub(4)?;
                buf.truncate(keep);
                buf
            }
            Filter::Deflate(_) => {
                // Deflate shrinks at most ~1032-fold: no more is reserved than the input allows.
                let mut out = Vec::with_capacity(want.min(buf.len().saturating_mul(1032)));
                // A chunk never inflates past its elements; more is damage HDF5 reports.
                flate2::read::ZlibDecoder::new(&buf[..])
                    .take(want as u64 + 1)
                    .read_to_end(&mut out)
                    .ok()?;
                out
            }
            _ => return None,
        };
    }
    Some(buf)
}

/// Refuses a variable-length string dataset any of whose stored lengths exceeds the size of
/// `file` (the same file opened for positional reads: HDF5 addresses are file offsets).
/// `rows`, for a 1-D read of part of a contiguous dataset, limits the check to those
/// elements.
pub fn check(file: &std::fs::File, ds: &Dataset, rows: Option<Range<u64>>) -> hdf5::Result<()> {
    let elem = descriptor_size(ds)?;
    let layout = Layout {
        stride: elem,
        offset: 0,
    };
    check_at(file, ds, layout, rows.filter(|_| ds.ndim() == 1))
}

/// As [`check`], for the variable-length string field `name` of a compound dataset's
/// records (a rec-array's text column). On disk a record holds its members in order, each
/// variable-length one as a descriptor (the type HDF5 reports sizes them as pointers).
pub fn check_field(
    file: &std::fs::File,
    ds: &Dataset,
    ct: &hdf5::types::CompoundType,
    name: &str,
) -> hdf5::Result<()> {
    use hdf5::types::TypeDescriptor as TD;
    let desc = descriptor_size(ds)?;
    let mut fields: Vec<_> = ct.fields.iter().collect();
    fields.sort_by_key(|f| f.offset);
    let (mut stride, mut offset) = (0, None);
    for f in fields {
        if f.name == name {
            offset = Some(stride);
        }
        stride += match f.ty {
            TD::VarLenUnicode | TD::VarLenAscii => desc,
            // Other variable-length members (sequences) are left to HDF5.
            TD::VarLenArray(_) => return Ok(()),
            ref t => t.size(),
        };
    }
    match offset {
        Some(offset) => check_at(file, ds, Layout { stride, offset }, None),
        None => Ok(()),
    }
}

fn check_at(
    file: &std::fs::File,
    ds: &Dataset,
    layout: Layout,
    rows: Option<Range<u64>>,
) -> hdf5::Result<()> {
    let file_len = file
        .metadata()
        .map_err(|e| hdf5::Error::from(e.to_string()))?
        .len();
    let elem = layout.stride;
    if let Some(base) = ds.offset() {
        let Some(bytes) = (ds.size() as u64).checked_mul(elem as u64) else {
            return Err("damaged dataset: its size overflows".into());
        };
        if base.checked_add(bytes).is_none_or(|end| end > file_len) {
            return Err("damaged dataset: its data lies past the end of the file".into());
        }
        // Records of another size than assumed (4-byte addresses, padding): left to HDF5.
        if ds.storage_size() != bytes {
            return Ok(());
        }
        // Only the rows read, when they are in range; strings are read in pieces of 1 MiB
        // of descriptors.
        let (mut at, end) = match rows {
            Some(r) if r.start <= r.end && r.end.saturating_mul(elem as u64) <= bytes => {
                (r.start * elem as u64, r.end * elem as u64)
            }
            _ => (0, bytes),
        };
        let piece = (1 << 20) / elem * elem;
        let mut buf = vec![0u8; piece];
        while at < end {
            let n = piece.min((end - at) as usize);
            file.read_exact_at(&mut buf[..n], base + at)
                .map_err(|e| hdf5::Error::from(e.to_string()))?;
            if let Some((i, len)) = too_long(&buf[..n], layout, file_len) {
                return Err(damaged(at as usize / elem + i, len, file_len));
            }
            at += n as u64;
        }
        return Ok(());
    }
    let Some(chunk) = ds.chunk() else {
        // Compact (small, inside the object header) or never written.
        return Ok(());
    };
    let Some(want) = chunk.iter().try_fold(elem, |acc, &c| acc.checked_mul(c)) else {
        return Err("damaged dataset: its chunk size overflows".into());
    };
    // A pipeline hdf5-metno cannot list is left to HDF5 (read as descriptors, compressed
    // bytes would look like damage).
    let Ok(filters) = ds.dcpl().and_then(|p| p.get_filters()) else {
        return Ok(());
    };
    let mut found = Ok(());
    ds.chunks_visit(|info| {
        if info
            .addr
            .checked_add(info.size)
            .is_none_or(|end| end > file_len)
        {
            found = Err("damaged dataset: a chunk lies past the end of the file".into());
            return 1;
        }
        // A stored chunk is never much larger than its elements (deflate adds a few bytes
        // per 16 KiB); a larger one is left to HDF5 rather than read whole.
        if info.size > want as u64 + want as u64 / 64 + 1024 {
            return 0;
        }
        let mut raw = vec![0u8; info.size as usize];
        if let Err(e) = file.read_exact_at(&mut raw, info.addr) {
            found = Err(e.to_string().into());
            return 1;
        }
        // A chunk that does not decode to whole records of the assumed size is left to HDF5.
        let Some(bytes) =
            unfilter(raw, info.filter_mask, &filters, elem, want).filter(|b| b.len() == want)
        else {
            return 0;
        };
        if let Some((i, len)) = too_long(&bytes, layout, file_len) {
            // Elements of a 1-D dataset are numbered from its start; otherwise from the chunk's.
            let first = if info.offset.len() == 1 {
                info.offset[0] as usize
            } else {
                0
            };
            found = Err(damaged(first + i, len, file_len));
            return 1;
        }
        0
    })?;
    found
}
