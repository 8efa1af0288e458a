//! Structured (record) arrays in zarr: numpy structured dtypes in v2 (`[["names", "<U12"],
//! ["scores", "<f4"]]`) and the `struct` data type in v3 (fields of numeric types and
//! `fixed_length_utf32`), as anndata writes `rec-array` elements (`rank_genes_groups`).
//!
//! zarrs has no struct type, so records travel through it as raw bytes of the record width
//! (`|V{n}` / `r{8n}`) and are packed and unpacked here. Records are packed (no padding), which
//! is what numpy and zarr-python write.
//!
//! Complex numbers are records too: h5py stores them as an HDF5 compound `{r, i}`, so a zarr
//! `<c16` / `complex128` array reads as those two fields and two such fields write back as
//! complex, which is what Python sees on either side.

use super::dtype::{self, fixed_width, numpy_num, v3_numeric};
use engine_matrix::{DType, DynArray};
use ndarray::Array1;
use serde_json::{Value as Json, json};

/// How one field's bytes encode its values.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Num {
        dtype: DType,
        big_endian: bool,
    },
    /// numpy `U`: UTF-32 code units, zero padded.
    Utf32,
    /// numpy `S`: bytes, zero padded.
    Bytes,
}

#[derive(Debug, Clone, PartialEq)]
struct Field {
    name: String,
    kind: Kind,
    offset: usize,
    width: usize,
}

/// The widest record accepted (1 MiB): far past real ones, far below overflow.
const MAX_RECORD: usize = 1 << 20;

/// The byte layout of one record.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    fields: Vec<Field>,
    /// Bytes per record.
    pub width: usize,
}

impl Layout {
    pub fn names(&self) -> Vec<String> {
        self.fields.iter().map(|f| f.name.clone()).collect()
    }

    /// The complex type (`F32` for complex64, `F64` for complex128) when the records are
    /// exactly the fields `r` and `i` of one little-endian float type.
    fn complex(&self) -> Option<DType> {
        match self.fields.as_slice() {
            [r, i] if r.name == "r" && i.name == "i" && r.kind == i.kind => match r.kind {
                Kind::Num {
                    dtype: d @ (DType::F32 | DType::F64),
                    big_endian: false,
                } => Some(d),
                _ => None,
            },
            _ => None,
        }
    }

    fn complex_of(d: DType) -> Layout {
        let mut l = Layout {
            fields: vec![],
            width: 0,
        };
        for name in ["r", "i"] {
            let kind = Kind::Num {
                dtype: d,
                big_endian: false,
            };
            let fits = l.push(name.into(), kind, d.size());
            debug_assert!(fits, "two floats fit a record");
        }
        l
    }

    /// Adds a field; `false` when the record would pass [`MAX_RECORD`] (corrupt metadata).
    #[must_use]
    fn push(&mut self, name: String, kind: Kind, width: usize) -> bool {
        let Some(end) = self.width.checked_add(width).filter(|&e| e <= MAX_RECORD) else {
            return false;
        };
        self.fields.push(Field {
            name,
            kind,
            offset: self.width,
            width,
        });
        self.width = end;
        true
    }
}

/// The v2 structured dtype (a list of `[name, type]`), or why it cannot be read. `None` when
/// `dtype` is not structured at all.
pub fn parse_v2(dtype: &Json) -> Option<Result<Layout, String>> {
    match dtype.as_str() {
        Some("<c8") => return Some(Ok(Layout::complex_of(DType::F32))),
        Some("<c16") => return Some(Ok(Layout::complex_of(DType::F64))),
        _ => {}
    }
    let fields = dtype.as_array()?;
    let mut out = Layout {
        fields: vec![],
        width: 0,
    };
    for f in fields {
        let parts = f.as_array().map(Vec::as_slice).unwrap_or_default();
        let (Some(name), Some(ty)) = (
            parts.first().and_then(Json::as_str),
            parts.get(1).and_then(Json::as_str),
        ) else {
            return Some(Err(format!("structured field {f} is not [name, type]")));
        };
        if parts.len() > 2 {
            return Some(Err(format!(
                "structured field `{name}` is a sub-array {}",
                parts[2]
            )));
        }
        let (kind, width) = if let Some((d, big)) = numpy_num(ty) {
            (
                Kind::Num {
                    dtype: d,
                    big_endian: big,
                },
                d.size(),
            )
        } else if let Some((n, utf32)) = fixed_width(ty) {
            (if utf32 { Kind::Utf32 } else { Kind::Bytes }, n)
        } else {
            return Some(Err(format!("structured field `{name}` has type {ty}")));
        };
        if !out.push(name.to_string(), kind, width) {
            return Some(Err(format!(
                "structured field `{name}` makes records too wide"
            )));
        }
    }
    Some(Ok(out))
}

/// The v3 `struct` data type (zarr-python 3's `structured` spelling too), or why it cannot be
/// read; `None` when `data_type` is not a struct. `big_endian` comes from the `bytes` codec.
pub fn parse_v3(data_type: &Json, big_endian: bool) -> Option<Result<Layout, String>> {
    match data_type.as_str() {
        Some("complex64") if !big_endian => return Some(Ok(Layout::complex_of(DType::F32))),
        Some("complex128") if !big_endian => return Some(Ok(Layout::complex_of(DType::F64))),
        _ => {}
    }
    let name = data_type.get("name")?.as_str()?;
    if name != "struct" && name != "structured" {
        return None;
    }
    let fields = data_type.pointer("/configuration/fields")?.as_array()?;
    let mut out = Layout {
        fields: vec![],
        width: 0,
    };
    for f in fields {
        // `{"name": ..., "data_type": ...}` (struct) or `[name, type]` (structured).
        let (fname, ty) = match f {
            Json::Object(o) => (o.get("name").and_then(Json::as_str), o.get("data_type")),
            Json::Array(a) => (a.first().and_then(Json::as_str), a.get(1)),
            _ => (None, None),
        };
        let (Some(fname), Some(ty)) = (fname, ty) else {
            return Some(Err(format!("struct field {f} has no name or type")));
        };
        let (kind, width) = match ty {
            Json::String(s) => match v3_numeric(s) {
                Some(d) => (
                    Kind::Num {
                        dtype: d,
                        big_endian,
                    },
                    d.size(),
                ),
                None => return Some(Err(format!("struct field `{fname}` has type {s}"))),
            },
            Json::Object(o) => {
                let n = ty
                    .pointer("/configuration/length_bytes")
                    .and_then(Json::as_u64)
                    .map(|n| n as usize);
                match (o.get("name").and_then(Json::as_str), n) {
                    (Some("fixed_length_utf32"), Some(n)) if n % 4 == 0 => (Kind::Utf32, n),
                    (Some("null_terminated_bytes" | "fixed_length_bytes"), Some(n)) => {
                        (Kind::Bytes, n)
                    }
                    _ => return Some(Err(format!("struct field `{fname}` has type {ty}"))),
                }
            }
            _ => return Some(Err(format!("struct field `{fname}` has type {ty}"))),
        };
        if !out.push(fname.to_string(), kind, width) {
            return Some(Err(format!(
                "struct field `{fname}` makes records too wide"
            )));
        }
    }
    Some(Ok(out))
}

fn zero_padded_utf32(c: &[u8], big: bool) -> String {
    c.chunks_exact(4)
        .map(|u| {
            let b = [u[0], u[1], u[2], u[3]];
            if big {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        })
        .take_while(|&u| u != 0)
        .map(|u| char::from_u32(u).unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// Unpacks `bytes` (whole records) into one 1-D array per field.
pub fn decode(layout: &Layout, bytes: &[u8]) -> Vec<(String, DynArray)> {
    let recs: Vec<&[u8]> = bytes.chunks_exact(layout.width.max(1)).collect();
    layout
        .fields
        .iter()
        .map(|f| {
            let cells: Vec<&[u8]> = recs
                .iter()
                .map(|r| &r[f.offset..f.offset + f.width])
                .collect();
            macro_rules! num {
                ($t:ty, $v:ident, $big:expr) => {{
                    let v: Vec<$t> = cells
                        .iter()
                        .map(|c| {
                            let b = (*c).try_into().expect("field has the type's width");
                            if $big {
                                <$t>::from_be_bytes(b)
                            } else {
                                <$t>::from_le_bytes(b)
                            }
                        })
                        .collect();
                    DynArray::$v(Array1::from(v).into_dyn())
                }};
            }
            let a = match &f.kind {
                Kind::Num { dtype, big_endian } => {
                    let big = *big_endian;
                    match dtype {
                        DType::Bool => DynArray::Bool(
                            Array1::from(cells.iter().map(|c| c[0] != 0).collect::<Vec<_>>())
                                .into_dyn(),
                        ),
                        DType::I8 => num!(i8, I8, big),
                        DType::I16 => num!(i16, I16, big),
                        DType::I32 => num!(i32, I32, big),
                        DType::I64 => num!(i64, I64, big),
                        DType::U8 => num!(u8, U8, big),
                        DType::U16 => num!(u16, U16, big),
                        DType::U32 => num!(u32, U32, big),
                        DType::U64 => num!(u64, U64, big),
                        DType::F32 => num!(f32, F32, big),
                        DType::F64 => num!(f64, F64, big),
                        DType::Str => unreachable!("numeric kinds only"),
                    }
                }
                Kind::Utf32 => DynArray::Str(
                    Array1::from(
                        cells
                            .iter()
                            .map(|c| zero_padded_utf32(c, false))
                            .collect::<Vec<_>>(),
                    )
                    .into_dyn(),
                ),
                Kind::Bytes => DynArray::Str(
                    Array1::from(
                        cells
                            .iter()
                            .map(|c| {
                                let end = c.iter().position(|&b| b == 0).unwrap_or(c.len());
                                String::from_utf8_lossy(&c[..end]).into_owned()
                            })
                            .collect::<Vec<_>>(),
                    )
                    .into_dyn(),
                ),
            };
            (f.name.clone(), a)
        })
        .collect()
}

/// Packs 1-D fields of equal length into little-endian records; strings become UTF-32 of
/// their longest value, as anndata writes them to zarr.
///
/// # Errors
/// When fields are not 1-D or differ in length.
pub fn encode(fields: &[(String, DynArray)]) -> Result<(Layout, Vec<u8>), String> {
    let n = crate::backend::record_rows(fields)?;
    let mut layout = Layout {
        fields: vec![],
        width: 0,
    };
    for (name, a) in fields {
        match a {
            DynArray::Str(s) => {
                let chars = s.iter().map(|x| x.chars().count()).max().unwrap_or(0);
                if !layout.push(name.clone(), Kind::Utf32, chars.max(1).saturating_mul(4)) {
                    return Err(format!(
                        "record field `{name}` holds text too long for a record"
                    ));
                }
            }
            other => {
                let d = other.dtype();
                let kind = Kind::Num {
                    dtype: d,
                    big_endian: false,
                };
                if !layout.push(name.clone(), kind, d.size()) {
                    return Err(format!("record field `{name}` makes records too wide"));
                }
            }
        }
    }
    let mut bytes = vec![0u8; layout.width * n];
    for (f, (_, a)) in layout.fields.iter().zip(fields) {
        let mut put = |i: usize, b: &[u8]| {
            let at = i * layout.width + f.offset;
            bytes[at..at + b.len()].copy_from_slice(b);
        };
        match a {
            DynArray::Str(s) => {
                for (i, x) in s.iter().enumerate() {
                    let b: Vec<u8> = x.chars().flat_map(|c| (c as u32).to_le_bytes()).collect();
                    put(i, &b);
                }
            }
            DynArray::Bool(v) => v.iter().enumerate().for_each(|(i, &x)| put(i, &[x as u8])),
            DynArray::I8(v) => v
                .iter()
                .enumerate()
                .for_each(|(i, x)| put(i, &x.to_le_bytes())),
            DynArray::I16(v) => v
                .iter()
                .enumerate()
                .for_each(|(i, x)| put(i, &x.to_le_bytes())),
            DynArray::I32(v) => v
                .iter()
                .enumerate()
                .for_each(|(i, x)| put(i, &x.to_le_bytes())),
            DynArray::I64(v) => v
                .iter()
                .enumerate()
                .for_each(|(i, x)| put(i, &x.to_le_bytes())),
            DynArray::U8(v) => v
                .iter()
                .enumerate()
                .for_each(|(i, x)| put(i, &x.to_le_bytes())),
            DynArray::U16(v) => v
                .iter()
                .enumerate()
                .for_each(|(i, x)| put(i, &x.to_le_bytes())),
            DynArray::U32(v) => v
                .iter()
                .enumerate()
                .for_each(|(i, x)| put(i, &x.to_le_bytes())),
            DynArray::U64(v) => v
                .iter()
                .enumerate()
                .for_each(|(i, x)| put(i, &x.to_le_bytes())),
            DynArray::F32(v) => v
                .iter()
                .enumerate()
                .for_each(|(i, x)| put(i, &x.to_le_bytes())),
            DynArray::F64(v) => v
                .iter()
                .enumerate()
                .for_each(|(i, x)| put(i, &x.to_le_bytes())),
        }
    }
    Ok((layout, bytes))
}

/// The v2 `dtype` of a layout made by [`encode`].
pub fn v2_dtype(layout: &Layout) -> Json {
    match layout.complex() {
        Some(DType::F32) => return json!("<c8"),
        Some(_) => return json!("<c16"),
        None => {}
    }
    Json::Array(
        layout
            .fields
            .iter()
            .map(|f| {
                let ty = match &f.kind {
                    Kind::Num { dtype, .. } => dtype::v2_dtype(*dtype).to_string(),
                    Kind::Utf32 => format!("<U{}", f.width / 4),
                    Kind::Bytes => format!("|S{}", f.width),
                };
                json!([f.name, ty])
            })
            .collect(),
    )
}

/// The v2 `fill_value` of a layout made by [`encode`]: zero bytes for structured types
/// (base64, as numpy writes them), a zero pair for complex numbers.
pub fn v2_fill(layout: &Layout) -> Json {
    match layout.complex() {
        Some(_) => json!([0.0, 0.0]),
        None => json!(super::zero_base64(layout.width)),
    }
}

/// The v3 `struct` data type and fill value of a layout made by [`encode`].
pub fn v3_dtype(layout: &Layout) -> (Json, Json) {
    match layout.complex() {
        Some(DType::F32) => return (json!("complex64"), json!([0.0, 0.0])),
        Some(_) => return (json!("complex128"), json!([0.0, 0.0])),
        None => {}
    }
    let mut fill = serde_json::Map::new();
    let fields: Vec<Json> = layout
        .fields
        .iter()
        .map(|f| {
            let (ty, zero) = match &f.kind {
                Kind::Num { dtype, .. } => (json!(dtype.numpy_name()), dtype::fill(*dtype)),
                Kind::Utf32 => (
                    json!({"name": "fixed_length_utf32", "configuration": {"length_bytes": f.width}}),
                    json!(""),
                ),
                Kind::Bytes => (
                    json!({"name": "null_terminated_bytes", "configuration": {"length_bytes": f.width}}),
                    json!(""),
                ),
            };
            fill.insert(f.name.clone(), zero);
            json!({"name": f.name, "data_type": ty})
        })
        .collect();
    (
        json!({"name": "struct", "configuration": {"fields": fields}}),
        Json::Object(fill),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Packing then unpacking gives the fields back, and the v2 dtype is what numpy writes.
    #[test]
    fn records_round_trip_through_bytes() {
        let fields = vec![
            (
                "names".to_string(),
                DynArray::Str(array!["CD3E".to_string(), "é".into(), String::new()].into_dyn()),
            ),
            (
                "scores".into(),
                DynArray::F32(array![1.5f32, -2.0, 0.0].into_dyn()),
            ),
            (
                "hit".into(),
                DynArray::Bool(array![true, false, true].into_dyn()),
            ),
        ];
        let (layout, bytes) = encode(&fields).unwrap();
        assert_eq!(layout.width, 16 + 4 + 1);
        assert_eq!(bytes.len(), 3 * 21);
        assert_eq!(
            v2_dtype(&layout),
            json!([["names", "<U4"], ["scores", "<f4"], ["hit", "|b1"]])
        );
        assert_eq!(parse_v2(&v2_dtype(&layout)).unwrap().unwrap(), layout);
        let (v3, _) = v3_dtype(&layout);
        assert_eq!(parse_v3(&v3, false).unwrap().unwrap(), layout);
        assert_eq!(decode(&layout, &bytes), fields);
    }

    /// Big-endian numbers and byte strings, as old numpy files may hold them.
    #[test]
    fn big_endian_and_byte_string_fields_decode() {
        let layout = parse_v2(&json!([["a", ">i4"], ["s", "|S3"]]))
            .unwrap()
            .unwrap();
        let mut bytes = (-2i32).to_be_bytes().to_vec();
        bytes.extend(b"ab\0");
        let got = decode(&layout, &bytes);
        assert_eq!(got[0].1, DynArray::I32(array![-2].into_dyn()));
        assert_eq!(got[1].1, DynArray::Str(array!["ab".to_string()].into_dyn()));
        assert!(parse_v2(&json!([["a", "<f4", [2]]])).unwrap().is_err());
        // Widths that would overflow are refused, not computed.
        assert!(
            parse_v2(&json!([["s", "|S18446744073709551615"], ["f", "<f4"]]))
                .unwrap()
                .is_err()
        );
        assert!(
            parse_v2(&json!([["u", "<U4611686018427387904"]]))
                .unwrap()
                .is_err()
        );
        assert!(parse_v2(&json!("<f4")).is_none());
    }

    /// Two float fields `r` and `i` are complex numbers in zarr, as h5py makes them in HDF5.
    #[test]
    fn complex_numbers_are_r_i_records() {
        let fields = vec![
            ("r".to_string(), DynArray::F64(array![1.0, 0.0].into_dyn())),
            ("i".to_string(), DynArray::F64(array![2.0, 3.0].into_dyn())),
        ];
        let (layout, bytes) = encode(&fields).unwrap();
        assert_eq!(v2_dtype(&layout), json!("<c16"));
        assert_eq!(v3_dtype(&layout).0, json!("complex128"));
        assert_eq!(
            parse_v3(&json!("complex128"), false).unwrap().unwrap(),
            layout
        );
        assert_eq!(parse_v2(&json!("<c16")).unwrap().unwrap(), layout);
        assert_eq!(decode(&layout, &bytes), fields);
        // Not complex: other names, or mixed types.
        let (other, _) = encode(&[fields[0].clone()]).unwrap();
        assert!(v2_dtype(&other).is_array());
    }
}
