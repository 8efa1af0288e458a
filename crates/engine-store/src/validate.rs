//! `engine validate`: reads every element of a file and checks every invariant anndata relies
//! on, collecting all problems (each with its element path) instead of stopping at the first.
//!
//! Errors are what makes anndata refuse the file or read something other than what was
//! meant; warnings are legal but worth knowing (unsorted sparse indices, duplicate names,
//! elements anndata ignores).

use crate::backend::{NodeKind, Store, StoreFormat, StoredType, join};
use crate::dataset::{axis_len, open_store};
use crate::encoding::{Encoding, encoding_of, frame_layout, read_column, read_value, sparse_info};
use crate::matrix::{Matrix, MatrixLayout};
use crate::value::Column;
use engine_common::Error;
use engine_matrix::{AxisSelection, Block, SparseFormat};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// anndata refuses the file, or reads something other than what was meant.
    Error,
    /// Legal, but worth knowing.
    Warning,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem, at one element (`/X/indptr`, `/obs/cell_type`, `/` for the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    pub element: String,
    pub message: String,
}

/// What validating a file found.
#[derive(Debug, Clone)]
pub struct Report {
    pub path: PathBuf,
    pub format: Option<StoreFormat>,
    /// `(n_obs, n_vars)`, when the axes could be worked out.
    pub shape: Option<(usize, usize)>,
    /// Elements read and checked.
    pub elements: usize,
    pub problems: Vec<Problem>,
}

impl Report {
    /// No errors (warnings allowed).
    pub fn is_valid(&self) -> bool {
        self.problems.iter().all(|p| p.severity != Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
    }
}

/// The groups an AnnData file has at its root.
const SLOTS: [&str; 10] = [
    "X", "obs", "var", "obsm", "varm", "obsp", "varp", "layers", "uns", "raw",
];

/// Encodings anndata writes that this engine does not decode: checked for presence only.
const KNOWN_UNREAD: [&str; 1] = ["awkward-array"];

/// Validates the file or store at `path`, reading every element; matrices are streamed in
/// blocks of about `block_bytes`.
pub fn validate(path: &Path, block_bytes: usize) -> Report {
    let mut report = Report {
        path: path.to_path_buf(),
        format: None,
        shape: None,
        elements: 0,
        problems: Vec::new(),
    };
    let store = match open_store(path) {
        Ok(store) => store,
        Err(e) => {
            report.problems.push(problem_from(&e, ""));
            return report;
        }
    };
    report.format = Some(store.format());
    let mut v = Validator {
        store,
        misfit: HashSet::new(),
        problems: Vec::new(),
        elements: 0,
        block_bytes: block_bytes.max(1),
    };
    report.shape = v.run();
    report.elements = v.elements;
    report.problems = v.problems;
    report
}

/// The structural problems `convert` refuses a file for: the root is not AnnData, or an
/// element does not fit the axes (layers obs × var, obsm/varm rows, obsp/varp square, obsm/varm
/// dataframes indexed by the obs/var names), as anndata checks when it builds the object.
pub fn structure_problems(store: &Arc<dyn Store>, n_obs: usize, n_vars: usize) -> Vec<Problem> {
    let mut v = Validator {
        store: store.clone(),
        misfit: HashSet::new(),
        problems: Vec::new(),
        elements: 0,
        block_bytes: 1,
    };
    v.root();
    v.fits(n_obs, n_vars);
    v.problems
        .into_iter()
        .filter(|p| p.severity == Severity::Error)
        .collect()
}

struct Validator {
    store: Arc<dyn Store>,
    /// Elements whose shape does not fit the axes: reported once, never read (a declared
    /// shape can be anything, so reading it could take forever).
    misfit: HashSet<String>,
    problems: Vec<Problem>,
    elements: usize,
    block_bytes: usize,
}

/// `/path`, as problems name elements.
fn slash(path: &str) -> String {
    format!("/{}", path.trim_start_matches('/'))
}

impl Validator {
    /// The store, as a handle independent of `self` (checks borrow `self` mutably).
    fn arc(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    fn push(&mut self, severity: Severity, path: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            severity,
            element: slash(path),
            message: message.into(),
        });
    }

    fn error(&mut self, path: &str, message: impl Into<String>) {
        self.push(Severity::Error, path, message);
    }

    fn warn(&mut self, path: &str, message: impl Into<String>) {
        self.push(Severity::Warning, path, message);
    }

    /// Records an error the readers raised, at the element it names (or `path`).
    fn fail(&mut self, path: &str, e: &Error) {
        self.problems.push(problem_from(e, path));
    }

    /// Runs every check; returns the axes' lengths when they could be worked out.
    fn run(&mut self) -> Option<(usize, usize)> {
        let arc = self.arc();
        let s = arc.as_ref();
        self.root();
        let children = match s.children("") {
            Ok(c) => c,
            Err(e) => {
                self.fail("", &e);
                return None;
            }
        };
        for c in &children {
            if !SLOTS.contains(&c.as_str()) {
                self.warn(c, "not part of AnnData: anndata ignores it");
            }
        }
        let x = match s.node("X") {
            Ok(Some(_)) => match Matrix::open(arc.clone(), "X") {
                Ok(m) => Some(m),
                Err(e) => {
                    self.fail("X", &e);
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                self.fail("X", &e);
                None
            }
        };
        let axis = |v: &mut Self, name: &str, from_x: Option<usize>| -> Option<usize> {
            match axis_len(s, name) {
                Ok(Some(n)) => Some(n),
                Ok(None) => {
                    if from_x.is_some() {
                        v.warn(name, "missing: anndata numbers the rows 0, 1, …");
                    } else {
                        v.error(name, "missing, and there is no X to take its length from");
                    }
                    from_x
                }
                Err(e) => {
                    v.fail(name, &e);
                    from_x
                }
            }
        };
        let n_obs = axis(self, "obs", x.as_ref().map(Matrix::n_rows));
        let n_vars = axis(self, "var", x.as_ref().map(Matrix::n_cols));
        for (name, n) in [("obs", n_obs), ("var", n_vars)] {
            if s.node(name).ok().flatten().is_some() {
                self.frame(name, n);
            }
        }
        if let Some(x) = &x {
            if let (Some(o), Some(v)) = (n_obs, n_vars)
                && (x.shape().len() != 2 || x.n_rows() != o || x.n_cols() != v)
            {
                self.error(
                    "X",
                    format!(
                        "shape {:?} does not match the {o} obs × {v} var of obs and var",
                        x.shape()
                    ),
                );
            } else {
                self.matrix(x);
            }
        }
        if let (Some(o), Some(v)) = (n_obs, n_vars) {
            self.fits(o, v);
        }
        self.groups();
        self.raw(n_obs);
        if s.node("uns").ok().flatten().is_some() {
            self.tree("uns");
        }
        Some((n_obs?, n_vars?))
    }

    fn root(&mut self) {
        let attrs = match self.store.attributes("") {
            Ok(a) => a,
            Err(e) => return self.fail("", &e),
        };
        match attrs.get("encoding-type").and_then(|v| v.as_str()) {
            Some("anndata") => {
                let version = attrs.get("encoding-version").and_then(|v| v.as_str());
                // anndata does not check the root's version when it reads.
                if version != Some("0.1.0") {
                    self.warn(
                        "",
                        format!(
                            "anndata encoding-version {} is not one anndata writes",
                            version.unwrap_or("(none)")
                        ),
                    );
                }
            }
            Some(t) => self.error(
                "",
                format!("the root's encoding-type is `{t}`, not `anndata`"),
            ),
            None => self.warn(
                "",
                "no encoding-type at the root (files from before anndata 0.8 have none)",
            ),
        }
    }

    /// Elements of layers, obsm, varm, obsp and varp fit the axes.
    fn fits(&mut self, o: usize, v: usize) {
        let arc = self.arc();
        let s = arc.as_ref();
        let (o64, v64) = (o as u64, v as u64);
        let kinds: [(&str, &[u64], bool, &str); 5] = [
            ("layers", &[o64, v64], true, "obs × var"),
            ("obsm", &[o64], false, "one row per obs"),
            ("varm", &[v64], false, "one row per var"),
            ("obsp", &[o64, o64], true, "obs × obs"),
            ("varp", &[v64, v64], true, "var × var"),
        ];
        for (group, want, exact, what) in kinds {
            if s.node(group).ok().flatten() != Some(NodeKind::Group) {
                continue;
            }
            let Ok(keys) = s.children(group) else {
                continue;
            };
            for key in keys {
                let path = join(group, &key);
                let Some(shape) = element_shape(s, &path) else {
                    continue;
                };
                let fits = shape.len() >= want.len()
                    && (!exact || shape.len() == want.len())
                    && want.iter().zip(&shape).all(|(w, n)| w == n);
                if !fits {
                    self.misfit.insert(path.clone());
                    self.error(
                        &path,
                        format!(
                            "shape {shape:?} does not fit the file's {o} obs × {v} var (needs {what})"
                        ),
                    );
                } else if matches!(group, "obsm" | "varm")
                    && encoding_of(s, &path).ok() == Some(Encoding::DataFrame)
                {
                    self.same_index(&path, if group == "obsm" { "obs" } else { "var" });
                }
            }
        }
    }

    /// A dataframe in obsm/varm is indexed by the obs/var names (anndata compares them).
    fn same_index(&mut self, path: &str, axis: &str) {
        let arc = self.arc();
        let s = arc.as_ref();
        let index = |p: &str| -> Option<Column> {
            let (name, _) = frame_layout(s, p).ok()?;
            read_column(s, &join(p, &name)).ok()
        };
        let axis_index = if s.node(axis).ok().flatten().is_some() {
            index(axis)
        } else {
            // Without obs/var anndata numbers the rows.
            element_shape(s, path)
                .and_then(|shape| shape.first().copied())
                .map(|n| Column::Plain(crate::encoding::str_array((0..n).map(|i| i.to_string()))))
        };
        if let (Some(a), Some(b)) = (axis_index, index(path))
            && (0..a.len().min(b.len())).any(|i| a.render(i) != b.render(i))
        {
            self.error(
                path,
                format!("its index is not the {axis} names (anndata refuses the file)"),
            );
        }
    }

    fn groups(&mut self) {
        let arc = self.arc();
        let s = arc.as_ref();
        for group in ["layers", "obsm", "varm", "obsp", "varp"] {
            match s.node(group) {
                Ok(Some(NodeKind::Group)) => {}
                Ok(Some(NodeKind::Array)) => {
                    // anndata < 0.7 kept obsm/varm as one structured array.
                    self.elements += 1;
                    if let Err(e) = s.read_records(group) {
                        self.fail(group, &e);
                    }
                    continue;
                }
                Ok(None) => continue,
                Err(e) => {
                    self.fail(group, &e);
                    continue;
                }
            }
            let keys = match s.children(group) {
                Ok(k) => k,
                Err(e) => {
                    self.fail(group, &e);
                    continue;
                }
            };
            for key in keys {
                let path = join(group, &key);
                if self.misfit.contains(&path) {
                    continue;
                }
                match encoding_of(s, &path) {
                    Ok(Encoding::Array | Encoding::Sparse(_)) => {
                        match Matrix::open(arc.clone(), &path) {
                            Ok(m) => self.matrix(&m),
                            Err(e) => self.fail(&path, &e),
                        }
                    }
                    Ok(Encoding::DataFrame) if matches!(group, "obsm" | "varm") => {
                        self.frame(&path, None)
                    }
                    Ok(_) if matches!(group, "obsm" | "varm") => self.tree(&path),
                    Ok(e) => self.error(
                        &path,
                        format!("encoding {} where a matrix belongs", e.name()),
                    ),
                    Err(e) => self.fail(&path, &e),
                }
            }
        }
    }

    fn raw(&mut self, n_obs: Option<usize>) {
        let arc = self.arc();
        let s = arc.as_ref();
        if s.node("raw").ok().flatten().is_none() {
            return;
        }
        let mut raw_vars = None;
        if s.node("raw/X").ok().flatten().is_some() {
            match Matrix::open(arc.clone(), "raw/X") {
                Ok(m) => {
                    raw_vars = Some(m.n_cols());
                    match n_obs {
                        Some(o) if m.n_rows() != o => self.error(
                            "raw/X",
                            format!("has {} rows but the file has {o} obs", m.n_rows()),
                        ),
                        _ => self.matrix(&m),
                    }
                }
                Err(e) => self.fail("raw/X", &e),
            }
        }
        if s.node("raw/var").ok().flatten().is_some() {
            self.frame("raw/var", raw_vars);
        }
        if s.node("raw/varm").ok().flatten().is_some() {
            self.tree("raw/varm");
        }
    }

    /// A dataframe: its index and every column decode (categoricals: codes in range, categories
    /// unique) and have `n` rows; duplicate names are a warning (anndata warns too).
    fn frame(&mut self, path: &str, n: Option<usize>) {
        let arc = self.arc();
        let s = arc.as_ref();
        self.elements += 1;
        match encoding_of(s, path) {
            Ok(Encoding::DataFrame) => {}
            Ok(Encoding::LegacyCompoundFrame | Encoding::DictFrame) => {
                match crate::encoding::read_frame(s, path, None) {
                    Ok(f) => {
                        if let Some(n) = n
                            && f.n_rows() != n
                        {
                            self.error(
                                path,
                                format!("has {} rows but the axis has {n}", f.n_rows()),
                            );
                        }
                    }
                    Err(e) => self.fail(path, &e),
                }
                return;
            }
            Ok(other) => {
                return self.error(
                    path,
                    format!("expected a dataframe, found {}", other.name()),
                );
            }
            Err(e) => return self.fail(path, &e),
        }
        let (index_name, columns) = match frame_layout(s, path) {
            Ok(l) => l,
            Err(e) => return self.fail(path, &e),
        };
        let index_path = join(path, &index_name);
        let rows = match read_column(s, &index_path) {
            Ok(index) => {
                let mut seen = HashSet::new();
                let dups = (0..index.len())
                    .filter(|&i| !seen.insert(index.render(i)))
                    .count();
                if dups > 0 {
                    self.warn(
                        &index_path,
                        format!(
                            "{dups} duplicate names (anndata warns; selecting by name is ambiguous)"
                        ),
                    );
                }
                Some(index.len())
            }
            Err(e) => {
                self.fail(&index_path, &e);
                None
            }
        };
        if let (Some(r), Some(n)) = (rows, n)
            && r != n
        {
            self.error(path, format!("has {r} rows but the axis has {n}"));
        }
        let present = s.children(path).unwrap_or_default();
        for c in &columns {
            if !present.contains(c) {
                self.error(path, format!("column-order names `{c}`, which is missing"));
            }
        }
        for c in present {
            if c != index_name && !columns.contains(&c) && c != "__categories" {
                self.warn(&join(path, &c), "not in column-order: anndata ignores it");
            }
        }
        for c in &columns {
            let cp = join(path, c);
            if s.node(&cp).ok().flatten().is_none() {
                continue;
            }
            self.elements += 1;
            match read_column(s, &cp) {
                Ok(col) => {
                    if let Some(r) = rows
                        && col.len() != r
                    {
                        self.error(&cp, format!("has {} rows but the index has {r}", col.len()));
                    }
                }
                Err(e) => self.fail(&cp, &e),
            }
        }
    }

    /// A matrix: every block decodes; sparse structure holds (indptr from 0 to nnz, monotone,
    /// indices in range); unsorted or repeated indices within a row are a warning.
    fn matrix(&mut self, m: &Matrix) {
        self.elements += 1;
        let path = m.path().to_string();
        let (n_major, row_bytes, sparse) = match m.layout() {
            MatrixLayout::Dense(info) => {
                let per_row: u64 = info.shape.iter().skip(1).product::<u64>().max(1);
                let n = info.shape.first().copied().unwrap_or(1) as usize;
                (n, per_row as usize * m.dtype().size(), None)
            }
            MatrixLayout::Sparse(info) => {
                let n = if info.format == SparseFormat::Csr {
                    info.shape[0]
                } else {
                    info.shape[1]
                };
                let avg = (info.nnz as usize / n.max(1)).max(1) * (m.dtype().size() + 4);
                (n, avg, Some(info.format))
            }
        };
        if sparse.is_some() {
            match m.indptr() {
                Ok(Some(p)) => {
                    if p.first().copied().unwrap_or(0) != 0 {
                        self.error(&join(&path, "indptr"), format!("starts at {}, not 0", p[0]));
                    }
                    if p.last().copied().unwrap_or(0) != m.nnz() {
                        self.error(
                            &join(&path, "indptr"),
                            format!(
                                "ends at {} but data has {} entries",
                                p.last().copied().unwrap_or(0),
                                m.nnz()
                            ),
                        );
                    }
                }
                Ok(None) => {}
                Err(e) => return self.fail(&path, &e),
            }
        }
        if m.shape().is_empty() {
            if let Err(e) = m.read_all() {
                self.fail(&path, &e);
            }
            return;
        }
        let per = (self.block_bytes / row_bytes.max(1)).max(1);
        let mut unsorted = 0usize;
        let mut first_unsorted = None;
        let mut start = 0;
        while start < n_major {
            let end = (start + per).min(n_major);
            let range = AxisSelection::range(start..end);
            let block = match sparse {
                Some(SparseFormat::Csc) => m.read_block(&AxisSelection::all(m.n_rows()), &range),
                _ => m.read_block(
                    &range,
                    &AxisSelection::all(if m.shape().len() > 1 { m.n_cols() } else { 1 }),
                ),
            };
            match block {
                Ok(Block::Sparse(c)) => {
                    for k in 0..c.n_major() {
                        let (lo, hi) = (c.indptr[k] as usize, c.indptr[k + 1] as usize);
                        if c.indices[lo..hi].windows(2).any(|w| w[0] >= w[1]) {
                            unsorted += 1;
                            first_unsorted.get_or_insert(start + k);
                        }
                    }
                }
                Ok(Block::Dense(_)) => {}
                Err(e) => return self.fail(&path, &e),
            }
            start = end;
        }
        if let Some(first) = first_unsorted {
            self.warn(
                &join(&path, "indices"),
                format!(
                    "unsorted or repeated within {unsorted} {} (first: {first}); anndata reads it, \
                     but scipy marks it non-canonical",
                    if sparse == Some(SparseFormat::Csc) {
                        "columns"
                    } else {
                        "rows"
                    }
                ),
            );
        }
    }

    /// Any element: groups recurse, everything else is decoded in full.
    fn tree(&mut self, path: &str) {
        let arc = self.arc();
        let s = arc.as_ref();
        match encoding_of(s, path) {
            Ok(Encoding::Dict) => {
                self.elements += 1;
                match s.children(path) {
                    Ok(children) => {
                        for c in children {
                            self.tree(&join(path, &c));
                        }
                    }
                    Err(e) => self.fail(path, &e),
                }
            }
            Ok(Encoding::DataFrame) => self.frame(path, None),
            Ok(Encoding::Unknown { kind, version }) => {
                self.elements += 1;
                if KNOWN_UNREAD.contains(&kind.as_str()) {
                    self.warn(
                        path,
                        format!("encoding {kind} {version} is not checked by this engine (copied as stored)"),
                    );
                } else {
                    self.error(
                        path,
                        format!(
                            "unknown encoding `{kind}` version `{version}`: anndata cannot read it"
                        ),
                    );
                }
            }
            Ok(_) => {
                self.elements += 1;
                match read_value(s, path) {
                    Ok(_) => {}
                    // A value the engine holds no type for (complex numbers) is not damage.
                    Err(Error::Unsupported { what, .. })
                        if s.array_info(path)
                            .is_ok_and(|i| matches!(i.dtype, StoredType::Compound(_))) =>
                    {
                        if let Err(e) = s.read_records(path) {
                            self.fail(path, &e);
                        } else {
                            let _ = what;
                        }
                    }
                    Err(e) => self.fail(path, &e),
                }
            }
            Err(e) => self.fail(path, &e),
        }
    }
}

/// An error the readers raised, as a problem at the element it names (or `path`).
fn problem_from(e: &Error, path: &str) -> Problem {
    let (element, message) = match e {
        Error::Format { location, message } | Error::Io { location, message } => {
            (location.element.clone(), message.clone())
        }
        Error::Unsupported { location, what } => {
            (location.element.clone(), format!("unsupported {what}"))
        }
        other => (None, other.to_string()),
    };
    Problem {
        severity: Severity::Error,
        element: slash(&element.unwrap_or_else(|| path.to_string())),
        message,
    }
}

/// The shape of an element without reading its data (arrays, sparse matrices, dataframes).
fn element_shape(s: &dyn Store, path: &str) -> Option<Vec<u64>> {
    match encoding_of(s, path).ok()? {
        Encoding::Sparse(f) => sparse_info(s, path, f)
            .ok()
            .map(|i| i.shape.iter().map(|&n| n as u64).collect()),
        Encoding::DataFrame => axis_len(s, path).ok().flatten().map(|n| vec![n as u64]),
        _ if s.node(path).ok()? == Some(NodeKind::Array) => {
            s.array_info(path).ok().map(|i| i.shape)
        }
        _ => None,
    }
}
