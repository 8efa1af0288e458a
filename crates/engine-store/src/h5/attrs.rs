//! Attributes as JSON: reading them back, and writing them in h5py's types.

use super::vlu;
use hdf5::types::{TypeDescriptor as TD, VarLenAscii, VarLenUnicode};
use serde_json::{Number, Value as Json};

/// Converts one attribute to JSON; `None` for kinds with no JSON form (object references).
pub(super) fn attr_json(a: &hdf5::Attribute) -> hdf5::Result<Option<Json>> {
    let td = a.dtype()?.to_descriptor()?;
    let scalar = a.ndim() == 0;
    let strings = |v: Vec<String>| -> Json {
        if scalar {
            Json::String(v.into_iter().next().unwrap_or_default())
        } else {
            Json::Array(v.into_iter().map(Json::String).collect())
        }
    };
    Ok(Some(match td {
        TD::VarLenUnicode => strings(
            a.read_raw::<VarLenUnicode>()?
                .iter()
                .map(|s| String::from_utf8_lossy(s.as_bytes()).into_owned())
                .collect(),
        ),
        TD::VarLenAscii => strings(
            a.read_raw::<VarLenAscii>()?
                .iter()
                .map(|s| String::from_utf8_lossy(s.as_bytes()).into_owned())
                .collect(),
        ),
        TD::FixedAscii(_) | TD::FixedUnicode(_) => {
            // Attributes cannot be sliced; read as bytes of a widened fixed type.
            use hdf5::types::{FixedAscii, FixedUnicode};
            let v: Vec<String> = if matches!(td, TD::FixedAscii(_)) {
                a.read_raw::<FixedAscii<4096>>()?
                    .iter()
                    .map(|s| String::from_utf8_lossy(s.as_bytes()).into_owned())
                    .collect()
            } else {
                a.read_raw::<FixedUnicode<4096>>()?
                    .iter()
                    .map(|s| String::from_utf8_lossy(s.as_bytes()).into_owned())
                    .collect()
            };
            strings(v)
        }
        TD::Boolean => {
            let v = a.read_raw::<bool>()?;
            if scalar {
                Json::Bool(v.first().copied().unwrap_or(false))
            } else {
                Json::Array(v.into_iter().map(Json::Bool).collect())
            }
        }
        TD::Integer(_) | TD::Unsigned(_) => {
            let v = a.read_raw::<i64>()?;
            if scalar {
                Json::Number(v.first().copied().unwrap_or(0).into())
            } else {
                Json::Array(v.into_iter().map(|x| Json::Number(x.into())).collect())
            }
        }
        TD::Float(_) => {
            let v = a.read_raw::<f64>()?;
            let num = |x: f64| Number::from_f64(x).map_or(Json::Null, Json::Number);
            if scalar {
                num(v.first().copied().unwrap_or(f64::NAN))
            } else {
                Json::Array(v.into_iter().map(num).collect())
            }
        }
        _ => return Ok(None),
    }))
}

/// Writes one attribute in the types h5py produces for the same Python values.
pub(super) fn write_attr(loc: &hdf5::Location, name: &str, v: &Json) -> hdf5::Result<()> {
    if loc.attr_names()?.iter().any(|n| n == name) {
        loc.delete_attr(name)?;
    }
    match v {
        Json::String(s) => loc
            .new_attr::<VarLenUnicode>()
            .create(name)?
            .write_scalar(&vlu(s)?),
        Json::Bool(b) => loc.new_attr::<bool>().create(name)?.write_scalar(b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => loc.new_attr::<i64>().create(name)?.write_scalar(&i),
            None => loc
                .new_attr::<f64>()
                .create(name)?
                .write_scalar(&n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::Array(items) if items.is_empty() => {
            // anndata writes an empty column-order as an empty float64 array.
            loc.new_attr_builder()
                .with_data(&Vec::<f64>::new())
                .create(name)
                .map(|_| ())
        }
        Json::Array(items) if items.iter().all(|x| x.is_string()) => {
            let v: Vec<VarLenUnicode> = items
                .iter()
                .map(|x| vlu(x.as_str().unwrap_or("")))
                .collect::<hdf5::Result<_>>()?;
            loc.new_attr_builder()
                .with_data(&v)
                .create(name)
                .map(|_| ())
        }
        Json::Array(items) if items.iter().all(|x| x.is_i64()) => {
            let v: Vec<i64> = items.iter().filter_map(|x| x.as_i64()).collect();
            loc.new_attr_builder()
                .with_data(&v)
                .create(name)
                .map(|_| ())
        }
        Json::Array(items) if items.iter().all(|x| x.is_number()) => {
            let v: Vec<f64> = items.iter().filter_map(|x| x.as_f64()).collect();
            loc.new_attr_builder()
                .with_data(&v)
                .create(name)
                .map(|_| ())
        }
        Json::Array(items) if items.iter().all(|x| x.is_boolean()) => {
            let v: Vec<bool> = items.iter().filter_map(|x| x.as_bool()).collect();
            loc.new_attr_builder()
                .with_data(&v)
                .create(name)
                .map(|_| ())
        }
        other => loc
            .new_attr::<VarLenUnicode>()
            .create(name)?
            .write_scalar(&vlu(&other.to_string())?),
    }
}
