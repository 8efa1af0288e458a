//! Operators checked against scanpy on the same data.

use engine_matrix::DynArray;
use engine_ops::stats::{Gram, Moments};
use engine_ops::synthetic::Blobs;
use engine_ops::{knn, leiden, pca};
use engine_store::backend::ArrayOptions;
use engine_store::{Column, Frame, write};
use engine_tests::{run_python, scratch};

#[test]
fn scale_then_pca_matches_scanpy() {
    let blobs = Blobs {
        n_obs: 3000,
        n_vars: 40,
        centers: 4,
        cluster_std: 1.0,
        seed: 7,
    };
    let centers = blobs.center_matrix();
    let (x, labels) = blobs.block(&centers, 0..blobs.n_obs);
    // Write the data so scanpy reads exactly these numbers.
    let dir = scratch("pca-scanpy");
    let path = dir.join("blobs.h5ad");
    let mut w = write::create_store(engine_store::StoreFormat::H5ad, &path).unwrap();
    write::write_root(w.as_mut()).unwrap();
    let mut obs = Frame::with_range_index(blobs.n_obs);
    obs.columns.push((
        "label".into(),
        Column::Plain(DynArray::U32(ndarray::Array1::from(labels).into_dyn())),
    ));
    write::write_frame(w.as_mut(), "obs", &obs).unwrap();
    write::write_frame(w.as_mut(), "var", &Frame::with_range_index(blobs.n_vars)).unwrap();
    write::write_array(
        w.as_mut(),
        "X",
        &DynArray::F64(x.clone().into_dyn()),
        &ArrayOptions::default(),
    )
    .unwrap();
    w.finish().unwrap();

    // One streaming pass in blocks of 256 rows, merged in a different grouping.
    let shift = Moments::of_block(x.slice(ndarray::s![..256, ..])).mean;
    let mut partials = Vec::new();
    for start in (0..blobs.n_obs).step_by(256) {
        let mut g = Gram::new(shift.clone());
        g.update(x.slice(ndarray::s![start..(start + 256).min(blobs.n_obs), ..]));
        partials.push(g);
    }
    let gram = partials
        .iter()
        .skip(1)
        .fold(partials[0].clone(), |a, b| a.merge(b));
    let (corr, sd) = gram.correlation();
    let p = pca::from_covariance(corr.clone(), 10).unwrap();
    let proj = pca::project(
        x.slice(ndarray::s![..50, ..]),
        &gram.mean(),
        Some(&sd),
        &p.components,
    );

    let json_path = dir.join("scanpy.json");
    let out = run_python(
        "scanpy_pca.py",
        &[&path, std::path::Path::new("10"), &json_path],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    let vec = |k: &str| -> Vec<f64> {
        want[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    let (ratio, variance) = (vec("variance_ratio"), vec("variance"));
    for c in 0..10 {
        assert!(
            (p.variance_ratio[c] - ratio[c]).abs() <= 1e-4 * ratio[c].abs().max(1e-12),
            "ratio {c}: {} vs {}",
            p.variance_ratio[c],
            ratio[c]
        );
        assert!(
            (p.variance[c] - variance[c]).abs() <= 1e-4 * variance[c].abs().max(1e-12),
            "variance {c}"
        );
    }
    // Components and scores equal up to one sign per component (the first 3 carry the
    // blob structure; later ones are near-degenerate noise directions, compared by variance).
    let pcs = want["PCs"].as_array().unwrap();
    let head = want["X_pca_head"].as_array().unwrap();
    for c in 0..3 {
        let theirs: Vec<f64> = pcs.iter().map(|r| r[c].as_f64().unwrap()).collect();
        let dot: f64 = theirs
            .iter()
            .enumerate()
            .map(|(i, t)| t * p.components[[i, c]])
            .sum();
        let sign = dot.signum();
        for (i, t) in theirs.iter().enumerate() {
            assert!(
                (sign * p.components[[i, c]] - t).abs() < 1e-6,
                "PC {c} var {i}"
            );
        }
        for (r, row) in head.iter().enumerate() {
            let t = row[c].as_f64().unwrap();
            assert!(
                (sign * proj[[r, c]] - t).abs() < 1e-6 * t.abs().max(1.0),
                "X_pca[{r},{c}]"
            );
        }
    }
}

/// Blobs -> standardised PCA scores, the engine's way (one Gram pass, correlation eigh).
fn pca_scores(blobs: &Blobs, n_comps: usize) -> (ndarray::Array2<f64>, Vec<u32>) {
    let centers = blobs.center_matrix();
    let (x, truth) = blobs.block(&centers, 0..blobs.n_obs);
    let mut gram = Gram::new(Moments::of_block(x.view()).mean);
    gram.update(x.view());
    let (corr, sd) = gram.correlation();
    let p = pca::from_covariance(corr.clone(), n_comps).unwrap();
    (
        pca::project(x.view(), &gram.mean(), Some(&sd), &p.components),
        truth,
    )
}

/// Writes an AnnData holding only `obsm['X_pca']`, for scanpy to build its graph from.
fn write_scores(path: &std::path::Path, x_pca: &ndarray::Array2<f64>) {
    let mut w = write::create_store(engine_store::StoreFormat::H5ad, path).unwrap();
    write::write_root(w.as_mut()).unwrap();
    write::write_frame(w.as_mut(), "obs", &Frame::with_range_index(x_pca.nrows())).unwrap();
    write::write_frame(w.as_mut(), "var", &Frame::with_range_index(1)).unwrap();
    w.create_group("obsm", &write::enc_attrs("dict", "0.1.0"))
        .unwrap();
    write::write_array(
        w.as_mut(),
        "obsm/X_pca",
        &DynArray::F64(x_pca.clone().into_dyn()),
        &ArrayOptions::default(),
    )
    .unwrap();
    w.finish().unwrap();
}

/// scanpy's Leiden labels (igraph flavour) on the scores in `path`.
fn scanpy_leiden(dir: &std::path::Path, path: &std::path::Path) -> Vec<u32> {
    let json_path = dir.join("scanpy.json");
    let out = run_python(
        "scanpy_leiden.py",
        &[
            path,
            std::path::Path::new("15"),
            std::path::Path::new("1.0"),
            &json_path,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    want["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect()
}

/// Our Leiden labels and scanpy's on the same blobs: scores, graph and both labelings.
struct LeidenRun {
    x_pca: ndarray::Array2<f64>,
    truth: Vec<u32>,
    conn: engine_matrix::Compressed,
    ours: Vec<u32>,
    theirs: Vec<u32>,
    dir: std::path::PathBuf,
}

fn leiden_both(blobs: &Blobs, n_comps: usize, label: &str) -> LeidenRun {
    let (x_pca, truth) = pca_scores(blobs, n_comps);
    let (idx, dist) = knn::exact_knn(x_pca.view(), 15);
    let conn = knn::umap_connectivities(&idx, &dist);
    let ours = leiden::leiden(&conn, &leiden::LeidenParams::default());
    let dir = scratch(label);
    let path = dir.join("pcs.h5ad");
    write_scores(&path, &x_pca);
    let theirs = scanpy_leiden(&dir, &path);
    LeidenRun {
        x_pca,
        truth,
        conn,
        ours,
        theirs,
        dir,
    }
}

fn csr(v: &serde_json::Value) -> (Vec<u64>, Vec<u32>, Vec<f64>) {
    let u = |k: &str| {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect::<Vec<f64>>()
    };
    (
        u("indptr").into_iter().map(|x| x as u64).collect(),
        u("indices").into_iter().map(|x| x as u32).collect(),
        u("data"),
    )
}

#[test]
fn neighbors_graph_matches_scanpy() {
    let blobs = Blobs {
        n_obs: 2500,
        n_vars: 30,
        centers: 4,
        cluster_std: 1.0,
        seed: 11,
    };
    let (x_pca, _) = pca_scores(&blobs, 20);
    let dir = scratch("neighbors-scanpy");
    let path = dir.join("pcs.h5ad");
    write_scores(&path, &x_pca);

    let (idx, dist) = knn::exact_knn(x_pca.view(), 15);
    let distances = knn::distances(&idx, &dist);
    let conn = knn::umap_connectivities(&idx, &dist);

    let json_path = dir.join("scanpy.json");
    let out = run_python(
        "scanpy_neighbors.py",
        &[&path, std::path::Path::new("15"), &json_path],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    // Exact kNN: identical neighbour sets, distances to float32 precision.
    let (ip, ii, id) = csr(&want["distances"]);
    assert_eq!(distances.indptr, ip, "14 neighbours per cell");
    assert_eq!(distances.indices, ii, "identical kNN sets");
    let ours = distances.data.to_f64_vec().unwrap();
    for (a, b) in ours.iter().zip(&id) {
        assert!((a - b).abs() <= 1e-5 * b.max(1.0), "{a} vs {b}");
    }
    // Connectivities: same sparsity pattern and weights (umap computes in float32).
    let (cp, ci, cd) = csr(&want["connectivities"]);
    assert_eq!(conn.indptr, cp);
    assert_eq!(conn.indices, ci);
    let ours = conn.data.to_f64_vec().unwrap();
    let worst = ours
        .iter()
        .zip(&cd)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-4, "largest connectivity difference {worst}");
}

#[test]
fn adjusted_rand_index_closed_forms() {
    use engine_tests::adjusted_rand_index as ari;
    assert_eq!(ari(&[0, 0, 1, 1], &[5, 5, 7, 7]), 1.0);
    // Two clusterings of 4 points: sklearn's adjusted_rand_score gives -0.5 here.
    assert!((ari(&[0, 0, 1, 1], &[0, 1, 0, 1]) + 0.5).abs() < 1e-12);
}

#[test]
fn leiden_matches_scanpy_and_the_true_groups() {
    // The tutorial's regime: blobs far apart relative to their spread.
    let blobs = Blobs {
        n_obs: 3000,
        n_vars: 200,
        centers: 4,
        cluster_std: 1.0,
        seed: 42,
    };
    let LeidenRun {
        x_pca,
        truth,
        ours,
        theirs,
        dir,
        ..
    } = leiden_both(&blobs, 50, "leiden-scanpy");
    let vs_scanpy = engine_tests::adjusted_rand_index(&ours, &theirs);
    let vs_truth = engine_tests::adjusted_rand_index(&ours, &truth);
    assert!(vs_scanpy >= 0.95, "ARI vs scanpy {vs_scanpy}");
    assert_eq!(vs_truth, 1.0, "ARI vs the true blobs");

    // The tutorial's figure: PC1 vs PC2 coloured by cluster.
    let k = ours.iter().max().map_or(0, |m| m + 1);
    let names: Vec<String> = (0..k).map(|c| c.to_string()).collect();
    let (px, py): (Vec<f64>, Vec<f64>) = (x_pca.column(0).to_vec(), x_pca.column(1).to_vec());
    let png = dir.join("pca_leiden.png");
    let colours = engine_plot::default_colours(names.len());
    let plot = engine_plot::Scatter {
        x: &px,
        y: &py,
        colour: engine_plot::Colouring::Groups(&ours, &names, &colours),
        title: "pca".into(),
        x_label: "PC1".into(),
        y_label: "PC2".into(),
        size: None,
        legend: engine_plot::LegendLoc::RightMargin,
    };
    engine_plot::scatter(&plot, engine_plot::Format::Png, 150.0, &png).unwrap();
    assert!(std::fs::metadata(&png).unwrap().len() > 5000);
}

#[test]
fn leiden_agrees_with_scanpy_on_overlapping_groups() {
    // Harder: blobs close enough that the graph is connected and modularity decides.
    let blobs = Blobs {
        n_obs: 2000,
        n_vars: 10,
        centers: 6,
        cluster_std: 6.0,
        seed: 3,
    };
    let LeidenRun {
        conn, ours, theirs, ..
    } = leiden_both(&blobs, 10, "leiden-scanpy-hard");
    let q_ours = leiden::modularity(&conn, &ours, 1.0);
    let q_theirs = leiden::modularity(&conn, &theirs, 1.0);
    let ari = engine_tests::adjusted_rand_index(&ours, &theirs);
    eprintln!("modularity ours {q_ours:.4} scanpy {q_theirs:.4}, ARI {ari:.3}");
    assert!(
        q_ours >= q_theirs - 0.01,
        "our partition is as good as igraph's: {q_ours} vs {q_theirs}"
    );
    assert!(ari >= 0.9, "ARI vs scanpy {ari}");
}
