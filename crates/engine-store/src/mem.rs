//! A store held in memory: groups with attributes and 1-D arrays. Inputs that have no random
//! access on disk (10x MTX text) are decoded into one, so every command reads them through
//! the same [`Store`] interface as a file.

use crate::backend::{ArrayInfo, Attrs, NodeKind, Store, StoreFormat, StoredType};
use engine_common::{Error, Location, Result};
use engine_matrix::{DynArray, dyn_rewrap};
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

#[derive(Debug)]
enum Node {
    Group(Attrs),
    Array(DynArray, Attrs),
}

/// An in-memory store.
#[derive(Debug)]
pub struct MemStore {
    path: PathBuf,
    format: StoreFormat,
    nodes: BTreeMap<String, Node>,
}

impl MemStore {
    /// An empty store with a root group; `path` and `format` are what messages and `inspect`
    /// report.
    pub fn new(path: &Path, format: StoreFormat, root: Attrs) -> MemStore {
        let mut nodes = BTreeMap::new();
        nodes.insert(String::new(), Node::Group(root));
        MemStore {
            path: path.to_path_buf(),
            format,
            nodes,
        }
    }

    pub fn group(&mut self, path: &str, attrs: Attrs) {
        self.nodes.insert(path.to_string(), Node::Group(attrs));
    }

    pub fn array(&mut self, path: &str, data: DynArray, attrs: Attrs) {
        self.nodes
            .insert(path.to_string(), Node::Array(data, attrs));
    }

    fn loc(&self, path: &str) -> Location {
        Location::new(&self.path, format!("/{path}"))
    }

    fn get(&self, path: &str) -> Result<&Node> {
        self.nodes
            .get(path)
            .ok_or_else(|| Error::format(self.loc(path), "no such element"))
    }

    fn data(&self, path: &str) -> Result<&DynArray> {
        match self.get(path)? {
            Node::Array(a, _) => Ok(a),
            Node::Group(_) => Err(Error::format(self.loc(path), "not an array")),
        }
    }
}

impl Store for MemStore {
    fn path(&self) -> &Path {
        &self.path
    }

    fn format(&self) -> StoreFormat {
        self.format
    }

    fn node(&self, path: &str) -> Result<Option<NodeKind>> {
        Ok(self.nodes.get(path).map(|n| match n {
            Node::Group(_) => NodeKind::Group,
            Node::Array(..) => NodeKind::Array,
        }))
    }

    fn children(&self, group: &str) -> Result<Vec<String>> {
        let prefix = if group.is_empty() {
            String::new()
        } else {
            format!("{group}/")
        };
        Ok(self
            .nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(k, _)| {
                let rest = &k[prefix.len()..];
                (!rest.is_empty() && !rest.contains('/')).then(|| rest.to_string())
            })
            .collect())
    }

    fn attributes(&self, path: &str) -> Result<Attrs> {
        Ok(match self.get(path)? {
            Node::Group(a) | Node::Array(_, a) => a.clone(),
        })
    }

    fn array_info(&self, path: &str) -> Result<ArrayInfo> {
        let a = self.data(path)?;
        Ok(ArrayInfo {
            shape: a.shape().iter().map(|&n| n as u64).collect(),
            dtype: StoredType::Plain(a.dtype()),
            chunks: None,
            shards: None,
            compression: vec![],
            stored_bytes: None,
        })
    }

    fn read(&self, path: &str, sel: &[Range<u64>]) -> Result<DynArray> {
        let a = self.data(path)?;
        if sel.len() != a.shape().len()
            || sel
                .iter()
                .zip(a.shape())
                .any(|(r, &n)| r.start > r.end || r.end > n as u64)
        {
            return Err(Error::internal(format!(
                "read of /{path} with selection {sel:?} outside shape {:?}",
                a.shape()
            )));
        }
        Ok(dyn_rewrap!(a, x => x
            .slice_each_axis(|ax| {
                let r = &sel[ax.axis.index()];
                ndarray::Slice::from(r.start as usize..r.end as usize)
            })
            .to_owned()))
    }

    fn read_records(&self, path: &str) -> Result<Vec<(String, DynArray)>> {
        Err(Error::format(self.loc(path), "not a structured array"))
    }
}
