//! Element types as AnnData files store them, and arrays typed at run time.

use crate::LayoutError;
use ndarray::{ArrayD, IxDyn};
use std::fmt;

/// The element type of an on-disk array, as numpy names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    Bool,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F32,
    F64,
    /// Variable-length UTF-8 text.
    Str,
}

impl DType {
    /// numpy's name for the type (`float32`, `int64`, `bool`, `str`).
    pub fn numpy_name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::U8 => "uint8",
            DType::U16 => "uint16",
            DType::U32 => "uint32",
            DType::U64 => "uint64",
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::Str => "str",
        }
    }

    /// Bytes per element; strings count as a pointer-sized estimate.
    pub fn size(self) -> usize {
        match self {
            DType::Bool | DType::I8 | DType::U8 => 1,
            DType::I16 | DType::U16 => 2,
            DType::I32 | DType::U32 | DType::F32 => 4,
            DType::I64 | DType::U64 | DType::F64 | DType::Str => 8,
        }
    }

    pub fn is_numeric(self) -> bool {
        !matches!(self, DType::Str)
    }

    pub fn is_integer(self) -> bool {
        matches!(
            self,
            DType::I8
                | DType::I16
                | DType::I32
                | DType::I64
                | DType::U8
                | DType::U16
                | DType::U32
                | DType::U64
        )
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.numpy_name())
    }
}

/// An n-dimensional array whose element type is known only at run time.
#[derive(Debug, Clone, PartialEq)]
pub enum DynArray {
    Bool(ArrayD<bool>),
    I8(ArrayD<i8>),
    I16(ArrayD<i16>),
    I32(ArrayD<i32>),
    I64(ArrayD<i64>),
    U8(ArrayD<u8>),
    U16(ArrayD<u16>),
    U32(ArrayD<u32>),
    U64(ArrayD<u64>),
    F32(ArrayD<f32>),
    F64(ArrayD<f64>),
    Str(ArrayD<String>),
}

/// Applies `$body` to the inner `ndarray` of a [`DynArray`] whatever its element type.
#[macro_export]
macro_rules! dyn_map {
    ($value:expr, $a:ident => $body:expr) => {
        match $value {
            $crate::DynArray::Bool($a) => $body,
            $crate::DynArray::I8($a) => $body,
            $crate::DynArray::I16($a) => $body,
            $crate::DynArray::I32($a) => $body,
            $crate::DynArray::I64($a) => $body,
            $crate::DynArray::U8($a) => $body,
            $crate::DynArray::U16($a) => $body,
            $crate::DynArray::U32($a) => $body,
            $crate::DynArray::U64($a) => $body,
            $crate::DynArray::F32($a) => $body,
            $crate::DynArray::F64($a) => $body,
            $crate::DynArray::Str($a) => $body,
        }
    };
}

/// Like [`dyn_map!`] but rewraps the result in the same variant.
#[macro_export]
macro_rules! dyn_rewrap {
    ($value:expr, $a:ident => $body:expr) => {
        match $value {
            $crate::DynArray::Bool($a) => $crate::DynArray::Bool($body),
            $crate::DynArray::I8($a) => $crate::DynArray::I8($body),
            $crate::DynArray::I16($a) => $crate::DynArray::I16($body),
            $crate::DynArray::I32($a) => $crate::DynArray::I32($body),
            $crate::DynArray::I64($a) => $crate::DynArray::I64($body),
            $crate::DynArray::U8($a) => $crate::DynArray::U8($body),
            $crate::DynArray::U16($a) => $crate::DynArray::U16($body),
            $crate::DynArray::U32($a) => $crate::DynArray::U32($body),
            $crate::DynArray::U64($a) => $crate::DynArray::U64($body),
            $crate::DynArray::F32($a) => $crate::DynArray::F32($body),
            $crate::DynArray::F64($a) => $crate::DynArray::F64($body),
            $crate::DynArray::Str($a) => $crate::DynArray::Str($body),
        }
    };
}

impl DynArray {
    pub fn dtype(&self) -> DType {
        match self {
            DynArray::Bool(_) => DType::Bool,
            DynArray::I8(_) => DType::I8,
            DynArray::I16(_) => DType::I16,
            DynArray::I32(_) => DType::I32,
            DynArray::I64(_) => DType::I64,
            DynArray::U8(_) => DType::U8,
            DynArray::U16(_) => DType::U16,
            DynArray::U32(_) => DType::U32,
            DynArray::U64(_) => DType::U64,
            DynArray::F32(_) => DType::F32,
            DynArray::F64(_) => DType::F64,
            DynArray::Str(_) => DType::Str,
        }
    }

    pub fn shape(&self) -> &[usize] {
        dyn_map!(self, a => a.shape())
    }

    pub fn len(&self) -> usize {
        dyn_map!(self, a => a.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An empty array of the given type and shape filled with the type's zero.
    pub fn zeros(dtype: DType, shape: &[usize]) -> DynArray {
        let s = IxDyn(shape);
        match dtype {
            DType::Bool => DynArray::Bool(ArrayD::from_elem(s, false)),
            DType::I8 => DynArray::I8(ArrayD::zeros(s)),
            DType::I16 => DynArray::I16(ArrayD::zeros(s)),
            DType::I32 => DynArray::I32(ArrayD::zeros(s)),
            DType::I64 => DynArray::I64(ArrayD::zeros(s)),
            DType::U8 => DynArray::U8(ArrayD::zeros(s)),
            DType::U16 => DynArray::U16(ArrayD::zeros(s)),
            DType::U32 => DynArray::U32(ArrayD::zeros(s)),
            DType::U64 => DynArray::U64(ArrayD::zeros(s)),
            DType::F32 => DynArray::F32(ArrayD::zeros(s)),
            DType::F64 => DynArray::F64(ArrayD::zeros(s)),
            DType::Str => DynArray::Str(ArrayD::from_elem(s, String::new())),
        }
    }

    /// Reshapes a 1-D array without copying where possible.
    ///
    /// # Errors
    /// When the element count does not match `shape`.
    pub fn into_shape(self, shape: &[usize]) -> Result<DynArray, LayoutError> {
        let n: usize = shape.iter().product();
        if n != self.len() {
            return Err(LayoutError::new(format!(
                "cannot reshape {} elements to {:?}",
                self.len(),
                shape
            )));
        }
        Ok(dyn_rewrap!(self, a => {
            let v: Vec<_> = a.into_iter().collect();
            ArrayD::from_shape_vec(IxDyn(shape), v).expect("element count checked above")
        }))
    }

    /// Values as `f64`, for statistics and comparisons; strings are not numbers.
    pub fn to_f64_vec(&self) -> Option<Vec<f64>> {
        Some(match self {
            DynArray::Bool(a) => a.iter().map(|&v| v as u8 as f64).collect(),
            DynArray::I8(a) => a.iter().map(|&v| v as f64).collect(),
            DynArray::I16(a) => a.iter().map(|&v| v as f64).collect(),
            DynArray::I32(a) => a.iter().map(|&v| v as f64).collect(),
            DynArray::I64(a) => a.iter().map(|&v| v as f64).collect(),
            DynArray::U8(a) => a.iter().map(|&v| v as f64).collect(),
            DynArray::U16(a) => a.iter().map(|&v| v as f64).collect(),
            DynArray::U32(a) => a.iter().map(|&v| v as f64).collect(),
            DynArray::U64(a) => a.iter().map(|&v| v as f64).collect(),
            DynArray::F32(a) => a.iter().map(|&v| v as f64).collect(),
            DynArray::F64(a) => a.iter().copied().collect(),
            DynArray::Str(_) => return None,
        })
    }

    /// Integer values as `i64` (indptr, indices, categorical codes).
    pub fn to_i64_vec(&self) -> Option<Vec<i64>> {
        Some(match self {
            DynArray::Bool(a) => a.iter().map(|&v| v as i64).collect(),
            DynArray::I8(a) => a.iter().map(|&v| v as i64).collect(),
            DynArray::I16(a) => a.iter().map(|&v| v as i64).collect(),
            DynArray::I32(a) => a.iter().map(|&v| v as i64).collect(),
            DynArray::I64(a) => a.iter().copied().collect(),
            DynArray::U8(a) => a.iter().map(|&v| v as i64).collect(),
            DynArray::U16(a) => a.iter().map(|&v| v as i64).collect(),
            DynArray::U32(a) => a.iter().map(|&v| v as i64).collect(),
            DynArray::U64(a) => a.iter().map(|&v| v as i64).collect(),
            _ => return None,
        })
    }
}
