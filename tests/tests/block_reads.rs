//! Block reads touch only what the selection needs: a store wrapper records every hyperslab
//! the reader asks for.

use engine_matrix::{AxisSelection, DynArray};
use engine_store::backend::{ArrayInfo, Attrs, NodeKind, Store, StoreFormat};
use engine_store::{Matrix, open_store};
use engine_tests::fixtures;
use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, Mutex};

#[derive(Debug)]
struct Recording {
    inner: Arc<dyn Store>,
    reads: Mutex<Vec<(String, Vec<Range<u64>>)>>,
}

impl Store for Recording {
    fn path(&self) -> &Path {
        self.inner.path()
    }
    fn format(&self) -> StoreFormat {
        self.inner.format()
    }
    fn node(&self, path: &str) -> engine_common::Result<Option<NodeKind>> {
        self.inner.node(path)
    }
    fn children(&self, group: &str) -> engine_common::Result<Vec<String>> {
        self.inner.children(group)
    }
    fn attributes(&self, path: &str) -> engine_common::Result<Attrs> {
        self.inner.attributes(path)
    }
    fn array_info(&self, path: &str) -> engine_common::Result<ArrayInfo> {
        self.inner.array_info(path)
    }
    fn read(&self, path: &str, sel: &[Range<u64>]) -> engine_common::Result<DynArray> {
        self.reads
            .lock()
            .unwrap()
            .push((path.to_string(), sel.to_vec()));
        self.inner.read(path, sel)
    }
    fn read_records(&self, path: &str) -> engine_common::Result<Vec<(String, DynArray)>> {
        self.inner.read_records(path)
    }
}

fn recording(fixture: &str) -> Arc<Recording> {
    Arc::new(Recording {
        inner: open_store(&fixtures().join(fixture)).unwrap(),
        reads: Mutex::new(vec![]),
    })
}

#[test]
fn csr_row_block_reads_indptr_slice_then_only_those_rows() {
    for fixture in [
        "full_nullable.h5ad",
        "full_nullable.zarr2",
        "full_nullable.zarr3",
    ] {
        let rec = recording(fixture);
        let m = Matrix::open(rec.clone(), "X").unwrap();
        let _ = m
            .read_block(&AxisSelection::range(10..13), &AxisSelection::all(12))
            .unwrap();
        let reads = rec.reads.lock().unwrap().clone();
        assert_eq!(
            reads[0],
            ("X/indptr".to_string(), vec![10..14]),
            "{fixture}: indptr first, only rows 10..13"
        );
        // Then indices and data over exactly the rows' extent, checked against the full indptr.
        let (lo, hi) = (reads[1].1[0].start, reads[1].1[0].end);
        assert_eq!(reads[1].0, "X/indices");
        assert_eq!(reads[2], ("X/data".to_string(), vec![lo..hi]));
        assert_eq!(reads.len(), 3, "{fixture}: nothing else is read: {reads:?}");
        let full = Matrix::open(open_store(&fixtures().join(fixture)).unwrap(), "X")
            .unwrap()
            .read_all()
            .unwrap();
        let engine_matrix::Block::Sparse(full) = full else {
            panic!()
        };
        assert_eq!((lo, hi), (full.indptr[10], full.indptr[13]));
    }
}

#[test]
fn dense_column_read_is_one_hyperslab_per_run() {
    let rec = recording("full_nullable.zarr2");
    let m = Matrix::open(rec.clone(), "layers/dense").unwrap();
    let b = m
        .read_block(&AxisSelection::all(40), &AxisSelection::range(4..5))
        .unwrap();
    assert_eq!(b.shape(), vec![40, 1]);
    assert_eq!(
        *rec.reads.lock().unwrap(),
        vec![("layers/dense".to_string(), vec![0..40, 4..5])]
    );
    // Index lists are coalesced into runs: rows {1,2,3,7} are two reads.
    rec.reads.lock().unwrap().clear();
    let _ = m
        .read_block(
            &AxisSelection::from_indices(&[3, 1, 2, 7]),
            &AxisSelection::all(12),
        )
        .unwrap();
    assert_eq!(
        *rec.reads.lock().unwrap(),
        vec![
            ("layers/dense".to_string(), vec![1..4, 0..12]),
            ("layers/dense".to_string(), vec![7..8, 0..12])
        ]
    );
}

#[test]
fn chunks_touched_counts_intersecting_chunks() {
    let s = open_store(&fixtures().join("full_nullable.zarr3")).unwrap();
    let mut info = s.array_info("layers/dense").unwrap();
    info.chunks = Some(vec![10, 5]);
    assert_eq!(info.chunks_touched(&[0..40, 4..5]), 4);
    assert_eq!(info.chunks_touched(&[9..11, 0..12]), 6);
    assert_eq!(info.chunks_touched(&[3..3, 0..12]), 0);
}
