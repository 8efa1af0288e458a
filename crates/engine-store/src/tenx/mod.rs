//! 10x Genomics inputs as AnnData stores: Cell Ranger HDF5 (v3 `/matrix`, v2 one group per
//! genome) and MTX directories (`matrix.mtx[.gz]`, `barcodes.tsv[.gz]`, `features.tsv.gz` or
//! `genes.tsv`), giving what scanpy's `read_10x_h5` / `read_10x_mtx` give: X as cells × genes
//! (int32 counts as float32), obs named by barcode, var by gene symbol with `gene_ids`,
//! `feature_types` and the other feature metadata, only Gene Expression features by default
//! (`gex_only`), one genome when asked.
//!
//! The HDF5 forms stay on disk: 10x keeps genes × cells in CSC, which is cells × genes in CSR,
//! so X's arrays are the file's own, read by range; a feature filter is applied on the fly
//! with the rows' new offsets computed in one pass. MTX is text without random access and is
//! decoded into memory.
//!
//! `h5.rs` reads the HDF5 forms, `mtx.rs` the MTX directories; both give their obs and var
//! through the frame helpers here.

mod h5;
mod mtx;

pub use h5::TenxH5;
pub use mtx::{is_mtx_dir, read_mtx};

use crate::backend::{Attrs, join};
use crate::mem::MemStore;
use crate::write::enc_attrs;
use engine_matrix::{DType, DynArray};
use ndarray::Array1;
use serde_json::json;

pub use crate::dataset::ReadOptions;

fn strings(items: Vec<String>) -> DynArray {
    DynArray::Str(Array1::from(items).into_dyn())
}

fn frame_attrs(columns: &[String]) -> Attrs {
    let mut a = enc_attrs("dataframe", "0.2.0");
    a.insert("_index".into(), json!("_index"));
    a.insert("column-order".into(), json!(columns));
    a
}

fn root_attrs() -> Attrs {
    enc_attrs("anndata", "0.1.0")
}

/// Puts a dataframe into `m`: `_index` plus columns in order.
fn put_frame(m: &mut MemStore, path: &str, index: Vec<String>, columns: Vec<(String, DynArray)>) {
    let names: Vec<String> = columns.iter().map(|(n, _)| n.clone()).collect();
    m.group(path, frame_attrs(&names));
    m.array(
        &join(path, "_index"),
        strings(index),
        enc_attrs("string-array", "0.2.0"),
    );
    for (n, a) in columns {
        let kind = if a.dtype() == DType::Str {
            "string-array"
        } else {
            "array"
        };
        m.array(&join(path, &n), a, enc_attrs(kind, "0.2.0"));
    }
}
