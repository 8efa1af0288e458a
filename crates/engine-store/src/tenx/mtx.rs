//! 10x MTX directories (`matrix.mtx[.gz]`, `barcodes.tsv[.gz]`, `features.tsv.gz` or
//! `genes.tsv`): text without random access, decoded into memory.

use super::{ReadOptions, put_frame, root_attrs, strings};

use crate::backend::{Attrs, StoreFormat};
use crate::mem::MemStore;
use crate::write::enc_attrs;
use engine_common::{Error, Location, Result};
use engine_matrix::DynArray;
use ndarray::Array1;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Whether `dir` is a 10x MTX directory (`matrix.mtx` or `matrix.mtx.gz` in it).
pub fn is_mtx_dir(dir: &Path) -> bool {
    dir.join("matrix.mtx.gz").is_file() || dir.join("matrix.mtx").is_file()
}

/// A text file, gunzipped when its name ends in `.gz`.
fn open_text(path: &Path) -> Result<Box<dyn BufRead>> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(Location::file(path), e))?;
    let r: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(f))
    } else {
        Box::new(f)
    };
    Ok(Box::new(BufReader::with_capacity(1 << 20, r)))
}

/// `name.gz` if present, else `name`.
fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    [format!("{name}.gz"), name.to_string()]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// Rows of a tab-separated file without header.
fn read_tsv(path: &Path) -> Result<Vec<Vec<String>>> {
    let mut out = Vec::new();
    for (i, line) in open_text(path)?.lines().enumerate() {
        let line = line.map_err(|e| Error::io(Location::file(path), e))?;
        if line.is_empty() && i > 0 {
            continue;
        }
        out.push(line.split('\t').map(String::from).collect());
    }
    Ok(out)
}

/// A text column as pandas' `read_csv` types it: integers if every value is one, then
/// floats, else text (scanpy keeps `gene_ids` as pandas read them).
fn typed(values: Vec<String>) -> DynArray {
    if !values.is_empty()
        && let Ok(v) = values
            .iter()
            .map(|s| s.trim().parse::<i64>())
            .collect::<std::result::Result<Vec<_>, _>>()
    {
        return DynArray::I64(Array1::from(v).into_dyn());
    }
    if !values.is_empty()
        && let Ok(v) = values
            .iter()
            .map(|s| s.trim().parse::<f64>())
            .collect::<std::result::Result<Vec<_>, _>>()
    {
        return DynArray::F64(Array1::from(v).into_dyn());
    }
    strings(values)
}

/// anndata's `make_index_unique`: the second and later copies of a name get `-1`, `-2`, …,
/// skipping suffixes that are names already.
pub fn make_unique(names: &mut [String]) {
    let mut seen = HashSet::new();
    let dup: Vec<bool> = names.iter().map(|n| !seen.insert(n.clone())).collect();
    if !dup.iter().any(|&d| d) {
        return;
    }
    let mut taken: HashSet<String> = names.iter().cloned().collect();
    let mut counter: HashMap<String, usize> = HashMap::new();
    for (n, d) in names.iter_mut().zip(dup) {
        if !d {
            continue;
        }
        let c = counter.entry(n.clone()).or_default();
        loop {
            *c += 1;
            let candidate = format!("{n}-{c}");
            if taken.insert(candidate.clone()) {
                *n = candidate;
                break;
            }
        }
    }
}

/// Reads a 10x MTX directory into memory as AnnData.
///
/// # Errors
/// When a file is missing or malformed, naming the file and line.
pub fn read_mtx(dir: &Path, opts: &ReadOptions) -> Result<MemStore> {
    let missing = |what: &str| {
        Error::format(
            Location::file(dir),
            format!("10x MTX directory has no {what}"),
        )
    };
    let matrix = find(dir, "matrix.mtx").ok_or_else(|| missing("matrix.mtx"))?;
    let barcodes = find(dir, "barcodes.tsv").ok_or_else(|| missing("barcodes.tsv"))?;
    let (features, legacy) = match (find(dir, "features.tsv"), find(dir, "genes.tsv")) {
        (Some(f), _) => (f, false),
        (None, Some(g)) => (g, true),
        _ => return Err(missing("features.tsv or genes.tsv")),
    };
    let at = |line: usize, msg: String| {
        Error::format(Location::new(&matrix, format!("line {line}")), msg)
    };
    let mut lines = open_text(&matrix)?.lines().enumerate();
    let header = lines
        .next()
        .map(|(_, l)| l.map_err(|e| Error::io(Location::file(&matrix), e)))
        .transpose()?
        .unwrap_or_default();
    let h: Vec<String> = header.split_whitespace().map(str::to_lowercase).collect();
    if h.len() < 5 || h[0] != "%%matrixmarket" || h[1] != "matrix" || h[2] != "coordinate" {
        return Err(at(
            1,
            format!("not a MatrixMarket coordinate matrix: `{header}`"),
        ));
    }
    let pattern = h[3] == "pattern";
    if !["integer", "real", "pattern"].contains(&h[3].as_str()) || h[4] != "general" {
        return Err(at(
            1,
            format!(
                "unsupported MatrixMarket field/symmetry `{} {}`",
                h[3], h[4]
            ),
        ));
    }
    // Size line, after comments: genes, cells, entries.
    let (mut n_genes, mut n_cells, mut nnz) = (0usize, 0usize, 0usize);
    let mut entries: Vec<(u32, u32, f32)> = Vec::new();
    let mut sized = false;
    for (i, line) in lines {
        let line = line.map_err(|e| Error::io(Location::file(&matrix), e))?;
        let t = line.trim();
        if t.is_empty() || t.starts_with('%') {
            continue;
        }
        let mut parts = t.split_whitespace();
        let mut num = |what: &str| -> Result<f64> {
            parts
                .next()
                .and_then(|p| p.parse::<f64>().ok())
                .ok_or_else(|| at(i + 1, format!("expected {what} in `{t}`")))
        };
        if !sized {
            n_genes = num("the number of rows")? as usize;
            n_cells = num("the number of columns")? as usize;
            nnz = num("the number of entries")? as usize;
            entries.reserve(nnz.min(1 << 28));
            sized = true;
            continue;
        }
        let g = num("a row")? as usize;
        let c = num("a column")? as usize;
        let v = if pattern { 1.0 } else { num("a value")? as f32 };
        if g == 0 || g > n_genes || c == 0 || c > n_cells {
            return Err(at(
                i + 1,
                format!("entry ({g}, {c}) is outside the {n_genes} × {n_cells} matrix"),
            ));
        }
        entries.push(((c - 1) as u32, (g - 1) as u32, v));
    }
    if entries.len() != nnz {
        return Err(Error::format(
            Location::file(&matrix),
            format!(
                "the header promises {nnz} entries but the file has {}",
                entries.len()
            ),
        ));
    }
    let barcodes: Vec<String> = read_tsv(&barcodes)?
        .into_iter()
        .map(|r| r.into_iter().next().unwrap_or_default())
        .collect();
    let feats = read_tsv(&features)?;
    if barcodes.len() != n_cells || feats.len() != n_genes {
        return Err(Error::format(
            Location::file(dir),
            format!(
                "matrix is {n_genes} genes × {n_cells} cells but there are {} features and {} barcodes",
                feats.len(),
                barcodes.len()
            ),
        ));
    }
    let col = |k: usize| -> Vec<String> {
        feats
            .iter()
            .map(|r| r.get(k).cloned().unwrap_or_default())
            .collect()
    };
    let ids = col(0);
    let mut symbols = col(1);
    let types = (!legacy).then(|| col(2));
    make_unique(&mut symbols);
    let keep: Vec<bool> = match (&types, opts.gex_only) {
        (Some(t), true) => t.iter().map(|t| t == "Gene Expression").collect(),
        _ => vec![true; n_genes],
    };
    let mut new_index = vec![u32::MAX; n_genes];
    let mut kept = 0u32;
    for (j, &k) in keep.iter().enumerate() {
        if k {
            new_index[j] = kept;
            kept += 1;
        }
    }
    // Cells × genes CSR: entries grouped by cell, genes ascending, duplicates summed (as
    // scipy does when it builds the matrix).
    entries.retain(|e| new_index[e.1 as usize] != u32::MAX);
    entries.sort_unstable_by_key(|e| (e.0, e.1));
    let mut indptr = vec![0i64; n_cells + 1];
    let mut indices: Vec<i64> = Vec::with_capacity(entries.len());
    let mut data: Vec<f32> = Vec::with_capacity(entries.len());
    let mut prev: Option<(u32, u32)> = None;
    for (c, g, v) in entries {
        if prev == Some((c, g)) {
            *data.last_mut().expect("a previous entry") += v;
            continue;
        }
        prev = Some((c, g));
        indptr[c as usize + 1] += 1;
        indices.push(i64::from(new_index[g as usize]));
        data.push(v);
    }
    for i in 0..n_cells {
        indptr[i + 1] += indptr[i];
    }
    let pick = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(s, _)| s)
            .collect()
    };
    let mut m = MemStore::new(dir, StoreFormat::Tenx, root_attrs());
    let mut x_attrs = enc_attrs("csr_matrix", "0.1.0");
    x_attrs.insert("shape".into(), json!([n_cells, kept]));
    m.group("X", x_attrs);
    m.array(
        "X/indptr",
        DynArray::I64(Array1::from(indptr).into_dyn()),
        Attrs::new(),
    );
    m.array(
        "X/indices",
        DynArray::I64(Array1::from(indices).into_dyn()),
        Attrs::new(),
    );
    m.array(
        "X/data",
        DynArray::F32(Array1::from(data).into_dyn()),
        Attrs::new(),
    );
    put_frame(&mut m, "obs", barcodes, vec![]);
    let mut var_cols = vec![("gene_ids".to_string(), typed(pick(ids)))];
    if let Some(t) = types {
        var_cols.push(("feature_types".to_string(), strings(pick(t))));
    }
    put_frame(&mut m, "var", pick(symbols), var_cols);
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// anndata's examples: later copies get -1, -2; a suffix that is taken is skipped.
    #[test]
    fn names_are_made_unique_as_anndata_does() {
        let mut v: Vec<String> = ["a", "a", "b", "a", "a-2"].map(String::from).to_vec();
        make_unique(&mut v);
        assert_eq!(v, ["a", "a-1", "b", "a-3", "a-2"]);
    }
}
