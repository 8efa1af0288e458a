//! CSR/CSC validation of arbitrary arrays: a matrix that passes can be sliced without a panic.
#![no_main]
use engine_matrix::{AxisSelection, Compressed, SparseFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let (rows, cols) = (usize::from(data[0] % 16), usize::from(data[1] % 16));
    let format = if data[2] & 1 == 0 {
        SparseFormat::Csr
    } else {
        SparseFormat::Csc
    };
    let n_major = if format == SparseFormat::Csr {
        rows
    } else {
        cols
    };
    let body = &data[3..];
    let indptr: Vec<u64> = body
        .iter()
        .take(n_major + 1)
        .map(|&b| u64::from(b % 32))
        .collect();
    let rest = body.get(n_major + 1..).unwrap_or(&[]);
    let indices: Vec<u32> = rest.iter().map(|&b| u32::from(b % 20)).collect();
    let values: Vec<f64> = indices.iter().map(|&i| f64::from(i)).collect();
    let m = Compressed {
        format,
        shape: [rows, cols],
        indptr,
        indices,
        data: engine_matrix::DynArray::F64(ndarray::Array1::from(values).into_dyn()),
    };
    if m.validate().is_ok() {
        let all_rows = AxisSelection::all(rows);
        let half_cols = AxisSelection::from_indices(&(0..cols).step_by(2).collect::<Vec<_>>());
        let s = m.select(&all_rows, &half_cols);
        assert!(s.validate().is_ok());
    }
});
