//! Frames as Arrow record batches: categoricals become dictionary columns, nullable encodings
//! become Arrow nulls, and the index is the first column (its name in the schema metadata).

use crate::backend::{Store, StoredType, join};
use crate::encoding::{Encoding, encoding_of, frame_layout, read_frame};
use crate::value::{Column, Frame};
use arrow_array::types::{Int8Type, Int16Type, Int32Type, Int64Type};
use arrow_array::{
    ArrayRef, BooleanArray, DictionaryArray, Float32Array, Float64Array, Int8Array, Int16Array,
    Int32Array, Int64Array, RecordBatch, StringArray, UInt8Array, UInt16Array, UInt32Array,
    UInt64Array,
};
use arrow_schema::{DataType, Field, Schema};
use engine_common::{Error, Result};
use engine_matrix::{DType, DynArray};
use std::collections::HashMap;
use std::sync::Arc;

/// Schema metadata key naming the index column.
pub const INDEX_KEY: &str = "anndata:index";

fn plain(a: &DynArray, nulls: Option<&[bool]>) -> ArrayRef {
    let valid = |i: usize| nulls.is_none_or(|m| !m[i]);
    macro_rules! prim {
        ($arr:ty, $v:expr) => {
            Arc::new(<$arr>::from_iter(
                $v.iter().enumerate().map(|(i, x)| valid(i).then_some(*x)),
            )) as ArrayRef
        };
    }
    match a {
        DynArray::Bool(v) => Arc::new(BooleanArray::from_iter(
            v.iter().enumerate().map(|(i, x)| valid(i).then_some(*x)),
        )),
        DynArray::I8(v) => prim!(Int8Array, v),
        DynArray::I16(v) => prim!(Int16Array, v),
        DynArray::I32(v) => prim!(Int32Array, v),
        DynArray::I64(v) => prim!(Int64Array, v),
        DynArray::U8(v) => prim!(UInt8Array, v),
        DynArray::U16(v) => prim!(UInt16Array, v),
        DynArray::U32(v) => prim!(UInt32Array, v),
        DynArray::U64(v) => prim!(UInt64Array, v),
        DynArray::F32(v) => prim!(Float32Array, v),
        DynArray::F64(v) => prim!(Float64Array, v),
        DynArray::Str(v) => Arc::new(StringArray::from_iter(
            v.iter()
                .enumerate()
                .map(|(i, x)| valid(i).then_some(x.as_str())),
        )),
    }
}

fn column_array(c: &Column) -> Result<ArrayRef> {
    Ok(match c {
        Column::Plain(a) => plain(a, None),
        Column::Nullable { values, mask, .. } => plain(values, Some(mask)),
        Column::Categorical {
            codes, categories, ..
        } => {
            let values = plain(categories, None);
            let codes_v = codes
                .to_i64_vec()
                .ok_or_else(|| Error::internal("categorical codes are not integers"))?;
            macro_rules! dict {
                ($kt:ty, $arr:ty, $t:ty) => {{
                    let keys =
                        <$arr>::from_iter(codes_v.iter().map(|&c| (c >= 0).then_some(c as $t)));
                    Arc::new(
                        DictionaryArray::<$kt>::try_new(keys, values)
                            .map_err(|e| Error::internal(e.to_string()))?,
                    ) as ArrayRef
                }};
            }
            match codes {
                DynArray::I8(_) => dict!(Int8Type, Int8Array, i8),
                DynArray::I16(_) => dict!(Int16Type, Int16Array, i16),
                DynArray::I32(_) => dict!(Int32Type, Int32Array, i32),
                _ => dict!(Int64Type, Int64Array, i64),
            }
        }
    })
}

/// Converts a frame to a record batch with the index as the first column.
///
/// # Errors
/// Only on internal inconsistencies.
pub fn frame_to_batch(f: &Frame) -> Result<RecordBatch> {
    let mut fields = Vec::with_capacity(f.columns.len() + 1);
    let mut arrays = Vec::with_capacity(f.columns.len() + 1);
    let index_array = column_array(&f.index)?;
    fields.push(Field::new(
        &f.index_name,
        index_array.data_type().clone(),
        false,
    ));
    arrays.push(index_array);
    for (name, c) in &f.columns {
        let a = column_array(c)?;
        let mut field = Field::new(name, a.data_type().clone(), true);
        if let Column::Categorical { ordered: true, .. } = c {
            field =
                field.with_metadata(HashMap::from([("ordered".to_string(), "true".to_string())]));
        }
        fields.push(field);
        arrays.push(a);
    }
    let schema = Schema::new(fields).with_metadata(HashMap::from([(
        INDEX_KEY.to_string(),
        f.index_name.clone(),
    )]));
    RecordBatch::try_new(Arc::new(schema), arrays).map_err(|e| Error::internal(e.to_string()))
}

fn plain_type(d: DType) -> DataType {
    match d {
        DType::Bool => DataType::Boolean,
        DType::I8 => DataType::Int8,
        DType::I16 => DataType::Int16,
        DType::I32 => DataType::Int32,
        DType::I64 => DataType::Int64,
        DType::U8 => DataType::UInt8,
        DType::U16 => DataType::UInt16,
        DType::U32 => DataType::UInt32,
        DType::U64 => DataType::UInt64,
        DType::F32 => DataType::Float32,
        DType::F64 => DataType::Float64,
        DType::Str => DataType::Utf8,
    }
}

fn stored_type(store: &dyn Store, path: &str) -> Result<Option<DataType>> {
    Ok(match store.array_info(path)?.dtype {
        StoredType::Plain(d) => Some(plain_type(d)),
        _ => None,
    })
}

/// The Arrow type [`frame_to_batch`] gives a column, from metadata alone where the encoding
/// allows (`None`: the column must be read to know).
fn column_type(store: &dyn Store, path: &str) -> Result<Option<(DataType, bool)>> {
    Ok(match encoding_of(store, path)? {
        Encoding::Array | Encoding::StringArray => {
            if store.attributes(path)?.contains_key("categories") {
                None // anndata 0.7's `__categories`: read it.
            } else {
                stored_type(store, path)?.map(|t| (t, false))
            }
        }
        Encoding::Categorical => {
            let key = match store.array_info(&join(path, "codes"))?.dtype {
                StoredType::Plain(DType::I8) => DataType::Int8,
                StoredType::Plain(DType::I16) => DataType::Int16,
                StoredType::Plain(DType::I32) => DataType::Int32,
                _ => DataType::Int64,
            };
            let ordered = store
                .attributes(path)?
                .get("ordered")
                .is_some_and(|v| v.as_bool() == Some(true));
            stored_type(store, &join(path, "categories"))?
                .map(|v| (DataType::Dictionary(Box::new(key), Box::new(v)), ordered))
        }
        Encoding::NullableInteger | Encoding::NullableBoolean | Encoding::NullableString => {
            stored_type(store, &join(path, "values"))?.map(|t| (t, false))
        }
        _ => None,
    })
}

/// The schema [`frame_to_batch`] would give the dataframe at `path`, read from metadata only
/// (legacy layouts fall back to reading the frame).
///
/// # Errors
/// When the element is not a dataframe or is damaged.
pub fn frame_schema(store: &dyn Store, path: &str) -> Result<Schema> {
    let fallback = || -> Result<Schema> {
        let f = read_frame(store, path, None)?;
        Ok(frame_to_batch(&f)?.schema().as_ref().clone())
    };
    if !matches!(encoding_of(store, path)?, Encoding::DataFrame) {
        return fallback();
    }
    let (index_name, order) = frame_layout(store, path)?;
    let Some((index_type, _)) = column_type(store, &join(path, &index_name))? else {
        return fallback();
    };
    let mut fields = vec![Field::new(&index_name, index_type, false)];
    for name in &order {
        let Some((t, ordered)) = column_type(store, &join(path, name))? else {
            return fallback();
        };
        let mut field = Field::new(name, t, true);
        if ordered {
            field =
                field.with_metadata(HashMap::from([("ordered".to_string(), "true".to_string())]));
        }
        fields.push(field);
    }
    Ok(Schema::new(fields).with_metadata(HashMap::from([(INDEX_KEY.to_string(), index_name)])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;
    use ndarray::Array1;

    #[test]
    fn categoricals_become_dictionaries_and_masks_become_nulls() {
        let f = Frame {
            index_name: "cell".into(),
            index: Column::Plain(crate::encoding::str_array(["a", "b", "c"])),
            columns: vec![
                (
                    "ct".into(),
                    Column::Categorical {
                        codes: DynArray::I8(Array1::from(vec![1i8, -1, 0]).into_dyn()),
                        categories: crate::encoding::str_array(["B", "T"]),
                        ordered: true,
                    },
                ),
                (
                    "n".into(),
                    Column::Nullable {
                        values: DynArray::I32(Array1::from(vec![5, 6, 7]).into_dyn()),
                        mask: vec![false, true, false],
                        na_value: None,
                    },
                ),
            ],
        };
        let b = frame_to_batch(&f).unwrap();
        let schema = b.schema();
        assert_eq!(schema.field(0).name(), "cell");
        assert_eq!(schema.metadata()[INDEX_KEY], "cell");
        assert_eq!(
            schema.field(1).data_type(),
            &DataType::Dictionary(Box::new(DataType::Int8), Box::new(DataType::Utf8))
        );
        assert_eq!(schema.field(1).metadata()["ordered"], "true");
        let ct = b
            .column(1)
            .as_any()
            .downcast_ref::<DictionaryArray<Int8Type>>()
            .unwrap();
        assert_eq!(ct.null_count(), 1);
        assert_eq!(ct.keys().value(0), 1);
        let n = b.column(2).as_any().downcast_ref::<Int32Array>().unwrap();
        assert!(n.is_null(1) && n.value(2) == 7);
    }
}
