//! `.h5ad` by URL: an HDF5 virtual file driver whose reads are HTTP range requests.
//!
//! HDF5 parses the file itself (superblock, object headers, B-trees, heaps); this driver
//! only answers "bytes `addr..addr+size`". Small reads (metadata) are served from pages of
//! [`PAGE`] bytes, fetched once and kept in a bounded cache, so opening a file and walking
//! its tree costs a few requests of a MiB each; large reads (chunks of values) are
//! one range request each, or come from ranges fetched ahead concurrently
//! ([`RemoteFile::prefetch`]). The driver is read-only: writes fail.
//!
//! The class struct is declared here to match the bundled HDF5's `H5FDdevelop.h`
//! (`H5FD_CLASS_VERSION` 1): hdf5-sys's declaration predates its `version` field.

use crate::remote::ObjectStorage;
use hdf5_sys::h5i::hid_t;
use std::collections::{HashMap, VecDeque};
use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_ulong, c_void};
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use zarrs::storage::Bytes;

type Herr = c_int;
type Haddr = u64;

/// Bytes per cached page of the file. Pages of 1 MiB against 256 KiB, on the 100k bench
/// file (`benches/remote.sh`): one gene 14 requests / 14.3 MB against 25 / 8.6 MB, a cell
/// type 33 / 34.2 MB against 120 / 34.8 MB; over a real network requests cost more than
/// bytes.
pub(crate) const PAGE: u64 = 1 << 20;
/// Bytes of pages one open file keeps (least recently used dropped first).
const CACHE_BYTES: u64 = 64 << 20;
/// The first request of an open: the superblock and, in files h5py and anndata write, the
/// root group and its first children.
const FIRST: u64 = 1 << 20;

/// `H5FD_t`: the public head of every open file, filled in by HDF5 after `open`.
#[repr(C)]
struct Public {
    driver_id: hid_t,
    cls: *const Class,
    fileno: c_ulong,
    access_flags: c_uint,
    feature_flags: c_ulong,
    maxaddr: Haddr,
    base_addr: Haddr,
    threshold: u64,
    alignment: u64,
    paged_aggr: bool,
}

/// One open file as HDF5 holds it: the public head, then ours.
#[repr(C)]
struct Handle {
    public: Public,
    eoa: Haddr,
    file: *const RemoteFile,
}

type Unused = Option<unsafe extern "C" fn()>;

/// `H5FD_class_t` of HDF5 2.x.
#[repr(C)]
struct Class {
    version: c_uint,
    value: c_int,
    name: *const c_char,
    maxaddr: Haddr,
    fc_degree: c_int,
    terminate: Unused,
    sb_size: Unused,
    sb_encode: Unused,
    sb_decode: Unused,
    fapl_size: usize,
    fapl_get: Unused,
    fapl_copy: Unused,
    fapl_free: Unused,
    dxpl_size: usize,
    dxpl_copy: Unused,
    dxpl_free: Unused,
    open: Option<unsafe extern "C" fn(*const c_char, c_uint, hid_t, Haddr) -> *mut Handle>,
    close: Option<unsafe extern "C" fn(*mut Handle) -> Herr>,
    cmp: Option<unsafe extern "C" fn(*const Handle, *const Handle) -> c_int>,
    query: Option<unsafe extern "C" fn(*const Handle, *mut c_ulong) -> Herr>,
    get_type_map: Unused,
    alloc: Unused,
    free: Unused,
    get_eoa: Option<unsafe extern "C" fn(*const Handle, c_int) -> Haddr>,
    set_eoa: Option<unsafe extern "C" fn(*mut Handle, c_int, Haddr) -> Herr>,
    get_eof: Option<unsafe extern "C" fn(*const Handle, c_int) -> Haddr>,
    get_handle: Unused,
    read:
        Option<unsafe extern "C" fn(*mut Handle, c_int, hid_t, Haddr, usize, *mut c_void) -> Herr>,
    write: Option<
        unsafe extern "C" fn(*mut Handle, c_int, hid_t, Haddr, usize, *const c_void) -> Herr,
    >,
    read_vector: Unused,
    write_vector: Unused,
    read_selection: Unused,
    write_selection: Unused,
    flush: Unused,
    truncate: Unused,
    lock: Unused,
    unlock: Unused,
    del: Unused,
    ctl: Unused,
    fl_map: [c_int; 7],
}

// The class is immutable and lives for the process.
unsafe impl Sync for Class {}

/// `H5FD_FEAT_AGGREGATE_METADATA | ACCUMULATE_METADATA | DATA_SIEVE | AGGREGATE_SMALLDATA`:
/// HDF5 then reads metadata and small raw data in larger pieces, fewer requests.
const FEATURES: c_ulong = 0x1 | 0x2 | 0x4 | 0x8 | 0x10;

static NAME: &CStr = c"engine_remote";

static CLASS: Class = Class {
    version: 1,
    value: 613,
    name: NAME.as_ptr(),
    maxaddr: i64::MAX as u64,
    fc_degree: 1, // H5F_CLOSE_WEAK
    terminate: None,
    sb_size: None,
    sb_encode: None,
    sb_decode: None,
    fapl_size: 0,
    fapl_get: None,
    fapl_copy: None,
    fapl_free: None,
    dxpl_size: 0,
    dxpl_copy: None,
    dxpl_free: None,
    open: Some(open),
    close: Some(close),
    cmp: Some(cmp),
    query: Some(query),
    get_type_map: None,
    alloc: None,
    free: None,
    get_eoa: Some(get_eoa),
    set_eoa: Some(set_eoa),
    get_eof: Some(get_eof),
    get_handle: None,
    read: Some(read),
    write: Some(write),
    read_vector: None,
    write_vector: None,
    read_selection: None,
    write_selection: None,
    flush: None,
    truncate: None,
    lock: None,
    unlock: None,
    del: None,
    ctl: None,
    // H5FD_FLMAP_DICHOTOMY: metadata one list, raw data and global heaps another.
    fl_map: [1, 1, 1, 3, 3, 1, 1],
};

/// A file by URL, as the driver reads it.
#[derive(Debug)]
pub(crate) struct RemoteFile {
    objects: Arc<ObjectStorage>,
    /// The object's key under `objects` (empty: the URL is the file).
    key: String,
    size: u64,
    pages: Mutex<Pages>,
    /// Ranges fetched ahead of a read (raw chunks), by start.
    ahead: Mutex<HashMap<u64, Bytes>>,
}

thread_local! {
    /// The last failed request on this thread, for the message HDF5's own error would hide
    /// (HDF5 calls the driver on the thread that called it).
    static LAST_ERROR: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// The request that made this thread's last HDF5 call fail, if one did.
pub(crate) fn take_error() -> Option<String> {
    LAST_ERROR.with(|e| e.borrow_mut().take())
}

fn set_error(message: String) {
    LAST_ERROR.with(|e| *e.borrow_mut() = Some(message));
}

#[derive(Debug, Default)]
struct Pages {
    map: HashMap<u64, Bytes>,
    order: VecDeque<u64>,
    bytes: u64,
}

impl Pages {
    fn get(&mut self, page: u64) -> Option<Bytes> {
        let b = self.map.get(&page)?.clone();
        if let Some(i) = self.order.iter().position(|&p| p == page) {
            self.order.remove(i);
        }
        self.order.push_back(page);
        Some(b)
    }

    fn put(&mut self, page: u64, bytes: Bytes) {
        if self.map.contains_key(&page) {
            return;
        }
        self.bytes += bytes.len() as u64;
        self.map.insert(page, bytes);
        self.order.push_back(page);
        while self.bytes > CACHE_BYTES {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(b) = self.map.remove(&old) {
                self.bytes -= b.len() as u64;
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RemoteFile {
    /// Opens `key` of `objects` with one request: its first MiB and its size.
    pub fn open(objects: Arc<ObjectStorage>, key: &str) -> Result<RemoteFile, String> {
        let (first, size) = objects.head_bytes(key, FIRST).map_err(|e| e.to_string())?;
        let file = RemoteFile {
            objects,
            key: key.to_string(),
            size,
            pages: Mutex::new(Pages::default()),
            ahead: Mutex::new(HashMap::new()),
        };
        {
            let mut pages = lock(&file.pages);
            for (i, piece) in first.chunks(PAGE as usize).enumerate() {
                let full =
                    piece.len() as u64 == PAGE || (i as u64 * PAGE + piece.len() as u64) == size;
                if full {
                    pages.put(i as u64, first.slice_ref(piece));
                }
            }
        }
        Ok(file)
    }

    /// Fetches `ranges` (raw chunks a read is about to decode) concurrently and keeps each
    /// until it is read.
    pub fn prefetch(&self, ranges: &[Range<u64>]) -> Result<(), String> {
        let want: Vec<Range<u64>> = {
            let ahead = lock(&self.ahead);
            ranges
                .iter()
                .filter(|r| !ahead.contains_key(&r.start))
                .cloned()
                .collect()
        };
        if want.is_empty() {
            return Ok(());
        }
        let got = self
            .objects
            .read_ranges(&self.key, &want)
            .map_err(|e| e.to_string())?;
        let mut ahead = lock(&self.ahead);
        for (r, b) in want.iter().zip(got) {
            ahead.insert(r.start, b);
        }
        Ok(())
    }

    /// Bytes `addr..addr + out.len()`.
    fn read_into(&self, addr: u64, out: &mut [u8]) -> Result<(), String> {
        let n = out.len() as u64;
        if addr.checked_add(n).is_none_or(|end| end > self.size) {
            return Err(format!(
                "read of {n} bytes at {addr} past the end of the file ({} bytes): truncated?",
                self.size
            ));
        }
        // A chunk fetched ahead is read once: taken, not kept.
        if let Some(b) = lock(&self.ahead).remove(&addr)
            && b.len() as u64 >= n
        {
            out.copy_from_slice(&b[..out.len()]);
            return Ok(());
        }
        if n >= PAGE {
            let got = self
                .objects
                .read_ranges(&self.key, &[addr..addr + n])
                .map_err(|e| e.to_string())?;
            out.copy_from_slice(&got[0]);
            return Ok(());
        }
        let (first, last) = (addr / PAGE, (addr + n - 1) / PAGE);
        let mut have: Vec<Option<Bytes>> = {
            let mut pages = lock(&self.pages);
            (first..=last).map(|p| pages.get(p)).collect()
        };
        let missing: Vec<Range<u64>> = (first..=last)
            .zip(&have)
            .filter(|(_, b)| b.is_none())
            .map(|(p, _)| p * PAGE..((p + 1) * PAGE).min(self.size))
            .collect();
        if !missing.is_empty() {
            let got = self
                .objects
                .read_ranges(&self.key, &missing)
                .map_err(|e| e.to_string())?;
            let mut pages = lock(&self.pages);
            let mut got = missing.iter().zip(got);
            for (p, slot) in (first..=last).zip(have.iter_mut()) {
                if slot.is_none()
                    && let Some((_, b)) = got.next()
                {
                    pages.put(p, b.clone());
                    *slot = Some(b);
                }
            }
        }
        let mut at = 0usize;
        for (p, page) in (first..=last).zip(have) {
            let page = page.unwrap_or_default();
            let from = if p == first {
                (addr - p * PAGE) as usize
            } else {
                0
            };
            let take = (page.len().saturating_sub(from)).min(out.len() - at);
            out[at..at + take].copy_from_slice(&page[from..from + take]);
            at += take;
        }
        if at != out.len() {
            return Err(format!("short read of {n} bytes at {addr}"));
        }
        Ok(())
    }
}

/// Files being opened, by the name handed to `H5Fopen`.
static OPENING: Mutex<Option<HashMap<String, Arc<RemoteFile>>>> = Mutex::new(None);

/// The driver's id, registered once.
fn driver() -> Result<hid_t, String> {
    static ID: OnceLock<Result<hid_t, String>> = OnceLock::new();
    ID.get_or_init(|| {
        let id = hdf5::sync::sync(|| unsafe {
            hdf5_sys::h5fd::H5FDregister(std::ptr::from_ref(&CLASS).cast())
        });
        if id < 0 {
            Err("cannot register the remote HDF5 file driver".to_string())
        } else {
            Ok(id)
        }
    })
    .clone()
}

/// Opens `file` through HDF5 (read-only, no file locking).
pub(crate) fn open_file(file: Arc<RemoteFile>, shown: &str) -> Result<hdf5::File, String> {
    use hdf5_sys::{h5f, h5p};
    let driver = driver()?;
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("{shown}#{n}");
    let c_name = CString::new(name.clone()).map_err(|e| e.to_string())?;
    lock(&OPENING)
        .get_or_insert_with(HashMap::new)
        .insert(name.clone(), file.clone());
    let id = hdf5::sync::sync(|| unsafe {
        let fapl = h5p::H5Pcreate(*h5p::H5P_CLS_FILE_ACCESS);
        if fapl < 0 {
            return -1;
        }
        let ok = h5p::H5Pset_driver(fapl, driver, std::ptr::null()) >= 0
            && h5p::H5Pset_file_locking(fapl, 0, 1) >= 0;
        let id = if ok {
            h5f::H5Fopen(c_name.as_ptr(), h5f::H5F_ACC_RDONLY, fapl)
        } else {
            -1
        };
        h5p::H5Pclose(fapl);
        id
    });
    if let Some(m) = lock(&OPENING).as_mut() {
        m.remove(&name);
    }
    if id < 0 {
        return Err(take_error()
            .unwrap_or_else(|| "not an HDF5 file (truncated or not an .h5ad?)".to_string()));
    }
    unsafe { hdf5::from_id::<hdf5::File>(id) }.map_err(|e| e.to_string())
}

unsafe extern "C" fn open(name: *const c_char, _: c_uint, _: hid_t, _: Haddr) -> *mut Handle {
    let name = unsafe { CStr::from_ptr(name) }.to_string_lossy();
    let Some(file) = lock(&OPENING)
        .as_ref()
        .and_then(|m| m.get(name.as_ref()).cloned())
    else {
        return std::ptr::null_mut();
    };
    let handle = Box::new(Handle {
        public: Public {
            driver_id: 0,
            cls: std::ptr::null(),
            fileno: 0,
            access_flags: 0,
            feature_flags: 0,
            maxaddr: 0,
            base_addr: 0,
            threshold: 0,
            alignment: 0,
            paged_aggr: false,
        },
        eoa: 0,
        file: Arc::into_raw(file),
    });
    Box::into_raw(handle)
}

unsafe extern "C" fn close(h: *mut Handle) -> Herr {
    if h.is_null() {
        return -1;
    }
    let handle = unsafe { Box::from_raw(h) };
    drop(unsafe { Arc::from_raw(handle.file) });
    0
}

unsafe extern "C" fn cmp(a: *const Handle, b: *const Handle) -> c_int {
    let (a, b) = unsafe { ((*a).file, (*b).file) };
    (a as usize).cmp(&(b as usize)) as c_int
}

unsafe extern "C" fn query(_: *const Handle, flags: *mut c_ulong) -> Herr {
    if !flags.is_null() {
        unsafe { *flags = FEATURES };
    }
    0
}

unsafe extern "C" fn get_eoa(h: *const Handle, _: c_int) -> Haddr {
    unsafe { (*h).eoa }
}

unsafe extern "C" fn set_eoa(h: *mut Handle, _: c_int, addr: Haddr) -> Herr {
    unsafe { (*h).eoa = addr };
    0
}

unsafe extern "C" fn get_eof(h: *const Handle, _: c_int) -> Haddr {
    unsafe { (*(*h).file).size }
}

unsafe extern "C" fn read(
    h: *mut Handle,
    _: c_int,
    _: hid_t,
    addr: Haddr,
    size: usize,
    buf: *mut c_void,
) -> Herr {
    let file = unsafe { &*(*h).file };
    if size == 0 {
        return 0;
    }
    let out = unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), size) };
    // A panic must not unwind into C.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| file.read_into(addr, out))) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            set_error(e);
            -1
        }
        Err(_) => {
            set_error("bug: the remote file driver panicked".to_string());
            -1
        }
    }
}

unsafe extern "C" fn write(
    _: *mut Handle,
    _: c_int,
    _: hid_t,
    _: Haddr,
    _: usize,
    _: *const c_void,
) -> Herr {
    -1
}
