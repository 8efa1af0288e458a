//! Cell Ranger HDF5 (v3 `/matrix`, v2 one group per genome) as an AnnData store: X's arrays
//! are the file's own, read by range, with a feature filter applied on the fly.

use super::{ReadOptions, put_frame, root_attrs, strings};

use crate::backend::{ArrayInfo, Attrs, NodeKind, Store, StoreFormat, StoredType, join};
use crate::h5::H5Store;
use crate::mem::MemStore;
use crate::write::enc_attrs;
use engine_common::{Error, Location, Result};
use engine_matrix::{DType, DynArray};
use ndarray::Array1;
use serde_json::json;
use std::ops::Range;
use std::path::Path;

/// The rows of `a` (1-D) at `keep`.
fn take(a: DynArray, keep: Option<&[usize]>) -> DynArray {
    match keep {
        Some(k) => engine_matrix::take_1d(&a, k),
        None => a,
    }
}

/// Values as the text numpy's `astype(str)` gives (booleans stay booleans, as scanpy keeps
/// them).
fn as_text(a: DynArray) -> DynArray {
    match a {
        DynArray::Str(_) | DynArray::Bool(_) => a,
        DynArray::F32(v) => strings(v.iter().map(|x| format!("{x:?}")).collect()),
        DynArray::F64(v) => strings(v.iter().map(|x| format!("{x:?}")).collect()),
        other => {
            let n = other.len();
            strings(
                other
                    .to_i64_vec()
                    .map(|v| v.iter().map(i64::to_string).collect())
                    .unwrap_or_else(|| vec![String::new(); n]),
            )
        }
    }
}

/// Which 10x HDF5 layout a file has, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
enum H5Layout {
    /// Cell Ranger 3+: `/matrix` with `features/`.
    V3,
    /// Cell Ranger 2: one group per genome.
    V2 { genomes: Vec<String> },
}

const V2_MEMBERS: [&str; 7] = [
    "barcodes",
    "data",
    "gene_names",
    "genes",
    "indices",
    "indptr",
    "shape",
];

fn h5_layout(h5: &H5Store) -> Result<Option<H5Layout>> {
    let has = |p: &str| h5.node(p).map(|n| n.is_some());
    if h5.node("matrix")? == Some(NodeKind::Group)
        && has("matrix/barcodes")?
        && has("matrix/indptr")?
    {
        return Ok(Some(H5Layout::V3));
    }
    let top = h5.children("")?;
    if top.is_empty()
        || top
            .iter()
            .any(|t| ["X", "obs", "var"].contains(&t.as_str()))
    {
        return Ok(None);
    }
    for t in &top {
        for m in V2_MEMBERS {
            if !has(&join(t, m))? {
                return Ok(None);
            }
        }
    }
    Ok(Some(H5Layout::V2 { genomes: top }))
}

/// A Cell Ranger HDF5 file read as AnnData.
#[derive(Debug)]
pub struct TenxH5 {
    h5: H5Store,
    /// The group holding the matrix: `matrix`, or the genome's group (v2).
    base: String,
    /// obs, var, X's attributes and indptr: everything but X's values and indices.
    meta: MemStore,
    /// The file's row offsets, when a feature filter changes them.
    raw_indptr: Vec<u64>,
    /// New offsets of the kept entries, per row, when filtering.
    indptr: Vec<u64>,
    /// Old feature index to new one (`u32::MAX`: dropped), when filtering.
    remap: Option<Vec<u32>>,
    nnz: u64,
    /// The file's data type; int32 counts read as float32, as scanpy reads them.
    data_type: DType,
    /// The last filtered range's kept positions: `(lo, hi, first file position, positions
    /// relative to it)`.
    picked: std::sync::Mutex<Option<Picked>>,
}

type Picked = (u64, u64, u64, Vec<usize>);

impl TenxH5 {
    /// Opens `path` as 10x HDF5 if it is one (`Ok(None)` when it is an ordinary HDF5 file).
    ///
    /// # Errors
    /// On a 10x file that is damaged or lacks the genome asked for.
    pub fn open(h5: H5Store, opts: &ReadOptions) -> Result<std::result::Result<TenxH5, H5Store>> {
        let Some(layout) = h5_layout(&h5)? else {
            return Ok(Err(h5));
        };
        let path = h5.path().to_path_buf();
        let loc = |el: &str| Location::new(&path, format!("/{el}"));
        let base = match &layout {
            H5Layout::V3 => "matrix".to_string(),
            H5Layout::V2 { genomes } => match &opts.genome {
                Some(g) if genomes.contains(g) => g.clone(),
                Some(g) => {
                    return Err(Error::usage(format!(
                        "{}: no genome `{g}`; the file has {}",
                        path.display(),
                        genomes.join(", ")
                    )));
                }
                None if genomes.len() == 1 => genomes[0].clone(),
                None => {
                    return Err(Error::usage(format!(
                        "{}: the file holds several genomes ({}); choose one with `genome`",
                        path.display(),
                        genomes.join(", ")
                    )));
                }
            },
        };
        let read_all = |p: &str| h5.read_all(&join(&base, p));
        let shape = read_all("shape")?.to_i64_vec().unwrap_or_default();
        let [n_features, n_cells] = shape[..] else {
            return Err(Error::format(
                loc(&join(&base, "shape")),
                "expected 2 values",
            ));
        };
        let (n_features, n_cells) = (n_features.max(0) as usize, n_cells.max(0) as usize);
        let strs = |a: DynArray| as_text(a);
        let barcodes = match strs(read_all("barcodes")?) {
            DynArray::Str(s) => s.into_iter().collect::<Vec<_>>(),
            _ => unreachable!("as_text gives text"),
        };
        let feature = |name: &str| -> Result<DynArray> {
            let p = match layout {
                H5Layout::V3 => join("features", name),
                H5Layout::V2 { .. } => name.to_string(),
            };
            read_all(&p)
        };
        // var columns as scanpy builds them, before any filter.
        let (names, mut columns, keep) = match layout {
            H5Layout::V3 => {
                let fpath = join(&base, "features");
                let members = h5.children(&fpath)?;
                let mut cols = Vec::new();
                if members.iter().any(|m| m == "gene_id") {
                    cols.push(("gene_ids".to_string(), strs(feature("gene_id")?)));
                    cols.push(("probe_ids".to_string(), strs(feature("id")?)));
                } else {
                    cols.push(("gene_ids".to_string(), strs(feature("id")?)));
                }
                let types = strs(feature("feature_type")?);
                cols.push(("feature_types".to_string(), types.clone()));
                for m in &members {
                    let skip = ["name", "feature_type", "id", "gene_id", "_all_tag_keys"];
                    if skip.contains(&m.as_str())
                        || h5.node(&join(&fpath, m))? != Some(NodeKind::Array)
                    {
                        continue;
                    }
                    cols.push((m.clone(), strs(feature(m)?)));
                }
                let column = |cols: &[(String, DynArray)], n: &str| -> Option<Vec<String>> {
                    cols.iter()
                        .find(|(c, _)| c == n)
                        .and_then(|(_, a)| match a {
                            DynArray::Str(s) => Some(s.iter().cloned().collect()),
                            _ => None,
                        })
                };
                let mut keep: Vec<bool> = vec![true; n_features];
                if let Some(g) = &opts.genome {
                    let genomes = column(&cols, "genome").unwrap_or_default();
                    if !genomes.contains(g) {
                        let mut have: Vec<&String> = genomes.iter().collect();
                        have.sort();
                        have.dedup();
                        return Err(Error::usage(format!(
                            "{}: no features of genome `{g}`; the file has {have:?}",
                            path.display()
                        )));
                    }
                    for (k, gn) in keep.iter_mut().zip(&genomes) {
                        *k &= gn == g;
                    }
                }
                if opts.gex_only {
                    let t = column(&cols, "feature_types").unwrap_or_default();
                    for (k, ft) in keep.iter_mut().zip(&t) {
                        *k &= ft == "Gene Expression";
                    }
                }
                (strs(feature("name")?), cols, keep)
            }
            H5Layout::V2 { .. } => (
                strs(feature("gene_names")?),
                vec![("gene_ids".to_string(), strs(feature("genes")?))],
                vec![true; n_features],
            ),
        };
        for (n, a) in std::iter::once(&("names".to_string(), names.clone())).chain(&columns) {
            if a.len() != n_features {
                return Err(Error::format(
                    loc(&base),
                    format!(
                        "features `{n}` has {} entries for {n_features} features",
                        a.len()
                    ),
                ));
            }
        }
        if barcodes.len() != n_cells {
            return Err(Error::format(
                loc(&join(&base, "barcodes")),
                format!("{} barcodes for {n_cells} cells", barcodes.len()),
            ));
        }
        let filtered = keep.iter().any(|k| !k);
        let kept: Vec<usize> = (0..n_features).filter(|&j| keep[j]).collect();
        let sel = filtered.then_some(kept.as_slice());
        let var_names = match take(names, sel) {
            DynArray::Str(s) => s.into_iter().collect(),
            _ => unreachable!("names are text"),
        };
        for (_, a) in columns.iter_mut() {
            *a = take(
                std::mem::replace(a, DynArray::zeros(DType::Bool, &[0])),
                sel,
            );
        }
        let mut obs_columns = Vec::new();
        if layout == H5Layout::V3 && h5.node(&join(&base, "filtered_barcodes"))?.is_some() {
            let fb = read_all("filtered_barcodes")?;
            let fb = match fb {
                DynArray::Bool(_) => fb,
                other => DynArray::Bool(
                    Array1::from(
                        other
                            .to_i64_vec()
                            .unwrap_or_default()
                            .into_iter()
                            .map(|v| v != 0)
                            .collect::<Vec<_>>(),
                    )
                    .into_dyn(),
                ),
            };
            obs_columns.push(("filtered_barcodes".to_string(), fb));
        }

        // X: the file's offsets, and new ones when a filter drops entries.
        let indptr_path = join(&base, "indptr");
        let raw_indptr =
            crate::encoding::to_indptr(&h5, &indptr_path, &h5.read_all(&indptr_path)?)?;
        if raw_indptr.len() != n_cells + 1 || raw_indptr.windows(2).any(|w| w[0] > w[1]) {
            return Err(Error::format(
                loc(&indptr_path),
                format!("expected {} monotone offsets", n_cells + 1),
            ));
        }
        let stored = |m: &str| -> Result<u64> {
            Ok(h5
                .array_info(&join(&base, m))?
                .shape
                .first()
                .copied()
                .unwrap_or(0))
        };
        let last = *raw_indptr.last().unwrap_or(&0);
        if raw_indptr[0] != 0 || last > stored("indices")? || last > stored("data")? {
            return Err(Error::format(
                loc(&indptr_path),
                format!(
                    "offsets run from {} to {last}, but indices and data hold {} and {} entries",
                    raw_indptr[0],
                    stored("indices")?,
                    stored("data")?
                ),
            ));
        }
        let data_info = h5.array_info(&join(&base, "data"))?;
        let StoredType::Plain(file_type) = data_info.dtype else {
            return Err(Error::unsupported(
                loc(&join(&base, "data")),
                format!("element type {}", data_info.dtype),
            ));
        };
        let data_type = if file_type == DType::I32 {
            DType::F32
        } else {
            file_type
        };
        let mut remap = None;
        let mut indptr = raw_indptr.clone();
        if filtered {
            let mut map = vec![u32::MAX; n_features];
            for (new, &old) in kept.iter().enumerate() {
                map[old] = new as u32;
            }
            // One pass over the indices, a few million at a time, counts what each row keeps.
            let indices_path = join(&base, "indices");
            let mut row = 0usize;
            let mut out = vec![0u64];
            let total = *raw_indptr.last().unwrap_or(&0);
            let step = 1u64 << 22;
            let mut lo = 0u64;
            let mut kept_in_row = 0u64;
            while lo < total {
                let hi = (lo + step).min(total);
                let idx = h5
                    .read(&indices_path, &[lo..hi])?
                    .to_i64_vec()
                    .ok_or_else(|| Error::format(loc(&indices_path), "indices are not integers"))?;
                if let Some(&j) = idx.iter().find(|&&j| j < 0 || j as usize >= n_features) {
                    return Err(Error::format(
                        loc(&indices_path),
                        format!("index {j} is outside the {n_features} features"),
                    ));
                }
                for (k, &j) in idx.iter().enumerate() {
                    let pos = lo + k as u64;
                    while raw_indptr[row + 1] <= pos {
                        out.push(out[row] + kept_in_row);
                        kept_in_row = 0;
                        row += 1;
                    }
                    if map.get(j as usize).is_some_and(|&m| m != u32::MAX) {
                        kept_in_row += 1;
                    }
                }
                lo = hi;
            }
            while out.len() < n_cells + 1 {
                out.push(out[row] + kept_in_row);
                kept_in_row = 0;
                row += 1;
            }
            indptr = out;
            remap = Some(map);
        }
        let nnz = *indptr.last().unwrap_or(&0);

        let mut meta = MemStore::new(&path, StoreFormat::Tenx, root_attrs());
        let mut x_attrs = enc_attrs("csr_matrix", "0.1.0");
        x_attrs.insert("shape".into(), json!([n_cells, kept.len()]));
        meta.group("X", x_attrs);
        meta.array(
            "X/indptr",
            DynArray::I64(
                Array1::from(indptr.iter().map(|&p| p as i64).collect::<Vec<_>>()).into_dyn(),
            ),
            Attrs::new(),
        );
        // Listed so the group has its members; reads go to the file.
        for m in ["data", "indices"] {
            meta.array(
                &join("X", m),
                DynArray::zeros(DType::I64, &[0]),
                Attrs::new(),
            );
        }
        put_frame(&mut meta, "obs", barcodes, obs_columns);
        put_frame(&mut meta, "var", var_names, columns);
        Ok(Ok(TenxH5 {
            h5,
            base,
            meta,
            raw_indptr,
            indptr,
            remap,
            nnz,
            data_type,
            picked: std::sync::Mutex::new(None),
        }))
    }

    fn is_x_member(path: &str) -> Option<&'static str> {
        match path {
            "X/data" => Some("data"),
            "X/indices" => Some("indices"),
            _ => None,
        }
    }

    /// Entries `lo..hi` of the kept values or indices.
    fn read_member(&self, member: &str, lo: u64, hi: u64) -> Result<DynArray> {
        let file_path = join(&self.base, member);
        let Some(map) = &self.remap else {
            let a = self.h5.read(&file_path, &[lo..hi])?;
            return Ok(self.convert(member, a));
        };
        if lo >= hi {
            return Ok(DynArray::zeros(
                if member == "data" {
                    self.data_type
                } else {
                    DType::I32
                },
                &[0],
            ));
        }
        // A block's reader asks for indices, then data, of the same range: the positions
        // kept, found while remapping the indices, serve the data read.
        if member == "data"
            && let Some((plo, phi, flo, positions)) =
                self.picked.lock().ok().and_then(|mut p| p.take())
            && (plo, phi) == (lo, hi)
        {
            let span = flo..flo + positions.last().map_or(0, |&p| p as u64 + 1);
            let data = self.h5.read(&file_path, &[span])?;
            return Ok(self.convert(member, engine_matrix::take_1d(&data, &positions)));
        }
        // The rows holding kept entries lo..hi, read from the file and filtered.
        let first = self.indptr.partition_point(|&p| p <= lo) - 1;
        let last = self.indptr.partition_point(|&p| p < hi);
        let (flo, fhi) = (self.raw_indptr[first], self.raw_indptr[last]);
        let raw = self.h5.read(&join(&self.base, "indices"), &[flo..fhi])?;
        let skip = (lo - self.indptr[first]) as usize;
        let want = (hi - lo) as usize;
        let mut positions = Vec::with_capacity(want);
        let mut indices: Vec<i32> = Vec::with_capacity(want);
        let mut seen = 0usize;
        let mut visit = |k: usize, j: i64| {
            if let Some(&m) = map.get(j as usize)
                && m != u32::MAX
            {
                if seen >= skip && positions.len() < want {
                    positions.push(k);
                    indices.push(m as i32);
                }
                seen += 1;
            }
        };
        match &raw {
            DynArray::I64(v) => v.iter().enumerate().for_each(|(k, &j)| visit(k, j)),
            DynArray::I32(v) => v
                .iter()
                .enumerate()
                .for_each(|(k, &j)| visit(k, i64::from(j))),
            DynArray::U32(v) => v
                .iter()
                .enumerate()
                .for_each(|(k, &j)| visit(k, i64::from(j))),
            other => other
                .to_i64_vec()
                .unwrap_or_default()
                .into_iter()
                .enumerate()
                .for_each(|(k, j)| visit(k, j)),
        }
        drop(raw);
        if positions.len() != want {
            return Err(Error::format(
                Location::new(self.h5.path(), format!("/{}", join(&self.base, "indices"))),
                "offsets and indices disagree (damaged file)",
            ));
        }
        Ok(if member == "indices" {
            if let Ok(mut p) = self.picked.lock() {
                *p = Some((lo, hi, flo, positions));
            }
            DynArray::I32(Array1::from(indices).into_dyn())
        } else {
            let span = flo..flo + positions.last().map_or(0, |&p| p as u64 + 1);
            let data = self.h5.read(&file_path, &[span])?;
            self.convert(member, engine_matrix::take_1d(&data, &positions))
        })
    }

    fn convert(&self, member: &str, a: DynArray) -> DynArray {
        match (member, a) {
            ("data", DynArray::I32(v)) => DynArray::F32(v.mapv(|x| x as f32)),
            (_, a) => a,
        }
    }
}

impl Store for TenxH5 {
    fn path(&self) -> &Path {
        self.h5.path()
    }

    fn is_remote(&self) -> bool {
        self.h5.is_remote()
    }

    fn format(&self) -> StoreFormat {
        StoreFormat::Tenx
    }

    fn node(&self, path: &str) -> Result<Option<NodeKind>> {
        self.meta.node(path)
    }

    fn children(&self, group: &str) -> Result<Vec<String>> {
        self.meta.children(group)
    }

    fn attributes(&self, path: &str) -> Result<Attrs> {
        self.meta.attributes(path)
    }

    fn array_info(&self, path: &str) -> Result<ArrayInfo> {
        let Some(member) = Self::is_x_member(path) else {
            return self.meta.array_info(path);
        };
        let mut info = self.h5.array_info(&join(&self.base, member))?;
        info.shape = vec![self.nnz];
        if member == "data" {
            info.dtype = StoredType::Plain(self.data_type);
        } else if self.remap.is_some() {
            info.dtype = StoredType::Plain(DType::I32);
        }
        Ok(info)
    }

    fn read(&self, path: &str, sel: &[Range<u64>]) -> Result<DynArray> {
        match Self::is_x_member(path) {
            Some(member) => match sel {
                [r] if r.start <= r.end && r.end <= self.nnz => {
                    self.read_member(member, r.start, r.end)
                }
                _ => Err(Error::internal(format!(
                    "read of /{path} with selection {sel:?} outside [{}]",
                    self.nnz
                ))),
            },
            None => self.meta.read(path, sel),
        }
    }

    fn read_records(&self, path: &str) -> Result<Vec<(String, DynArray)>> {
        self.meta.read_records(path)
    }
}
