//! `align_chunks`: passes over a chunked file cut their row blocks at chunk boundaries, so no
//! chunk is decompressed twice by two blocks. Dense arrays chunked by rows give boundaries
//! every `chunk_rows`; a CSR matrix's boundaries are the rows where its `data` chunks begin.
//! The executor keeps blocks within the memory budget and only splits a chunk when one chunk
//! alone is larger than a block may be.
//!
//! ```text
//! before: Scan(file)     after: Scan(file, blocks aligned to N chunk boundaries)
//! ```
//! Column-chunked dense arrays (`(n_obs, k)` chunks) have nothing to align to by rows; every
//! row block decodes every chunk, which EXPLAIN shows as repeated decodes. A concatenation's
//! boundaries are its files' chunk boundaries, and where each file begins.

use crate::plan::{LogicalPlan, Op, Source, Storage, XEncoding};
use std::sync::Arc;

pub const NAME: &str = "align_chunks";

pub fn apply(plan: &mut LogicalPlan) -> bool {
    let mut changed = false;
    for node in &mut plan.nodes {
        let Op::Scan(scan) = &mut node.op else {
            continue;
        };
        if scan.chunk_starts.is_some() {
            continue;
        }
        let starts = match &scan.source {
            Source::File { storage, .. } => chunk_starts(storage),
            Source::Concat(c) => {
                let offsets = c.offsets();
                let per_part: Vec<Option<Vec<usize>>> =
                    c.parts.iter().map(|p| chunk_starts(&p.storage)).collect();
                per_part.iter().any(Option::is_some).then(|| {
                    per_part
                        .iter()
                        .zip(&offsets)
                        .flat_map(|(s, &at)| {
                            s.clone()
                                .unwrap_or_else(|| vec![0])
                                .into_iter()
                                .map(move |r| at + r)
                        })
                        .collect()
                })
            }
            _ => None,
        };
        if let Some(s) = starts {
            scan.chunk_starts = Some(Arc::new(s));
            changed = true;
        }
    }
    changed
}

/// Rows where a stored X's chunks begin; `None` when there is nothing to align to.
fn chunk_starts(storage: &Storage) -> Option<Vec<usize>> {
    let n = storage.shape[0];
    match (storage.encoding, storage.chunks.as_deref(), &storage.indptr) {
        (XEncoding::Dense, Some([cr, ..]), _) if (*cr as usize) < n => {
            Some((0..n).step_by(*cr as usize).collect())
        }
        (XEncoding::Csr, Some([len]), Some(indptr)) if *len < *indptr.last().unwrap_or(&0) => {
            let nnz = *indptr.last().unwrap_or(&0);
            let mut s: Vec<usize> = (0..nnz)
                .step_by(*len as usize)
                .map(|p| indptr.partition_point(|&q| q <= p).saturating_sub(1))
                .collect();
            s.dedup();
            Some(s)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Node, Scan, Schema, Storage};
    use engine_matrix::DType;

    fn plan(
        encoding: XEncoding,
        chunks: Option<Vec<u64>>,
        indptr: Option<Vec<u64>>,
    ) -> LogicalPlan {
        let storage = Storage {
            encoding,
            shape: [10, 4],
            dtype: DType::F32,
            value_bytes: 4,
            index_bytes: 4,
            chunks,
            compression: vec![],
            indptr: indptr.map(Arc::new),
            shards: None,
            remote: false,
        };
        LogicalPlan {
            nodes: vec![Node {
                step: "data".into(),
                op: Op::Scan(Scan::new(Source::File {
                    path: "x.h5ad".into(),
                    storage,
                    options: Default::default(),
                })),
                inputs: vec![],
                schema: Schema::default(),
            }],
        }
    }

    fn starts(p: &LogicalPlan) -> Vec<usize> {
        let Op::Scan(s) = &p.nodes[0].op else {
            panic!()
        };
        s.chunk_starts.as_ref().unwrap().to_vec()
    }

    #[test]
    fn dense_row_chunks() {
        let mut p = plan(XEncoding::Dense, Some(vec![4, 4]), None);
        assert_eq!(
            p.explain().lines().next().unwrap(),
            "#0 data = Scan(file(x.h5ad, dense float32))"
        );
        assert!(apply(&mut p));
        assert_eq!(
            p.explain().lines().next().unwrap(),
            "#0 data = Scan(file(x.h5ad, dense float32), blocks aligned to 3 chunk boundaries)"
        );
        assert_eq!(starts(&p), vec![0, 4, 8]);
        assert!(!apply(&mut p));
    }

    #[test]
    fn csr_data_chunks() {
        // Rows hold 3, 0, 5, 2, … values; data chunks of 4 begin inside rows 0, 2 and 3.
        let indptr = vec![0, 3, 3, 8, 10, 10, 10, 10, 10, 10, 12];
        let mut p = plan(XEncoding::Csr, Some(vec![4]), Some(indptr));
        assert!(apply(&mut p));
        assert_eq!(starts(&p), vec![0, 2, 3]);
    }

    #[test]
    fn contiguous_and_column_chunks_are_left_alone() {
        assert!(!apply(&mut plan(XEncoding::Dense, None, None)));
        assert!(!apply(&mut plan(XEncoding::Dense, Some(vec![10, 2]), None)));
    }
}
