//! Rows of a CSR matrix by its row pointers, read once by a caller that comes back to the
//! same matrix many times (a minibatch loader): as a block, or decoded by the store straight
//! into the caller's buffers.

use super::{Matrix, MatrixLayout};
use crate::backend::{StoredType, join};
use crate::encoding::{SparseInfo, bad, to_indices, to_indptr};
use engine_common::{Error, Result};
use engine_matrix::{AxisSelection, Compressed, DType, DynArray, SparseFormat, concat_axis};
use std::ops::Range;
use std::sync::atomic::Ordering;

impl Matrix {
    /// The major-axis pointers of a sparse matrix (rows for CSR), checked to be monotonic.
    ///
    /// # Errors
    /// On damaged pointers or store failures.
    pub fn indptr(&self) -> Result<Option<Vec<u64>>> {
        let MatrixLayout::Sparse(info) = &self.layout else {
            return Ok(None);
        };
        let store = self.store.as_ref();
        let path = join(&self.path, "indptr");
        let n = info.shape[usize::from(info.format == SparseFormat::Csc)] as u64;
        let ptr = to_indptr(store, &path, &store.read(&path, &[0..n + 1])?)?;
        if let Some(p) = ptr.windows(2).position(|w| w[0] > w[1]) {
            return Err(bad(
                store,
                &path,
                format!("indptr is not monotonic at position {}", p + 1),
            ));
        }
        if ptr.last().copied().unwrap_or(0) > info.nnz {
            return Err(bad(store, &path, "indptr points past the end of data"));
        }
        Ok(Some(ptr))
    }

    /// Rows `rows` of a CSR matrix, every column, given its row pointers (`indptr`, read
    /// once by the caller): only `indices` and `data` are read, one range per run of rows.
    /// A reader that comes back to the same matrix many times (a minibatch loader) saves the
    /// pointers' chunks that every run would decode again.
    ///
    /// # Errors
    /// When the matrix is not CSR, the rows are out of range, or the store fails.
    pub fn read_csr_rows(&self, indptr: &[u64], rows: &AxisSelection) -> Result<Compressed> {
        let (info, ranges) = self.csr_runs(indptr, rows)?;
        let store = self.store.as_ref();
        let indices_path = join(&self.path, "indices");
        let data_path = join(&self.path, "data");
        let mut out_ptr = vec![0u64];
        let (mut idx_parts, mut data_parts) = (Vec::new(), Vec::new());
        for (r, &Range { start: lo, end: hi }) in rows.runs().iter().zip(&ranges) {
            let base = *out_ptr.last().unwrap_or(&0);
            out_ptr.extend(indptr[r.start + 1..=r.end].iter().map(|&p| p - lo + base));
            if hi > lo {
                let idx = store.read(&indices_path, &[lo..hi])?;
                idx_parts.push(to_indices(store, &indices_path, &idx, info.shape[1])?);
                data_parts.push(store.read(&data_path, &[lo..hi])?);
            }
        }
        let data = if data_parts.is_empty() {
            DynArray::zeros(info.dtype, &[0])
        } else {
            let refs: Vec<&DynArray> = data_parts.iter().collect();
            concat_axis(&refs, 0).map_err(|e| Error::internal(e.to_string()))?
        };
        let block = Compressed {
            format: SparseFormat::Csr,
            shape: [rows.len(), info.shape[1]],
            indptr: out_ptr,
            indices: idx_parts.concat(),
            data,
        };
        if let Some(c) = &self.counter {
            let bytes = block.nnz() * (block.data.dtype().size() + std::mem::size_of::<u32>())
                + block.indptr.len() * std::mem::size_of::<u64>();
            c.0.fetch_add(bytes as u64, Ordering::Relaxed);
        }
        Ok(block)
    }

    /// Rows `rows` of a CSR matrix straight into `data` (the values' bytes, as
    /// [`bytes_mut`] gives them) and `indices`, each exactly as long as the rows' values,
    /// given its row pointers: the store decodes each run of rows into its place, with no
    /// array per run and no copy after (`Store::read_ranges_into`). `Ok(false)`: the store has
    /// no direct path for this matrix (its indices are not integers, or its arrays not sharded
    /// zarr v3), and the buffers hold nothing to use.
    ///
    /// # Errors
    /// When the matrix is not CSR, the buffers do not fit the rows, an index is out of range,
    /// or the data is damaged.
    pub fn read_csr_rows_into(
        &self,
        indptr: &[u64],
        rows: &AxisSelection,
        data: &mut [u8],
        indices: &mut [u32],
    ) -> Result<bool> {
        let (info, ranges) = self.csr_runs(indptr, rows)?;
        let store = self.store.as_ref();
        let indices_path = join(&self.path, "indices");
        let StoredType::Plain(index_type) = store.array_info(&indices_path)?.dtype else {
            return Ok(false);
        };
        if !index_type.is_integer() {
            return Ok(false);
        }
        let values: u64 = ranges.iter().map(|r| r.end - r.start).sum();
        if values as usize != indices.len() || values as usize * info.dtype.size() != data.len() {
            return Err(Error::internal(format!(
                "direct read of {values} values of {} into {} indices and {} bytes",
                self.path,
                indices.len(),
                data.len()
            )));
        }
        let data_path = join(&self.path, "data");
        let n_cols = info.shape[1];
        let out_of_range = |j: i128| {
            bad(
                store,
                &indices_path,
                format!("index {j} out of range for {n_cols} columns"),
            )
        };
        if matches!(index_type, DType::I32 | DType::U32) {
            if !store.read_ranges_into(&indices_path, &ranges, bytemuck::cast_slice_mut(indices))? {
                return Ok(false);
            }
            // Signed indices were read as their bits: a negative one is past every column too.
            if let Some(&j) = indices.iter().find(|&&j| j as usize >= n_cols) {
                let j = if index_type == DType::I32 {
                    i128::from(j as i32)
                } else {
                    i128::from(j)
                };
                return Err(out_of_range(j));
            }
        } else {
            // annbatch stores 16-bit indices when the genes fit: read at their width, widened.
            let mut narrow = DynArray::zeros(index_type, &[indices.len()]);
            let bytes = bytes_mut(&mut narrow)
                .ok_or_else(|| Error::internal("integer indices without bytes"))?;
            if !store.read_ranges_into(&indices_path, &ranges, bytes)? {
                return Ok(false);
            }
            macro_rules! widen {
                ($a:expr) => {
                    for (slot, &j) in indices.iter_mut().zip($a.iter()) {
                        let j = i128::from(j);
                        if j < 0 || j >= n_cols as i128 {
                            return Err(out_of_range(j));
                        }
                        *slot = j as u32;
                    }
                };
            }
            match &narrow {
                DynArray::I8(a) => widen!(a),
                DynArray::I16(a) => widen!(a),
                DynArray::I64(a) => widen!(a),
                DynArray::U8(a) => widen!(a),
                DynArray::U16(a) => widen!(a),
                DynArray::U64(a) => widen!(a),
                _ => return Err(Error::internal("integer indices not widened")),
            }
        }
        if !store.read_ranges_into(&data_path, &ranges, data)? {
            return Ok(false);
        }
        if let Some(c) = &self.counter {
            let bytes = data.len() + std::mem::size_of_val(indices);
            c.0.fetch_add(bytes as u64, Ordering::Relaxed);
        }
        Ok(true)
    }

    /// A CSR matrix's layout and each run of `rows`' range of stored values, from its row
    /// pointers (`read_csr_rows`, `read_csr_rows_into`).
    fn csr_runs(
        &self,
        indptr: &[u64],
        rows: &AxisSelection,
    ) -> Result<(&SparseInfo, Vec<Range<u64>>)> {
        let MatrixLayout::Sparse(info) = &self.layout else {
            return Err(Error::usage(format!(
                "{} is not a sparse matrix",
                self.path
            )));
        };
        if info.format != SparseFormat::Csr || indptr.len() != info.shape[0] + 1 {
            return Err(Error::usage(format!(
                "{} is not CSR with {} row pointers",
                self.path,
                indptr.len()
            )));
        }
        if rows.end() > info.shape[0] {
            return Err(Error::usage(format!(
                "rows ..{} are out of range for {} of {} rows",
                rows.end(),
                self.path,
                info.shape[0]
            )));
        }
        rows.runs()
            .iter()
            .map(|r| {
                let (lo, hi) = (indptr[r.start], indptr[r.end]);
                if hi < lo || hi > info.nnz {
                    return Err(bad(
                        self.store.as_ref(),
                        &join(&self.path, "indptr"),
                        "row pointers out of range",
                    ));
                }
                Ok(lo..hi)
            })
            .collect::<Result<Vec<_>>>()
            .map(|ranges| (info, ranges))
    }
}

/// The bytes of a numeric array's elements, to be filled in place (`Matrix::read_csr_rows_into`);
/// `None` for booleans, text or a non-contiguous array.
pub fn bytes_mut(a: &mut DynArray) -> Option<&mut [u8]> {
    Some(match a {
        DynArray::I8(v) => bytemuck::cast_slice_mut(v.as_slice_mut()?),
        DynArray::I16(v) => bytemuck::cast_slice_mut(v.as_slice_mut()?),
        DynArray::I32(v) => bytemuck::cast_slice_mut(v.as_slice_mut()?),
        DynArray::I64(v) => bytemuck::cast_slice_mut(v.as_slice_mut()?),
        DynArray::U8(v) => v.as_slice_mut()?,
        DynArray::U16(v) => bytemuck::cast_slice_mut(v.as_slice_mut()?),
        DynArray::U32(v) => bytemuck::cast_slice_mut(v.as_slice_mut()?),
        DynArray::U64(v) => bytemuck::cast_slice_mut(v.as_slice_mut()?),
        DynArray::F32(v) => bytemuck::cast_slice_mut(v.as_slice_mut()?),
        DynArray::F64(v) => bytemuck::cast_slice_mut(v.as_slice_mut()?),
        DynArray::Bool(_) | DynArray::Str(_) => return None,
    })
}
