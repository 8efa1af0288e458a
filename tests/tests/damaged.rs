//! Damaged inputs give a clear error naming the file and element, a non-zero exit, never a
//! panic, and `convert` leaves nothing behind (and never touches the source).

use engine_tests::{engine, fixtures, run_python, scratch};
use std::path::Path;

fn tree_bytes(p: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if p.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for e in entries {
            out.extend(tree_bytes(&e));
        }
    } else {
        out.push((p.display().to_string(), std::fs::read(p).unwrap()));
    }
    out
}

#[test]
fn damaged_files_fail_cleanly() {
    let dir = scratch("damaged");
    let src = dir.join("src");
    let f = fixtures();
    let listing = run_python(
        "make_damaged.py",
        &[
            &f.join("full_nullable.h5ad"),
            &f.join("full_plain.zarr2"),
            &f.join("full_plain.zarr3"),
            &src,
        ],
    );
    assert!(
        listing.status.success(),
        "{}",
        String::from_utf8_lossy(&listing.stderr)
    );
    let cases: Vec<(String, String)> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .filter_map(|l| {
            l.split_once('\t')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        })
        .collect();
    assert!(
        cases.len() >= 20,
        "all kinds of damage were made: {cases:?}"
    );
    let out_dir = dir.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    for (name, element) in &cases {
        let input = src.join(name);
        let before = tree_bytes(&input);
        for out_name in ["out.h5ad", "out.zarr"] {
            let out = out_dir.join(out_name);
            let res = engine(&[
                "convert",
                input.to_str().unwrap(),
                out.to_str().unwrap(),
                "--format",
                if out_name.ends_with("h5ad") {
                    "h5ad"
                } else {
                    "zarr3"
                },
            ]);
            let stderr = String::from_utf8_lossy(&res.stderr);
            assert_eq!(
                res.status.code(),
                Some(1),
                "{name}: expected exit 1, got {:?}: {stderr}",
                res.status.code()
            );
            assert!(!stderr.contains("panicked"), "{name}: panicked: {stderr}");
            assert!(
                stderr.contains(name.as_str()),
                "{name}: error does not name the file: {stderr}"
            );
            assert!(
                stderr.contains(element.as_str()),
                "{name}: error does not name {element}: {stderr}"
            );
            assert!(!out.exists(), "{name}: convert left {out_name} behind");
            let leftovers: Vec<_> = std::fs::read_dir(&out_dir).unwrap().collect();
            assert!(
                leftovers.is_empty(),
                "{name}: temporary files left: {leftovers:?}"
            );
        }
        // validate refuses it too, naming the element, in text and JSON.
        let res = engine(&["validate", input.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&res.stdout);
        assert_eq!(res.status.code(), Some(1), "{name}: validate: {stdout}");
        assert!(
            stdout.contains(name.as_str()) && stdout.contains(element.as_str()),
            "{name}: validate does not name {element}: {stdout}"
        );
        assert!(!String::from_utf8_lossy(&res.stderr).contains("panicked"));
        let res = engine(&["validate", "--json", input.to_str().unwrap()]);
        let report: serde_json::Value = serde_json::from_slice(&res.stdout)
            .unwrap_or_else(|e| panic!("{name}: validate --json: {e}"));
        assert_eq!(report["valid"], false, "{name}");
        assert!(
            report["problems"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["severity"] == "error"),
            "{name}: {report}"
        );
        assert!(
            tree_bytes(&input) == before,
            "{name}: the source was modified"
        );
    }
}

#[test]
fn file_level_damage_fails_inspect_too() {
    let dir = scratch("damaged-inspect");
    for (name, bytes) in [
        ("empty.h5ad", &b""[..]),
        ("text.h5ad", &b"not an hdf5 file at all, just text\n"[..]),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        let res = engine(&["inspect", p.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(name) && !stderr.contains("panicked"),
            "{stderr}"
        );
    }
    let res = engine(&["inspect", dir.join("missing.h5ad").to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&res.stderr).contains("missing.h5ad"));
}

#[test]
fn convert_refuses_to_overwrite_without_flag() {
    let dir = scratch("overwrite");
    let out = dir.join("x.h5ad");
    std::fs::write(&out, b"precious").unwrap();
    let src = fixtures().join("full_plain.h5ad");
    let res = engine(&["convert", src.to_str().unwrap(), out.to_str().unwrap()]);
    assert_eq!(
        res.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    let res = engine(&[
        "convert",
        src.to_str().unwrap(),
        out.to_str().unwrap(),
        "--overwrite",
    ]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert_ne!(std::fs::read(&out).unwrap(), b"precious");
}

/// Damaged 10x MTX directories: a matrix with fewer entries than its header says, an entry
/// outside the matrix, barcodes that do not match; each refused naming the file (and line).
#[test]
fn damaged_10x_mtx_is_refused() {
    let dir = scratch("damaged-mtx");
    let cases: [(&str, &str, &str, &str); 3] = [
        (
            "short",
            "%%MatrixMarket matrix coordinate integer general\n3 2 3\n1 1 5\n2 2 1\n",
            "promises 3 entries",
            "matrix.mtx",
        ),
        (
            "outside",
            "%%MatrixMarket matrix coordinate integer general\n3 2 2\n1 1 5\n4 2 1\n",
            "outside the 3 × 2 matrix",
            "line 4",
        ),
        (
            "barcodes",
            "%%MatrixMarket matrix coordinate integer general\n3 3 1\n1 1 5\n",
            "2 barcodes",
            "barcodes",
        ),
    ];
    for (name, mtx, message, names) in cases {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("matrix.mtx"), mtx).unwrap();
        std::fs::write(d.join("genes.tsv"), "G1\tA\nG2\tB\nG3\tC\n").unwrap();
        std::fs::write(d.join("barcodes.tsv"), "AAA-1\nCCC-1\n").unwrap();
        let out = dir.join(format!("{name}.h5ad"));
        let res = engine(&["convert", d.to_str().unwrap(), out.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(1), "{name}: {err}");
        assert!(
            err.contains(message) && err.contains(names),
            "{name}: {err}"
        );
        assert!(!out.exists(), "{name}");
        let res = engine(&["validate", d.to_str().unwrap()]);
        assert_eq!(res.status.code(), Some(1), "{name}");
    }
}

/// A disk that fills while strings are written: HDF5 used to crash (SIGSEGV in its
/// variable-length conversion's error path); now the space is reserved first and the error
/// names the target, not the temporary, and nothing is left behind. The limit is the
/// process's file-size limit (`ulimit -f`, SIGXFSZ ignored), which fails writes as a full disk
/// does.
#[test]
fn a_full_disk_while_writing_strings_is_an_error() {
    let dir = scratch("full-disk");
    let src = dir.join("strings.zarr");
    let script = format!(
        "import anndata as ad, numpy as np, pandas as pd, scipy.sparse as sp\n\
         n = 100000\n\
         ad.settings.allow_write_nullable_strings = False\n\
         ad.AnnData(sp.random(n, 4, density=0.1, format='csr', dtype=np.float32, random_state=0), \
         obs=pd.DataFrame({{'s': [f'text_{{i}}_padding_padding' for i in range(n)]}}, \
         index=[f'c{{i}}' for i in range(n)])).write_zarr('{}')\n",
        src.display()
    );
    engine_tests::python_ok(&script);
    let out_dir = dir.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join("full.h5ad");
    let limited = |kib: u32| {
        std::process::Command::new("sh")
            .args([
                "-c",
                &format!("ulimit -f {kib}; trap '' XFSZ; exec \"$0\" \"$@\""),
                engine_tests::engine_bin().to_str().unwrap(),
                "convert",
                src.to_str().unwrap(),
                out.to_str().unwrap(),
            ])
            .output()
            .unwrap()
    };
    // Limits across the file's growth, so one falls inside the string writes.
    for kib in (500..=6000).step_by(500) {
        let res = limited(kib);
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(1), "limit {kib} KiB: {err}");
        assert!(
            err.contains("full.h5ad:/obs") && !err.contains(".tmp-"),
            "limit {kib} KiB: {err}"
        );
        assert_eq!(
            std::fs::read_dir(&out_dir).unwrap().count(),
            0,
            "limit {kib} KiB left files behind"
        );
    }
    let res = limited(1 << 20);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    engine_tests::assert_anndata_equal(&src, &out);
}

/// A global heap collection whose size field is corrupt makes HDF5 2.2 loop forever while
/// decoding it (every variable-length string, attributes included, lives there). convert,
/// validate and inspect end with an error naming the file instead of hanging, and leave
/// no temporary behind. The deadline is shortened for the test.
#[test]
fn a_corrupt_global_heap_ends_with_an_error() {
    let dir = scratch("global-heap");
    let mut bytes = std::fs::read(fixtures().join("full_plain.h5ad")).unwrap();
    let at = bytes
        .windows(4)
        .position(|w| w == b"GCOL")
        .expect("the file has a global heap collection");
    // The collection's size (8 bytes after signature, version and 3 reserved) grows past
    // its contents: HDF5 then meets a zero-size free-space object and never advances.
    bytes[at + 9] = 0xff;
    let src = dir.join("heap.h5ad");
    std::fs::write(&src, &bytes).unwrap();
    let out_dir = dir.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join("x.zarr");
    for args in [
        vec!["convert", src.to_str().unwrap(), out.to_str().unwrap()],
        vec!["validate", src.to_str().unwrap()],
        vec!["inspect", src.to_str().unwrap()],
    ] {
        let t = std::time::Instant::now();
        let res = std::process::Command::new(engine_tests::engine_bin())
            .args(&args)
            .env("ENGINE_HDF5_DEADLINE_SECS", "2")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("heap.h5ad") && err.contains("global heap"),
            "{args:?}: {err}"
        );
        assert!(
            t.elapsed().as_secs() < 60,
            "{args:?} took {:?}",
            t.elapsed()
        );
        assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 0, "{args:?}");
    }
}

/// Damaged Cell Ranger HDF5: offsets that do not start at 0 or run past the data, an index
/// outside the features; refused naming the element instead of read short or panicking.
#[test]
fn damaged_10x_h5_is_refused() {
    let dir = scratch("damaged-10x");
    for (name, edit, says) in [
        (
            "start.h5",
            "ip = f['matrix/indptr'][:]; ip[0] = 1; del f['matrix/indptr']; f['matrix/indptr'] = ip",
            "offsets run from 1",
        ),
        (
            "past.h5",
            "ip = f['matrix/indptr'][:]; ip[-1] += 50; del f['matrix/indptr']; f['matrix/indptr'] = ip",
            "offsets",
        ),
        (
            "index.h5",
            "ix = f['matrix/indices'][:]; ix[3] = 999; del f['matrix/indices']; f['matrix/indices'] = ix",
            "outside the 11 features",
        ),
    ] {
        let path = dir.join(name);
        std::fs::copy(fixtures().join("tenx_v3.h5"), &path).unwrap();
        let script = format!(
            "import h5py\nwith h5py.File('{}', 'a') as f:\n    {edit}\n",
            path.display()
        );
        engine_tests::python_ok(&script);
        let out = dir.join(format!("{name}.h5ad"));
        let res = engine(&["convert", path.to_str().unwrap(), out.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(1), "{name}: {err}");
        assert!(
            err.contains(says) && err.contains("/matrix/"),
            "{name}: {err}"
        );
        assert!(!err.contains("panicked") && !out.exists(), "{name}: {err}");
    }
}

/// The exit code and everything printed (validate reports on stdout, errors go to stderr).
fn code_and_text(args: &[&str]) -> (Option<i32>, String) {
    let res = engine(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
    (res.status.code(), text)
}

/// A string whose stored length is damaged made HDF5 zero a buffer of that length before it
/// looked at the string (4 GiB from one flipped byte, found by fuzzing). The lengths are
/// checked against the file's size first, in a contiguous dataset and in a shuffled, deflated
/// chunk: the read is refused naming the element, in little memory.
#[test]
fn a_damaged_string_length_is_refused_before_reading() {
    let dir = scratch("vlen-length");
    let src = dir.join("strings.h5ad");
    std::fs::copy(fixtures().join("full_plain.h5ad"), &src).unwrap();
    engine_tests::python_ok(&format!(
        r#"
import h5py, numpy as np, zlib
with h5py.File({src:?}, "r+") as f:
    # obs/_index is contiguous: its first descriptor starts with the length.
    ds = f["obs/_index"]
    assert ds.id.get_create_plist().get_layout() == h5py.h5d.CONTIGUOUS
    at = ds.id.get_offset()
    # The var index again, chunked, shuffled and deflated as h5py writes with compression.
    name = f["var"].attrs["_index"]
    old = f["var"][name]
    values, attrs = old[()], dict(old.attrs)
    del f["var"][name]
    new = f["var"].create_dataset(name, data=values, dtype=h5py.string_dtype(),
                                  chunks=(len(values),), shuffle=True, compression="gzip")
    for k, v in attrs.items():
        new.attrs[k] = v
    mask, raw = new.id.read_direct_chunk((0,))
    n, elem = len(values), 16
    # Bit 0 of the mask: HDF5 skipped the shuffle for this chunk.
    shuffled = not mask & 1
    plain = np.frombuffer(zlib.decompress(raw), np.uint8)
    plain = (plain.reshape(elem, n).T if shuffled else plain.reshape(n, elem)).copy()
    plain[0, :4] = np.frombuffer(np.uint32(0xF0000000).tobytes(), np.uint8)
    out = plain.T if shuffled else plain
    new.id.write_direct_chunk((0,), zlib.compress(out.tobytes()), mask)
with open({src:?}, "r+b") as f:
    f.seek(at)
    f.write(np.uint32(0xF0000000).tobytes())
"#,
        src = src.to_str().unwrap()
    ));
    let src = src.to_str().unwrap();
    // validate lists every damaged element; sql stops at the first it reads.
    for (args, elements) in [
        (vec!["validate", src], vec!["/obs/_index", "/var/gene"]),
        (
            vec!["sql", "SELECT count(*) FROM var", "--data", src],
            vec!["/var/gene"],
        ),
    ] {
        let (code, text) = code_and_text(&args);
        assert_eq!(code, Some(1), "{args:?}: {text}");
        for element in elements {
            assert!(
                text.lines().any(|l| l.contains(element)
                    && l.contains("element 0 claims 4026531840 bytes")),
                "{args:?}: {text}"
            );
        }
    }
}

/// The same check for a text field of a rec-array (`uns['rank_genes_groups']['names']`, as
/// scanpy writes it): the damaged record is named, before HDF5 reads the field.
#[test]
fn a_damaged_record_string_length_is_refused_before_reading() {
    let dir = scratch("vlen-record");
    let src = dir.join("records.h5ad");
    std::fs::copy(fixtures().join("records.h5ad"), &src).unwrap();
    engine_tests::python_ok(&format!(
        r#"
import h5py, numpy as np
with h5py.File({src:?}, "r") as f:
    ds = f["uns/rank_genes_groups/names"]
    assert ds.id.get_create_plist().get_layout() == h5py.h5d.CONTIGUOUS
    # On disk a record is its three strings' descriptors, 16 bytes each (the type h5py
    # reports sizes them as 8-byte pointers).
    record = ds.id.get_storage_size() // len(ds)
    assert record == 48, record
    at = ds.id.get_offset() + 2 * record + 16 * list(ds.dtype.names).index("mid")
with open({src:?}, "r+b") as f:
    f.seek(at)
    f.write(np.uint32(0xF0000000).tobytes())
"#,
        src = src.to_str().unwrap()
    ));
    let (code, text) = code_and_text(&["validate", src.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("uns/rank_genes_groups/names")
                && l.contains("element 2 claims 4026531840 bytes")),
        "{text}"
    );
}
