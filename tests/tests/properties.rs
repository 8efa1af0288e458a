//! Property-based tests: random matrices and frames round-trip through every format, and a
//! block read by any selection equals the same slice of the fully read matrix.

use engine_matrix::{AxisSelection, Block, Compressed, DynArray, SparseFormat};
use engine_store::backend::{ArrayOptions, Compression, StoreFormat};
use engine_store::{Column, Frame, Matrix, open_store, write};
use engine_tests::scratch;
use ndarray::{Array1, Array2};
use proptest::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

static CASE: AtomicUsize = AtomicUsize::new(0);

fn formats() -> impl Strategy<Value = StoreFormat> {
    prop_oneof![
        Just(StoreFormat::H5ad),
        Just(StoreFormat::Zarr2),
        Just(StoreFormat::Zarr3)
    ]
}

fn compression() -> impl Strategy<Value = Compression> {
    prop_oneof![
        Just(Compression::None),
        Just(Compression::Gzip(3)),
        Just(Compression::Zstd(1)),
        Just(Compression::Blosc {
            cname: "lz4".into(),
            clevel: 3,
            blocksize: 0,
        })
    ]
}

/// A dense matrix with about a third of its entries non-zero.
fn matrix() -> impl Strategy<Value = Array2<f32>> {
    (1usize..30, 1usize..20).prop_flat_map(|(r, c)| {
        proptest::collection::vec(prop_oneof![2 => Just(0.0f32), 1 => -100.0f32..100.0], r * c)
            .prop_map(move |v| Array2::from_shape_vec((r, c), v).unwrap())
    })
}

/// A selection of an axis of length `n`: everything, a range, or a random index set.
fn selection(n: usize) -> impl Strategy<Value = AxisSelection> {
    prop_oneof![
        Just(AxisSelection::all(n)),
        (0..=n, 0..=n).prop_map(|(a, b)| AxisSelection::range(a.min(b)..a.max(b))),
        proptest::collection::vec(any::<bool>(), n).prop_map(|m| AxisSelection::from_mask(&m)),
    ]
}

fn to_sparse(a: &Array2<f32>, format: SparseFormat) -> Compressed {
    let (r, c) = a.dim();
    let mut indptr = vec![0u64];
    let mut indices = vec![];
    let mut data = vec![];
    for i in 0..r {
        for j in 0..c {
            if a[[i, j]] != 0.0 {
                indices.push(j as u32);
                data.push(a[[i, j]]);
            }
        }
        indptr.push(indices.len() as u64);
    }
    let csr = Compressed {
        format: SparseFormat::Csr,
        shape: [r, c],
        indptr,
        indices,
        data: DynArray::F32(Array1::from(data).into_dyn()),
    };
    if format == SparseFormat::Csr {
        csr
    } else {
        csr.transpose_format()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn block_reads_equal_slices_of_the_full_matrix(
        (m, rows, cols) in matrix().prop_flat_map(|m| { let (r, c) = m.dim(); (Just(m), selection(r), selection(c)) }),
        format in formats(),
        layout in 0usize..3,
        compression in compression(),
        chunk in 1u64..8,
    ) {
        let dir = scratch(&format!("prop-{}", CASE.fetch_add(1, Ordering::Relaxed)));
        let path = dir.join(if format == StoreFormat::H5ad { "m.h5ad" } else { "m.zarr" });
        let opts = ArrayOptions { chunks: Some(vec![chunk, chunk]), shards: None, compression };
        let mut w = write::create_store(format, &path).unwrap();
        w.create_group("", &Default::default()).unwrap();
        let expected = match layout {
            0 => { write::write_array(w.as_mut(), "m", &DynArray::F32(m.clone().into_dyn()), &opts).unwrap(); Block::Dense(DynArray::F32(m.clone().into_dyn())) }
            1 => { let s = to_sparse(&m, SparseFormat::Csr); write::write_sparse(w.as_mut(), "m", &s, &opts).unwrap(); Block::Sparse(s) }
            _ => { let s = to_sparse(&m, SparseFormat::Csc); write::write_sparse(w.as_mut(), "m", &s, &opts).unwrap(); Block::Sparse(s) }
        };
        w.finish().unwrap();
        let mat = Matrix::open(open_store(&path).unwrap(), "m").unwrap();
        prop_assert_eq!(mat.read_all().unwrap(), expected.clone());
        let got = mat.read_block(&rows, &cols).unwrap();
        let want = expected.select(&rows, &cols);
        prop_assert_eq!(got.to_dense(), want.to_dense());
        if let Block::Sparse(s) = &got { prop_assert!(s.validate().is_ok()); }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn frames_round_trip(
        n in 0usize..25,
        format in formats(),
        seed in any::<u64>(),
    ) {
        let mut x = seed | 1;
        let mut next = move || { x ^= x << 13; x ^= x >> 7; x ^= x << 17; x };
        let strings: Vec<String> = (0..n).map(|i| format!("c{i}_{}", next() % 1000)).collect();
        let codes: Vec<i8> = (0..n).map(|_| (next() % 4) as i8 - 1).collect();
        let mask: Vec<bool> = (0..n).map(|_| next() % 3 == 0).collect();
        let frame = Frame {
            index_name: "cell".into(),
            index: Column::Plain(DynArray::Str(Array1::from(strings.clone()).into_dyn())),
            columns: vec![
                ("f".into(), Column::Plain(DynArray::F64(Array1::from_iter((0..n).map(|_| (next() % 1000) as f64 / 7.0)).into_dyn()))),
                ("b".into(), Column::Plain(DynArray::Bool(Array1::from_iter((0..n).map(|_| next() % 2 == 0)).into_dyn()))),
                ("cat".into(), Column::Categorical {
                    codes: DynArray::I8(Array1::from(codes).into_dyn()),
                    categories: engine_store::encoding::str_array(["x", "y", "z"]),
                    ordered: seed % 2 == 0,
                }),
                ("ni".into(), Column::Nullable { values: DynArray::I64(Array1::from_iter((0..n as i64).map(|i| i * 3)).into_dyn()), mask: mask.clone(), na_value: None }),
                ("ns".into(), Column::Nullable { values: DynArray::Str(Array1::from(strings).into_dyn()), mask, na_value: Some("NaN".into()) }),
            ],
        };
        let dir = scratch(&format!("frame-{}", CASE.fetch_add(1, Ordering::Relaxed)));
        let path = dir.join(if format == StoreFormat::H5ad { "f.h5ad" } else { "f.zarr" });
        let mut w = write::create_store(format, &path).unwrap();
        w.create_group("", &Default::default()).unwrap();
        write::write_frame(w.as_mut(), "obs", &frame).unwrap();
        w.finish().unwrap();
        let s = open_store(&path).unwrap();
        let back = engine_store::encoding::read_frame(s.as_ref(), "obs", None).unwrap();
        prop_assert_eq!(&back, &frame);
        // Reading a subset of columns keeps their order and values.
        let only = vec!["ns".to_string(), "f".to_string()];
        let part = engine_store::encoding::read_frame(s.as_ref(), "obs", Some(&only)).unwrap();
        prop_assert_eq!(part.columns.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), vec!["f", "ns"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
