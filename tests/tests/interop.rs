//! Interop with Python anndata, both ways: every fixture anndata writes (all encodings, h5ad
//! and zarr v2/v3, nullable and plain strings, pre-0.7 and anndata-rs files) is read by us and
//! written back in every format, and anndata must see the identical object.

use engine_matrix::{AxisSelection, Block, DynArray};
use engine_store::{Column, ConvertOptions, Dataset, StoreFormat, convert};
use engine_tests::{assert_anndata_equal, fixtures, scratch};

const FIXTURES: [&str; 9] = [
    "full_nullable.h5ad",
    "full_nullable.zarr2",
    "full_nullable.zarr3",
    "full_plain.h5ad",
    "full_plain.zarr2",
    "full_plain.zarr3",
    "legacy_compound.h5ad",
    "blosc.h5ad",
    "awkward.h5ad",
];

fn round_trip(fixture: &str) {
    round_trip_path(&fixtures().join(fixture), fixture);
}

#[test]
fn full_nullable_h5ad_round_trips() {
    round_trip(FIXTURES[0]);
}
#[test]
fn full_nullable_zarr2_round_trips() {
    round_trip(FIXTURES[1]);
}
#[test]
fn full_nullable_zarr3_round_trips() {
    round_trip(FIXTURES[2]);
}
#[test]
fn full_plain_h5ad_round_trips() {
    round_trip(FIXTURES[3]);
}
#[test]
fn full_plain_zarr2_round_trips() {
    round_trip(FIXTURES[4]);
}
#[test]
fn full_plain_zarr3_round_trips() {
    round_trip(FIXTURES[5]);
}
#[test]
fn legacy_compound_h5ad_round_trips() {
    round_trip(FIXTURES[6]);
}
#[test]
fn blosc_h5ad_from_anndata_rs_round_trips() {
    round_trip(FIXTURES[7]);
}
#[test]
fn unsupported_encoding_is_copied_verbatim() {
    round_trip(FIXTURES[8]);
}

/// X[i, j] = 100 i + j where (i + j) % 3 == 0, else 0 (see make_fixtures.py).
fn expected_x(i: usize, j: usize) -> f64 {
    if (i + j).is_multiple_of(3) {
        (i * 100 + j) as f64
    } else {
        0.0
    }
}

#[test]
fn values_read_match_the_closed_form() {
    for fixture in [
        "full_nullable.h5ad",
        "full_plain.zarr2",
        "full_nullable.zarr3",
        "legacy_compound.h5ad",
        "blosc.h5ad",
    ] {
        let ds = Dataset::open(fixtures().join(fixture)).unwrap();
        assert_eq!((ds.n_obs(), ds.n_vars()), (40, 12), "{fixture}");
        let x = ds.x().unwrap().unwrap().read_all().unwrap().to_dense();
        let v = x.to_f64_vec().unwrap();
        for i in 0..40 {
            for j in 0..12 {
                assert_eq!(v[i * 12 + j], expected_x(i, j), "{fixture} X[{i},{j}]");
            }
        }
    }
}

#[test]
fn obs_encodings_decode_as_anndata_wrote_them() {
    for fixture in [
        "full_nullable.h5ad",
        "full_nullable.zarr2",
        "full_nullable.zarr3",
    ] {
        let ds = Dataset::open(fixtures().join(fixture)).unwrap();
        let obs = ds.obs(None).unwrap();
        assert_eq!(obs.index.render(3), "cell_003");
        // cell_type: ["T","B","NK",None] cycling with categories [B, NK, T].
        let Some(Column::Categorical {
            codes,
            categories,
            ordered,
        }) = obs.column("cell_type")
        else {
            panic!("cell_type")
        };
        assert_eq!(
            categories,
            &engine_store::encoding::str_array(["B", "NK", "T"])
        );
        assert!(!ordered);
        assert_eq!(codes.to_i64_vec().unwrap()[..4], [2, 0, 1, -1]);
        let Some(Column::Categorical { ordered, .. }) = obs.column("stage") else {
            panic!("stage")
        };
        assert!(ordered);
        let Some(Column::Categorical { categories, .. }) = obs.column("int_cat") else {
            panic!("int_cat")
        };
        assert_eq!(categories.to_i64_vec().unwrap(), vec![10, 20, 30]);
        let Some(Column::Nullable { values, mask, .. }) = obs.column("maybe_int") else {
            panic!("maybe_int")
        };
        assert_eq!(values.dtype(), engine_matrix::DType::I32);
        assert_eq!(
            mask.iter().filter(|m| **m).count(),
            8,
            "every 5th of 40 is missing"
        );
        let Some(Column::Nullable { values, mask, .. }) = obs.column("maybe_bool") else {
            panic!("maybe_bool")
        };
        assert_eq!(values.dtype(), engine_matrix::DType::Bool);
        assert_eq!(
            mask.iter().filter(|m| **m).count(),
            6,
            "every 7th of 40 is missing"
        );
        assert_eq!(
            obs.column("small").unwrap(),
            &Column::Plain(DynArray::U16(
                ndarray::Array1::from_iter(0..40u16).into_dyn()
            ))
        );
        let var = ds.var(None).unwrap();
        assert_eq!(var.index_name, "gene", "index stored under its own name");
        assert_eq!(var.index.render(11), "GENE11");
    }
}

#[test]
fn legacy_compound_obs_reads_categories_from_uns() {
    let ds = Dataset::open(fixtures().join("legacy_compound.h5ad")).unwrap();
    let obs = ds.obs(None).unwrap();
    assert_eq!(obs.index.render(0), "cell_000");
    let Some(Column::Categorical {
        codes, categories, ..
    }) = obs.column("louvain")
    else {
        panic!("louvain")
    };
    assert_eq!(
        categories,
        &engine_store::encoding::str_array(["c0", "c1", "c2"])
    );
    assert_eq!(codes.to_i64_vec().unwrap()[..4], [0, 1, 2, 0]);
    let Some(Column::Plain(n_counts)) = obs.column("n_counts") else {
        panic!("n_counts")
    };
    let want: Vec<f64> = (0..40)
        .map(|i| (0..12).map(|j| expected_x(i, j)).sum())
        .collect();
    assert_eq!(n_counts.to_f64_vec().unwrap(), want);
}

#[test]
fn unsupported_encoding_names_the_element_and_the_rest_opens() {
    let ds = Dataset::open(fixtures().join("awkward.h5ad")).unwrap();
    let err = engine_store::encoding::read_value(ds.store().as_ref(), "obsm/ragged").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("/obsm/ragged") && msg.contains("awkward-array"),
        "{msg}"
    );
    assert_eq!(err.kind(), "unsupported");
    // Everything else still reads.
    assert_eq!(ds.obs(None).unwrap().n_rows(), 40);
    let summary = ds.summarize().unwrap();
    let ragged = summary.iter().find(|e| e.path == "obsm/ragged").unwrap();
    assert!(ragged.error.as_deref().unwrap().contains("awkward-array"));
}

#[test]
fn row_block_reads_touch_only_the_selection() {
    // A CSC layer read by a column selection equals the dense slice.
    let ds = Dataset::open(fixtures().join("full_nullable.zarr3")).unwrap();
    let m = ds.matrix("layers/counts_csc").unwrap();
    let rows = AxisSelection::from_indices(&[1, 2, 3, 10, 39]);
    let cols = AxisSelection::from_indices(&[0, 5, 6, 11]);
    let Block::Sparse(b) = m.read_block(&rows, &cols).unwrap() else {
        panic!("sparse")
    };
    assert_eq!(b.shape, [5, 4]);
    let d = b.to_dense().to_f64_vec().unwrap();
    for (bi, i) in rows.indices().enumerate() {
        for (bj, j) in cols.indices().enumerate() {
            assert_eq!(d[bi * 4 + bj], expected_x(i, j));
        }
    }
}

#[test]
fn storage_options_are_honoured_and_anndata_reads_the_result() {
    let src = fixtures().join("full_nullable.h5ad");
    let dir = scratch("storage-options");
    let cases: [(&str, &str, &[&str]); 5] = [
        (
            "gzip.h5ad",
            "h5ad",
            &["--chunks", "8,all", "--compression", "gzip:6"],
        ),
        (
            "zstd.h5ad",
            "h5ad",
            &["--chunks", "8,all", "--compression", "zstd:3"],
        ),
        (
            "blosc.zarr",
            "zarr2",
            &["--chunks", "all,5", "--compression", "lz4"],
        ),
        (
            "cols.zarr",
            "zarr3",
            &["--chunks", "all,5", "--compression", "zstd:5"],
        ),
        (
            "sharded.zarr",
            "zarr3",
            &[
                "--chunks",
                "5,all",
                "--shards",
                "20,all",
                "--compression",
                "blosc-zstd:5",
            ],
        ),
    ];
    for (name, format, extra) in cases {
        let out = dir.join(name);
        let mut args = vec![
            "convert",
            src.to_str().unwrap(),
            out.to_str().unwrap(),
            "--format",
            format,
            "--block-size",
            "1K",
        ];
        args.extend_from_slice(extra);
        let res = engine_tests::engine(&args);
        assert!(
            res.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&res.stderr)
        );
        assert_anndata_equal(&src, &out);
        // The layout asked for is the layout stored.
        let ds = Dataset::open(&out).unwrap();
        let info = ds.store().array_info("layers/dense").unwrap();
        let want_chunks = match name {
            "blosc.zarr" | "cols.zarr" => vec![40, 5],
            "sharded.zarr" => vec![5, 12],
            _ => vec![8, 12],
        };
        assert_eq!(info.chunks, Some(want_chunks), "{name}");
        assert!(!info.compression.is_empty(), "{name}: compression missing");
        if name == "sharded.zarr" {
            assert_eq!(info.shards, Some(vec![20, 12]));
        }
    }
}

/// Files written by real old anndata releases (committed; see scripts/make-old-fixtures.sh).
fn old(name: &str) -> std::path::PathBuf {
    engine_tests::root().join("tests/data/old").join(name)
}

fn round_trip_path(src_path: &std::path::Path, label: &str) {
    let src = Dataset::open(src_path).unwrap_or_else(|e| panic!("{label}: {e}"));
    let dir = scratch(&format!("rt-{label}"));
    for format in [StoreFormat::H5ad, StoreFormat::Zarr2, StoreFormat::Zarr3] {
        let out = dir.join(format!(
            "out.{}",
            if format == StoreFormat::H5ad {
                "h5ad"
            } else {
                "zarr"
            }
        ));
        let opts = ConvertOptions {
            format,
            overwrite: true,
            block_bytes: 512,
            ..Default::default()
        };
        convert(&src, &out, &opts).unwrap_or_else(|e| panic!("{label} -> {}: {e}", format.name()));
        assert_anndata_equal(src_path, &out);
    }
}

#[test]
fn files_from_anndata_0_6_round_trip() {
    round_trip_path(&old("anndata-0.6.22.h5ad"), "ad06");
}

#[test]
fn files_from_anndata_0_7_round_trip() {
    round_trip_path(&old("anndata-0.7.8.h5ad"), "ad07h5");
    round_trip_path(&old("anndata-0.7.8.zarr"), "ad07zarr");
}

#[test]
fn old_files_decode_to_the_closed_form() {
    for name in [
        "anndata-0.6.22.h5ad",
        "anndata-0.6.22.zarr",
        "anndata-0.7.8.h5ad",
        "anndata-0.7.8.zarr",
    ] {
        let ds = Dataset::open(old(name)).unwrap();
        let v = ds
            .x()
            .unwrap()
            .unwrap()
            .read_all()
            .unwrap()
            .to_dense()
            .to_f64_vec()
            .unwrap();
        assert!(
            (0..40).all(|i| (0..12).all(|j| v[i * 12 + j] == expected_x(i, j))),
            "{name}"
        );
        let obs = ds.obs(None).unwrap();
        let Some(Column::Categorical {
            codes, categories, ..
        }) = obs.column("cell_type")
        else {
            panic!("{name}: cell_type")
        };
        // ["T","B","NK"] cycling; pandas sorts the categories: [B, NK, T].
        assert_eq!(
            categories,
            &engine_store::encoding::str_array(["B", "NK", "T"]),
            "{name}"
        );
        assert_eq!(codes.to_i64_vec().unwrap()[..3], [2, 0, 1], "{name}");
        let Some(Column::Plain(n)) = obs.column("n_genes") else {
            panic!("{name}: n_genes")
        };
        assert_eq!(n.to_i64_vec().unwrap()[5], 35);
        let layer = ds
            .matrix("layers/dense")
            .unwrap()
            .read_all()
            .unwrap()
            .to_dense()
            .to_f64_vec()
            .unwrap();
        assert_eq!(layer[3 * 12], 2.0 * expected_x(3, 0), "{name}");
        assert_eq!(layer[3 * 12], 600.0);
    }
}

#[test]
fn zarr_v2_compressors_round_trip() {
    for codec in ["zlib", "gzip", "zstd", "bz2", "blosc", "lz4"] {
        round_trip_path(
            &fixtures().join(format!("codec_{codec}.zarr")),
            &format!("codec-{codec}"),
        );
    }
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst)
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

fn strip_metadata(dir: &std::path::Path, root: bool) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if p.is_dir() {
            strip_metadata(&p, false);
        } else if !root
            && matches!(
                name.as_str(),
                ".zarray" | ".zattrs" | ".zgroup" | "zarr.json"
            )
        {
            std::fs::remove_file(&p).unwrap();
        }
    }
}

#[test]
fn consolidated_metadata_alone_is_enough_to_read() {
    // With every per-node metadata file removed, only the consolidated copy (v2 .zmetadata,
    // v3 inline in the root zarr.json) can describe the store; reading must still be exact.
    for fixture in ["full_nullable.zarr2", "full_plain.zarr3"] {
        let dir = scratch(&format!("consolidated-{fixture}"));
        let stripped = dir.join("s.zarr");
        copy_tree(&fixtures().join(fixture), &stripped);
        strip_metadata(&stripped, true);
        assert!(!stripped.join("X/.zattrs").exists() && !stripped.join("X/zarr.json").exists());
        let src = Dataset::open(&stripped).unwrap();
        let out = dir.join("out.h5ad");
        convert(
            &src,
            &out,
            &ConvertOptions {
                overwrite: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_anndata_equal(&fixtures().join(fixture), &out);
    }
}

/// Files compressed with hdf5plugin's filters (zstd, LZ4, bitshuffle bare and with LZ4 or
/// zstd inside) read with the decoders built into the binary, whatever HDF5_PLUGIN_PATH says,
/// and convert to every format with every value anndata sees unchanged.
#[test]
fn hdf5plugin_filters_are_built_in() {
    for name in [
        "zstd",
        "lz4",
        "bitshuffle",
        "bitshuffle_lz4",
        "bitshuffle_zstd",
    ] {
        round_trip(&format!("plugin_{name}.h5ad"));
    }
    // inspect names the filters by what they are.
    for (name, shown) in [
        ("zstd", "zstd(5)"),
        ("lz4", "lz4"),
        ("bitshuffle_lz4", "bitshuffle+lz4"),
        ("bitshuffle_zstd", "bitshuffle+zstd"),
    ] {
        let path = fixtures().join(format!("plugin_{name}.h5ad"));
        let out = engine_tests::engine_ok(&["inspect", path.to_str().unwrap()]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("X/data: chunks [159], {shown}")),
            "{name}: {text}"
        );
    }
}

/// A filter the binary lacks (bzip2, 307) is named in the error, with the element, instead of
/// HDF5's complaint about a plugin directory on the machine that built the binary.
#[test]
fn a_missing_hdf5_filter_is_named() {
    let path = fixtures().join("plugin_bzip2.h5ad");
    let out_path = scratch("bzip2").join("out.zarr");
    let out = engine_tests::engine(&[
        "convert",
        path.to_str().unwrap(),
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("HDF5 filter 307"), "{stderr}");
    assert!(stderr.contains("plugin_bzip2.h5ad:/"), "{stderr}");
    assert!(!stderr.contains("can't open directory"), "{stderr}");
    assert!(!out_path.exists(), "nothing is left at the target");
}

/// Zarr stores in zip archives (zarr's ZipStore in v2 and v3, and a zipped store directory)
/// read in place and convert to every format with everything anndata sees unchanged.
#[test]
fn zipped_zarr_stores_are_read_in_place() {
    for name in ["zip_v2.zarr.zip", "zip_v3.zarr.zip"] {
        round_trip(name);
    }
    // anndata reads the zipped directory's inner store only through its folder, so compare
    // the conversion with the directory it was zipped from.
    let src = Dataset::open(fixtures().join("zipped_dir.zip")).expect("zipped directory");
    let out = scratch("zipped-dir").join("out.h5ad");
    convert(
        &src,
        &out,
        &ConvertOptions {
            format: StoreFormat::H5ad,
            ..Default::default()
        },
    )
    .expect("convert");
    assert_anndata_equal(&fixtures().join("zipped_dir.zarr"), &out);
}

/// A zip archive without a zarr store in it is refused with a message naming the file.
#[test]
fn a_zip_without_a_store_is_refused() {
    let dir = scratch("zip-empty");
    let path = dir.join("notes.zip");
    // A stored (uncompressed) single-entry zip written by hand: `readme.txt` = "hi".
    let mut zip = Vec::new();
    let crc = 0xd8932aacu32; // crc32("hi")
    let local = [
        &b"PK\x03\x04"[..],
        &[20, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        &crc.to_le_bytes(),
        &2u32.to_le_bytes(),
        &2u32.to_le_bytes(),
        &10u16.to_le_bytes(),
        &0u16.to_le_bytes(),
        b"readme.txt",
        b"hi",
    ]
    .concat();
    let central = [
        &b"PK\x01\x02"[..],
        &[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        &crc.to_le_bytes(),
        &2u32.to_le_bytes(),
        &2u32.to_le_bytes(),
        &10u16.to_le_bytes(),
        &[0; 8],
        &0u32.to_le_bytes(),
        &0u32.to_le_bytes(),
        b"readme.txt",
    ]
    .concat();
    let end = [
        &b"PK\x05\x06"[..],
        &[0, 0, 0, 0, 1, 0, 1, 0],
        &(central.len() as u32).to_le_bytes(),
        &(local.len() as u32).to_le_bytes(),
        &0u16.to_le_bytes(),
    ]
    .concat();
    zip.extend(local);
    zip.extend(central);
    zip.extend(end);
    std::fs::write(&path, zip).unwrap();
    let e = Dataset::open(&path)
        .expect_err("no store inside")
        .to_string();
    assert!(e.contains("notes.zip"), "{e}");
    assert!(e.contains("holds no zarr store"), "{e}");
}

/// Record arrays (`rec-array`) as scanpy's `rank_genes_groups` (wilcoxon, with `pts`) leaves
/// them, and one with a field of every kind: HDF5 compound, zarr v2 structured dtype, zarr v3
/// `struct`, each converted to every format with everything anndata sees unchanged.
#[test]
fn record_arrays_round_trip() {
    for name in ["records.h5ad", "records.zarr2", "records.zarr3"] {
        round_trip(name);
    }
}

/// The mixed record array decodes field by field to its closed form (make_fixtures.py's
/// `mixed_records`), whatever the format stores strings as (vlen UTF-8, UTF-32).
#[test]
fn record_fields_decode_to_the_closed_form() {
    use engine_store::Value;
    for name in ["records.h5ad", "records.zarr2", "records.zarr3"] {
        let ds = Dataset::open(fixtures().join(name)).unwrap();
        let Value::Records(fields) =
            engine_store::encoding::read_value(ds.store().as_ref(), "uns/mixed").unwrap()
        else {
            panic!("{name}: uns/mixed is not a record array");
        };
        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["i8", "u16", "i64", "flag", "f32", "f64", "text"],
            "{name}"
        );
        let ints = |i: usize| fields[i].1.to_i64_vec().unwrap();
        assert_eq!(ints(0), [-2, -1, 0, 1, 2], "{name}");
        assert_eq!(ints(1), [0, 1000, 2000, 3000, 4000], "{name}");
        assert_eq!(ints(2)[4], 4 << 40, "{name}");
        assert_eq!(
            fields[3].1,
            DynArray::Bool(ndarray::array![false, true, false, true, false].into_dyn()),
            "{name}"
        );
        assert_eq!(fields[4].1.dtype(), engine_matrix::DType::F32, "{name}");
        assert_eq!(fields[4].1.to_f64_vec().unwrap()[3], 0.75, "{name}");
        assert_eq!(fields[5].1.to_f64_vec().unwrap()[1], 1.0 / 3.0, "{name}");
        assert_eq!(
            fields[6].1,
            engine_store::encoding::str_array(["", "é", "ab", "ünï", "x"]),
            "{name}"
        );
    }
}

/// scanpy's bundled pbmc68k_reduced, the first file a scanpy user opens, as scanpy ships it
/// (h5ad) and as anndata writes it to zarr v2, v3 and a v3 zip store.
#[test]
fn scanpy_bundled_pbmc68k_reduced_round_trips() {
    for name in [
        "pbmc68k_reduced.h5ad",
        "pbmc68k_reduced.zarr2",
        "pbmc68k_reduced.zarr3",
        "pbmc68k_reduced.zarr.zip",
    ] {
        round_trip(name);
    }
}

/// anndata 0.6 zarr: obs/var as structured arrays without encoding attributes, categories as
/// `json2` object arrays in uns, rank_genes_groups as bare structured arrays, X dense. anndata
/// 0.13 cannot open it (zarr-python 3 has no json2), so the conversion is compared with the
/// h5ad the same anndata wrote from the same object.
#[test]
fn zarr_from_anndata_0_6_converts() {
    let src = Dataset::open(old("anndata-0.6.22.zarr")).unwrap();
    let dir = scratch("ad06-zarr");
    for (format, ext) in [
        (StoreFormat::H5ad, "h5ad"),
        (StoreFormat::Zarr2, "zarr"),
        (StoreFormat::Zarr3, "zarr3"),
    ] {
        let out = dir.join(format!("out.{ext}"));
        let opts = ConvertOptions {
            format,
            overwrite: true,
            ..Default::default()
        };
        convert(&src, &out, &opts).unwrap_or_else(|e| panic!("{}: {e}", format.name()));
        engine_tests::assert_anndata_equal_with(
            &old("anndata-0.6.22.h5ad"),
            &out,
            &["--x-values-only"],
        );
    }
}

/// Old scanpy's rank_genes_groups (structured arrays without encoding attributes and without
/// an `index` field) decode to make_old_fixtures.py's closed form.
#[test]
fn old_rank_genes_groups_decode_to_the_closed_form() {
    use engine_store::Value;
    for name in [
        "anndata-0.6.22.h5ad",
        "anndata-0.6.22.zarr",
        "anndata-0.7.8.h5ad",
        "anndata-0.7.8.zarr",
    ] {
        let ds = Dataset::open(old(name)).unwrap();
        let store = ds.store().as_ref();
        let read = |p: &str| match engine_store::encoding::read_value(store, p) {
            Ok(Value::Records(f)) => f,
            other => panic!("{name} {p}: {other:?}"),
        };
        let names = read("uns/rank_genes_groups/names");
        let scores = read("uns/rank_genes_groups/scores");
        for (g, ((group, n), (_, s))) in names.iter().zip(&scores).enumerate() {
            assert_eq!(group, ["B", "NK", "T"][g], "{name}");
            let expected: Vec<String> = (0..4).map(|k| format!("GENE{}", (k + g) % 12)).collect();
            assert_eq!(n, &engine_store::encoding::str_array(expected), "{name}");
            let got = s.to_f64_vec().unwrap();
            for (k, v) in got.iter().enumerate() {
                assert!((v - (k as f64 + g as f64 / 10.0)).abs() < 1e-6, "{name}");
            }
        }
    }
}

/// A pipeline reads scanpy's bundled file (h5ad and zip store) and writes what it read: the
/// record arrays in uns and everything else the output holds reach anndata unchanged (the
/// output does not carry `raw`; issue 17 adds it).
#[test]
fn a_pipeline_reads_scanpys_bundled_file() {
    let dir = scratch("run-pbmc68k");
    for (i, name) in ["pbmc68k_reduced.h5ad", "pbmc68k_reduced.zarr.zip"]
        .iter()
        .enumerate()
    {
        let src = fixtures().join(name);
        let out = dir.join(format!("out{i}.zarr"));
        let _ = std::fs::remove_dir_all(&out);
        let yaml = dir.join(format!("p{i}.yaml"));
        std::fs::write(
            &yaml,
            format!(
                "version: 1\nsteps:\n  - {{id: data, op: read, path: '{}'}}\noutputs:\n  - {{step: data, path: '{}'}}\n",
                src.display(),
                out.display()
            ),
        )
        .unwrap();
        engine_tests::engine_ok(&["run", yaml.to_str().unwrap()]);
        engine_tests::assert_anndata_equal_with(&src, &out, &["--no-raw"]);
    }
}

/// Every element keeps its encoding type and version through a conversion (a plain
/// `string-array` column stays one, a nullable string stays nullable with its `na-value`), so
/// anndata reads what it would read from a file it wrote itself in that format. (anndata 0.13
/// itself reads a `string-array` column as pandas `str` from h5ad and as `object` from zarr,
/// for files it wrote; that difference belongs to the reader, not the file.)
#[test]
fn encodings_survive_conversion() {
    fn walk(store: &dyn engine_store::Store, path: &str, out: &mut Vec<(String, String)>) {
        let attrs = store.attributes(path).unwrap();
        let get = |k: &str| {
            attrs
                .get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        };
        let na = attrs
            .get("na-value")
            .map(|v| v.to_string())
            .unwrap_or_default();
        out.push((
            path.to_string(),
            format!("{} {} {na}", get("encoding-type"), get("encoding-version")),
        ));
        if store.node(path).unwrap() == Some(engine_store::NodeKind::Group) {
            for c in store.children(path).unwrap() {
                walk(store, &engine_store::backend::join(path, &c), out);
            }
        }
    }
    let dir = scratch("encodings");
    for name in [
        "full_plain.h5ad",
        "full_plain.zarr2",
        "full_nullable.zarr3",
        "records.h5ad",
    ] {
        let src = Dataset::open(fixtures().join(name)).unwrap();
        let mut expected = Vec::new();
        walk(src.store().as_ref(), "", &mut expected);
        for format in [StoreFormat::H5ad, StoreFormat::Zarr2, StoreFormat::Zarr3] {
            let out = dir.join(format!("{name}.{}", format.name()));
            let opts = ConvertOptions {
                format,
                overwrite: true,
                ..Default::default()
            };
            convert(&src, &out, &opts).unwrap();
            let mut got = Vec::new();
            walk(Dataset::open(&out).unwrap().store().as_ref(), "", &mut got);
            assert_eq!(got, expected, "{name} -> {}", format.name());
        }
    }
}

/// uns entries the engine holds no type for (complex numbers, an awkward array) are copied as
/// stored by convert, in every format, and anndata reads the same values.
#[test]
fn undecodable_uns_entries_are_copied_as_stored() {
    round_trip("uns_undecodable.h5ad");
    round_trip("uns_undecodable.zarr3");
}

/// A pipeline that does not use uns runs on a file whose uns the engine cannot decode, and its
/// output carries those entries as stored (outputs hold X, obs, var, obsm matrices, obsp and
/// uns; issue 17 adds layers and raw).
#[test]
fn undecodable_uns_does_not_stop_a_pipeline() {
    let dir = scratch("run-uns-undecodable");
    for (i, name) in ["uns_undecodable.h5ad", "uns_undecodable.zarr3"]
        .iter()
        .enumerate()
    {
        let src = fixtures().join(name);
        let out = dir.join(format!("out{i}.h5ad"));
        let _ = std::fs::remove_file(&out);
        let yaml = dir.join(format!("p{i}.yaml"));
        std::fs::write(
            &yaml,
            format!(
                "version: 1\nsteps:\n  - {{id: data, op: read, path: '{}'}}\noutputs:\n  - {{step: data, path: '{}'}}\n",
                src.display(),
                out.display()
            ),
        )
        .unwrap();
        engine_tests::engine_ok(&["run", yaml.to_str().unwrap()]);
        engine_tests::assert_anndata_equal_with(&src, &out, &["--slots=X,obs,var,uns"]);
    }
}

/// Every good file (anndata's, scanpy's, old releases', other writers') validates without
/// errors; the only warnings about sparse indices are where scipy itself finds them unsorted.
#[test]
fn every_good_file_validates() {
    let mut files: Vec<std::path::PathBuf> = FIXTURES
        .iter()
        .chain(&[
            "records.h5ad",
            "records.zarr2",
            "records.zarr3",
            "pbmc68k_reduced.h5ad",
            "pbmc68k_reduced.zarr3",
            "pbmc68k_reduced.zarr.zip",
            "uns_undecodable.h5ad",
            "zip_v2.zarr.zip",
            "plugin_zstd.h5ad",
            "codec_bz2.zarr",
        ])
        .map(|f| fixtures().join(f))
        .collect();
    for name in [
        "anndata-0.6.22.h5ad",
        "anndata-0.6.22.zarr",
        "anndata-0.7.8.h5ad",
        "anndata-0.7.8.zarr",
    ] {
        files.push(old(name));
    }
    let mut unsorted_seen = 0;
    for f in &files {
        let report = engine_store::validate::validate(f, 4096);
        assert!(report.is_valid(), "{}: {:?}", f.display(), report.problems);
        assert!(report.elements > 2, "{}", f.display());
        let ours: Vec<String> = report
            .problems
            .iter()
            .filter(|p| p.element.ends_with("/indices"))
            .map(|p| {
                p.element
                    .trim_start_matches('/')
                    .trim_end_matches("/indices")
                    .to_string()
            })
            .collect();
        // anndata 0.13 cannot open 0.6 zarr (json2 categories); scipy cannot judge it.
        if f.ends_with("anndata-0.6.22.zarr") {
            continue;
        }
        let py = engine_tests::run_python("unsorted_indices.py", &[f]);
        assert!(
            py.status.success(),
            "{}",
            String::from_utf8_lossy(&py.stderr)
        );
        let scipy: Vec<String> = String::from_utf8_lossy(&py.stdout)
            .lines()
            .map(String::from)
            .collect();
        assert_eq!(ours, scipy, "{}", f.display());
        unsorted_seen += scipy.len();
    }
    assert!(
        unsorted_seen > 0,
        "some file has unsorted indices (pbmc68k's raw.X)"
    );
}

/// 10x inputs with what scanpy's readers make of them (make_fixtures.py `write_tenx`): the
/// source, the reference, and the options given to both.
const TENX: [(&str, &str, &[&str]); 8] = [
    ("tenx_v3.h5", "tenx_v3", &[]),
    ("tenx_v3.h5", "tenx_v3_all", &["--all-features"]),
    (
        "tenx_v3_barnyard.h5",
        "tenx_v3_barnyard_mm10",
        &["--genome", "mm10"],
    ),
    ("tenx_v2.h5", "tenx_v2", &[]),
    ("tenx_v2_two.h5", "tenx_v2_two_mm10", &["--genome", "mm10"]),
    ("tenx_mtx_v3", "tenx_mtx_v3", &[]),
    ("tenx_mtx_v2", "tenx_mtx_v2", &[]),
    ("tenx_mtx_int_ids", "tenx_mtx_int_ids", &[]),
];

/// Cell Ranger HDF5 (v3 with antibody features and a barnyard of two genomes, v2 with one and
/// two genome groups) and MTX directories (v3 gzipped, v2 plain) convert to what
/// `scanpy.read_10x_h5` / `read_10x_mtx` give: X values, obs and var names, every var column.
/// Small blocks make the feature filter read X piecewise.
#[test]
fn tenx_inputs_convert_as_scanpy_reads_them() {
    let dir = scratch("tenx-convert");
    for (src, reference, args) in TENX {
        for (fmt, ext) in [("h5ad", "h5ad"), ("zarr3", "zarr")] {
            let out = dir.join(format!("{reference}.{ext}"));
            let input = fixtures().join(src);
            let mut cmd = vec![
                "convert",
                input.to_str().unwrap(),
                out.to_str().unwrap(),
                "--format",
                fmt,
                "--block-size",
                "48",
                "--overwrite",
            ];
            cmd.extend(args.iter());
            engine_tests::engine_ok(&cmd);
            let expected = fixtures().join(format!("ref_{reference}.h5ad"));
            // scanpy's MTX reader transposes a CSR matrix, so its X is CSC; values compared.
            let flags: &[&str] = if src.contains("mtx") {
                &["--x-values-only"]
            } else {
                &[]
            };
            engine_tests::assert_anndata_equal_with(&expected, &out, flags);
        }
    }
}

/// `read` takes 10x inputs in pipelines, with `genome` and `gex_only`, and a `where` over var
/// sees the features the read keeps.
#[test]
fn tenx_inputs_read_in_pipelines() {
    let dir = scratch("tenx-run");
    for (i, (src, reference, extra)) in [
        ("tenx_v2_two.h5", "tenx_v2_two_mm10", "genome: mm10"),
        ("tenx_v3.h5", "tenx_v3_all", "gex_only: false"),
        ("tenx_mtx_v3", "tenx_mtx_v3", "gex_only: true"),
    ]
    .iter()
    .enumerate()
    {
        let out = dir.join(format!("out{i}.h5ad"));
        let _ = std::fs::remove_file(&out);
        let yaml = dir.join(format!("p{i}.yaml"));
        std::fs::write(
            &yaml,
            format!(
                "version: 1\nsteps:\n  - {{id: data, op: read, path: '{}', {extra}}}\noutputs:\n  - {{step: data, path: '{}'}}\n",
                fixtures().join(src).display(),
                out.display()
            ),
        )
        .unwrap();
        engine_tests::engine_ok(&["run", yaml.to_str().unwrap()]);
        engine_tests::assert_anndata_equal_with(
            &fixtures().join(format!("ref_{reference}.h5ad")),
            &out,
            &["--x-values-only", "--slots=X,obs,var"],
        );
    }
    // The var predicate is evaluated over the mm10 features (ids ENSMM1000000…5): two kept.
    let yaml = dir.join("where.yaml");
    let out = dir.join("where.h5ad");
    std::fs::write(
        &yaml,
        format!(
            "version: 1\nsteps:\n  - {{id: data, op: read, path: '{}', genome: mm10}}\n  - {{id: some, op: select, input: data, var_where: \"gene_ids IN ('ENSMM1000001', 'ENSMM1000004')\"}}\noutputs:\n  - {{step: some, path: '{}'}}\n",
            fixtures().join("tenx_v2_two.h5").display(),
            out.display()
        ),
    )
    .unwrap();
    engine_tests::engine_ok(&["run", yaml.to_str().unwrap()]);
    assert_eq!(Dataset::open(&out).unwrap().n_vars(), 2);
}

/// A Cell Ranger 2 file with two genomes needs one chosen, as in scanpy; `check` says so
/// before a run, listing the genomes.
#[test]
fn a_multi_genome_10x_file_needs_a_genome() {
    let src = fixtures().join("tenx_v2_two.h5");
    let out = scratch("tenx-genome").join("x.h5ad");
    let res = engine_tests::engine(&["convert", src.to_str().unwrap(), out.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{err}");
    assert!(
        err.contains("hg19, mm10") && err.contains("genome"),
        "{err}"
    );
    assert!(!out.exists());
    let yaml = scratch("tenx-genome").join("p.yaml");
    std::fs::write(
        &yaml,
        format!(
            "version: 1\nsteps:\n  - {{id: data, op: read, path: '{}'}}\noutputs:\n  - {{step: data, path: 'never.h5ad'}}\n",
            src.display()
        ),
    )
    .unwrap();
    let res = engine_tests::engine(&["check", yaml.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert_ne!(res.status.code(), Some(0), "{err}");
    assert!(err.contains("hg19, mm10"), "{err}");
}

/// A dict nested 400 levels deep in uns (h5py-written; anndata itself cannot write it)
/// converts with its leaf intact; it took 13 s before ancestors were cached (cubic in depth),
/// 0.3 s after.
#[test]
fn deeply_nested_uns_converts() {
    let dir = scratch("deep-uns");
    let src = dir.join("deep.h5ad");
    let script = format!(
        "import anndata as ad, numpy as np, h5py\n\
         ad.AnnData(np.ones((3, 2), dtype=np.float32)).write_h5ad('{0}')\n\
         with h5py.File('{0}', 'a') as f:\n    g = f['uns']\n    for i in range(400):\n        \
         g = g.create_group('k'); g.attrs['encoding-type'] = 'dict'; g.attrs['encoding-version'] = '0.1.0'\n    \
         g['leaf'] = np.int64(7)\n",
        src.display()
    );
    engine_tests::python_ok(&script);
    let ds = Dataset::open(&src).unwrap();
    let out = dir.join("deep.zarr");
    let opts = ConvertOptions {
        format: StoreFormat::Zarr3,
        ..Default::default()
    };
    convert(&ds, &out, &opts).unwrap();
    let leaf = format!("uns/{}leaf", "k/".repeat(400));
    let back = Dataset::open(&out).unwrap();
    assert_eq!(
        back.store().read_all(&leaf).unwrap().to_i64_vec().unwrap(),
        [7]
    );
    assert!(engine_store::validate::validate(&out, 1 << 20).is_valid());
}

/// obs as a group without encoding attributes, which anndata reads as a dict of columns
/// (`_index` among them) indexed by row number, converts to what anndata sees. The one
/// difference: the index is written under `index` (a column holds `_index`), so anndata
/// names it; anndata itself cannot write that frame at all.
#[test]
fn obs_without_encoding_attributes_reads_as_anndata_reads_it() {
    let src = fixtures().join("dict_obs.h5ad");
    let ds = Dataset::open(&src).unwrap();
    let obs = ds.obs(None).unwrap();
    assert_eq!(obs.index.render(5), "5");
    assert!(
        obs.column("_index")
            .is_some_and(|c| c.render(5) == "cell_005")
    );
    assert!(obs.column("cell_type").is_some());
    assert!(engine_store::validate::validate(&src, 1 << 20).is_valid());
    let dir = scratch("dict-obs");
    for format in [StoreFormat::H5ad, StoreFormat::Zarr3] {
        let out = dir.join(format!("out.{}", format.name()));
        let opts = ConvertOptions {
            format,
            overwrite: true,
            ..Default::default()
        };
        convert(&ds, &out, &opts).unwrap();
        engine_tests::assert_anndata_equal_with(
            &src,
            &out,
            &["--slots=X,var,layers,obsm,varm,obsp,varp,uns,raw"],
        );
        let back = Dataset::open(&out).unwrap().obs(None).unwrap();
        assert_eq!(back.columns, obs.columns, "{}", format.name());
        assert_eq!(back.index.render(39), "39");
    }
}
