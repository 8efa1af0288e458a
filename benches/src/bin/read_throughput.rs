//! Reads a matrix element by row blocks and reports the decoded bytes per second as JSON.
//!
//! Usage: `read-throughput FILE [ELEMENT] [BLOCK_ROWS]` (defaults: `X`, 4096).
//! Run by `benches/read_throughput.sh` next to the Python readers of the same file.

use engine_matrix::Block;
use engine_store::Dataset;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: read-throughput FILE [ELEMENT] [BLOCK_ROWS]");
        std::process::exit(2);
    };
    let element = args.get(2).map_or("X", String::as_str);
    let block_rows: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(4096);
    let t0 = Instant::now();
    let ds = Dataset::open(path).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });
    let m = ds.matrix(element).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });
    let n = m.n_rows();
    let (mut bytes, mut blocks, mut checksum) = (0u64, 0u64, 0f64);
    let mut start = 0;
    while start < n {
        let end = (start + block_rows).min(n);
        let b = m.read_rows(start..end).unwrap_or_else(|e| {
            eprintln!("error: {e}");
            std::process::exit(1)
        });
        match &b {
            Block::Dense(a) => {
                bytes += (a.len() * a.dtype().size()) as u64;
                // Touch one value per row (like the Python readers) so the read is not elided.
                checksum += engine_matrix::dyn_map!(a, v => v.index_axis(ndarray::Axis(1), 0).iter().count() as f64);
            }
            Block::Sparse(c) => {
                bytes += (c.nnz() * (c.data.dtype().size() + 4) + c.indptr.len() * 8) as u64;
                checksum += c.nnz() as f64;
            }
        }
        blocks += 1;
        start = end;
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"reader": "engine", "seconds": secs, "bytes": bytes, "gb_per_s": bytes as f64 / secs / 1e9,
            "blocks": blocks, "checksum": checksum})
    );
}
