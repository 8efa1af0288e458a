//! The storage conformance suite: every backend (h5ad, zarr v2, zarr v3) must store and return
//! the same groups, attributes and arrays, and answer hyperslab reads identically.

use engine_matrix::{DType, DynArray};
use engine_store::backend::{ArrayOptions, Attrs, Compression, NodeKind, StoreFormat};
use engine_store::{open_store, write};
use engine_tests::scratch;
use ndarray::{Array1, Array2, ArrayD, IxDyn};
use serde_json::json;
use std::path::PathBuf;

const FORMATS: [StoreFormat; 3] = [StoreFormat::H5ad, StoreFormat::Zarr2, StoreFormat::Zarr3];

fn arrays() -> Vec<(&'static str, DynArray)> {
    let m = Array2::from_shape_fn((7, 5), |(i, j)| (i * 10 + j) as f64);
    vec![
        (
            "b",
            DynArray::Bool(Array1::from_iter((0..9).map(|i| i % 3 == 0)).into_dyn()),
        ),
        ("i8", DynArray::I8(Array1::from_iter(-4..5i8).into_dyn())),
        ("i16", DynArray::I16(Array1::from_iter(-4..5i16).into_dyn())),
        ("i32", DynArray::I32(Array1::from_iter(-4..5i32).into_dyn())),
        (
            "i64",
            DynArray::I64(Array1::from_iter([i64::MIN, -1, 0, 1, i64::MAX]).into_dyn()),
        ),
        ("u8", DynArray::U8(Array1::from_iter(250..255u8).into_dyn())),
        (
            "u16",
            DynArray::U16(Array1::from_iter([0u16, 65535]).into_dyn()),
        ),
        (
            "u32",
            DynArray::U32(Array1::from_iter([0u32, u32::MAX]).into_dyn()),
        ),
        (
            "u64",
            DynArray::U64(Array1::from_iter([0u64, u64::MAX]).into_dyn()),
        ),
        (
            "f32",
            DynArray::F32(Array1::from_iter([0.5f32, -1.25, f32::INFINITY, f32::NAN]).into_dyn()),
        ),
        ("f64", DynArray::F64(m.into_dyn())),
        (
            "s",
            DynArray::Str(
                Array1::from_iter(
                    ["", "a", "ünïcödé", "with space", "x".repeat(300).as_str()].map(String::from),
                )
                .into_dyn(),
            ),
        ),
        ("scalar", DynArray::F64(ArrayD::from_elem(IxDyn(&[]), 2.5))),
        (
            "scalar_s",
            DynArray::Str(ArrayD::from_elem(IxDyn(&[]), "hello".to_string())),
        ),
        ("empty", DynArray::F32(ArrayD::zeros(IxDyn(&[0])))),
        ("empty2", DynArray::I32(ArrayD::zeros(IxDyn(&[0, 3])))),
        (
            "cube",
            DynArray::U16(ArrayD::from_shape_fn(IxDyn(&[3, 4, 2]), |d| {
                (d[0] * 100 + d[1] * 10 + d[2]) as u16
            })),
        ),
    ]
}

fn attrs() -> Attrs {
    json!({
        "encoding-type": "dict", "n": 42, "neg": -7, "x": 0.5, "flag": true,
        "shape": [40, 12], "names": ["a", "b"], "empty": [], "floats": [0.5, 1.5]
    })
    .as_object()
    .unwrap()
    .clone()
}

fn write_store(format: StoreFormat, opts: &ArrayOptions) -> PathBuf {
    let dir = scratch(&format!("conf-{}-{:?}", format.name(), opts.compression));
    let path = dir.join(if format == StoreFormat::H5ad {
        "s.h5ad"
    } else {
        "s.zarr"
    });
    let mut w = write::create_store(format, &path).unwrap();
    w.create_group("", &Attrs::new()).unwrap();
    w.create_group("g", &attrs()).unwrap();
    w.create_group("g/sub", &Attrs::new()).unwrap();
    for (name, a) in arrays() {
        let o = if a.shape().is_empty() {
            ArrayOptions::default()
        } else {
            opts.clone()
        };
        w.write_array(&format!("g/{name}"), &a, &o, &attrs())
            .unwrap();
    }
    w.finish().unwrap();
    path
}

fn check(format: StoreFormat, opts: ArrayOptions) {
    let path = write_store(format, &opts);
    let s = open_store(&path).unwrap();
    assert_eq!(s.format(), format);
    assert_eq!(s.node("g").unwrap(), Some(NodeKind::Group));
    assert_eq!(s.node("g/f64").unwrap(), Some(NodeKind::Array));
    assert_eq!(s.node("g/missing").unwrap(), None);
    assert_eq!(s.node("nope/deeper").unwrap(), None);
    let mut want: Vec<String> = arrays()
        .iter()
        .map(|(n, _)| n.to_string())
        .chain(["sub".to_string()])
        .collect();
    want.sort();
    assert_eq!(s.children("g").unwrap(), want);
    assert_eq!(s.children("").unwrap(), vec!["g".to_string()]);
    assert_eq!(s.attributes("g").unwrap(), attrs(), "{}", format.name());
    assert_eq!(s.attributes("g/f64").unwrap(), attrs());
    for (name, a) in arrays() {
        let p = format!("g/{name}");
        let got = s.read_all(&p).unwrap();
        if name == "f32" {
            // NaN != NaN: compare bit patterns.
            let (DynArray::F32(x), DynArray::F32(y)) = (&got, &a) else {
                panic!()
            };
            assert!(
                x.iter()
                    .zip(y.iter())
                    .all(|(p, q)| p.to_bits() == q.to_bits())
            );
        } else {
            assert_eq!(got, a, "{} {name}", format.name());
        }
        let info = s.array_info(&p).unwrap();
        assert_eq!(
            info.shape,
            a.shape().iter().map(|&x| x as u64).collect::<Vec<_>>()
        );
        assert_eq!(info.dtype, engine_store::StoredType::Plain(a.dtype()));
        if !a.shape().is_empty() && !a.is_empty() && opts.compression != Compression::None {
            assert!(
                !info.compression.is_empty(),
                "{} {name}: compression not reported",
                format.name()
            );
        }
    }
    // Hyperslabs equal the same slice of the whole array.
    let full = Array2::from_shape_fn((7, 5), |(i, j)| (i * 10 + j) as f64);
    for (r, c) in [(0..7, 0..5), (2..5, 1..4), (6..7, 4..5), (3..3, 0..5)] {
        let got = s
            .read(
                "g/f64",
                &[r.start as u64..r.end as u64, c.start as u64..c.end as u64],
            )
            .unwrap();
        let want = full
            .slice(ndarray::s![r.clone(), c.clone()])
            .to_owned()
            .into_dyn();
        assert_eq!(got, DynArray::F64(want));
    }
    let got = s.read("g/s", &[1..3]).unwrap();
    assert_eq!(
        got,
        DynArray::Str(Array1::from(vec!["a".to_string(), "ünïcödé".to_string()]).into_dyn())
    );
    assert_eq!(
        s.read("g/cube", &[1..2, 2..4, 0..2])
            .unwrap()
            .to_i64_vec()
            .unwrap(),
        vec![120, 121, 130, 131]
    );
    assert_eq!(
        DType::F64,
        match s.array_info("g/f64").unwrap().dtype {
            engine_store::StoredType::Plain(d) => d,
            _ => unreachable!(),
        }
    );
}

#[test]
fn backends_agree_uncompressed() {
    for f in FORMATS {
        check(f, ArrayOptions::default());
    }
}

#[test]
fn backends_agree_chunked_and_compressed() {
    for f in FORMATS {
        for c in [
            Compression::Gzip(4),
            Compression::Zstd(3),
            Compression::Blosc {
                cname: "lz4".into(),
                clevel: 5,
                blocksize: 0,
            },
        ] {
            check(
                f,
                ArrayOptions {
                    chunks: Some(vec![2, 2, 2]),
                    shards: None,
                    compression: c,
                },
            );
        }
    }
}

#[test]
fn zarr3_shards_and_chunks_are_reported() {
    let opts = ArrayOptions {
        chunks: Some(vec![2, 5]),
        shards: Some(vec![4, 5]),
        compression: Compression::Zstd(3),
    };
    let path = write_store(StoreFormat::Zarr3, &opts);
    let s = open_store(&path).unwrap();
    let info = s.array_info("g/f64").unwrap();
    assert_eq!(info.chunks, Some(vec![2, 5]));
    assert_eq!(info.shards, Some(vec![4, 5]));
    assert_eq!(info.compression, vec!["zstd(3)".to_string()]);
    check(StoreFormat::Zarr3, opts);
}
