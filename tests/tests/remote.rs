//! Stores by URL: zarr read over HTTP from a test server on the loopback interface that logs
//! every request, with the dask + zarr tutorial's cases (one gene; the genes with `n_cells`
//! above a threshold; X chunked `(n_obs, 5)` and `(n_obs, 25)`; sharded v3) counted request by
//! request, values checked against anndata reading the same store locally, and faults
//! injected by the server.

use engine_tests::{RangeServer, Request, engine, python_ok, run_python, scratch};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The stores of `tests/python/remote_fixtures.py`, written once per test process.
fn stores() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = scratch("remote-stores");
        let out = run_python("remote_fixtures.py", &[&dir]);
        assert!(
            out.status.success(),
            "remote_fixtures.py failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

/// `n_cells` per gene and the gene names, as the fixture script computed them.
fn expected() -> (Vec<i64>, Vec<String>) {
    let text = std::fs::read_to_string(stores().join("expected.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let n_cells = v["n_cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect();
    let names = v["var_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    (n_cells, names)
}

/// The GETs of X's chunks (not its metadata) of `store`.
fn x_reads<'a>(reqs: &'a [Request], store: &str) -> Vec<&'a Request> {
    let prefix = format!("/{store}/X/");
    reqs.iter()
        .filter(|r| r.method == "GET" && r.path.starts_with(&prefix))
        .filter(|r| !r.path.ends_with("zarr.json") && !r.path.contains("/.z"))
        .collect()
}

/// A pipeline reading `url`, keeping the genes `var_where` selects, written to `out`.
fn select_pipeline(dir: &Path, url: &str, var_where: &str, out: &Path) -> PathBuf {
    let p = dir.join("genes.yaml");
    std::fs::write(
        &p,
        format!(
            "version: 1\nsteps:\n  - {{id: data, op: read, path: '{url}'}}\n  - {{id: genes, op: select, input: data, var_where: \"{var_where}\"}}\noutputs:\n  - {{step: genes, path: '{}'}}\n",
            out.display()
        ),
    )
    .unwrap();
    p
}

/// Runs `engine run` with extra environment, returning (exit code, stderr).
fn run_with_env(pipeline: &Path, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = std::process::Command::new(engine_tests::engine_bin())
        .args(["run", pipeline.to_str().unwrap(), "--metrics"])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

/// The requests `engine explain` predicts for the pipeline's pass over X.
fn predicted_requests(pipeline: &Path) -> u64 {
    let out = engine_tests::engine_ok(&["explain", pipeline.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.starts_with("scan ") && l.contains(" request"))
        .unwrap_or_else(|| panic!("no request count in:\n{text}"));
    let before = line.split(" request").next().unwrap();
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

/// anndata: the output equals the local store with the same genes selected.
fn assert_selection_equal(store: &Path, out: &Path, genes: &[String]) {
    let list = genes
        .iter()
        .map(|g| format!("{g:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    python_ok(&format!(
        "import anndata as ad, numpy as np\n\
         a = ad.read_zarr({store:?})[:, [{list}]]\n\
         b = ad.read_h5ad({out:?})\n\
         assert list(b.var_names) == list(a.var_names), (list(b.var_names), list(a.var_names))\n\
         assert list(b.obs_names) == list(a.obs_names)\n\
         np.testing.assert_array_equal(np.asarray(b.X), np.asarray(a.X))\n\
         assert list(b.var['n_cells']) == list(a.var['n_cells'])\n\
         assert list(b.obs['bulk_labels']) == list(a.obs['bulk_labels'])\n",
        store = store.display().to_string(),
        out = out.display().to_string(),
    ));
}

#[test]
fn one_gene_is_one_chunk_request() {
    let dir = scratch("remote-one-gene");
    let server = RangeServer::start(stores(), &dir);
    let (_, names) = expected();
    let gene = &names[17];
    for (store, chunk) in [("pbmc_5.zarr", 5), ("pbmc_25.zarr", 25)] {
        let out = dir.join(format!("{store}.h5ad"));
        let p = select_pipeline(&dir, &server.url(store), &format!("index = '{gene}'"), &out);
        assert_eq!(predicted_requests(&p), 1, "EXPLAIN predicts one request");
        server.clear();
        let (code, err) = run_with_env(&p, &[]);
        assert_eq!(code, Some(0), "{err}");
        let reqs = server.requests();
        let x = x_reads(&reqs, store);
        assert_eq!(
            x.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(),
            [format!("/{store}/X/0.{}", 17 / chunk)],
            "{store}: {reqs:#?}"
        );
        // The store is opened from its consolidated metadata: `zarr.json` (absent, v2) and
        // `.zmetadata`, and no other metadata document.
        let meta: Vec<&str> = reqs
            .iter()
            .filter(|r| r.path.ends_with("zarr.json") || r.path.contains("/.z"))
            .map(|r| r.path.as_str())
            .collect();
        assert_eq!(
            meta,
            [
                format!("/{store}/zarr.json"),
                format!("/{store}/.zmetadata")
            ],
            "{store}"
        );
        assert!(
            err.contains(&format!("remote: {} requests", reqs.len())),
            "--metrics reports what the server saw ({} requests):\n{err}",
            reqs.len()
        );
        assert_selection_equal(&stores().join(store), &out, std::slice::from_ref(gene));
    }
}

#[test]
fn a_set_of_genes_costs_one_request_per_distinct_chunk() {
    let dir = scratch("remote-genes");
    let server = RangeServer::start(stores(), &dir);
    let (n_cells, names) = expected();
    let threshold = 300;
    let picked: Vec<usize> = (0..n_cells.len())
        .filter(|&j| n_cells[j] > threshold)
        .collect();
    assert!(picked.len() > 100, "the threshold picks many genes");
    let genes: Vec<String> = picked.iter().map(|&j| names[j].clone()).collect();
    for (store, chunk) in [("pbmc_5.zarr", 5), ("pbmc_25.zarr", 25)] {
        let out = dir.join(format!("{store}.h5ad"));
        let p = select_pipeline(
            &dir,
            &server.url(store),
            &format!("n_cells > {threshold}"),
            &out,
        );
        server.clear();
        let (code, err) = run_with_env(&p, &[]);
        assert_eq!(code, Some(0), "{err}");
        let reqs = server.requests();
        let got: Vec<String> = x_reads(&reqs, store)
            .iter()
            .map(|r| r.path.clone())
            .collect();
        let want: BTreeSet<String> = picked
            .iter()
            .map(|j| format!("/{store}/X/0.{}", j / chunk))
            .collect();
        assert_eq!(
            got.len(),
            want.len(),
            "{store}: each chunk once, none twice"
        );
        assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), want, "{store}");
        assert_eq!(
            predicted_requests(&p),
            want.len() as u64,
            "EXPLAIN: {store}"
        );
        assert_selection_equal(&stores().join(store), &out, &genes);
    }
}

#[test]
fn sharded_reads_fetch_the_index_once_and_coalesced_ranges() {
    let dir = scratch("remote-sharded");
    let server = RangeServer::start(stores(), &dir);
    let (n_cells, names) = expected();
    let store = "pbmc_sharded.zarr";
    // One gene: the shard's index (a suffix range) and one inner chunk's byte range.
    let out = dir.join("one.h5ad");
    let p = select_pipeline(
        &dir,
        &server.url(store),
        &format!("index = '{}'", names[217]),
        &out,
    );
    server.clear();
    let (code, err) = run_with_env(&p, &[]);
    assert_eq!(code, Some(0), "{err}");
    let reqs = server.requests();
    let x = x_reads(&reqs, store);
    assert_eq!(x.len(), 2, "{x:#?}");
    assert_eq!(
        predicted_requests(&p),
        2,
        "EXPLAIN: the index and the chunk"
    );
    assert!(x.iter().all(|r| r.path == format!("/{store}/X/c/0/2")));
    let index = 16 * (700 * 100 / (700 * 5)) as u64 + 4;
    assert_eq!(
        x[0].range.as_deref(),
        Some(format!("bytes=-{index}").as_str())
    );
    assert!(
        x[1].range.is_some() && x[1].bytes < 700 * 5 * 4 + 64,
        "{x:#?}"
    );
    let meta: Vec<&str> = reqs
        .iter()
        .filter(|r| r.path.ends_with("zarr.json"))
        .map(|r| r.path.as_str())
        .collect();
    assert_eq!(
        meta,
        [format!("/{store}/zarr.json")],
        "opening is one request"
    );
    assert_selection_equal(&stores().join(store), &out, &[names[217].clone()]);

    // Many genes: per shard touched, its index and one coalesced range of its chunks, or the
    // whole shard in one request when every chunk of it is needed.
    let picked: Vec<usize> = (0..n_cells.len()).filter(|&j| n_cells[j] > 300).collect();
    let shards: BTreeSet<usize> = picked.iter().map(|j| j / 100).collect();
    let out = dir.join("many.h5ad");
    let p = select_pipeline(&dir, &server.url(store), "n_cells > 300", &out);
    server.clear();
    let (code, err) = run_with_env(&p, &[]);
    assert_eq!(code, Some(0), "{err}");
    let reqs = server.requests();
    let x = x_reads(&reqs, store);
    for s in &shards {
        let path = format!("/{store}/X/c/0/{s}");
        let got: Vec<&Option<String>> = x
            .iter()
            .filter(|r| r.path == path)
            .map(|r| &r.range)
            .collect();
        let whole = got == [&None];
        let ranged = got.len() == 2
            && got[0].as_deref() == Some(format!("bytes=-{index}").as_str())
            && got[1].is_some();
        assert!(whole || ranged, "{path}: {got:?}");
    }
    assert!(
        x.len() < 2 * shards.len(),
        "some shards are read whole: {x:#?}"
    );
    assert_eq!(
        predicted_requests(&p),
        x.len() as u64,
        "EXPLAIN predicts them"
    );
    assert_eq!(
        x.iter().map(|r| &r.path).collect::<BTreeSet<_>>().len(),
        shards.len()
    );
    let genes: Vec<String> = picked.iter().map(|&j| names[j].clone()).collect();
    assert_selection_equal(&stores().join(store), &out, &genes);
}

#[test]
fn sql_inspect_and_convert_take_urls() {
    let dir = scratch("remote-cli");
    let server = RangeServer::start(stores(), &dir);
    let url = server.url("pbmc_sharded.zarr");
    let csv = dir.join("counts.csv");
    let out = engine(&[
        "sql",
        "--data",
        &format!("pbmc={url}"),
        "SELECT bulk_labels, count(*) AS n FROM obs GROUP BY bulk_labels",
        "--output",
        csv.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    python_ok(&format!(
        "import anndata as ad, pandas as pd\n\
         a = ad.read_zarr({store:?})\n\
         want = a.obs.groupby('bulk_labels', observed=True).size()\n\
         got = pd.read_csv({csv:?}).set_index('bulk_labels')['n']\n\
         assert got.to_dict() == want.to_dict(), (got, want)\n",
        store = stores().join("pbmc_sharded.zarr").display().to_string(),
        csv = csv.display().to_string(),
    ));

    let out = engine(&["inspect", &url]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("700") && text.contains("765"), "{text}");

    let copy = dir.join("copy.h5ad");
    let out = engine(&[
        "convert",
        &server.url("pbmc_5.zarr"),
        copy.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    engine_tests::assert_anndata_equal(&stores().join("pbmc_5.zarr"), &copy);
}

#[test]
fn a_store_without_consolidated_metadata_over_http_says_what_to_do() {
    let dir = scratch("remote-bare");
    let server = RangeServer::start(stores(), &dir);
    let out = dir.join("bare.h5ad");
    let p = select_pipeline(&dir, &server.url("pbmc_bare.zarr"), "index = 'CD3E'", &out);
    let (code, err) = run_with_env(&p, &[]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("pbmc_bare.zarr") && err.contains("consolidated metadata"),
        "{err}"
    );
    assert!(!out.exists());
}

/// Fast retries for the fault tests.
/// Selects one gene of `store` into `dir/gene.h5ad` with `faults` injected and quick
/// retries: (exit code, messages, the output's path).
fn one_gene_under_faults(
    dir: &Path,
    server: &RangeServer,
    store: &str,
    faults: &str,
) -> (Option<i32>, String, PathBuf) {
    let (_, names) = expected();
    server.faults(faults);
    let out = dir.join("gene.h5ad");
    let p = select_pipeline(
        dir,
        &server.url(store),
        &format!("index = '{}'", names[17]),
        &out,
    );
    let (code, err) = run_with_env(&p, &QUICK);
    (code, err, out)
}

const QUICK: [(&str, &str); 3] = [
    ("ENGINE_HTTP_RETRIES", "3"),
    ("ENGINE_HTTP_BACKOFF", "0.01"),
    ("ENGINE_HTTP_TIMEOUT", "2"),
];

#[test]
fn transient_faults_are_retried() {
    let dir = scratch("remote-faults");
    let server = RangeServer::start(stores(), &dir);
    let (_, names) = expected();
    let store = "pbmc_5.zarr";
    let chunk = format!("/{store}/X/0.3");
    for fault in [
        r#"{"kind": "status", "status": 503, "times": 2}"#,
        r#"{"kind": "status", "status": 500, "times": 1}"#,
        r#"{"kind": "truncate", "times": 2}"#,
        r#"{"kind": "drop", "times": 1}"#,
        r#"{"kind": "delay", "seconds": 4, "times": 1}"#,
    ] {
        let fault = fault.replace('{', &format!("{{\"match\": \"{chunk}\", "));
        server.faults(&format!("[{fault}]"));
        server.clear();
        let out = dir.join("gene.h5ad");
        let p = select_pipeline(
            &dir,
            &server.url(store),
            &format!("index = '{}'", names[17]),
            &out,
        );
        let _ = std::fs::remove_file(&out);
        let (code, err) = run_with_env(&p, &QUICK);
        assert_eq!(code, Some(0), "{fault}: {err}");
        let tries: Vec<String> = server
            .requests()
            .into_iter()
            .filter(|r| r.path == chunk)
            .map(|r| r.status)
            .collect();
        assert!(
            tries.len() >= 2 && tries.last().map(String::as_str) == Some("200"),
            "{fault}: {tries:?}"
        );
        assert_selection_equal(
            &stores().join(store),
            &out,
            std::slice::from_ref(&names[17]),
        );
    }
}

#[test]
fn a_lasting_fault_names_the_url_and_writes_nothing() {
    let dir = scratch("remote-down");
    let server = RangeServer::start(stores(), &dir);
    let store = "pbmc_5.zarr";
    let (code, err, out) = one_gene_under_faults(
        &dir,
        &server,
        store,
        &format!(
            r#"[{{"match": "/{store}/X/0.3", "kind": "status", "status": 503, "times": 1000}}]"#
        ),
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&server.url(store)) && err.contains("X/0.3"),
        "{err}"
    );
    assert!(err.contains("503"), "{err}");
    assert!(!out.exists());
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("gene.h5ad"))
        .collect();
    assert!(left.is_empty(), "nothing half-written: {left:?}");
    let tries = server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("X/0.3"))
        .count();
    assert_eq!(tries, 4, "the first try and ENGINE_HTTP_RETRIES=3 more");
}

#[test]
fn credentials_never_appear_in_messages() {
    let dir = scratch("remote-secret");
    let server = RangeServer::start(stores(), &dir);
    let url = server
        .url("missing.zarr")
        .replace("http://", "http://reader:hunter2-secret@");
    let out = engine(&["inspect", &url]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("missing.zarr"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    let out = std::process::Command::new(engine_tests::engine_bin())
        .args(["inspect", &server.url("pbmc_5.zarr")])
        .env("AWS_SECRET_ACCESS_KEY", "hunter2-secret")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("hunter2"));
}

/// moto's S3 server on a free loopback port; killed when dropped.
struct S3Server(std::process::Child, u16);

impl S3Server {
    fn start() -> S3Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(engine_tests::python())
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto's server starts");
        let t = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(t.elapsed().as_secs() < 60, "moto's server did not come up");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        S3Server(child, port)
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{}", self.1)),
            ("AWS_ACCESS_KEY_ID", "AKIDTESTREADER".into()),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t-never-shown".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn s3_stores_read_with_credentials_from_the_environment() {
    let dir = scratch("remote-s3");
    let s3 = S3Server::start();
    python_ok(&format!(
        "import boto3, os\n\
         s3 = boto3.client('s3', endpoint_url='http://127.0.0.1:{port}', region_name='us-east-1',\n\
                           aws_access_key_id='AKIDTESTREADER', aws_secret_access_key='s3cr3t-never-shown')\n\
         s3.create_bucket(Bucket='lab')\n\
         for store in ['pbmc_5.zarr', 'pbmc_bare.zarr', 'pbmc_sharded.zarr']:\n\
         \x20   root = os.path.join({stores:?}, store)\n\
         \x20   for d, _, files in os.walk(root):\n\
         \x20       for f in files:\n\
         \x20           p = os.path.join(d, f)\n\
         \x20           s3.upload_file(p, 'lab', 'runs/' + store + '/' + os.path.relpath(p, root))\n\
         s3.upload_file(os.path.join({stores:?}, 'pbmc_tall.h5ad'), 'lab', 'files/pbmc_tall.h5ad')\n",
        port = s3.1,
        stores = stores().display().to_string(),
    ));
    let (_, names) = expected();
    let env = s3.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Consolidated, sharded, and bare (S3 lists, so no consolidated metadata is needed).
    for store in ["pbmc_5.zarr", "pbmc_sharded.zarr", "pbmc_bare.zarr"] {
        let out = dir.join(format!("{store}.h5ad"));
        let p = select_pipeline(
            &dir,
            &format!("s3://lab/runs/{store}"),
            &format!("index = '{}' OR n_cells > 600", names[17]),
            &out,
        );
        let (code, err) = run_with_env(&p, &env);
        assert_eq!(code, Some(0), "{store}: {err}");
        assert!(!err.contains("s3cr3t"), "{err}");
        let (n_cells, _) = expected();
        let genes: Vec<String> = (0..names.len())
            .filter(|&j| j == 17 || n_cells[j] > 600)
            .map(|j| names[j].clone())
            .collect();
        assert_selection_equal(&stores().join(store), &out, &genes);
    }
    // An .h5ad object: HDF5 reads it by range requests through the same client.
    let out = dir.join("tall.h5ad");
    let p = select_pipeline(
        &dir,
        "s3://lab/files/pbmc_tall.h5ad",
        &format!("index = '{}'", names[17]),
        &out,
    );
    let (code, err) = run_with_env(&p, &env);
    assert_eq!(code, Some(0), "{err}");
    assert_gene_equal(&stores().join("pbmc_tall.h5ad"), &out, &names[17]);
    // A missing store: the URL in the message, never the secret.
    let out = std::process::Command::new(engine_tests::engine_bin())
        .args(["inspect", "s3://lab/runs/missing.zarr"])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("s3://lab/runs/missing.zarr"), "{err}");
    assert!(
        !err.contains("s3cr3t") && !err.contains("AKIDTESTREADER"),
        "{err}"
    );
}

#[test]
fn elements_are_chunked_as_asked_and_one_gene_stays_one_request() {
    let dir = scratch("remote-storage");
    let src = stores().join("pbmc_25.zarr");
    let out = dir.join("tutorial.zarr");
    let p = dir.join("write.yaml");
    std::fs::write(
        &p,
        format!(
            "version: 1\nsteps:\n  - {{id: data, op: read, path: '{}'}}\noutputs:\n  - step: data\n    path: '{}'\n    layers: {{again: data}}\n    storage:\n      X: {{chunks: [all, 5]}}\n      layers/*: {{chunks: [all, 25], compression: 'zstd:3'}}\n      obsm/*: {{chunks: all}}\n",
            src.display(),
            out.display()
        ),
    )
    .unwrap();
    let (code, err) = run_with_env(&p, &[]);
    assert_eq!(code, Some(0), "{err}");
    python_ok(&format!(
        "import anndata as ad, numpy as np, zarr\n\
         g = zarr.open_consolidated({out:?})\n\
         assert g['X'].chunks == (700, 5), g['X'].chunks\n\
         assert g['layers/again'].chunks == (700, 25), g['layers/again'].chunks\n\
         assert g['obsm/X_pca'].chunks == g['obsm/X_pca'].shape, g['obsm/X_pca'].chunks\n\
         a, b = ad.read_zarr({src:?}), ad.read_zarr({out:?})\n\
         np.testing.assert_array_equal(b.X, a.X)\n\
         np.testing.assert_array_equal(b.layers['again'], a.X)\n\
         np.testing.assert_array_equal(b.obsm['X_pca'], a.obsm['X_pca'])\n",
        out = out.display().to_string(),
        src = src.display().to_string(),
    ));
    // Served, the engine's own output is opened in one request per metadata document it
    // needs (consolidated) and one gene costs one chunk.
    let server = RangeServer::start(&dir, &dir);
    let (_, names) = expected();
    let got = dir.join("gene.h5ad");
    let p = select_pipeline(
        &dir,
        &server.url("tutorial.zarr"),
        &format!("index = '{}'", names[17]),
        &got,
    );
    server.clear();
    let (code, err) = run_with_env(&p, &[]);
    assert_eq!(code, Some(0), "{err}");
    let reqs = server.requests();
    let x = x_reads(&reqs, "tutorial.zarr");
    assert_eq!(x.len(), 1, "{x:#?}");
    assert_eq!(x[0].path, "/tutorial.zarr/X/0.3");
    let meta = reqs
        .iter()
        .filter(|r| r.path.ends_with("zarr.json") || r.path.contains("/.z"))
        .count();
    assert_eq!(meta, 2, "zarr.json (absent) and .zmetadata: {reqs:#?}");

    // convert takes the same per element.
    let conv = dir.join("converted.zarr");
    let out = engine(&[
        "convert",
        src.to_str().unwrap(),
        conv.to_str().unwrap(),
        "--format",
        "zarr3",
        "--chunks-of",
        "X=all,5",
        "--chunks-of",
        "obsm/*=all",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    python_ok(&format!(
        "import zarr, json\n\
         g = zarr.open_consolidated({conv:?})\n\
         assert g['X'].chunks == (700, 5), g['X'].chunks\n\
         assert g['obsm/X_umap'].chunks == (700, 2), g['obsm/X_umap'].chunks\n",
        conv = conv.display().to_string(),
    ));
    let bad = engine(&[
        "convert",
        src.to_str().unwrap(),
        dir.join("bad.zarr").to_str().unwrap(),
        "--chunks-of",
        "uns/x=all",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("names no matrix element"));
}

/// A subset of cells over chunks as tall as the matrix: the scan gathers its rows in one
/// band, so each chunk of X is fetched once though the rows span several blocks.
#[test]
fn a_cell_subset_over_tall_chunks_fetches_each_chunk_once() {
    let dir = scratch("remote-cells");
    let server = RangeServer::start(stores(), &dir);
    let store = "pbmc_5.zarr";
    let out = dir.join("cells.h5ad");
    let p = dir.join("cells.yaml");
    std::fs::write(
        &p,
        format!(
            "version: 1\nsteps:\n  - {{id: data, op: read, path: '{}'}}\n  - {{id: cells, op: select, input: data, where: \"bulk_labels != 'Dendritic'\"}}\noutputs:\n  - {{step: cells, path: '{}'}}\n",
            server.url(store),
            out.display()
        ),
    )
    .unwrap();
    let explain = engine_tests::engine_ok(&["explain", p.to_str().unwrap()]);
    let explain = String::from_utf8_lossy(&explain.stdout).into_owned();
    // 765 genes in chunks of 5: 153 chunks, each once.
    let chunks = 765usize.div_ceil(5);
    assert!(
        explain.contains("in 1 bands of up to"),
        "the rows are gathered in one band:\n{explain}"
    );
    assert_eq!(predicted_requests(&p), chunks as u64, "{explain}");
    server.clear();
    let (code, err) = run_with_env(&p, &[]);
    assert_eq!(code, Some(0), "{err}");
    let reqs = server.requests();
    let got: Vec<&str> = x_reads(&reqs, store)
        .iter()
        .map(|r| r.path.as_str())
        .collect();
    let distinct: BTreeSet<&str> = got.iter().copied().collect();
    assert_eq!(distinct.len(), chunks, "every chunk of X");
    assert_eq!(got.len(), chunks, "each chunk once: {got:?}");
    python_ok(&format!(
        "import anndata as ad, numpy as np\n\
         a = ad.read_zarr({store:?})\n\
         a = a[a.obs['bulk_labels'] != 'Dendritic']\n\
         b = ad.read_h5ad({out:?})\n\
         assert b.n_obs > 342, b.n_obs  # more than one block of 765 genes\n\
         assert list(b.obs_names) == list(a.obs_names)\n\
         np.testing.assert_array_equal(np.asarray(b.X), np.asarray(a.X))\n",
        store = stores().join(store).display().to_string(),
        out = out.display().to_string(),
    ));
}

/// The `remote: N requests, B bytes` line of `--metrics`.
fn fetched(report: &str) -> (u64, u64) {
    let line = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("remote: "))
        .unwrap_or_else(|| panic!("no remote line in:\n{report}"));
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    (nums[0], nums[1])
}

/// An `.h5ad` by URL: HDF5 reads it through range requests, so one gene of a 20 MB file
/// fetches the pages holding its chunk and the metadata, not the file; values equal
/// anndata's.
#[test]
fn one_gene_of_a_remote_h5ad_fetches_a_small_part_of_it() {
    let dir = scratch("remote-h5ad");
    let server = RangeServer::start(stores(), &dir);
    let store = "pbmc_tall.h5ad";
    let size = std::fs::metadata(stores().join(store)).unwrap().len();
    let (_, names) = expected();
    let gene = &names[17];
    let out = dir.join("one.h5ad");
    let p = select_pipeline(&dir, &server.url(store), &format!("index = '{gene}'"), &out);
    server.clear();
    let (code, err) = run_with_env(&p, &[]);
    assert_eq!(code, Some(0), "{err}");
    let reqs = server.requests();
    let (n, bytes) = fetched(&err);
    assert_eq!(
        n as usize,
        reqs.len(),
        "--metrics counts what the server saw"
    );
    assert_eq!(bytes, reqs.iter().map(|r| r.bytes).sum::<u64>());
    // The chunk of 7,000 × 5 values (~140 kB) and the file's metadata, read in pages of
    // 1 MiB (the first one on open): under a fifth of the file.
    assert!(
        bytes < size / 5,
        "{bytes} of {size} bytes fetched: {reqs:#?}"
    );
    assert!(reqs.len() <= 8, "{reqs:#?}");
    assert!(
        reqs.iter().all(|r| r.method == "GET" && r.range.is_some()),
        "{reqs:#?}"
    );
    assert_gene_equal(&stores().join(store), &out, gene);
}

/// anndata: `out` holds gene `gene` of the h5ad `src`, every cell, the same values.
fn assert_gene_equal(src: &Path, out: &Path, gene: &str) {
    python_ok(&format!(
        "import anndata as ad, numpy as np\n\
         a = ad.read_h5ad({src:?})[:, [{gene:?}]]\n\
         b = ad.read_h5ad({out:?})\n\
         assert list(b.var_names) == [{gene:?}]\n\
         assert list(b.obs_names) == list(a.obs_names)\n\
         np.testing.assert_array_equal(np.asarray(b.X), np.asarray(a.X))\n",
        src = src.display().to_string(),
        out = out.display().to_string(),
    ));
}

/// scanpy's bundled file (written by an old anndata, X gzip in (44, 96) chunks, obsm, obsp,
/// uns) read whole by URL equals reading it from disk; `inspect` and SQL take the URL too.
#[test]
fn a_file_scanpy_ships_reads_the_same_by_url() {
    let dir = scratch("remote-h5ad-scanpy");
    let server = RangeServer::start(stores(), &dir);
    let url = server.url("pbmc_scanpy.h5ad");
    let out = dir.join("copy.h5ad");
    let p = dir.join("copy.yaml");
    std::fs::write(
        &p,
        format!(
            "version: 1\nsteps:\n  - {{id: data, op: read, path: '{url}'}}\noutputs:\n  - {{step: data, path: '{}'}}\n",
            out.display()
        ),
    )
    .unwrap();
    let (code, err) = run_with_env(&p, &[]);
    assert_eq!(code, Some(0), "{err}");
    python_ok(&format!(
        "import anndata as ad, numpy as np\n\
         a = ad.read_h5ad({src:?})\n\
         b = ad.read_h5ad({out:?})\n\
         assert list(b.obs_names) == list(a.obs_names) and list(b.var_names) == list(a.var_names)\n\
         np.testing.assert_array_equal(np.asarray(b.X), np.asarray(a.X))\n\
         np.testing.assert_array_equal(b.obsm['X_umap'], a.obsm['X_umap'])\n\
         assert list(b.obs['bulk_labels']) == list(a.obs['bulk_labels'])\n",
        src = stores().join("pbmc_scanpy.h5ad").display().to_string(),
        out = out.display().to_string(),
    ));
    let inspect = engine_tests::engine_ok(&["inspect", &url]);
    let text = String::from_utf8_lossy(&inspect.stdout);
    assert!(text.contains("700") && text.contains("765"), "{text}");
    let sql = engine_tests::engine_ok(&[
        "sql",
        "--data",
        &url,
        "SELECT bulk_labels, count(*) AS n FROM obs GROUP BY bulk_labels ORDER BY n DESC LIMIT 1",
    ]);
    let text = String::from_utf8_lossy(&sql.stdout);
    assert!(text.contains("Dendritic") && text.contains("240"), "{text}");
}

/// A remote h5ad whose server fails after the open: the message names the URL and the
/// server's answer (not HDF5's error stack), and nothing is written.
#[test]
fn a_lasting_fault_in_a_remote_h5ad_names_the_url() {
    let dir = scratch("remote-h5ad-down");
    let server = RangeServer::start(stores(), &dir);
    let store = "pbmc_tall.h5ad";
    // The open (the first MiB) goes through; every request after it fails.
    let (code, err, out) = one_gene_under_faults(
        &dir,
        &server,
        store,
        &format!(
            r#"[{{"match": "/{store}", "kind": "status", "status": 503, "times": 1000, "skip": 1}}]"#
        ),
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(&server.url(store)), "{err}");
    assert!(err.contains("503"), "{err}");
    assert!(
        !err.contains("H5FD"),
        "the request, not HDF5's stack: {err}"
    );
    assert!(!out.exists());
}

/// A remote h5ad cut short: the open fails naming the URL, with no panic.
#[test]
fn a_truncated_remote_h5ad_is_refused_by_name() {
    let dir = scratch("remote-h5ad-cut");
    let src = stores().join("pbmc_tall.h5ad");
    let bytes = std::fs::read(&src).unwrap();
    std::fs::write(dir.join("cut.h5ad"), &bytes[..bytes.len() / 2]).unwrap();
    let server = RangeServer::start(&dir, &dir);
    let url = server.url("cut.h5ad");
    let out = std::process::Command::new(engine_tests::engine_bin())
        .args(["inspect", &url])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert_ne!(out.status.code(), Some(101), "no panic: {err}");
    assert!(err.contains(&url), "{err}");
}
