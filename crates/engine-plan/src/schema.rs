//! What a node's AnnData value holds, known at plan time: shape, X's type and maps, obs/var
//! columns with their types, and the element keys.

use engine_matrix::DType;
use std::fmt::Write as _;

/// An obs/var column's type as the plan knows it before any data is read (bit widths and
/// missing values are the data's business).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    Bool,
    Int,
    Float,
    Str,
    Category,
}

impl ColType {
    /// The type of a column read from a file.
    pub fn of(column: &engine_store::Column) -> ColType {
        let values = match column {
            engine_store::Column::Categorical { .. } => return ColType::Category,
            engine_store::Column::Plain(a) => a.dtype(),
            engine_store::Column::Nullable { values, .. } => values.dtype(),
        };
        match values {
            DType::Bool => ColType::Bool,
            DType::F32 | DType::F64 => ColType::Float,
            DType::Str => ColType::Str,
            _ => ColType::Int,
        }
    }

    /// A frame's columns with their types, in order.
    pub fn columns(frame: &engine_store::Frame) -> Vec<(String, ColType)> {
        frame
            .columns
            .iter()
            .map(|(n, c)| (n.clone(), ColType::of(c)))
            .collect()
    }

    pub fn name(self) -> &'static str {
        match self {
            ColType::Bool => "bool",
            ColType::Int => "int",
            ColType::Float => "float",
            ColType::Str => "str",
            ColType::Category => "category",
        }
    }
}

/// What a node's AnnData value holds, known at plan time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Schema {
    pub n_obs: usize,
    pub n_vars: usize,
    pub x_dtype: Option<DType>,
    /// Whether X is stored sparse (CSR) as it flows.
    pub x_sparse: bool,
    /// Transformations applied to X since the scan, in order (e.g. `["scale"]`).
    pub x_maps: Vec<String>,
    /// `n_obs` (`n_vars`) is an upper bound: a filter upstream decides at run time.
    pub obs_bound: bool,
    pub var_bound: bool,
    /// obs and var columns with their types, in order.
    pub obs: Vec<(String, ColType)>,
    pub var: Vec<(String, ColType)>,
    /// `(key, columns)`.
    pub obsm: Vec<(String, usize)>,
    pub varm: Vec<(String, usize)>,
    pub obsp: Vec<String>,
    pub uns: Vec<String>,
}

impl Schema {
    pub fn has_obs(&self, name: &str) -> bool {
        self.obs.iter().any(|(k, _)| k == name)
    }

    pub fn has_var(&self, name: &str) -> bool {
        self.var.iter().any(|(k, _)| k == name)
    }

    /// Drops repeated element keys: a step that recomputes an element (a second `neighbors`,
    /// a `umap` on a file that has one) replaces it, keeping its place and taking the new width.
    pub fn dedup(&mut self) {
        fn keyed<T>(v: &mut Vec<(String, T)>) {
            let mut out: Vec<(String, T)> = Vec::with_capacity(v.len());
            for (k, c) in v.drain(..) {
                match out.iter_mut().find(|(o, _)| *o == k) {
                    Some(slot) => slot.1 = c,
                    None => out.push((k, c)),
                }
            }
            *v = out;
        }
        fn names(v: &mut Vec<String>) {
            let mut seen = std::collections::HashSet::new();
            v.retain(|k| seen.insert(k.clone()));
        }
        keyed(&mut self.obsm);
        keyed(&mut self.varm);
        keyed(&mut self.obs);
        keyed(&mut self.var);
        for v in [&mut self.obsp, &mut self.uns] {
            names(v);
        }
    }

    pub fn describe(&self) -> String {
        let bound = |b: bool| if b { "<=" } else { "" };
        let mut s = format!(
            "{}{} x {}{} {}{}",
            bound(self.obs_bound),
            self.n_obs,
            bound(self.var_bound),
            self.n_vars,
            if self.x_sparse { "csr " } else { "" },
            self.x_dtype.map_or("?".to_string(), |d| d.to_string())
        );
        if !self.x_maps.is_empty() {
            let _ = write!(s, " X={}", self.x_maps.join("∘"));
        }
        let list = |name: &str, v: &[String]| {
            if v.is_empty() {
                String::new()
            } else {
                format!(" {name}[{}]", v.join(","))
            }
        };
        let typed = |v: &[(String, ColType)]| {
            v.iter()
                .map(|(k, t)| format!("{k}:{}", t.name()))
                .collect::<Vec<_>>()
        };
        s += &list("obs", &typed(&self.obs));
        s += &list("var", &typed(&self.var));
        s += &list(
            "obsm",
            &self
                .obsm
                .iter()
                .map(|(k, c)| format!("{k}:{c}"))
                .collect::<Vec<_>>(),
        );
        s += &list(
            "varm",
            &self
                .varm
                .iter()
                .map(|(k, c)| format!("{k}:{c}"))
                .collect::<Vec<_>>(),
        );
        s += &list("obsp", &self.obsp);
        s += &list("uns", &self.uns);
        s
    }
}
