//! A dataset read with another matrix as X: a layer, or `raw` (raw.X as X, raw.var as var),
//! as scanpy's `layer=` and `use_raw=True` take them. The store is seen through a renaming of
//! paths, so every reader (scans, SQL tables, `gene()`) gets the chosen matrix as `X`;
//! nothing is copied.

use crate::backend::{ArrayInfo, Attrs, NodeKind, Store, StoreFormat};
use crate::dataset::ReadOptions;
use engine_common::{Error, Result};
use engine_matrix::DynArray;
use std::borrow::Cow;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

/// `inner` with some paths renamed.
#[derive(Debug)]
struct Remapped {
    inner: Arc<dyn Store>,
    /// `(from, to)`: `from` and the paths under it read `to` and the paths under it.
    map: Vec<(&'static str, String)>,
}

impl Remapped {
    fn to<'a>(&self, path: &'a str) -> Cow<'a, str> {
        for (from, to) in &self.map {
            if path == *from {
                return Cow::Owned(to.clone());
            }
            if let Some(rest) = path.strip_prefix(from).and_then(|r| r.strip_prefix('/')) {
                return Cow::Owned(format!("{to}/{rest}"));
            }
        }
        Cow::Borrowed(path)
    }
}

impl Store for Remapped {
    fn path(&self) -> &Path {
        self.inner.path()
    }
    fn is_remote(&self) -> bool {
        self.inner.is_remote()
    }
    fn format(&self) -> StoreFormat {
        self.inner.format()
    }
    fn node(&self, path: &str) -> Result<Option<NodeKind>> {
        self.inner.node(&self.to(path))
    }
    fn children(&self, group: &str) -> Result<Vec<String>> {
        self.inner.children(&self.to(group))
    }
    fn attributes(&self, path: &str) -> Result<Attrs> {
        self.inner.attributes(&self.to(path))
    }
    fn array_info(&self, path: &str) -> Result<ArrayInfo> {
        self.inner.array_info(&self.to(path))
    }
    fn read(&self, path: &str, sel: &[Range<u64>]) -> Result<DynArray> {
        self.inner.read(&self.to(path), sel)
    }
    fn prefetch(&self, path: &str, sel: &[Range<u64>]) -> Result<crate::backend::Prefetched> {
        self.inner.prefetch(&self.to(path), sel)
    }
    fn read_records(&self, path: &str) -> Result<Vec<(String, DynArray)>> {
        self.inner.read_records(&self.to(path))
    }
}

/// When `store` has no layer `layer`, which layers it has instead, for messages: "its layers
/// are a, b" or "it has no layers".
///
/// # Errors
/// When the store cannot be listed.
pub fn missing_layer(store: &dyn Store, layer: &str) -> Result<Option<String>> {
    if store.node(&format!("layers/{layer}"))?.is_some() {
        return Ok(None);
    }
    let layers = match store.node("layers")? {
        Some(_) => store.children("layers")?,
        None => vec![],
    };
    Ok(Some(if layers.is_empty() {
        "it has no layers".to_string()
    } else {
        format!("its layers are {}", layers.join(", "))
    }))
}

/// `store` as `options` ask to read it: unchanged, with a layer as X, or with raw as X and
/// var.
///
/// # Errors
/// When both are asked for, or the layer or raw is not in the store (naming the layers there
/// are).
pub(crate) fn remap(store: Arc<dyn Store>, options: &ReadOptions) -> Result<Arc<dyn Store>> {
    let path = store.path().display().to_string();
    let map = match (&options.layer, options.use_raw) {
        (None, false) => return Ok(store),
        (Some(_), true) => {
            return Err(Error::usage(
                "`layer` and `use_raw` cannot both be set: raw has no layers",
            ));
        }
        (Some(layer), false) => {
            if let Some(there) = missing_layer(store.as_ref(), layer)? {
                return Err(Error::usage(format!(
                    "{path}: no layer '{layer}' ({there})"
                )));
            }
            vec![("X", format!("layers/{layer}"))]
        }
        (None, true) => {
            if store.node("raw/X")?.is_none() || store.node("raw/var")?.is_none() {
                return Err(Error::usage(format!(
                    "{path}: `use_raw` asks for raw.X and raw.var, and the dataset has no raw"
                )));
            }
            // raw has no layers, and its varm and varp (if any) align with its var.
            vec![
                ("X", "raw/X".to_string()),
                ("var", "raw/var".to_string()),
                ("varm", "raw/varm".to_string()),
                ("varp", "raw/varp".to_string()),
                ("layers", "raw/layers".to_string()),
            ]
        }
    };
    Ok(Arc::new(Remapped { inner: store, map }))
}
