//! The lazy AnnData handle: opening reads metadata only; matrices read by block, obs/var by
//! column.

use crate::backend::{NodeKind, Store, StoreFormat, StoredType, join};
use crate::encoding::{Encoding, bad, encoding_of, frame_layout, read_frame, sparse_info};
use crate::matrix::Matrix;

use crate::value::Frame;
use crate::{h5, zarr};
use engine_common::{Error, Location, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How to read a dataset: which matrix is X, and how a 10x input is read (scanpy's
/// parameters, with its defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// Keep only this genome's features (v3); pick this genome's group (v2, required when
    /// the file has several).
    pub genome: Option<String>,
    /// Keep only `Gene Expression` features (v3 HDF5 and v3 MTX).
    pub gex_only: bool,
    /// Read this layer as X (`layers/NAME`), as scanpy's `layer=`.
    pub layer: Option<String>,
    /// Read `raw`: raw.X as X and raw.var as var, as scanpy's `use_raw=True`.
    pub use_raw: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            genome: None,
            gex_only: true,
            layer: None,
            use_raw: false,
        }
    }
}

/// The slots of an AnnData object that hold matrices, with the axes they align to.
pub const MATRIX_GROUPS: [&str; 5] = ["layers", "obsm", "varm", "obsp", "varp"];

/// Opens a store by sniffing what is at `path`: an HDF5 file, a zarr v2/v3 directory or zip
/// archive, or 10x Genomics output (Cell Ranger HDF5, an MTX directory) read with scanpy's
/// defaults.
///
/// # Errors
/// When the path is missing, empty, or none of these.
pub fn open_store(path: &Path) -> Result<Arc<dyn Store>> {
    open_store_with(path, &ReadOptions::default())
}

/// [`open_store`], with how to read 10x inputs.
///
/// # Errors
/// As [`open_store`].
pub fn open_store_with(path: &Path, options: &ReadOptions) -> Result<Arc<dyn Store>> {
    crate::remap::remap(sniff(path, options)?, options)
}

/// The store at `path`, as it is.
fn sniff(path: &Path, options: &ReadOptions) -> Result<Arc<dyn Store>> {
    let local = crate::remote::local(path);
    let path = local.as_path();
    if let Some(remote) = crate::remote::Remote::parse(path)? {
        return open_remote(&remote, options);
    }
    let meta = std::fs::metadata(path).map_err(|e| Error::io(Location::file(path), e))?;
    if meta.is_dir() {
        if crate::tenx::is_mtx_dir(path) {
            return Ok(Arc::new(crate::tenx::read_mtx(path, options)?));
        }
        if path.join("zarr.json").exists() {
            return Ok(Arc::new(zarr::ZarrStore::open(path)?));
        }
        if path.join(".zgroup").exists() || path.join(".zattrs").exists() {
            return Ok(Arc::new(zarr::ZarrStore::open(path)?));
        }
        return Err(Error::format(
            Location::file(path),
            "directory is not a zarr store (no zarr.json or .zgroup) or 10x MTX directory (no matrix.mtx)",
        ));
    }
    if meta.len() == 0 {
        return Err(Error::format(Location::file(path), "file is empty"));
    }
    let mut sig = [0u8; 8];
    {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|e| Error::io(Location::file(path), e))?;
        let n = f
            .read(&mut sig)
            .map_err(|e| Error::io(Location::file(path), e))?;
        // A zip archive starts with a local file header (or, empty, its end record).
        if n >= 4 && (&sig[..4] == b"PK\x03\x04" || &sig[..4] == b"PK\x05\x06") {
            return Ok(Arc::new(zarr::ZarrStore::open_zip(path)?));
        }
        if n < 8 || &sig != b"\x89HDF\r\n\x1a\n" {
            // HDF5 allows a user block before the signature; let the library decide then.
            if meta.len() < 512 || n < 8 {
                return Err(Error::format(
                    Location::file(path),
                    "not an HDF5 file, zarr store or zipped zarr store",
                ));
            }
        }
    }
    let h5 = h5::H5Store::open(path)?;
    Ok(match crate::tenx::TenxH5::open(h5, options)? {
        Ok(tenx) => Arc::new(tenx),
        Err(h5) => Arc::new(h5),
    })
}

/// The store at a URL: zarr (v2 or v3, sharded or not), or an HDF5 file read by range
/// requests. Zip archives are refused by name, before any request.
fn open_remote(remote: &crate::remote::Remote, options: &ReadOptions) -> Result<Arc<dyn Store>> {
    // Planning, checking outputs and running each open the input; over a network each open
    // is a request, so a store opened in the last minute is reused (its metadata is what a
    // run sees from start to end).
    type Opened = std::collections::HashMap<String, (std::time::Instant, Arc<dyn Store>)>;
    static OPENED: std::sync::Mutex<Option<Opened>> = std::sync::Mutex::new(None);
    const REUSE: std::time::Duration = std::time::Duration::from_secs(60);
    if let Ok(mut opened) = OPENED.lock() {
        let opened = opened.get_or_insert_with(Default::default);
        opened.retain(|_, (t, _)| t.elapsed() < REUSE);
        if let Some((_, store)) = opened.get(&format!("{}#{options:?}", remote.shown)) {
            return Ok(store.clone());
        }
    }
    let store = open_remote_store(remote, options)?;
    if let Ok(mut opened) = OPENED.lock() {
        opened.get_or_insert_with(Default::default).insert(
            format!("{}#{options:?}", remote.shown),
            (std::time::Instant::now(), store.clone()),
        );
    }
    Ok(store)
}

fn open_remote_store(
    remote: &crate::remote::Remote,
    options: &ReadOptions,
) -> Result<Arc<dyn Store>> {
    let lower = remote.shown.to_ascii_lowercase();
    if [".h5ad", ".h5", ".hdf5"].iter().any(|e| lower.ends_with(e)) {
        let h5 = h5::H5Store::open_remote(remote)?;
        return Ok(match crate::tenx::TenxH5::open(h5, options)? {
            Ok(tenx) => Arc::new(tenx),
            Err(h5) => Arc::new(h5),
        });
    }
    if lower.ends_with(".zip") {
        return Err(Error::unsupported(
            Location::file(&remote.shown),
            "reading a zipped zarr store over the network (unzip it first)",
        ));
    }
    Ok(Arc::new(zarr::ZarrStore::open_remote(remote)?))
}

/// A summary of one element, for `inspect`.
#[derive(Debug, Clone)]
pub struct ElementSummary {
    pub path: String,
    pub encoding: String,
    pub dtype: Option<String>,
    pub shape: Option<Vec<u64>>,
    pub nnz: Option<u64>,
    /// Storage of the element's main array(s): chunking, shards, compression.
    pub storage: Vec<(String, crate::backend::ArrayInfo)>,
    /// Why it cannot be read, if it cannot.
    pub error: Option<String>,
}

/// A lazily opened AnnData file or store.
#[derive(Debug, Clone)]
pub struct Dataset {
    store: Arc<dyn Store>,
    path: PathBuf,
    n_obs: usize,
    n_vars: usize,
}

impl Dataset {
    /// Opens `path`, reading metadata only, and checks obs, var and X agree in shape.
    ///
    /// # Errors
    /// When the file is missing, not AnnData, or its axes disagree.
    pub fn open(path: impl AsRef<Path>) -> Result<Dataset> {
        let path = path.as_ref();
        let store = open_store(path)?;
        Self::from_store(store, path)
    }

    /// [`Dataset::open`], with how to read a 10x input (genome, Gene Expression only).
    ///
    /// # Errors
    /// As [`Dataset::open`]; also when the genome asked for is not in the file.
    pub fn open_with(path: impl AsRef<Path>, options: &ReadOptions) -> Result<Dataset> {
        let path = path.as_ref();
        let store = open_store_with(path, options)?;
        Self::from_store(store, path)
    }

    /// Wraps an opened store.
    ///
    /// # Errors
    /// As [`Dataset::open`].
    pub fn from_store(store: Arc<dyn Store>, path: &Path) -> Result<Dataset> {
        let s = store.as_ref();
        let n_obs = axis_len(s, "obs")?;
        let n_vars = axis_len(s, "var")?;
        let x = if s.node("X")?.is_some() {
            Some(Matrix::open(store.clone(), "X")?)
        } else {
            None
        };
        let (n_obs, n_vars) = match (n_obs, n_vars, &x) {
            (Some(o), Some(v), _) => (o, v),
            (o, v, Some(x)) => (o.unwrap_or(x.n_rows()), v.unwrap_or(x.n_cols())),
            _ => {
                return Err(Error::format(
                    Location::file(path),
                    "no obs, var or X: not an AnnData file",
                ));
            }
        };
        if let Some(x) = &x
            && (x.shape().len() != 2 || x.n_rows() != n_obs || x.n_cols() != n_vars)
        {
            return Err(bad(
                s,
                "X",
                format!(
                    "X has shape {:?} but obs has {n_obs} rows and var {n_vars}",
                    x.shape()
                ),
            ));
        }
        Ok(Dataset {
            store,
            path: path.to_path_buf(),
            n_obs,
            n_vars,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn format(&self) -> StoreFormat {
        self.store.format()
    }

    pub fn n_obs(&self) -> usize {
        self.n_obs
    }

    pub fn n_vars(&self) -> usize {
        self.n_vars
    }

    /// Whether an element exists at `path`.
    ///
    /// # Errors
    /// On store failures.
    pub fn has(&self, path: &str) -> Result<bool> {
        Ok(self.store.node(path)?.is_some())
    }

    /// X, if the file has one.
    ///
    /// # Errors
    /// When X is present but unreadable.
    pub fn x(&self) -> Result<Option<Matrix>> {
        if self.has("X")? {
            Matrix::open(self.store.clone(), "X").map(Some)
        } else {
            Ok(None)
        }
    }

    /// A matrix element by path (`X`, `layers/counts`, `obsm/X_pca`, `raw/X`).
    ///
    /// # Errors
    /// When there is no such matrix.
    pub fn matrix(&self, path: &str) -> Result<Matrix> {
        if !self.has(path)? {
            return Err(Error::usage(format!(
                "{}: no element `{path}`",
                self.path.display()
            )));
        }
        Matrix::open(self.store.clone(), path)
    }

    /// The obs table, all columns or only those named.
    ///
    /// # Errors
    /// On unknown columns or damaged data.
    pub fn obs(&self, columns: Option<&[String]>) -> Result<Frame> {
        self.axis_frame("obs", self.n_obs, columns)
    }

    /// The var table, all columns or only those named.
    ///
    /// # Errors
    /// On unknown columns or damaged data.
    pub fn var(&self, columns: Option<&[String]>) -> Result<Frame> {
        self.axis_frame("var", self.n_vars, columns)
    }

    fn axis_frame(&self, path: &str, n: usize, columns: Option<&[String]>) -> Result<Frame> {
        if !self.has(path)? {
            return Ok(Frame::with_range_index(n));
        }
        read_frame(self.store.as_ref(), path, columns)
    }

    /// Keys of a group (`layers`, `obsm`, `uns`, …), empty if absent.
    ///
    /// # Errors
    /// On store failures.
    pub fn keys(&self, group: &str) -> Result<Vec<String>> {
        if self.store.node(group)? == Some(NodeKind::Group) {
            self.store.children(group)
        } else {
            Ok(vec![])
        }
    }

    /// Checks the invariants anndata enforces when it builds the object (see
    /// [`crate::validate::structure_problems`]): from metadata, plus the index of obsm/varm
    /// dataframes. `convert` runs it first, so a file anndata would refuse is not turned into
    /// one it reads differently.
    ///
    /// # Errors
    /// The first problem, as a format error naming the element.
    pub fn check_structure(&self) -> Result<()> {
        let problems = crate::validate::structure_problems(&self.store, self.n_obs, self.n_vars);
        match problems.into_iter().next() {
            Some(p) => Err(Error::format(
                Location::new(&self.path, p.element),
                p.message,
            )),
            None => Ok(()),
        }
    }

    /// Every element of the file with its encoding and storage, for `inspect`. Elements that
    /// cannot be read are listed with the reason instead of failing the whole listing.
    ///
    /// # Errors
    /// Only on store failures at the root.
    pub fn summarize(&self) -> Result<Vec<ElementSummary>> {
        let mut out = Vec::new();
        for top in self.store.children("")? {
            self.summarize_into(&top, 0, &mut out);
        }
        Ok(out)
    }

    fn summarize_into(&self, path: &str, depth: usize, out: &mut Vec<ElementSummary>) {
        let s = self.store.as_ref();
        let mut e = ElementSummary {
            path: path.to_string(),
            encoding: String::new(),
            dtype: None,
            shape: None,
            nnz: None,
            storage: vec![],
            error: None,
        };
        let enc = match encoding_of(s, path) {
            Ok(enc) => enc,
            Err(err) => {
                e.error = Some(err.to_string());
                out.push(e);
                return;
            }
        };
        e.encoding = enc.name();
        let mut recurse = false;
        match &enc {
            Encoding::Array
            | Encoding::StringArray
            | Encoding::NumericScalar
            | Encoding::String
            | Encoding::LegacyCompoundFrame
            | Encoding::RecArray => match s.array_info(path) {
                Ok(info) => {
                    e.dtype = Some(info.dtype.to_string());
                    e.shape = Some(info.shape.clone());
                    e.storage.push((path.to_string(), info));
                }
                Err(err) => e.error = Some(err.to_string()),
            },
            Encoding::Sparse(f) => match sparse_info(s, path, *f) {
                Ok(info) => {
                    e.dtype = Some(info.dtype.to_string());
                    e.shape = Some(info.shape.iter().map(|&v| v as u64).collect());
                    e.nnz = Some(info.nnz);
                    for m in ["data", "indices", "indptr"] {
                        if let Ok(i) = s.array_info(&join(path, m)) {
                            e.storage.push((join(path, m), i));
                        }
                    }
                }
                Err(err) => e.error = Some(err.to_string()),
            },
            Encoding::DataFrame => match (frame_layout(s, path), axis_len(s, path)) {
                (Ok((_, cols)), Ok(Some(n))) => e.shape = Some(vec![n as u64, cols.len() as u64]),
                (Err(err), _) | (_, Err(err)) => e.error = Some(err.to_string()),
                _ => {}
            },
            Encoding::DictFrame => match read_frame(s, path, None) {
                Ok(f) => e.shape = Some(vec![f.n_rows() as u64, f.columns.len() as u64]),
                Err(err) => e.error = Some(err.to_string()),
            },
            Encoding::Categorical
            | Encoding::NullableInteger
            | Encoding::NullableBoolean
            | Encoding::NullableString => {
                let member = if enc == Encoding::Categorical {
                    "codes"
                } else {
                    "values"
                };
                if let Ok(info) = s.array_info(&join(path, member)) {
                    e.shape = Some(info.shape.clone());
                    e.dtype = Some(info.dtype.to_string());
                }
            }
            Encoding::Dict | Encoding::AnnData | Encoding::Raw => recurse = depth < 3,
            Encoding::Null => {}
            Encoding::Unknown { kind, version } => {
                e.error = Some(format!("unsupported encoding `{kind}` version `{version}`"));
            }
        }
        if recurse {
            match s.children(path) {
                Ok(children) => {
                    out.push(e);
                    for c in children {
                        self.summarize_into(&join(path, &c), depth + 1, out);
                    }
                }
                // A group that cannot be listed (a link cycle, damage) says so.
                Err(err) => {
                    e.error = Some(err.to_string());
                    out.push(e);
                }
            }
        } else {
            out.push(e);
        }
    }
}

/// Rows of the obs/var dataframe at `path`, from its index, or `None` if absent.
pub(crate) fn axis_len(s: &dyn Store, path: &str) -> Result<Option<usize>> {
    match s.node(path)? {
        None => Ok(None),
        Some(_) => match encoding_of(s, path)? {
            Encoding::DataFrame => {
                let (index, _) = frame_layout(s, path)?;
                let ip = join(path, &index);
                match s.node(&ip)? {
                    Some(NodeKind::Array) => Ok(Some(
                        s.array_info(&ip)?.shape.first().copied().unwrap_or(0) as usize,
                    )),
                    Some(NodeKind::Group) => {
                        // nullable-string-array index: length of its values.
                        let vp = join(&ip, "values");
                        Ok(Some(
                            s.array_info(&vp)?.shape.first().copied().unwrap_or(0) as usize
                        ))
                    }
                    None => Err(bad(
                        s,
                        path,
                        format!("dataframe index `{index}` is missing"),
                    )),
                }
            }
            Encoding::DictFrame => Ok(Some(read_frame(s, path, None)?.n_rows())),
            Encoding::LegacyCompoundFrame => {
                let info = s.array_info(path)?;
                if !matches!(info.dtype, StoredType::Compound(_)) {
                    return Err(bad(s, path, "expected a compound table"));
                }
                Ok(Some(info.shape.first().copied().unwrap_or(0) as usize))
            }
            other => Err(bad(
                s,
                path,
                format!("expected a dataframe, found {}", other.name()),
            )),
        },
    }
}
