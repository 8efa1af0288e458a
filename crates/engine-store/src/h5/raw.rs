//! Reads needing a memory type built at run time, which hdf5-metno has no safe API for.

use engine_matrix::DynArray;
use hdf5::types::{
    CompoundField, CompoundType, FloatSize, H5Type, IntSize, TypeDescriptor as TD, VarLenAscii,
    VarLenUnicode,
};
use hdf5::{Dataset, Datatype};
use hdf5_sys::{
    h5d::{H5Dread, H5Dwrite},
    h5p::H5P_DEFAULT,
    h5s::H5S_ALL,
};
use ndarray::Array1;

/// Reads one field of a compound dataset: HDF5 converts compound types field by field,
/// matching names, so a one-field memory type reads just that column.
fn field<T: H5Type>(ds: &Dataset, name: &str) -> hdf5::Result<Vec<T>> {
    let ty = T::type_descriptor();
    let mem = one_field(name, ty.clone(), ty.size())?;
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

/// Writes one field of every record of a compound dataset: as on reading, HDF5 matches
/// members by name, so a one-field memory type writes just that member.
fn write_field<T: H5Type>(ds: &Dataset, name: &str, values: &[T]) -> hdf5::Result<()> {
    let ty = T::type_descriptor();
    let mem = one_field(name, ty.clone(), ty.size())?;
    if values.len() != ds.size() {
        return Err(format!(
            "field `{name}` has {} values for {} records",
            values.len(),
            ds.size()
        )
        .into());
    }
    if values.is_empty() {
        return Ok(());
    }
    // SAFETY: `values` holds exactly one element of the one-field compound `mem` per record
    // of the dataset; HDF5 only reads from the buffer.
    hdf5::sync::sync(|| unsafe {
        hdf5::h5check(H5Dwrite(
            ds.id(),
            mem.id(),
            H5S_ALL,
            H5S_ALL,
            H5P_DEFAULT,
            values.as_ptr().cast(),
        ))
    })?;
    Ok(())
}

/// Writes a 1-D array as the member `name` of a compound dataset (strings as variable-length
/// UTF-8, as anndata writes a rec-array's text fields).
pub fn write_compound_field(ds: &Dataset, name: &str, a: &DynArray) -> hdf5::Result<()> {
    fn v<T: Clone>(a: &ndarray::ArrayD<T>) -> Vec<T> {
        a.iter().cloned().collect()
    }
    match a {
        DynArray::Bool(x) => write_field(ds, name, &v(x)),
        DynArray::I8(x) => write_field(ds, name, &v(x)),
        DynArray::I16(x) => write_field(ds, name, &v(x)),
        DynArray::I32(x) => write_field(ds, name, &v(x)),
        DynArray::I64(x) => write_field(ds, name, &v(x)),
        DynArray::U8(x) => write_field(ds, name, &v(x)),
        DynArray::U16(x) => write_field(ds, name, &v(x)),
        DynArray::U32(x) => write_field(ds, name, &v(x)),
        DynArray::U64(x) => write_field(ds, name, &v(x)),
        DynArray::F32(x) => write_field(ds, name, &v(x)),
        DynArray::F64(x) => write_field(ds, name, &v(x)),
        DynArray::Str(x) => {
            let s = x
                .iter()
                .map(|s| super::vlu(s))
                .collect::<hdf5::Result<Vec<_>>>()?;
            write_field(ds, name, &s)
        }
    }
}

/// Where the chunk starting at `offset` is stored: its address and stored size; `None` when
/// it was never written.
pub fn chunk_location(ds: &Dataset, offset: &[u64]) -> hdf5::Result<Option<(u64, u64)>> {
    use hdf5_sys::h5d::H5Dget_chunk_info_by_coord;
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
    Ok((addr != hdf5_sys::h5::HADDR_UNDEF && size > 0).then_some((addr, size)))
}

/// The raw, still-filtered bytes of the chunk starting at `offset`, with its filter mask;
/// `None` when the chunk was never written.
pub fn read_chunk(ds: &Dataset, offset: &[u64]) -> hdf5::Result<Option<(Vec<u8>, u32)>> {
    use hdf5_sys::h5d::H5Dread_chunk;
    let Some((_, size)) = chunk_location(ds, offset)? else {
        return Ok(None);
    };
    let mut mask = 0u32;
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

/// A memory type holding only member `name` of a compound: HDF5 matches members by name, so
/// reading or writing through it touches that member alone.
fn one_field(name: &str, ty: TD, size: usize) -> hdf5::Result<Datatype> {
    Datatype::from_descriptor(&TD::Compound(CompoundType {
        fields: vec![CompoundField::new(name, ty, 0, 0)],
        size,
    }))
}

/// Reads one field of type `ty` (`width` bytes per record) of every record as raw bytes.
fn field_bytes(ds: &Dataset, name: &str, ty: TD, width: usize) -> hdf5::Result<Vec<u8>> {
    let mem = one_field(name, ty, width)?;
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
        TD::FixedAscii(n) | TD::FixedUnicode(n) => DynArray::Str(a(fixed_field(ds, name, ty, *n)?)),
        TD::FixedArray(inner, k) => array_field(ds, name, inner, *k)?,
        other => return Err(format!("unsupported compound field type {other}").into()),
    })
}

/// Registers the decoders of `filters.rs` with HDF5, once per process, and keeps HDF5 from
/// searching the plugin directory compiled into it (a path on the machine that built the
/// binary) unless `HDF5_PLUGIN_PATH` names one: a filter that is not built in is then
/// reported by name instead of as a missing directory.
pub fn register_filters() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use super::filters::{BITSHUFFLE_ID, LZ4_ID, ZSTD_ID};
        register(ZSTD_ID, c"zstd", Some(zstd_filter));
        register(LZ4_ID, c"lz4", Some(lz4_filter));
        register(BITSHUFFLE_ID, c"bitshuffle", Some(bitshuffle_filter));
        if std::env::var_os("HDF5_PLUGIN_PATH").is_none() {
            use hdf5_sys::h5pl::{H5PLremove, H5PLsize};
            let mut n = 0u32;
            // SAFETY: plain calls with a valid out-pointer; HDF5 is initialised by the
            // registrations above, under its lock.
            hdf5::sync::sync(|| unsafe {
                if H5PLsize(&mut n) >= 0 {
                    for _ in 0..n {
                        H5PLremove(0);
                    }
                }
            });
        }
    });
}

fn register(id: i32, name: &'static std::ffi::CStr, filter: hdf5_sys::h5z::H5Z_func_t) {
    use hdf5_sys::h5z::{H5Z_CLASS_T_VERS, H5Z_class2_t, H5Zregister};
    let class = H5Z_class2_t {
        version: H5Z_CLASS_T_VERS as _,
        id,
        encoder_present: 0,
        decoder_present: 1,
        name: name.as_ptr(),
        can_apply: None,
        set_local: None,
        filter,
    };
    // SAFETY: HDF5 copies the class; `name` is a static C string and `filter` a function
    // with the H5Z_func_t signature.
    hdf5::sync::sync(|| unsafe { H5Zregister((&raw const class).cast()) });
}

macro_rules! decoder {
    ($name:ident, $decode:path) => {
        unsafe extern "C" fn $name(
            flags: std::ffi::c_uint,
            cd_nelmts: usize,
            cd_values: *const std::ffi::c_uint,
            nbytes: usize,
            buf_size: *mut usize,
            buf: *mut *mut std::ffi::c_void,
        ) -> usize {
            // SAFETY: HDF5 passes its filter arguments as documented for H5Z_func_t.
            unsafe { run_decoder(flags, cd_nelmts, cd_values, nbytes, buf_size, buf, $decode) }
        }
    };
}
decoder!(zstd_filter, super::filters::zstd);
decoder!(lz4_filter, super::filters::lz4);
decoder!(bitshuffle_filter, super::filters::bitshuffle);

/// Runs a safe decoder on HDF5's chunk buffer and hands HDF5 a new buffer from its own
/// allocator. Returns 0 (HDF5's failure) when asked to encode, when the chunk does not
/// decode, or when the decoder panics: a damaged file gives a read error, never an abort.
///
/// # Safety
/// The arguments must be those HDF5 passes to a filter: `*buf` holds `nbytes` readable bytes
/// allocated by HDF5, and `cd_values` points to `cd_nelmts` values.
unsafe fn run_decoder(
    flags: std::ffi::c_uint,
    cd_nelmts: usize,
    cd_values: *const std::ffi::c_uint,
    nbytes: usize,
    buf_size: *mut usize,
    buf: *mut *mut std::ffi::c_void,
    decode: fn(&[u8], &[u32]) -> super::filters::Decoded,
) -> usize {
    use hdf5_sys::h5::{H5allocate_memory, H5free_memory};
    use hdf5_sys::h5z::H5Z_FLAG_REVERSE;
    if flags & H5Z_FLAG_REVERSE == 0 || buf.is_null() || unsafe { (*buf).is_null() } {
        return 0;
    }
    // SAFETY: per the contract, `*buf` holds `nbytes` bytes and `cd_values` `cd_nelmts`.
    let (input, cd) = unsafe {
        (
            std::slice::from_raw_parts((*buf).cast::<u8>(), nbytes),
            if cd_values.is_null() {
                &[][..]
            } else {
                std::slice::from_raw_parts(cd_values, cd_nelmts)
            },
        )
    };
    let Ok(Ok(out)) = std::panic::catch_unwind(|| decode(input, cd)) else {
        return 0;
    };
    // SAFETY: a fresh HDF5 allocation of `out.len()` bytes (at least 1), filled from `out`;
    // HDF5 owns the old buffer and frees it through the same allocator.
    unsafe {
        let dst = H5allocate_memory(out.len().max(1), 0);
        if dst.is_null() {
            return 0;
        }
        std::ptr::copy_nonoverlapping(out.as_ptr(), dst.cast::<u8>(), out.len());
        H5free_memory(*buf);
        *buf = dst;
        *buf_size = out.len().max(1);
    }
    out.len()
}

/// Whether HDF5 can decode data with filter `id` (built in, registered, or found as a
/// plugin).
pub fn filter_available(id: i32) -> bool {
    // SAFETY: a plain query of HDF5's filter table, under its lock.
    hdf5::sync::sync(|| unsafe { hdf5_sys::h5z::H5Zfilter_avail(id) > 0 })
}

/// Where HDF5 allocates next in `file`: the end of what it uses.
pub fn end_of_allocation(file: &hdf5::File) -> Option<u64> {
    unsafe extern "C" {
        // In HDF5 since 1.10; hdf5-sys does not declare it.
        fn H5Fget_eoa(
            file_id: hdf5_sys::h5i::hid_t,
            eoa: *mut hdf5_sys::h5::haddr_t,
        ) -> hdf5_sys::h5::herr_t;
    }
    let mut eoa: hdf5_sys::h5::haddr_t = 0;
    // SAFETY: a valid open file id and an out-pointer to a local, under HDF5's lock.
    let rc = hdf5::sync::sync(|| unsafe { H5Fget_eoa(file.id(), &mut eoa) });
    (rc >= 0).then_some(eoa)
}

/// Makes sure the file at `path` has `extra` more bytes of disk allocated past its current
/// end. HDF5 crashes (a free of a file address in `H5T__conv_vlen`'s error path) when a write
/// fails while it converts variable-length strings, as it does on a full disk; with the space
/// reserved first the write cannot fail there, and a disk too small is an error here instead.
/// HDF5 truncates the file to what it used when it closes it.
pub fn reserve(file: &hdf5::File, path: &std::path::Path, extra: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // Where HDF5 allocates next (the file may be longer: an earlier reservation).
    let eoa = end_of_allocation(file)
        .ok_or_else(|| std::io::Error::other("HDF5 cannot say where the file ends"))?;
    let f = std::fs::OpenOptions::new().write(true).open(path)?;
    let end = i64::try_from(eoa.saturating_add(extra)).unwrap_or(i64::MAX);
    // SAFETY: a plain call on a descriptor this function owns for its duration.
    let rc = unsafe { libc::posix_fallocate(f.as_raw_fd(), 0, end) };
    match rc {
        0 => Ok(()),
        // Filesystems without fallocate: nothing to reserve with, write as before.
        libc::EOPNOTSUPP | libc::EINVAL => Ok(()),
        e => Err(std::io::Error::from_raw_os_error(e)),
    }
}
