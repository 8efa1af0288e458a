//! A zarr store inside a zip archive, read in place. zarrs_zip lists the archive and reads
//! entries stored uncompressed (what `zarr.storage.ZipStore` writes); entries a zip tool
//! compressed (deflate, zstd) are inflated here, because zarrs_zip 0.5.2's own inflater
//! writes every step of its output over the first (a value larger than one step comes back
//! corrupt).

use rc_zip::fsm::{ArchiveFsm, FsmResult};
use rc_zip::parse::{EntryKind, Method};
use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use zarrs::filesystem::FilesystemStore;
use zarrs::storage::byte_range::{ByteRange, ByteRangeIterator};
use zarrs::storage::{
    Bytes, ListableStorageTraits, MaybeBytesIterator, ReadableStorageTraits, StorageError,
    StoreKey, StoreKeys, StoreKeysPrefixes, StorePrefix,
};
use zarrs_zip::ZipStorageAdapter;

/// A compressed entry: how, where its data starts, and its sizes.
#[derive(Debug, Clone, Copy)]
struct Packed {
    method: Method,
    data_offset: u64,
    compressed: u64,
    uncompressed: u64,
}

/// A zip archive as a read-only, listable zarr store rooted at `prefix` inside it.
pub struct ZipStore {
    inner: ZipStorageAdapter<FilesystemStore>,
    file: std::fs::File,
    /// Compressed entries by key (relative to the root), which `inner` cannot read.
    packed: HashMap<StoreKey, Packed>,
}

impl std::fmt::Debug for ZipStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZipStore")
            .field("packed", &self.packed.len())
            .finish()
    }
}

fn other(e: impl std::fmt::Display) -> StorageError {
    StorageError::Other(e.to_string())
}

impl ZipStore {
    /// Opens `path` as a store rooted at `prefix` (empty, or a folder name ending in `/`).
    ///
    /// # Errors
    /// When the file is not a readable zip archive.
    pub fn open(path: &Path, prefix: &str) -> Result<ZipStore, StorageError> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| other(format!("{} is not a file name", path.display())))?;
        let fs = Arc::new(FilesystemStore::new(dir).map_err(other)?);
        let key = StoreKey::new(name).map_err(other)?;
        let inner = ZipStorageAdapter::new_with_path(fs, key, prefix).map_err(other)?;
        let file = std::fs::File::open(path)?;
        let mut packed = HashMap::new();
        for e in read_entries(&file)? {
            if e.kind() != EntryKind::File || e.method == Method::Store {
                continue;
            }
            let Some(rel) = e.name.strip_prefix(prefix).filter(|n| !n.is_empty()) else {
                continue;
            };
            let mut header = [0u8; 30];
            file.read_exact_at(&mut header, e.header_offset)?;
            let name_len = u64::from(u16::from_le_bytes([header[26], header[27]]));
            let extra_len = u64::from(u16::from_le_bytes([header[28], header[29]]));
            packed.insert(
                StoreKey::new(rel).map_err(other)?,
                Packed {
                    method: e.method,
                    data_offset: e.header_offset + 30 + name_len + extra_len,
                    compressed: e.compressed_size,
                    uncompressed: e.uncompressed_size,
                },
            );
        }
        Ok(ZipStore {
            inner,
            file,
            packed,
        })
    }

    /// The whole value of a compressed entry.
    fn inflate(&self, p: &Packed) -> Result<Vec<u8>, StorageError> {
        let mut raw = vec![0u8; usize::try_from(p.compressed).map_err(other)?];
        self.file.read_exact_at(&mut raw, p.data_offset)?;
        let mut out = Vec::new();
        out.try_reserve_exact(usize::try_from(p.uncompressed).map_err(other)?)
            .map_err(other)?;
        match p.method {
            Method::Deflate => {
                flate2::read::DeflateDecoder::new(&raw[..]).read_to_end(&mut out)?;
            }
            Method::Zstd => {
                zstd::stream::read::Decoder::new(&raw[..])?.read_to_end(&mut out)?;
            }
            m => return Err(other(format!("zip entries compressed with {m:?}"))),
        }
        if out.len() as u64 != p.uncompressed {
            return Err(other(format!(
                "zip entry inflates to {} bytes, its header says {}",
                out.len(),
                p.uncompressed
            )));
        }
        Ok(out)
    }
}

/// The archive's central directory.
fn read_entries(file: &std::fs::File) -> Result<Vec<rc_zip::parse::Entry>, StorageError> {
    let size = file.metadata()?.len();
    let mut fsm = ArchiveFsm::new(size);
    loop {
        if let Some(offset) = fsm.wants_read() {
            let space = fsm.space();
            let n = (space.len() as u64).min(size.saturating_sub(offset)) as usize;
            file.read_exact_at(&mut space[..n], offset)?;
            fsm.fill(n);
        }
        match fsm.process().map_err(other)? {
            FsmResult::Continue(next) => fsm = next,
            FsmResult::Done(archive) => return Ok(archive.entries().cloned().collect()),
        }
    }
}

impl ReadableStorageTraits for ZipStore {
    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<MaybeBytesIterator<'a>, StorageError> {
        let Some(p) = self.packed.get(key) else {
            return self.inner.get_partial_many(key, byte_ranges);
        };
        let value = self.inflate(p)?;
        let parts: Vec<Result<Bytes, StorageError>> = byte_ranges
            .map(|r: ByteRange| {
                let range = r.to_range(value.len() as u64);
                if range.end > value.len() as u64 {
                    return Err(other("byte range past the end of a zip entry"));
                }
                Ok(Bytes::copy_from_slice(
                    &value[range.start as usize..range.end as usize],
                ))
            })
            .collect();
        Ok(Some(Box::new(parts.into_iter())))
    }

    fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        match self.packed.get(key) {
            Some(p) => Ok(Some(p.uncompressed)),
            None => self.inner.size_key(key),
        }
    }

    fn supports_get_partial(&self) -> bool {
        self.inner.supports_get_partial()
    }
}

impl ListableStorageTraits for ZipStore {
    fn list(&self) -> Result<StoreKeys, StorageError> {
        self.inner.list()
    }

    fn list_prefix(&self, prefix: &StorePrefix) -> Result<StoreKeys, StorageError> {
        self.inner.list_prefix(prefix)
    }

    fn list_dir(&self, prefix: &StorePrefix) -> Result<StoreKeysPrefixes, StorageError> {
        self.inner.list_dir(prefix)
    }

    fn size_prefix(&self, prefix: &StorePrefix) -> Result<u64, StorageError> {
        self.inner.size_prefix(prefix)
    }
}
