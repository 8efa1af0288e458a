//! Writing `.h5ad` files: [`H5Writer`] and its [`StoreWriter`] implementation.

use super::attrs::write_attr;
use super::{hyperslab, vlu};
use crate::backend::{ArrayOptions, Attrs, Compression, StoreWriter};
use engine_common::{Error, Location, Result};
use engine_matrix::{DType, DynArray, dyn_map};
use hdf5::Dataset;
use hdf5::types::VarLenUnicode;
use ndarray::{ArrayD, IxDyn};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Writes a new `.h5ad` file.
#[derive(Debug)]
pub struct H5Writer {
    file: hdf5::File,
    path: PathBuf,
    /// Disk was reserved past HDF5's end (see `reserve_for_strings`).
    reserved: bool,
}

impl H5Writer {
    /// Creates (truncates) the file.
    ///
    /// # Errors
    /// When the file cannot be created.
    pub fn create(path: &Path) -> Result<H5Writer> {
        let file = hdf5::File::create(path).map_err(|e| Error::io(Location::file(path), e))?;
        Ok(H5Writer {
            file,
            path: path.to_path_buf(),
            reserved: false,
        })
    }

    /// Reserves disk for writing these strings to the global heap (see [`super::raw::reserve`]):
    /// their bytes, a heap object header, padding and a reference each, and a margin.
    fn reserve_for_strings<'s>(
        &mut self,
        path: &str,
        strings: impl Iterator<Item = &'s String>,
    ) -> Result<()> {
        let (n, bytes) = strings.fold((0u64, 0u64), |(n, b), s| (n + 1, b + s.len() as u64));
        let need = bytes + 40 * n + (1 << 20);
        self.reserved = true;
        super::raw::reserve(&self.file, &self.path, need).map_err(|e| {
            Error::io(
                Location::new(&self.path, format!("/{path}")),
                format!("cannot reserve {need} bytes of disk to write strings: {e}"),
            )
        })
    }

    fn err(&self, path: &str, e: impl std::fmt::Display) -> Error {
        Error::io(Location::new(&self.path, format!("/{path}")), e)
    }
}

impl StoreWriter for H5Writer {
    fn create_group(&mut self, path: &str, attrs: &Attrs) -> Result<()> {
        let loc = if path.is_empty() {
            (**self.file).clone()
        } else {
            match self.file.group(path) {
                Ok(g) => (*g).clone(),
                Err(_) => (*self
                    .file
                    .create_group(path)
                    .map_err(|e| self.err(path, e))?)
                .clone(),
            }
        };
        for (k, v) in attrs {
            write_attr(&loc, k, v).map_err(|e| self.err(path, e))?;
        }
        Ok(())
    }

    fn create_array(
        &mut self,
        path: &str,
        dtype: DType,
        shape: &[u64],
        opts: &ArrayOptions,
        attrs: &Attrs,
    ) -> Result<()> {
        let dims: Vec<usize> = shape.iter().map(|&s| s as usize).collect();
        let empty = dims.contains(&0);
        // Chunking only when asked for or needed by compression; scalars and empty arrays never.
        let chunk: Option<Vec<usize>> = if dims.is_empty() || empty {
            None
        } else {
            match (&opts.chunks, &opts.compression) {
                (Some(c), _) => Some(
                    crate::backend::fit_chunks(c, shape)
                        .into_iter()
                        .map(|c| c as usize)
                        .collect(),
                ),
                (None, Compression::None) => None,
                (None, _) => Some(
                    crate::backend::default_chunks(shape, dtype)
                        .into_iter()
                        .map(|c| c as usize)
                        .collect(),
                ),
            }
        };
        macro_rules! build {
            ($t:ty) => {{
                let b = self.file.new_dataset::<$t>();
                if dims.is_empty() {
                    b.create(path)
                } else {
                    let mut b = b.shape(dims.clone());
                    if let Some(c) = &chunk {
                        b = b.chunk(c.clone());
                        b = match &opts.compression {
                            Compression::None => b,
                            Compression::Gzip(l) => b.shuffle().deflate(*l as u8),
                            Compression::Zstd(l) => {
                                b.blosc_zstd(u8::try_from(*l).unwrap_or(9).min(9), true)
                            }
                            Compression::Blosc { cname, clevel, .. } => match cname.as_str() {
                                "zstd" => b.blosc_zstd(*clevel, true),
                                "zlib" => b.blosc_zlib(*clevel, true),
                                "blosclz" => b.blosc_blosclz(*clevel, true),
                                _ => b.blosc_lz4(*clevel, true),
                            },
                        };
                    }
                    b.create(path)
                }
            }};
        }
        let res = match dtype {
            DType::Bool => build!(bool),
            DType::I8 => build!(i8),
            DType::I16 => build!(i16),
            DType::I32 => build!(i32),
            DType::I64 => build!(i64),
            DType::U8 => build!(u8),
            DType::U16 => build!(u16),
            DType::U32 => build!(u32),
            DType::U64 => build!(u64),
            DType::F32 => build!(f32),
            DType::F64 => build!(f64),
            DType::Str => build!(VarLenUnicode),
        };
        let ds = res.map_err(|e| self.err(path, e))?;
        for (k, v) in attrs {
            write_attr(&ds, k, v).map_err(|e| self.err(path, e))?;
        }
        Ok(())
    }

    fn create_null(&mut self, path: &str, attrs: &Attrs) -> Result<()> {
        // anndata's `h5py.Empty("f")`: float32 with a null dataspace.
        let ds = self
            .file
            .new_dataset::<f32>()
            .shape(hdf5::Extents::Null)
            .create(path)
            .map_err(|e| self.err(path, e))?;
        for (k, v) in attrs {
            write_attr(&ds, k, v).map_err(|e| self.err(path, e))?;
        }
        Ok(())
    }

    fn write(&mut self, path: &str, offset: &[u64], data: &DynArray) -> Result<()> {
        let ds = self.file.dataset(path).map_err(|e| self.err(path, e))?;
        let shape = data.shape().to_vec();
        if shape.is_empty() {
            let r = dyn_map!(data, a => {
                let v = a.iter().next().cloned().ok_or_else(|| Error::internal("empty scalar"))?;
                write_scalar(&ds, v)
            });
            return r.map_err(|e| self.err(path, e));
        }
        if shape.contains(&0) {
            return Ok(());
        }
        let sel: Vec<Range<u64>> = offset
            .iter()
            .zip(&shape)
            .map(|(&o, &n)| o..o + n as u64)
            .collect();
        let slab = hyperslab(&sel);
        if let DynArray::Str(a) = data {
            self.reserve_for_strings(path, a.iter())?;
        }
        let r = match data {
            DynArray::Str(a) => {
                let v: hdf5::Result<ArrayD<VarLenUnicode>> = a
                    .iter()
                    .map(|s| vlu(s))
                    .collect::<hdf5::Result<Vec<_>>>()
                    .map(|v| ArrayD::from_shape_vec(IxDyn(&shape), v).expect("same element count"));
                v.and_then(|v| ds.write_slice(&v, slab))
            }
            DynArray::Bool(a) => ds.write_slice(&a.as_standard_layout(), slab),
            DynArray::I8(a) => ds.write_slice(&a.as_standard_layout(), slab),
            DynArray::I16(a) => ds.write_slice(&a.as_standard_layout(), slab),
            DynArray::I32(a) => ds.write_slice(&a.as_standard_layout(), slab),
            DynArray::I64(a) => ds.write_slice(&a.as_standard_layout(), slab),
            DynArray::U8(a) => ds.write_slice(&a.as_standard_layout(), slab),
            DynArray::U16(a) => ds.write_slice(&a.as_standard_layout(), slab),
            DynArray::U32(a) => ds.write_slice(&a.as_standard_layout(), slab),
            DynArray::U64(a) => ds.write_slice(&a.as_standard_layout(), slab),
            DynArray::F32(a) => ds.write_slice(&a.as_standard_layout(), slab),
            DynArray::F64(a) => ds.write_slice(&a.as_standard_layout(), slab),
        };
        r.map_err(|e| self.err(path, e))
    }

    fn write_records(
        &mut self,
        path: &str,
        fields: &[(String, DynArray)],
        attrs: &Attrs,
    ) -> Result<()> {
        use hdf5::types::{CompoundField, CompoundType, TypeDescriptor as TD};
        let n = crate::backend::record_rows(fields).map_err(|why| {
            Error::unsupported(Location::new(&self.path, format!("/{path}")), why)
        })?;
        let mut members = Vec::with_capacity(fields.len());
        let mut size = 0;
        for (i, (name, a)) in fields.iter().enumerate() {
            let ty = match a.dtype() {
                DType::Str => TD::VarLenUnicode,
                d => super::descriptor(d),
            };
            let width = ty.size();
            members.push(CompoundField::new(name, ty, size, i));
            size += width;
        }
        let td = TD::Compound(CompoundType {
            fields: members,
            size,
        });
        let ds = self
            .file
            .new_dataset_builder()
            .empty_as(&td)
            // Packed like numpy's record arrays: anndata cannot read padded records back.
            .packed(true)
            .shape([n])
            .create(path)
            .map_err(|e| self.err(path, e))?;
        for (name, a) in fields {
            if let DynArray::Str(s) = a {
                self.reserve_for_strings(path, s.iter())?;
            }
            super::raw::write_compound_field(&ds, name, a).map_err(|e| self.err(path, e))?;
        }
        for (k, v) in attrs {
            write_attr(&ds, k, v).map_err(|e| self.err(path, e))?;
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        let path = self.path.clone();
        let reserved = self.reserved;
        self.file
            .close()
            .map_err(|e| Error::io(Location::file(&path), e))?;
        if reserved {
            // HDF5 truncates to what it used only when it wrote past it; what a reservation
            // added and nothing used goes now, so the output is no larger than written.
            let used = hdf5::File::open(&path)
                .ok()
                .and_then(|f| super::raw::end_of_allocation(&f));
            if let Some(used) = used
                && std::fs::metadata(&path).is_ok_and(|m| m.len() > used)
            {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_len(used))
                    .map_err(|e| Error::io(Location::file(&path), e))?;
            }
        }
        Ok(())
    }
}

/// Writes a 0-d dataset's value.
trait ScalarWrite {
    fn write_to(&self, ds: &Dataset) -> hdf5::Result<()>;
}

macro_rules! scalar_write {
    ($($t:ty),*) => {$(
        impl ScalarWrite for $t {
            fn write_to(&self, ds: &Dataset) -> hdf5::Result<()> { ds.write_scalar(self) }
        }
    )*};
}
scalar_write!(bool, i8, i16, i32, i64, u8, u16, u32, u64, f32, f64);

impl ScalarWrite for String {
    fn write_to(&self, ds: &Dataset) -> hdf5::Result<()> {
        ds.write_scalar(&vlu(self)?)
    }
}

fn write_scalar<T: ScalarWrite>(ds: &Dataset, v: T) -> hdf5::Result<()> {
    v.write_to(ds)
}
