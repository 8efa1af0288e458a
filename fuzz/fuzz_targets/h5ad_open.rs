//! `Dataset::open` and a full validation of arbitrary bytes as an `.h5ad` file: an error,
//! never a panic, a hang past the HDF5 deadline, or a crash in our code.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        // The readers catch panics inside storage libraries (zarrs' codecs) and report them
        // as damaged data; libfuzzer-sys's hook would abort on those too. A panic that
        // escapes the target still aborts.
        std::panic::set_hook(Box::new(|_| {}));
    },
    |data: &[u8]| {
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
});
