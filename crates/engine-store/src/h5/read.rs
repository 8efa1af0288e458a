//! Reading `.h5ad` files: [`H5Store`] and its [`Store`] implementation.

use super::attrs::attr_json;
use super::{hyperslab, parallel, raw, stored_type};
use crate::backend::{ArrayInfo, Attrs, NodeKind, Store, StoreFormat, StoredType};
use engine_common::{Error, Location, Result};
use engine_matrix::DynArray;
use hdf5::types::{FloatSize, IntSize, TypeDescriptor as TD, VarLenAscii, VarLenUnicode};
use hdf5::{Dataset, Hyperslab, LocationToken, LocationType};
use ndarray::{ArrayD, IxDyn};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Maps an HDF5 error onto the engine's error for an element.
fn h5err(file: &Path, element: &str, e: impl std::fmt::Display) -> Error {
    let at = Location::new(file, format!("/{element}"));
    // Over a network, the request that failed says more than HDF5's stack.
    match super::remote::take_error() {
        Some(request) => Error::io(at, request),
        None => Error::format(at, format!("HDF5: {e}")),
    }
}

/// Groups on a path that have more than one link, with their tokens.
type Ancestors = Arc<Vec<(String, LocationToken)>>;

/// An open `.h5ad` file.
#[derive(Debug)]
pub struct H5Store {
    file: hdf5::File,
    path: PathBuf,
    /// The same file opened for positional reads of contiguous datasets, when HDF5
    /// addresses are file offsets (no user block before the superblock).
    raw: Option<std::fs::File>,
    /// [`H5Store::linked_ancestors`] by group path.
    ancestors: Mutex<HashMap<String, Ancestors>>,
    /// The file's bytes when it is read by URL.
    remote: Option<Arc<super::remote::RemoteFile>>,
}

impl H5Store {
    /// Opens a file read-only.
    ///
    /// # Errors
    /// When the file is not HDF5 or cannot be opened.
    pub fn open(path: &Path) -> Result<H5Store> {
        raw::register_filters();
        // No file lock for reading: our outputs appear whole by rename, never written in
        // place, and a lock a writer's close has not released yet (in this process or
        // another) made opens fail with EAGAIN.
        let file = hdf5::File::with_options()
            .with_fapl(|p| p.file_locking(false))
            .open(path)
            .map_err(|e| {
                Error::format(
                    Location::file(path),
                    format!("cannot open as HDF5 (truncated or not an .h5ad file?): {e}"),
                )
            })?;
        let raw = std::fs::File::open(path).ok().filter(|f| {
            use std::os::unix::fs::FileExt;
            let mut sig = [0u8; 8];
            f.read_exact_at(&mut sig, 0).is_ok() && &sig == b"\x89HDF\r\n\x1a\n"
        });
        Ok(H5Store {
            file,
            path: path.to_path_buf(),
            raw,
            ancestors: Mutex::new(HashMap::new()),
            remote: None,
        })
    }

    /// Opens a file by URL, read-only: HDF5 reads it through range requests (see
    /// [`super::remote`]).
    ///
    /// # Errors
    /// When the URL cannot be fetched or is not HDF5.
    pub fn open_remote(remote: &crate::remote::Remote) -> Result<H5Store> {
        raw::register_filters();
        let objects = Arc::new(remote.storage()?);
        let file = super::remote::RemoteFile::open(objects, "")
            .map(Arc::new)
            .map_err(|e| Error::io(remote.location(""), e))?;
        let h5 = super::remote::open_file(file.clone(), &remote.shown).map_err(|e| {
            Error::format(
                remote.location(""),
                format!("cannot open as HDF5 (truncated or not an .h5ad file?): {e}"),
            )
        })?;
        Ok(H5Store {
            file: h5,
            path: PathBuf::from(&remote.shown),
            raw: None,
            ancestors: Mutex::new(HashMap::new()),
            remote: Some(file),
        })
    }

    /// A failed read of a dataset's values: when it needs an HDF5 filter this binary does
    /// not have, says which, instead of HDF5's message about plugin directories.
    fn read_err(&self, ds: &Dataset, path: &str, e: impl std::fmt::Display) -> Error {
        let missing = ds.filters().into_iter().find_map(|f| match f {
            hdf5::filters::Filter::User(id, _) if !raw::filter_available(id) => Some(id),
            _ => None,
        });
        match missing {
            Some(id) => Error::unsupported(
                Location::new(&self.path, format!("/{path}")),
                format!(
                    "compression: HDF5 filter {id} is not built into this binary (it has {}); \
                     set HDF5_PLUGIN_PATH to a directory holding that filter's plugin",
                    super::filters::ALL_NAMES
                ),
            ),
            None => h5err(&self.path, path, e),
        }
    }

    /// A hard link back to a group's own ancestor makes the tree infinite (anndata recurses
    /// until Python gives up); refuse it with both paths. Only an ancestor with more than one
    /// link can be reached again, so files without such groups pay one lookup per level.
    fn refuse_cycles(&self, group: &str, g: &hdf5::Group, names: &[String]) -> Result<()> {
        let ancestors = self.linked_ancestors(group)?;
        if ancestors.is_empty() {
            return Ok(());
        }
        for name in names {
            let Ok(info) = g.loc_info_by_name(name) else {
                continue;
            };
            if info.loc_type != LocationType::Group {
                continue;
            }
            if let Some((same, _)) = ancestors.iter().find(|(_, t)| *t == info.token) {
                let child = crate::backend::join(group, name);
                return Err(Error::format(
                    Location::new(&self.path, format!("/{child}")),
                    format!("a hard link back to its ancestor /{same}: the tree never ends"),
                ));
            }
        }
        Ok(())
    }

    /// The groups from the root down to `group` (itself included) that have more than one
    /// link, with their tokens; built from the parent's list and cached, so a deep tree
    /// costs one lookup per group instead of one per ancestor per group.
    fn linked_ancestors(&self, group: &str) -> Result<Ancestors> {
        let group = group.trim_matches('/');
        if let Some(a) = self
            .ancestors
            .lock()
            .ok()
            .and_then(|m| m.get(group).cloned())
        {
            return Ok(a);
        }
        let mut list = match group.rsplit_once('/') {
            Some((parent, _)) => (*self.linked_ancestors(parent)?).clone(),
            None if group.is_empty() => Vec::new(),
            None => (*self.linked_ancestors("")?).clone(),
        };
        let info = self
            .file
            .loc_info_by_name(if group.is_empty() { "/" } else { group })
            .map_err(|e| h5err(&self.path, group, e))?;
        if info.num_links > 1 {
            list.push((group.to_string(), info.token));
        }
        let list = Arc::new(list);
        if let Ok(mut m) = self.ancestors.lock() {
            m.insert(group.to_string(), list.clone());
        }
        Ok(list)
    }

    fn dataset(&self, path: &str) -> Result<Dataset> {
        self.file
            .dataset(path)
            .map_err(|e| h5err(&self.path, path, e))
    }

    fn location(&self, path: &str) -> Result<hdf5::Location> {
        if path.is_empty() {
            return Ok((**self.file).clone());
        }
        match self.node(path)? {
            Some(NodeKind::Group) => Ok((*self
                .file
                .group(path)
                .map_err(|e| h5err(&self.path, path, e))?)
            .clone()),
            Some(NodeKind::Array) => Ok((**self.dataset(path)?).clone()),
            None => Err(Error::format(
                Location::new(&self.path, format!("/{path}")),
                "no such element",
            )),
        }
    }
}

/// Reads fixed-length strings of a run-time length by widening them into a large enough
/// const-size buffer (HDF5 converts between fixed lengths of the same character set).
fn read_fixed(
    ds: &Dataset,
    n: usize,
    utf8: bool,
    sel: Option<Hyperslab>,
) -> hdf5::Result<ArrayD<String>> {
    use hdf5::types::{FixedAscii, FixedUnicode};
    macro_rules! go {
        ($($N:literal)*) => {$(
            if n <= $N {
                return Ok(if utf8 {
                    let a: ArrayD<FixedUnicode<$N>> = match sel { Some(s) => ds.read_slice(s)?, None => ds.read_dyn()? };
                    a.mapv(|s| String::from_utf8_lossy(s.as_bytes()).into_owned())
                } else {
                    let a: ArrayD<FixedAscii<$N>> = match sel { Some(s) => ds.read_slice(s)?, None => ds.read_dyn()? };
                    a.mapv(|s| String::from_utf8_lossy(s.as_bytes()).into_owned())
                });
            }
        )*};
    }
    go!(16 64 256 1024 4096);
    Err(format!("fixed-length strings of {n} bytes are too long").into())
}

fn read_typed(ds: &Dataset, td: &TD, sel: &[Range<u64>]) -> hdf5::Result<DynArray> {
    let slab = if sel.is_empty() {
        None
    } else {
        Some(hyperslab(sel))
    };
    macro_rules! rd {
        ($t:ty, $v:ident) => {
            DynArray::$v(match slab {
                Some(s) => ds.read_slice::<$t, _, IxDyn>(s)?,
                None => ds.read_dyn::<$t>()?,
            })
        };
    }
    Ok(match td {
        TD::Integer(IntSize::U1) => rd!(i8, I8),
        TD::Integer(IntSize::U2) => rd!(i16, I16),
        TD::Integer(IntSize::U4) => rd!(i32, I32),
        TD::Integer(IntSize::U8) => rd!(i64, I64),
        TD::Unsigned(IntSize::U1) => rd!(u8, U8),
        TD::Unsigned(IntSize::U2) => rd!(u16, U16),
        TD::Unsigned(IntSize::U4) => rd!(u32, U32),
        TD::Unsigned(IntSize::U8) => rd!(u64, U64),
        TD::Float(FloatSize::U4) => rd!(f32, F32),
        TD::Float(FloatSize::U8) => rd!(f64, F64),
        TD::Boolean => rd!(bool, Bool),
        TD::VarLenUnicode => {
            let a: ArrayD<VarLenUnicode> = match slab {
                Some(s) => ds.read_slice(s)?,
                None => ds.read_dyn()?,
            };
            DynArray::Str(a.mapv(|s| String::from_utf8_lossy(s.as_bytes()).into_owned()))
        }
        TD::VarLenAscii => {
            let a: ArrayD<VarLenAscii> = match slab {
                Some(s) => ds.read_slice(s)?,
                None => ds.read_dyn()?,
            };
            DynArray::Str(a.mapv(|s| String::from_utf8_lossy(s.as_bytes()).into_owned()))
        }
        TD::FixedAscii(n) => DynArray::Str(read_fixed(ds, *n, false, slab)?),
        TD::FixedUnicode(n) => DynArray::Str(read_fixed(ds, *n, true, slab)?),
        other => return Err(format!("unsupported HDF5 type {other}").into()),
    })
}

fn filter_names(ds: &Dataset) -> Vec<String> {
    use hdf5::filters::Filter;
    ds.filters()
        .into_iter()
        .map(|f| match f {
            Filter::Deflate(l) => format!("gzip({l})"),
            Filter::Shuffle => "shuffle".into(),
            Filter::Fletcher32 => "fletcher32".into(),
            Filter::LZF => "lzf".into(),
            Filter::Blosc(c, l, s) => format!("blosc({c:?}, {l}, {s:?})").to_lowercase(),
            Filter::User(id, cd) => super::filters::describe(id, &cd),
            other => format!("{other:?}").to_lowercase(),
        })
        .collect()
}

impl Store for H5Store {
    fn path(&self) -> &Path {
        &self.path
    }

    fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    fn format(&self) -> StoreFormat {
        StoreFormat::H5ad
    }

    fn node(&self, path: &str) -> Result<Option<NodeKind>> {
        if path.is_empty() {
            return Ok(Some(NodeKind::Group));
        }
        // False also when an intermediate group is missing (or is a dataset): one lookup,
        // not one per level, so deep trees stay linear.
        if !self.file.link_exists(path) {
            return Ok(None);
        }
        match self.file.loc_type_by_name(path) {
            Ok(LocationType::Group) => Ok(Some(NodeKind::Group)),
            Ok(LocationType::Dataset) => Ok(Some(NodeKind::Array)),
            Ok(_) => Ok(None),
            Err(e) => Err(h5err(&self.path, path, e)),
        }
    }

    fn children(&self, group: &str) -> Result<Vec<String>> {
        let g = if group.is_empty() {
            (*self.file).clone()
        } else {
            self.file
                .group(group)
                .map_err(|e| h5err(&self.path, group, e))?
        };
        let mut names = g.member_names().map_err(|e| h5err(&self.path, group, e))?;
        names.sort();
        self.refuse_cycles(group, &g, &names)?;
        Ok(names)
    }

    fn attributes(&self, path: &str) -> Result<Attrs> {
        let loc = self.location(path)?;
        let mut out = Attrs::new();
        for name in loc.attr_names().map_err(|e| h5err(&self.path, path, e))? {
            let a = loc.attr(&name).map_err(|e| h5err(&self.path, path, e))?;
            let v = super::watchdog::guarded(
                || format!("{}:/{path} (attribute {name})", self.path.display()),
                a.size(),
                || attr_json(&a),
            );
            // Unreadable attributes (object references, exotic types) are skipped, not fatal.
            if let Ok(Some(v)) = v {
                out.insert(name, v);
            } else if name == "categories" {
                // anndata 0.7 stores a categorical's categories as an object reference.
                out.insert(name, Json::Null);
            }
        }
        Ok(out)
    }

    fn array_info(&self, path: &str) -> Result<ArrayInfo> {
        let ds = self.dataset(path)?;
        let td = ds
            .dtype()
            .and_then(|t| t.to_descriptor())
            .map_err(|e| h5err(&self.path, path, e))?;
        Ok(ArrayInfo {
            shape: ds.shape().into_iter().map(|s| s as u64).collect(),
            dtype: stored_type(&td),
            chunks: ds
                .chunk()
                .map(|c| c.into_iter().map(|s| s as u64).collect()),
            shards: None,
            compression: filter_names(&ds),
            stored_bytes: Some(ds.storage_size()),
        })
    }

    fn read(&self, path: &str, sel: &[Range<u64>]) -> Result<DynArray> {
        let ds = self.dataset(path)?;
        let shape = ds.shape();
        if sel.len() != shape.len()
            || sel
                .iter()
                .zip(&shape)
                .any(|(r, &n)| r.start > r.end || r.end > n as u64)
        {
            return Err(Error::internal(format!(
                "read of /{path} with selection {sel:?} outside shape {shape:?}"
            )));
        }
        let td = ds
            .dtype()
            .and_then(|t| t.to_descriptor())
            .map_err(|e| h5err(&self.path, path, e))?;
        let dtype = match stored_type(&td) {
            StoredType::Plain(d) => d,
            other => {
                return Err(Error::unsupported(
                    Location::new(&self.path, format!("/{path}")),
                    format!("element type {other}"),
                ));
            }
        };
        if sel.iter().any(|r| r.is_empty()) {
            let out: Vec<usize> = sel.iter().map(|r| (r.end - r.start) as usize).collect();
            return Ok(DynArray::zeros(dtype, &out));
        }
        if let Some(raw) = &self.raw
            && let Some(a) = parallel::read_contiguous(raw, &ds, &td, sel)
                .map_err(|e| h5err(&self.path, path, e))?
        {
            return Ok(a);
        }
        if let Some(plan) = parallel::plan(&ds, &td, sel) {
            return parallel::read(&ds, &plan, sel, self.remote.as_deref())
                .map_err(|e| self.read_err(&ds, path, e));
        }
        // Only variable-length values go through the global heap, where HDF5 can loop; other
        // reads may take as long as they take.
        if matches!(td, TD::VarLenUnicode | TD::VarLenAscii) {
            if let Some(raw) = &self.raw {
                let rows = (sel.len() == 1).then(|| sel[0].clone());
                super::vlen_guard::check(raw, &ds, rows).map_err(|e| h5err(&self.path, path, e))?;
            }
            let n: usize = sel.iter().map(|r| (r.end - r.start) as usize).product();
            return super::watchdog::guarded(
                || format!("{}:/{path}", self.path.display()),
                n,
                || read_typed(&ds, &td, sel),
            )
            .map_err(|e| self.read_err(&ds, path, e));
        }
        read_typed(&ds, &td, sel).map_err(|e| self.read_err(&ds, path, e))
    }

    fn read_records(&self, path: &str) -> Result<Vec<(String, DynArray)>> {
        let ds = self.dataset(path)?;
        let td = ds
            .dtype()
            .and_then(|t| t.to_descriptor())
            .map_err(|e| h5err(&self.path, path, e))?;
        let TD::Compound(ct) = td else {
            return Err(Error::format(
                Location::new(&self.path, format!("/{path}")),
                "not a compound dataset",
            ));
        };
        let mut out = Vec::new();
        for f in &ct.fields {
            let read = || raw::compound_field(&ds, &f.name, &f.ty);
            // As for plain reads: only variable-length fields go through the global heap.
            let v = if matches!(f.ty, TD::VarLenUnicode | TD::VarLenAscii) {
                if let Some(raw) = &self.raw {
                    super::vlen_guard::check_field(raw, &ds, &ct, &f.name)
                        .map_err(|e| h5err(&self.path, path, e))?;
                }
                super::watchdog::guarded(
                    || format!("{}:/{path}", self.path.display()),
                    ds.size(),
                    read,
                )
            } else {
                read()
            }
            .map_err(|e| h5err(&self.path, &format!("{path}.{}", f.name), e))?;
            out.push((f.name.clone(), v));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{ArrayOptions, Compression, StoreWriter};
    use crate::h5::H5Writer;
    use engine_matrix::DType;

    /// The parallel raw-chunk path returns exactly what HDF5's own filter pipeline returns,
    /// for edge chunks, never-written chunks and every hyperslab shape.
    #[test]
    fn parallel_chunk_path_matches_the_library() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.h5");
        let mut w = H5Writer::create(&path).unwrap();
        let opts = ArrayOptions {
            chunks: Some(vec![3, 4]),
            shards: None,
            compression: Compression::Gzip(5),
        };
        w.create_array("m", DType::I32, &[10, 9], &opts, &Attrs::new())
            .unwrap();
        // Rows 6..10 stay unwritten: those chunks do not exist in the file.
        let a = ndarray::Array2::from_shape_fn((6, 9), |(i, j)| (i * 1000 + j) as i32 - 3000);
        w.write("m", &[0, 0], &DynArray::I32(a.into_dyn())).unwrap();
        Box::new(w).finish().unwrap();
        let s = H5Store::open(&path).unwrap();
        let ds = s.dataset("m").unwrap();
        let td = ds.dtype().unwrap().to_descriptor().unwrap();
        let mut checked = 0;
        for r0 in 0..10u64 {
            for r1 in r0 + 1..=10 {
                for (c0, c1) in [(0u64, 9u64), (2, 7), (4, 5), (8, 9)] {
                    let sel = [r0..r1, c0..c1];
                    let lib = read_typed(&ds, &td, &sel).unwrap();
                    if let Some(plan) = parallel::plan(&ds, &td, &sel) {
                        assert_eq!(
                            parallel::read(&ds, &plan, &sel, None).unwrap(),
                            lib,
                            "{sel:?}"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert!(
            checked > 100,
            "the fast path was exercised ({checked} hyperslabs)"
        );
    }
}
