//! Shared by the store targets: a store directory (or file) packed in the fuzz input as
//! entries `[name length u8][name][content length u16 LE][content]`, so mutations land in
//! metadata documents, chunk and shard bytes, and shard indexes.

use std::path::{Path, PathBuf};

/// A per-process scratch directory on tmpfs.
pub fn scratch() -> PathBuf {
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    base.join(format!("engine-fuzz-{}", std::process::id()))
}

/// Writes the entries of `data` under `root` (emptied first); names are relative paths
/// without `..`. Returns false when nothing was written.
pub fn unpack(data: &[u8], root: &Path) -> bool {
    let _ = std::fs::remove_dir_all(root);
    if std::fs::create_dir_all(root).is_err() {
        return false;
    }
    let mut at = 0;
    let mut wrote = false;
    while at < data.len() {
        let n = usize::from(data[at]);
        let Some(name) = data.get(at + 1..at + 1 + n) else {
            break;
        };
        at += 1 + n;
        let Some(len) = data.get(at..at + 2) else {
            break;
        };
        let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
        at += 2;
        let content = &data[at.min(data.len())..(at + len).min(data.len())];
        at += len;
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        if name.is_empty()
            || name.starts_with('/')
            || name
                .split('/')
                .any(|p| p.is_empty() || p == "." || p == "..")
        {
            continue;
        }
        let path = root.join(name);
        if let Some(dir) = path.parent() {
            if std::fs::create_dir_all(dir).is_err() {
                continue;
            }
        }
        wrote |= std::fs::write(&path, content).is_ok();
    }
    wrote
}
