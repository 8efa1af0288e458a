//! Shared helpers for the integration tests: the Python anndata oracle, its fixtures, and the
//! `engine` binary.
//!
//! The Python environment comes from `scripts/bootstrap.sh` (run by `./dev.sh test`). Tests
//! that need it fail loudly when it is missing rather than skipping, so a green run always
//! means anndata really checked our files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// The venv's Python, with anndata installed.
///
/// # Panics
/// When `.venv` is missing: run `./dev.sh test`.
pub fn python() -> PathBuf {
    let venv = std::env::var_os("ENGINE_PYTHON_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv"));
    let py = venv.join("bin/python");
    assert!(
        py.exists(),
        "{} missing: run ./dev.sh test (it creates the venv with anndata)",
        py.display()
    );
    py
}

/// The venv's Python as a command, ready for arguments.
fn python_command() -> Command {
    let mut c = Command::new(python());
    // Tests run in parallel threads: a child spawned while another thread writes an HDF5
    // file inherits that file's descriptor and with it HDF5's exclusive flock, which would
    // then block every other reader of that file.
    c.env("HDF5_USE_FILE_LOCKING", "FALSE");
    c
}

/// Runs a script from `tests/python/` and returns its output.
pub fn run_python(script: &str, args: &[&Path]) -> Output {
    python_command()
        .arg(root().join("tests/python").join(script))
        .args(args)
        .output()
        .expect("python runs")
}

/// The three small datasets the concat and preshuffle tests join (`tests/python/
/// concat_parts.py`): `a.h5ad`, `b.zarr`, `c.h5ad` in `dir`.
pub fn concat_parts(dir: &Path) {
    let out = run_python("concat_parts.py", &[dir]);
    assert!(
        out.status.success(),
        "concat_parts.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs Python source (`python -c`) and asserts it succeeded, showing its stderr otherwise.
pub fn python_ok(code: &str) {
    let out = python_command()
        .args(["-c", code])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The fixtures Python anndata writes (see `tests/python/make_fixtures.py`), generated once per
/// test binary run and reused while the script is unchanged.
pub fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = root().join("tests/python/make_fixtures.py");
        let text = std::fs::read(&script).expect("fixture script");
        let hash = text.iter().fold(0xcbf29ce484222325u64, |h, &b| {
            (h ^ b as u64).wrapping_mul(0x100000001b3)
        });
        let dir = scratch_root().join(format!("fixtures-{hash:016x}"));
        if !dir.join(".done").exists() {
            let tmp = scratch_root().join(format!("fixtures-tmp-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&tmp);
            let out = run_python("make_fixtures.py", &[&tmp]);
            assert!(
                out.status.success(),
                "make_fixtures.py failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::write(tmp.join(".done"), b"").expect("marker");
            // Another test binary may have won the race; either copy is complete.
            if std::fs::rename(&tmp, &dir).is_err() {
                let _ = std::fs::remove_dir_all(&tmp);
            }
        }
        dir
    })
}

/// A directory for test outputs that lives as long as the target directory.
pub fn scratch_root() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>/deps")
        .join("engine-tests-tmp");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A fresh, empty scratch directory for one test. Those of earlier runs of the test whose
/// process has exited are removed, so the target directory does not fill up run by run.
pub fn scratch(name: &str) -> PathBuf {
    let root = scratch_root();
    for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        let file = entry.file_name();
        let pid = file
            .to_str()
            .and_then(|f| f.strip_prefix(name)?.strip_prefix('-')?.parse::<u32>().ok());
        if let Some(pid) = pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let dir = root.join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// The `engine` binary built next to this test binary.
///
/// # Panics
/// When it was not built: `./dev.sh test` builds it first.
pub fn engine_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>/deps");
    let bin = dir.join("engine");
    assert!(
        bin.exists(),
        "{} missing: run `cargo build --workspace --bins` (./dev.sh test does)",
        bin.display()
    );
    bin
}

/// Runs `engine` with arguments.
pub fn engine(args: &[&str]) -> Output {
    Command::new(engine_bin())
        .args(args)
        .output()
        .expect("engine runs")
}

/// Runs `engine` with arguments: its exit code and stderr.
pub fn engine_code(args: &[&str]) -> (Option<i32>, String) {
    let out = engine(args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the `engine` binary and asserts it succeeded, showing its stderr otherwise.
pub fn engine_ok(args: &[&str]) -> Output {
    let out = engine(args);
    assert!(
        out.status.success(),
        "engine {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A matrix element (`X`, `obsm/X_pca`, …) of a dataset, densified as f64.
pub fn read_matrix(path: &Path, element: &str) -> Vec<f64> {
    engine_store::Dataset::open(path)
        .expect("dataset opens")
        .matrix(element)
        .expect("element exists")
        .read_all()
        .expect("element reads")
        .to_dense()
        .to_f64_vec()
        .expect("numeric element")
}

/// Asserts Python anndata reads `actual` as the same object as `expected`.
pub fn assert_anndata_equal(expected: &Path, actual: &Path) {
    let out = run_python("compare.py", &[expected, actual]);
    assert!(
        out.status.success(),
        "anndata sees a difference:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Like [`assert_anndata_equal`] with `compare.py` flags (`--x-values-only`, `--no-raw`).
pub fn assert_anndata_equal_with(expected: &Path, actual: &Path, flags: &[&str]) {
    let mut args: Vec<&Path> = vec![expected, actual];
    args.extend(flags.iter().map(Path::new));
    let out = run_python("compare.py", &args);
    assert!(
        out.status.success(),
        "anndata sees a difference:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The adjusted Rand index of two labelings (Hubert & Arabie 1985), written out here
/// independently of the engine so tests can score clusterings.
pub fn adjusted_rand_index(a: &[u32], b: &[u32]) -> f64 {
    use std::collections::HashMap;
    assert_eq!(a.len(), b.len());
    let n = a.len() as f64;
    let c2 = |x: f64| x * (x - 1.0) / 2.0;
    let mut table: HashMap<(u32, u32), f64> = HashMap::new();
    let mut ra: HashMap<u32, f64> = HashMap::new();
    let mut rb: HashMap<u32, f64> = HashMap::new();
    for (&x, &y) in a.iter().zip(b) {
        *table.entry((x, y)).or_default() += 1.0;
        *ra.entry(x).or_default() += 1.0;
        *rb.entry(y).or_default() += 1.0;
    }
    let index: f64 = table.values().map(|&v| c2(v)).sum();
    let sa: f64 = ra.values().map(|&v| c2(v)).sum();
    let sb: f64 = rb.values().map(|&v| c2(v)).sum();
    let expected = sa * sb / c2(n);
    let max = (sa + sb) / 2.0;
    if max == expected {
        1.0
    } else {
        (index - expected) / (max - expected)
    }
}

/// One request the test HTTP server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The URL path, decoded.
    pub path: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// The status code, or `dropped` / `truncated` for injected faults.
    pub status: String,
    /// Body bytes sent.
    pub bytes: u64,
}

/// A static file server on the loopback interface (`tests/python/range_server.py`): honours
/// `Range`, logs every request, and injects the faults written with [`RangeServer::faults`].
/// Killed when dropped.
#[derive(Debug)]
pub struct RangeServer {
    child: std::process::Child,
    port: u16,
    log: PathBuf,
    faults: PathBuf,
}

impl RangeServer {
    /// Serves `root`; the log and fault files live in `scratch`.
    pub fn start(root: &Path, scratch: &Path) -> RangeServer {
        use std::io::BufRead;
        let log = scratch.join("requests.jsonl");
        let faults = scratch.join("faults.json");
        let _ = std::fs::remove_file(&faults);
        let mut child = python_command()
            .arg(self::root().join("tests/python/range_server.py"))
            .args([root, &log, &faults])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python runs the test server");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("the server prints its port");
        let port = line.trim().parse().expect("a port number");
        RangeServer {
            child,
            port,
            log,
            faults,
        }
    }

    /// The URL of `path` (relative to the served root).
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// Forgets the requests logged so far.
    pub fn clear(&self) {
        let _ = std::fs::remove_file(&self.log);
    }

    /// The requests logged since the last [`RangeServer::clear`], in order.
    pub fn requests(&self) -> Vec<Request> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("a JSON log line");
                Request {
                    method: v["method"].as_str().unwrap_or_default().to_string(),
                    path: v["path"].as_str().unwrap_or_default().to_string(),
                    range: v["range"].as_str().map(String::from),
                    status: match &v["status"] {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    },
                    bytes: v["bytes"].as_u64().unwrap_or(0),
                }
            })
            .collect()
    }

    /// Faults for the next requests (see the script's docstring); `[]` for none.
    pub fn faults(&self, json: &str) {
        std::fs::write(&self.faults, json).expect("fault file");
    }
}

impl Drop for RangeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
