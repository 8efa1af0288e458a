//! In-memory AnnData values, one variant per on-disk encoding so a read followed by a write
//! reproduces what anndata would see (code widths, nullable masks, category types).

use engine_matrix::{Compressed, DType, DynArray};
use std::collections::BTreeMap;

/// One column of a dataframe (or a standalone 1-D element), as encoded on disk.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// `array` (numeric or bool) or `string-array`.
    Plain(DynArray),
    /// `categorical`: integer codes (-1 = missing) into `categories`.
    Categorical {
        codes: DynArray,
        categories: DynArray,
        ordered: bool,
    },
    /// `nullable-integer`, `nullable-boolean` or `nullable-string-array`: `mask` true = missing.
    /// `na_value` is the string array's `na-value` attribute (`NaN` for pandas' `str` dtype,
    /// absent or `NA` for `string`), kept so pandas gets back the same dtype.
    Nullable {
        values: DynArray,
        mask: Vec<bool>,
        na_value: Option<String>,
    },
}

impl Column {
    pub fn len(&self) -> usize {
        match self {
            Column::Plain(a) => a.len(),
            Column::Categorical { codes, .. } => codes.len(),
            Column::Nullable { mask, .. } => mask.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The encoding name anndata uses for this column.
    pub fn encoding(&self) -> &'static str {
        match self {
            Column::Plain(a) if a.dtype() == DType::Str => "string-array",
            Column::Plain(_) => "array",
            Column::Categorical { .. } => "categorical",
            Column::Nullable { values, .. } => match values.dtype() {
                DType::Bool => "nullable-boolean",
                DType::Str => "nullable-string-array",
                _ => "nullable-integer",
            },
        }
    }

    /// A short type description for `inspect`.
    pub fn type_name(&self) -> String {
        match self {
            Column::Plain(a) => a.dtype().to_string(),
            Column::Categorical {
                categories,
                ordered,
                ..
            } => format!(
                "category[{}; {} levels{}]",
                categories.dtype(),
                categories.len(),
                if *ordered { ", ordered" } else { "" }
            ),
            Column::Nullable { values, .. } => format!("{}?", values.dtype()),
        }
    }

    /// Value `i` rendered as text (`NA` for missing), for previews.
    pub fn render(&self, i: usize) -> String {
        match self {
            Column::Plain(a) => render_scalar(a, i),
            Column::Categorical {
                codes, categories, ..
            } => {
                // Only element i: previews must not convert a whole column per value.
                let c = engine_matrix::take_1d(codes, &[i])
                    .to_i64_vec()
                    .and_then(|v| v.first().copied())
                    .unwrap_or(-1);
                if c < 0 {
                    "NA".into()
                } else {
                    render_scalar(categories, c as usize)
                }
            }
            Column::Nullable { values, mask, .. } => {
                if mask[i] {
                    "NA".into()
                } else {
                    render_scalar(values, i)
                }
            }
        }
    }

    /// Rows at `positions`, keeping the encoding.
    pub fn take(&self, positions: &[usize]) -> Column {
        use engine_matrix::take_1d;
        match self {
            Column::Plain(a) => Column::Plain(take_1d(a, positions)),
            Column::Categorical {
                codes,
                categories,
                ordered,
            } => Column::Categorical {
                codes: take_1d(codes, positions),
                categories: categories.clone(),
                ordered: *ordered,
            },
            Column::Nullable {
                values,
                mask,
                na_value,
            } => Column::Nullable {
                na_value: na_value.clone(),
                values: take_1d(values, positions),
                mask: positions.iter().map(|&p| mask[p]).collect(),
            },
        }
    }
}

/// Renders element `i` of a 1-D array (strings without quotes).
pub fn render_scalar(a: &DynArray, i: usize) -> String {
    engine_matrix::dyn_map!(a, v => v.iter().nth(i).map_or_else(|| "?".to_string(), |x| format!("{x:?}").trim_matches('"').to_string()))
}

/// A dataframe element (`obs`, `var`, or one inside `uns` / `obsm`).
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The name the index is stored under (`_index` attribute): `_index`, `index`, `cell_id`, …
    pub index_name: String,
    pub index: Column,
    /// Columns in `column-order`.
    pub columns: Vec<(String, Column)>,
}

impl Frame {
    pub fn n_rows(&self) -> usize {
        self.index.len()
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    /// An index of `"0", "1", …` as anndata creates for unnamed rows.
    pub fn with_range_index(n: usize) -> Frame {
        let idx: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        Frame {
            index_name: "_index".into(),
            index: Column::Plain(DynArray::Str(ndarray::Array1::from(idx).into_dyn())),
            columns: vec![],
        }
    }

    /// Rows at `positions`.
    pub fn take(&self, positions: &[usize]) -> Frame {
        Frame {
            index_name: self.index_name.clone(),
            index: self.index.take(positions),
            columns: self
                .columns
                .iter()
                .map(|(n, c)| (n.clone(), c.take(positions)))
                .collect(),
        }
    }
}

/// Any AnnData element, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `array` of any rank (0-d arrays only via `Scalar`), or `string-array`.
    Array(DynArray),
    Sparse(Compressed),
    Frame(Frame),
    /// Categorical, nullable or other 1-D encoded column outside a dataframe.
    Column(Column),
    /// `dict`: a group of named elements.
    Dict(BTreeMap<String, Value>),
    /// `rec-array`: a 1-D structured array, one named array per field.
    Records(Vec<(String, DynArray)>),
    /// `numeric-scalar` (a 0-d array).
    Scalar(DynArray),
    /// `string`.
    String(String),
    /// `null` (Python's `None`).
    Null,
}

impl Value {
    /// The anndata encoding type this value is written with.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Array(a) if a.dtype() == DType::Str => "string-array",
            Value::Array(_) => "array",
            Value::Sparse(c) => c.format.encoding(),
            Value::Frame(_) => "dataframe",
            Value::Column(c) => c.encoding(),
            Value::Dict(_) => "dict",
            Value::Records(_) => "rec-array",
            Value::Scalar(_) => "numeric-scalar",
            Value::String(_) => "string",
            Value::Null => "null",
        }
    }
}
