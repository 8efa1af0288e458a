//! A zarr store (v2 or v3, consolidated or not, sharded) from arbitrary bytes: metadata JSON,
//! chunks and shard indexes. Opening and validating it (which reads every element) reports
//! problems and never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "store_bytes.rs"]
mod store_bytes;

fuzz_target!(
    init: {
        // The readers catch panics inside storage libraries (zarrs' codecs) and report them
        // as damaged data; libfuzzer-sys's hook would abort on those too. A panic that
        // escapes the target still aborts.
        std::panic::set_hook(Box::new(|_| {}));
    },
    |data: &[u8]| {
    let root = store_bytes::scratch().join("s.zarr");
    if store_bytes::unpack(data, &root) {
        let _ = engine_store::validate::validate(&root, 1 << 16);
        let _ = engine_store::Dataset::open(&root).map(|d| d.obs(None));
    }
});
