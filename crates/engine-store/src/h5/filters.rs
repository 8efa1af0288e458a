//! Decoders for the HDF5 filters real files use beyond the ones hdf5-metno registers (deflate,
//! shuffle, LZF, Blosc): hdf5plugin's zstd (32015), LZ4 (32004) and bitshuffle (32008, bare or
//! with LZ4 or zstd inside). They are built into the binary, so a file written with
//! `hdf5plugin` opens without a plugin directory, wherever the binary was built or moved.
//! `raw.rs` registers them with HDF5; everything here is safe code on byte slices.
//!
//! Only decoding: the engine writes gzip, LZF or Blosc, which every reader has.

pub const ZSTD_ID: i32 = 32015;
pub const LZ4_ID: i32 = 32004;
pub const BITSHUFFLE_ID: i32 = 32008;

/// Every filter HDF5 can apply in this binary, by id, for messages about the others.
pub const ALL_NAMES: &str = "deflate (gzip), shuffle, fletcher32, szip, nbit, scaleoffset, \
     LZF (32000), Blosc (32001), LZ4 (32004), bitshuffle (32008), zstd (32015)";

/// How `inspect` names a filter that is not one of HDF5's own.
pub fn describe(id: i32, cd: &[u32]) -> String {
    match id {
        ZSTD_ID => format!("zstd({})", cd.first().copied().unwrap_or(3)),
        LZ4_ID => "lz4".into(),
        BITSHUFFLE_ID => match cd.get(4) {
            Some(2) => "bitshuffle+lz4".into(),
            Some(3) => "bitshuffle+zstd".into(),
            _ => "bitshuffle".into(),
        },
        other => format!("filter#{other}"),
    }
}

/// A decoded chunk, or what is wrong with it.
pub type Decoded = Result<Vec<u8>, String>;

/// A chunk compressed by the zstd filter: one zstd frame.
pub fn zstd(input: &[u8], _cd: &[u32]) -> Decoded {
    zstd::stream::decode_all(input).map_err(|e| format!("zstd: {e}"))
}

/// A chunk compressed by the HDF5 LZ4 filter: the original size (u64, big-endian) and the
/// block size (u32), then per block its compressed size (u32) and an LZ4 block, stored as is
/// when compression did not shrink it.
pub fn lz4(input: &[u8], _cd: &[u32]) -> Decoded {
    let mut r = Reader::new(input);
    let total = chunk_size(r.u64()?)?;
    let block = (r.u32()? as usize).min(total);
    let mut out = Vec::new();
    out.try_reserve_exact(total)
        .map_err(|_| format!("lz4: cannot allocate {total} bytes"))?;
    if total == 0 {
        return Ok(out);
    }
    if block == 0 {
        return Err("lz4: block size 0".into());
    }
    while out.len() < total {
        let want = block.min(total - out.len());
        let stored = r.u32()? as usize;
        let src = r.take(stored)?;
        if stored == want {
            out.extend_from_slice(src);
        } else {
            let at = out.len();
            out.resize(at + want, 0);
            let n = lz4_flex::block::decompress_into(src, &mut out[at..])
                .map_err(|e| format!("lz4: {e}"))?;
            if n != want {
                return Err(format!("lz4: a block gave {n} bytes, expected {want}"));
            }
        }
    }
    Ok(out)
}

/// A decoded size from a chunk header: HDF5 chunks are under 4 GiB, so a larger one is damage
/// (and must not become an allocation).
fn chunk_size(n: u64) -> Result<usize, String> {
    if n > u64::from(u32::MAX) {
        return Err(format!(
            "chunk header claims {n} bytes, more than a chunk can hold"
        ));
    }
    Ok(n as usize)
}

/// Elements per block when the filter's parameters leave it to the library: 8 KiB worth,
/// a multiple of 8, at least 128 (bitshuffle's `bshuf_default_block_size`).
fn default_block(elem_size: usize) -> usize {
    ((8192 / elem_size) / 8 * 8).max(128)
}

/// A chunk through the bitshuffle filter. Its parameters are `[major, minor, element size,
/// block size (elements, 0 = default), compression (0 none, 2 LZ4, 3 zstd), level]`. With
/// compression the chunk starts with the original size (u64, big-endian) and the block size
/// in bytes (u32); each block is its compressed size (u32) and an LZ4 block or zstd frame. The
/// elements past the last multiple of 8 are stored as they are, at the end.
pub fn bitshuffle(input: &[u8], cd: &[u32]) -> Decoded {
    let elem_size = *cd.get(2).ok_or("bitshuffle: no element size")? as usize;
    if elem_size == 0 {
        return Err("bitshuffle: element size 0".into());
    }
    // As the C filter: only 2 and 3 mean compressed; any other value is bare bitshuffle.
    let compression = match cd.get(4) {
        Some(&c @ (2 | 3)) => c,
        _ => 0,
    };
    let (total, block, mut r) = if compression == 0 {
        let block = match cd.get(3) {
            Some(&b) if b > 0 => b as usize,
            _ => default_block(elem_size),
        };
        (input.len(), block, Reader::new(input))
    } else {
        let mut r = Reader::new(input);
        let total = chunk_size(r.u64()?)?;
        let block = match r.u32()? as usize / elem_size {
            0 => default_block(elem_size),
            b => b,
        };
        (total, block, r)
    };
    if total % elem_size != 0 {
        return Err(format!(
            "bitshuffle: {total} bytes are not whole elements of {elem_size}"
        ));
    }
    if block == 0 || block % 8 != 0 {
        return Err(format!("bitshuffle: bad block size {block}"));
    }
    let n = total / elem_size;
    let mut out = Vec::new();
    out.try_reserve_exact(total)
        .map_err(|_| format!("bitshuffle: cannot allocate {total} bytes"))?;
    let mut plain = Vec::new();
    let mut done = 0;
    while n - done >= 8 {
        let count = block.min((n - done) / 8 * 8);
        let bytes = count * elem_size;
        let shuffled: &[u8] = match compression {
            0 => r.take(bytes)?,
            2 | 3 => {
                let stored = r.u32()? as usize;
                let src = r.take(stored)?;
                plain.clear();
                if compression == 2 {
                    plain.resize(bytes, 0);
                    let got = lz4_flex::block::decompress_into(src, &mut plain)
                        .map_err(|e| format!("bitshuffle/lz4: {e}"))?;
                    if got != bytes {
                        return Err(format!("bitshuffle/lz4: a block gave {got} bytes"));
                    }
                } else {
                    plain = zstd::bulk::decompress(src, bytes)
                        .map_err(|e| format!("bitshuffle/zstd: {e}"))?;
                    if plain.len() != bytes {
                        return Err(format!(
                            "bitshuffle/zstd: a block gave {} bytes",
                            plain.len()
                        ));
                    }
                }
                &plain
            }
            _ => unreachable!("compression is 0, 2 or 3"),
        };
        let at = out.len();
        out.resize(at + bytes, 0);
        unshuffle_block(shuffled, &mut out[at..], elem_size);
        done += count;
    }
    out.extend_from_slice(r.take((n - done) * elem_size)?);
    Ok(out)
}

/// Undoes bitshuffle's transpose of one block of `n` elements (`n` a multiple of 8): the
/// shuffled block holds, for each byte `b` of an element and each bit `k` of that byte, one
/// row of `n` bits (least significant first) giving that bit of every element.
fn unshuffle_block(shuffled: &[u8], out: &mut [u8], elem_size: usize) {
    let n = out.len() / elem_size;
    let row = n / 8;
    for b in 0..elem_size {
        for k in 0..8 {
            let bits = &shuffled[(b * 8 + k) * row..][..row];
            for (g, &byte) in bits.iter().enumerate() {
                if byte == 0 {
                    continue;
                }
                for r in 0..8 {
                    out[(g * 8 + r) * elem_size + b] |= ((byte >> r) & 1) << k;
                }
            }
        }
    }
}

/// Big-endian fields and byte runs from a chunk, failing on truncation.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.bytes.len() {
            return Err(format!(
                "chunk is truncated: needs {n} more bytes, has {}",
                self.bytes.len()
            ));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// bitshuffle's transpose written from its definition: bit `k` of byte `b` of element
    /// `j` goes to bit `j % 8` of byte `j / 8` of row `b * 8 + k`.
    fn shuffle_block(plain: &[u8], elem_size: usize) -> Vec<u8> {
        let n = plain.len() / elem_size;
        let mut out = vec![0u8; plain.len()];
        for j in 0..n {
            for b in 0..elem_size {
                for k in 0..8 {
                    let bit = (plain[j * elem_size + b] >> k) & 1;
                    out[(b * 8 + k) * (n / 8) + j / 8] |= bit << (j % 8);
                }
            }
        }
        out
    }

    fn sample(n: usize, elem_size: usize) -> Vec<u8> {
        (0..n * elem_size)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
            .collect()
    }

    #[test]
    fn unshuffle_inverts_the_transpose() {
        for es in [1, 2, 4, 8] {
            let plain = sample(64, es);
            let mut back = vec![0u8; plain.len()];
            unshuffle_block(&shuffle_block(&plain, es), &mut back, es);
            assert_eq!(back, plain, "element size {es}");
        }
    }

    #[test]
    fn bare_bitshuffle_keeps_the_tail_as_is() {
        // 8-element blocks, 21 elements: two blocks and a 5-element plain tail.
        let es = 4;
        let plain = sample(21, es);
        let mut chunk = shuffle_block(&plain[..8 * es], es);
        chunk.extend(shuffle_block(&plain[8 * es..16 * es], es));
        chunk.extend_from_slice(&plain[16 * es..]);
        assert_eq!(bitshuffle(&chunk, &[0, 3, 4, 8, 0]).unwrap(), plain);
    }

    #[test]
    fn lz4_bitshuffle_reads_its_header_and_blocks() {
        // 42 elements in 16-element blocks: two full blocks, a last block of the 8 that
        // remain in whole eights, and 2 elements stored as they are.
        let es = 2;
        let plain = sample(42, es);
        let mut chunk = (plain.len() as u64).to_be_bytes().to_vec();
        chunk.extend((16 * es as u32).to_be_bytes());
        for part in [
            &plain[..16 * es],
            &plain[16 * es..32 * es],
            &plain[32 * es..40 * es],
        ] {
            let c = lz4_flex::block::compress(&shuffle_block(part, es));
            chunk.extend((c.len() as u32).to_be_bytes());
            chunk.extend(c);
        }
        chunk.extend_from_slice(&plain[40 * es..]);
        assert_eq!(bitshuffle(&chunk, &[0, 3, 2, 0, 2]).unwrap(), plain);
        assert!(bitshuffle(&chunk[..chunk.len() - 20], &[0, 3, 2, 0, 2]).is_err());
    }

    #[test]
    fn lz4_blocks_stored_raw_or_compressed() {
        let plain = sample(100, 1);
        let mut chunk = 100u64.to_be_bytes().to_vec();
        chunk.extend(64u32.to_be_bytes());
        let c = lz4_flex::block::compress(&plain[..64]);
        chunk.extend((c.len() as u32).to_be_bytes());
        chunk.extend(c);
        // The last 36 bytes stored as they are.
        chunk.extend(36u32.to_be_bytes());
        chunk.extend_from_slice(&plain[64..]);
        assert_eq!(lz4(&chunk, &[]).unwrap(), plain);
        assert!(lz4(&chunk[..10], &[]).is_err());
    }

    #[test]
    fn zstd_frames_decode_and_garbage_is_an_error() {
        let plain = sample(1000, 1);
        let frame = zstd::bulk::compress(&plain, 3).unwrap();
        assert_eq!(zstd(&frame, &[]).unwrap(), plain);
        assert!(zstd(&frame[..frame.len() / 2], &[]).is_err());
    }
}
