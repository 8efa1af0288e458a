//! zarr's names for element types, both ways: numpy type strings (v2, and the fields of
//! structured dtypes), v3 data type names, fixed-width strings, and the fill value each
//! written type gets. One table each, shared by the reader, the writer and the record codec.

use engine_matrix::DType;
use serde_json::{Value as Json, json};

/// A numpy type string (`<f4`, `|b1`, `>i8`) as a numeric type and whether it is big-endian.
pub(super) fn numpy_num(s: &str) -> Option<(DType, bool)> {
    let big = s.starts_with('>');
    let d = match s.trim_start_matches(['<', '>', '|', '=']) {
        "b1" => DType::Bool,
        "i1" => DType::I8,
        "i2" => DType::I16,
        "i4" => DType::I32,
        "i8" => DType::I64,
        "u1" => DType::U8,
        "u2" => DType::U16,
        "u4" => DType::U32,
        "u8" => DType::U64,
        "f4" => DType::F32,
        "f8" => DType::F64,
        _ => return None,
    };
    Some((d, big))
}

/// A zarr v3 numeric data type name (`float32`, `bool`).
pub(super) fn v3_numeric(s: &str) -> Option<DType> {
    Some(match s {
        "bool" => DType::Bool,
        "int8" => DType::I8,
        "int16" => DType::I16,
        "int32" => DType::I32,
        "int64" => DType::I64,
        "uint8" => DType::U8,
        "uint16" => DType::U16,
        "uint32" => DType::U32,
        "uint64" => DType::U64,
        "float32" => DType::F32,
        "float64" => DType::F64,
        _ => return None,
    })
}

/// Fixed-width numpy strings (`<U12`: UTF-32, `|S8`: bytes) as (bytes per element, is
/// UTF-32); `None` for other types and for widths whose byte count overflows.
pub(super) fn fixed_width(dtype: &str) -> Option<(usize, bool)> {
    let (utf32, n) = if let Some(n) = dtype.strip_prefix("<U") {
        (true, n)
    } else if let Some(n) = dtype.strip_prefix("|S") {
        (false, n)
    } else {
        return None;
    };
    let n: usize = n.parse().ok()?;
    Some((if utf32 { n.checked_mul(4)? } else { n }, utf32))
}

/// The numpy type string a written array gets (v2).
pub(super) fn v2_dtype(d: DType) -> &'static str {
    match d {
        DType::Bool => "|b1",
        DType::I8 => "|i1",
        DType::I16 => "<i2",
        DType::I32 => "<i4",
        DType::I64 => "<i8",
        DType::U8 => "|u1",
        DType::U16 => "<u2",
        DType::U32 => "<u4",
        DType::U64 => "<u8",
        DType::F32 => "<f4",
        DType::F64 => "<f8",
        DType::Str => "|O",
    }
}

/// The data type name a written array gets (v3).
pub(super) fn v3_dtype(d: DType) -> &'static str {
    match d {
        DType::Str => "string",
        other => other.numpy_name(),
    }
}

/// The fill value a written array (or record field) of `d` gets.
pub(super) fn fill(d: DType) -> Json {
    match d {
        DType::Bool => json!(false),
        DType::Str => json!(""),
        DType::F32 | DType::F64 => json!(0.0),
        _ => json!(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_widths_count_bytes_and_refuse_overflow() {
        assert_eq!(fixed_width("<U12"), Some((48, true)));
        assert_eq!(fixed_width("|S8"), Some((8, false)));
        assert_eq!(fixed_width("<f4"), None);
        // 2^62 UTF-32 characters: 2^64 bytes, which wrapped to 0 before.
        assert_eq!(fixed_width("<U4611686018427387904"), None);
        assert_eq!(numpy_num(">i8"), Some((DType::I64, true)));
        assert_eq!(v3_numeric("float32"), Some(DType::F32));
    }
}
