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

/// The transformations applied to X since the scan: how many, and the last few by name. Only
/// the tail is kept so a node's size (and its EXPLAIN line) does not grow with the length of
/// the chain above it; a 100k-step chain made the plan quadratic in memory.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct XMaps {
    count: usize,
    last: std::collections::VecDeque<&'static str>,
}

impl XMaps {
    /// How many names EXPLAIN shows.
    const SHOWN: usize = 4;

    pub fn push(&mut self, name: &'static str) {
        self.count += 1;
        if self.last.len() == Self::SHOWN {
            self.last.pop_front();
        }
        self.last.push_back(name);
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// How many maps were applied.
    pub fn len(&self) -> usize {
        self.count
    }
}

impl std::fmt::Display for XMaps {
    /// `log1p∘scale`, or `(7 more)∘a∘b∘c∘d` past the shown tail.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = self.count - self.last.len();
        if hidden > 0 {
            write!(f, "({hidden} more)∘")?;
        }
        let names: Vec<&str> = self.last.iter().copied().collect();
        f.write_str(&names.join("∘"))
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
    /// Transformations applied to X since the scan.
    pub x_maps: XMaps,
    /// `n_obs` (`n_vars`) is an upper bound: a filter upstream decides at run time.
    pub obs_bound: bool,
    pub var_bound: bool,
    /// The name obs's (var's) index takes in SQL; empty when the plan does not know it.
    pub obs_index: String,
    pub var_index: String,
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

    /// obs (var) as it will look, with no rows: the index and every column with a value type
    /// of its kind (categories as strings). `None` when the index name is unknown.
    pub fn empty_frame(&self, var: bool) -> Option<engine_store::Frame> {
        use engine_matrix::DynArray;
        use engine_store::Column;
        let (index, columns) = if var {
            (&self.var_index, &self.var)
        } else {
            (&self.obs_index, &self.obs)
        };
        if index.is_empty() {
            return None;
        }
        let empty = |t: ColType| -> DynArray {
            let d = ndarray::IxDyn(&[0]);
            match t {
                ColType::Bool => DynArray::Bool(ndarray::ArrayD::from_elem(d, false)),
                ColType::Int => DynArray::I64(ndarray::ArrayD::from_elem(d, 0)),
                ColType::Float => DynArray::F64(ndarray::ArrayD::from_elem(d, 0.0)),
                ColType::Str | ColType::Category => {
                    DynArray::Str(ndarray::ArrayD::from_elem(d, String::new()))
                }
            }
        };
        Some(engine_store::Frame {
            index_name: index.clone(),
            index: Column::Plain(empty(ColType::Str)),
            columns: columns
                .iter()
                .map(|(name, t)| {
                    let c = match t {
                        ColType::Category => Column::Categorical {
                            codes: DynArray::I32(ndarray::ArrayD::from_elem(
                                ndarray::IxDyn(&[0]),
                                0,
                            )),
                            categories: empty(ColType::Str),
                            ordered: false,
                        },
                        t => Column::Plain(empty(*t)),
                    };
                    (name.clone(), c)
                })
                .collect(),
        })
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
            let _ = write!(s, " X={}", self.x_maps);
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

#[cfg(test)]
mod tests {
    use super::XMaps;

    #[test]
    fn x_maps_keep_a_bounded_tail() {
        let mut m = XMaps::default();
        assert!(m.is_empty());
        m.push("log1p");
        m.push("scale");
        assert_eq!(m.to_string(), "log1p∘scale");
        for _ in 0..10_000 {
            m.push("log1p");
        }
        m.push("scale");
        assert_eq!(m.len(), 10_003);
        assert_eq!(m.to_string(), "(9999 more)∘log1p∘log1p∘log1p∘scale");
    }
}
