//! `Dataset::open` and a full validation of arbitrary bytes as an `.h5ad` file: an error,
//! never a panic, a hang, or a crash in our code.
#![no_main]
use libfuzzer_sys::{Corpus, fuzz_target};

fuzz_target!(
    init: {
        // The readers catch panics inside storage libraries (zarrs' codecs) and report them
        // as damaged data; libfuzzer-sys's hook would abort on those too. A panic that
        // escapes the target still aborts.
        std::panic::set_hook(Box::new(|_| {}));
    },
    |data: &[u8]| -> Corpus {
    // HDF5's own infinite loop is handled by the engine's watchdog, which ends the process
    // (pinned by `damaged::a_corrupt_global_heap_ends_with_an_error`); such inputs would
    // stop the fuzzer each time.
    if loops_in_global_heap(data) {
        return Corpus::Reject;
    }
    let dir = std::env::temp_dir().join(format!("engine-fuzz-h5-{}", std::process::id()));
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        std::path::Path::new("/dev/shm").join(dir.file_name().unwrap_or_default())
    } else {
        dir
    };
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("f.h5ad");
    if std::fs::write(&path, data).is_ok() {
        let _ = engine_store::Dataset::open(&path).map(|d| d.obs(None));
        let _ = engine_store::validate::validate(&path, 1 << 16);
    }
    Corpus::Keep
});

/// Whether some global heap collection in `data` would make HDF5 2.2 loop forever: its object
/// walk (`H5HG__cache_heap_deserialize`) reaches a free-space object of size zero and never
/// advances. Every `GCOL` signature is walked, with the size of lengths the superblock gives,
/// and bytes past the end read as zeros (as HDF5 reads past the end of a file), so it errs
/// towards skipping.
fn loops_in_global_heap(data: &[u8]) -> bool {
    let byte = |i: u64| {
        usize::try_from(i)
            .ok()
            .and_then(|i| data.get(i))
            .copied()
            .unwrap_or(0)
    };
    let le = |at: u64, n: u64| {
        (0..n).fold(0u64, |v, k| {
            v | u64::from(byte(at.saturating_add(k))) << (8 * k)
        })
    };
    // HDF5 looks for the superblock at 0, 512, 1024, 2048, …
    let Some(base) =
        std::iter::successors(Some(0usize), |&b| Some(if b == 0 { 512 } else { b * 2 }))
            .take_while(|&b| b < data.len())
            .find(|&b| data[b..].starts_with(b"\x89HDF\r\n\x1a\n"))
    else {
        return false;
    };
    let at_lengths = if byte(base as u64 + 8) < 2 { 14 } else { 10 };
    let lengths = u64::from(byte((base + at_lengths) as u64));
    if !matches!(lengths, 2 | 4 | 8) {
        // 16 and 32 are allowed but never written; walk nothing and skip any heap.
        return data.windows(4).any(|w| w == b"GCOL");
    }
    // The collection's header and each object's header take 16 bytes (aligned to 8).
    let header = 16u64;
    data.windows(4)
        .enumerate()
        .filter(|(_, w)| *w == b"GCOL")
        .any(|(at, _)| {
            let at = at as u64;
            let len = le(at + 8, lengths);
            // Offsets within the collection; the arithmetic wraps where HDF5's size_t does.
            let mut p = header;
            while p < len && p.saturating_add(header) <= len {
                let index = le(at.saturating_add(p), 2);
                let size = le(at.saturating_add(p + 8), lengths);
                let need = if index > 0 {
                    header.wrapping_add(size.wrapping_add(7) / 8 * 8)
                } else {
                    size
                };
                if need == 0 {
                    return true;
                }
                // HDF5 refuses an object that runs past the collection.
                if need > len - p {
                    break;
                }
                p += need;
            }
            false
        })
}
