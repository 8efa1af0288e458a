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
use std::os::unix::fs::FileExt;

/// Bytes of one stored descriptor: a 4-byte length, a heap address and a 4-byte index.
fn descriptor_size(ds: &Dataset) -> hdf5::Result<usize> {
    let addr: usize = ds.file()?.fcpl()?.sizes().sizeof_addr.into();
    Ok(4 + addr + 4)
}

/// The first element whose length is past `limit`, with that length.
fn too_long(bytes: &[u8], elem: usize, limit: u64) -> Option<(usize, u64)> {
    bytes.chunks_exact(elem).enumerate().find_map(|(i, d)| {
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
                let mut out = Vec::with_capacity(want);
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

/// Refuses a variable-length string dataset any of whose stored lengths exceeds `file_len`.
/// `file` is the same file opened for positional reads (HDF5 addresses are file offsets).
pub fn check(file: &std::fs::File, file_len: u64, ds: &Dataset) -> hdf5::Result<()> {
    let elem = descriptor_size(ds)?;
    if let Some(base) = ds.offset() {
        let bytes = ds.size() as u64 * elem as u64;
        if base.checked_add(bytes).is_none_or(|end| end > file_len) {
            return Err("damaged dataset: its data lies past the end of the file".into());
        }
        // Strings are read in pieces of 1 MiB of descriptors.
        let piece = (1 << 20) / elem * elem;
        let mut buf = vec![0u8; piece];
        let mut at = 0u64;
        while at < bytes {
            let n = piece.min((bytes - at) as usize);
            file.read_exact_at(&mut buf[..n], base + at)
                .map_err(|e| hdf5::Error::from(e.to_string()))?;
            if let Some((i, len)) = too_long(&buf[..n], elem, file_len) {
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
    let want = chunk.iter().product::<usize>() * elem;
    let filters = ds.filters();
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
        let mut raw = vec![0u8; info.size as usize];
        if let Err(e) = file.read_exact_at(&mut raw, info.addr) {
            found = Err(e.to_string().into());
            return 1;
        }
        let Some(bytes) = unfilter(raw, info.filter_mask, &filters, elem, want) else {
            return 0;
        };
        if let Some((i, len)) = too_long(&bytes, elem, file_len) {
            found = Err(damaged(i, len, file_len));
            return 1;
        }
        0
    })?;
    found
}
