//! Writes that cannot destroy: outputs replaced only when asked and only if they are files or
//! zarr stores, a pipeline never writing over its own input, `check` refusing what `run`
//! would, interrupted writes leaving the target as it was, stale temporaries removed.

use engine_tests::{engine_bin, engine_code as code, fixtures, scratch};
use std::path::Path;

fn pipeline(dir: &Path, input: &Path, output: &Path) -> std::path::PathBuf {
    let yaml = dir.join("p.yaml");
    std::fs::write(
        &yaml,
        format!(
            "version: 1\nsteps:\n  - {{id: data, op: read, path: '{}'}}\n  - {{id: l, op: log1p, input: data}}\noutputs:\n  - {{step: l, path: '{}'}}\n",
            input.display(),
            output.display()
        ),
    )
    .unwrap();
    yaml
}

/// `run` and `check` refuse an existing output without `--overwrite`, pointing at it in the
/// pipeline; with it the output is replaced.
#[test]
fn existing_outputs_need_overwrite() {
    let dir = scratch("safety-overwrite");
    let input = dir.join("in.h5ad");
    std::fs::copy(fixtures().join("full_plain.h5ad"), &input).unwrap();
    let out = dir.join("out.h5ad");
    std::fs::write(&out, b"precious").unwrap();
    let yaml = pipeline(&dir, &input, &out);
    let y = yaml.to_str().unwrap();
    for cmd in ["run", "check"] {
        let (c, err) = code(&[cmd, y]);
        assert_eq!(c, Some(2), "{cmd}: {err}");
        assert!(
            err.contains("already exists") && err.contains("p.yaml:6:"),
            "{cmd}: {err}"
        );
        assert_eq!(std::fs::read(&out).unwrap(), b"precious", "{cmd}");
    }
    let (c, err) = code(&["check", y, "--overwrite"]);
    assert_eq!(c, Some(0), "{err}");
    let (c, err) = code(&["run", y, "--overwrite"]);
    assert_eq!(c, Some(0), "{err}");
    assert_ne!(std::fs::read(&out).unwrap(), b"precious");
}

/// A pipeline whose output is its own input is refused before anything runs (running one
/// twice used to apply log1p twice to the source).
#[test]
fn a_pipeline_cannot_overwrite_its_input() {
    let dir = scratch("safety-own-input");
    let input = dir.join("in.h5ad");
    std::fs::copy(fixtures().join("full_plain.h5ad"), &input).unwrap();
    let before = std::fs::read(&input).unwrap();
    // The same file under another spelling of its path.
    let same = dir.join(".").join("in.h5ad");
    let yaml = pipeline(&dir, &input, &same);
    for cmd in ["check", "run"] {
        let (c, err) = code(&[cmd, yaml.to_str().unwrap(), "--overwrite"]);
        assert_eq!(c, Some(2), "{cmd}: {err}");
        assert!(err.contains("is the pipeline's input"), "{cmd}: {err}");
    }
    assert_eq!(std::fs::read(&input).unwrap(), before);
}

/// A directory that is not a zarr store (a project folder) and a device are never replaced,
/// by `run`, `convert` or `sql --output`, even with `--overwrite`.
#[test]
fn only_files_and_zarr_stores_are_replaced() {
    let dir = scratch("safety-non-store");
    let src = fixtures().join("full_plain.h5ad");
    let project = dir.join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(project.join("analysis.py"), "print('mine')").unwrap();
    let p = project.to_str().unwrap();
    let yaml = pipeline(&dir, &src, &project);
    for args in [
        vec!["run", yaml.to_str().unwrap(), "--overwrite"],
        vec![
            "convert",
            src.to_str().unwrap(),
            p,
            "--format",
            "zarr3",
            "--overwrite",
        ],
        vec![
            "convert",
            src.to_str().unwrap(),
            "/dev/null",
            "--format",
            "h5ad",
            "--overwrite",
        ],
    ] {
        let (c, err) = code(&args);
        assert_eq!(c, Some(2), "{args:?}: {err}");
        assert!(err.contains("not replacing it"), "{args:?}: {err}");
    }
    assert!(project.join("analysis.py").exists());
    assert!(
        Path::new("/dev/null")
            .metadata()
            .unwrap()
            .file_type()
            .is_char_device_like()
    );
    // A zarr store is replaced whole.
    let store = dir.join("s.zarr");
    for _ in 0..2 {
        let (c, err) = code(&[
            "convert",
            src.to_str().unwrap(),
            store.to_str().unwrap(),
            "--format",
            "zarr3",
            "--overwrite",
        ]);
        assert_eq!(c, Some(0), "{err}");
    }
    engine_tests::assert_anndata_equal(&src, &store);
}

trait CharDevice {
    fn is_char_device_like(&self) -> bool;
}

impl CharDevice for std::fs::FileType {
    fn is_char_device_like(&self) -> bool {
        use std::os::unix::fs::FileTypeExt;
        self.is_char_device()
    }
}

/// SIGTERM and SIGINT during a conversion leave the target as it was (absent, or the old
/// store whole) and no temporary; a temporary left by a killed process (SIGKILL) is removed
/// by the next write to that path.
#[test]
fn interrupted_writes_leave_nothing() {
    let dir = scratch("safety-signals");
    let src = dir.join("big.h5ad");
    let script = format!(
        "import anndata as ad, numpy as np, scipy.sparse as sp\n\
         ad.AnnData(sp.random(200000, 1000, density=0.05, format='csr', dtype=np.float32, random_state=0)).write_h5ad('{}')\n",
        src.display()
    );
    engine_tests::python_ok(&script);
    let out_dir = dir.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join("x.zarr");
    let convert = || {
        std::process::Command::new(engine_bin())
            .args([
                "convert",
                src.to_str().unwrap(),
                out.to_str().unwrap(),
                "--format",
                "zarr3",
                "--overwrite",
                "--block-size",
                "1M",
            ])
            .spawn()
            .unwrap()
    };
    let listing = || {
        let mut v: Vec<String> = std::fs::read_dir(&out_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let mut interrupted = 0;
    // Signalled once the temporary exists (plus a delay), so a fast machine cannot finish
    // the conversion first.
    for (sig, delay_ms) in [(libc_sig::TERM, 0), (libc_sig::INT, 100)] {
        let mut child = convert();
        wait_for_temporary(&out_dir, &mut child);
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = std::process::Command::new("kill")
            .args([format!("-{sig}"), child.id().to_string()])
            .status();
        let status = child.wait().unwrap();
        if status.success() {
            // Finished before the signal: the store is whole.
            assert_eq!(listing(), ["x.zarr"]);
            continue;
        }
        assert!(status.code().is_some_and(|c| c > 128), "{status:?}");
        let l = listing();
        assert!(l.is_empty() || l == ["x.zarr"], "after SIG{sig}: {l:?}");
        interrupted += 1;
    }
    assert!(interrupted > 0, "every convert finished before its signal");
    // SIGKILL: no handler runs, the temporary stays until the next write beside it.
    let mut child = convert();
    wait_for_temporary(&out_dir, &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    let res = std::process::Command::new(engine_bin())
        .args([
            "convert",
            src.to_str().unwrap(),
            out.to_str().unwrap(),
            "--format",
            "zarr3",
            "--overwrite",
        ])
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert_eq!(listing(), ["x.zarr"]);
    engine_tests::assert_anndata_equal(&src, &out);

    // The same for `run` over that store, stopped at several moments: an interrupted run
    // leaves the old store whole (still equal to the source), a finished one the new one.
    let yaml = dir.join("p.yaml");
    std::fs::write(
        &yaml,
        format!(
            "version: 1\nsteps:\n  - {{id: data, op: read, path: '{}'}}\n  - {{id: n, op: normalize_total, input: data}}\n  - {{id: l, op: log1p, input: n}}\noutputs:\n  - {{step: l, path: '{}', format: zarr3}}\n",
            src.display(),
            out.display()
        ),
    )
    .unwrap();
    let run = || {
        std::process::Command::new(engine_bin())
            .args(["run", yaml.to_str().unwrap(), "--overwrite"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // What a finished run leaves, written elsewhere: a signal that lands after the commit
    // (between the rename and the exit) finds the new store in place, whole.
    let finished = dir.join("finished").join("x.zarr");
    let finished_yaml = dir.join("finished.yaml");
    std::fs::write(
        &finished_yaml,
        std::fs::read_to_string(&yaml)
            .unwrap()
            .replace(&out.display().to_string(), &finished.display().to_string()),
    )
    .unwrap();
    engine_tests::engine_ok(&["run", finished_yaml.to_str().unwrap()]);
    let same = |a: &Path, b: &Path| {
        engine_tests::run_python("compare.py", &[a, b])
            .status
            .success()
    };
    let mut interrupted = 0;
    // Delays count from the moment the temporary appears; the first signal lands while the
    // run is surely writing.
    for (sig, delay_ms) in [
        ("TERM", 0),
        ("INT", 300),
        ("TERM", 900),
        ("KILL", 100),
        ("KILL", 600),
    ] {
        let mut child = run();
        wait_for_temporary(&out_dir, &mut child);
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = std::process::Command::new("kill")
            .args([format!("-{sig}"), child.id().to_string()])
            .status();
        let status = child.wait().unwrap();
        if status.success() {
            break;
        }
        interrupted += 1;
        // A SIGKILL's temporary may remain until the next write; nothing else may.
        let l: Vec<String> = listing()
            .into_iter()
            .filter(|n| !(sig == "KILL" && n.starts_with(".tmp-")))
            .collect();
        assert_eq!(l, ["x.zarr"], "after SIG{sig} at {delay_ms} ms");
        assert!(
            same(&src, &out) || same(&finished, &out),
            "after SIG{sig} at {delay_ms} ms the store is neither the old one nor the new one"
        );
    }
    assert!(interrupted > 0, "every run finished before its signal");
    let status = run().wait().unwrap();
    assert!(status.success());
    assert_eq!(listing(), ["x.zarr"]);
    let x = engine_tests::read_matrix(&out, "X");
    assert!(
        x.iter().all(|v| (0.0..10.0).contains(v)),
        "not log1p-normalised"
    );
}

/// Waits until the child's temporary sibling exists in `dir` (or the child has exited), so a
/// signal sent next lands mid-write however fast the machine is. A killed run's temporary
/// (another pid) does not count.
fn wait_for_temporary(dir: &Path, child: &mut std::process::Child) {
    let ours = format!(".tmp-{}-", child.id());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::time::Instant::now() < deadline {
        let writing = std::fs::read_dir(dir)
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().starts_with(&ours));
        if writing || child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    panic!("no temporary appeared in {} within 120 s", dir.display());
}

/// Signal names for `kill`.
mod libc_sig {
    pub const TERM: &str = "TERM";
    pub const INT: &str = "INT";
}

/// Two outputs to one path are refused before the run: the second would replace the first.
#[test]
fn an_output_path_written_twice_is_refused() {
    let dir = scratch("safety-twice");
    let out = dir.join("o.h5ad");
    let yaml = dir.join("p.yaml");
    std::fs::write(
        &yaml,
        format!(
            "version: 1\nsteps:\n  - {{id: data, op: read, path: '{0}'}}\n  - {{id: l, op: log1p, input: data}}\noutputs:\n  - {{step: data, path: '{1}'}}\n  - {{step: l, path: '{1}'}}\n",
            fixtures().join("full_plain.h5ad").display(),
            out.display()
        ),
    )
    .unwrap();
    let (c, err) = code(&["check", yaml.to_str().unwrap()]);
    assert_eq!(c, Some(2), "{err}");
    assert!(
        err.contains("is written twice") && err.contains("p.yaml:7:"),
        "{err}"
    );
    assert!(!out.exists());
}

/// A run's outputs appear together: when a later step fails (here a damaged chunk met while
/// streaming the second output), the output already written is not put in place, an old one
/// stays as it was, and no temporary is left.
#[test]
fn a_failed_run_commits_no_output() {
    let dir = scratch("safety-together");
    let (good, bad) = (dir.join("good.zarr"), dir.join("bad.zarr"));
    engine_tests::python_ok(&format!(
        "import anndata as ad, numpy as np\n\
         a = ad.AnnData(np.arange(4000, dtype=np.float32).reshape(200, 20))\n\
         a.write_zarr('{}', chunks=(50, 20))\n\
         a.write_zarr('{}', chunks=(50, 20))\n",
        good.display(),
        bad.display()
    ));
    // A chunk that does not decompress (anndata 0.13 writes zarr v3): found only when the
    // pass reaches it.
    let chunk = bad.join("X/c/2/0");
    assert!(chunk.is_file());
    std::fs::write(&chunk, b"not a zstd or blosc frame").unwrap();
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let (first, second) = (out.join("first.h5ad"), out.join("second.h5ad"));
    std::fs::write(&second, b"the old second output").unwrap();
    let yaml = dir.join("p.yaml");
    std::fs::write(
        &yaml,
        format!(
            "version: 1\nsteps:\n  - {{id: a, op: read, path: '{}'}}\n  - {{id: b, op: read, path: '{}'}}\n  - {{id: la, op: log1p, input: a}}\n  - {{id: lb, op: log1p, input: b}}\noutputs:\n  - {{step: la, path: '{}'}}\n  - {{step: lb, path: '{}'}}\n",
            good.display(),
            bad.display(),
            first.display(),
            second.display()
        ),
    )
    .unwrap();
    let (c, err) = code(&["run", yaml.to_str().unwrap(), "--overwrite"]);
    assert_eq!(c, Some(1), "{err}");
    assert!(err.contains("bad.zarr"), "{err}");
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["second.h5ad"]);
    assert_eq!(std::fs::read(&second).unwrap(), b"the old second output");
    // Mended, the same run puts both in place.
    std::fs::remove_dir_all(&bad).unwrap();
    std::fs::rename(&good, &bad).unwrap();
    engine_tests::python_ok(&format!(
        "import anndata as ad, numpy as np\n\
         ad.AnnData(np.arange(4000, dtype=np.float32).reshape(200, 20)).write_zarr('{}', chunks=(50, 20))\n",
        good.display()
    ));
    let (c, err) = code(&["run", yaml.to_str().unwrap(), "--overwrite"]);
    assert_eq!(c, Some(0), "{err}");
    assert!(first.exists());
    assert_eq!(engine_tests::read_matrix(&second, "X").len(), 4000);
}

/// A reader looking at a store while writers replace it, over and over and two at a time,
/// always finds the store whole: never missing, never without its root metadata. Both
/// concurrent writers succeed.
#[test]
fn readers_during_overwrites_see_a_whole_store() {
    let dir = scratch("safety-readers");
    let (a, b) = (dir.join("a.h5ad"), dir.join("b.h5ad"));
    engine_tests::python_ok(&format!(
        "import anndata as ad, numpy as np\n\
         ad.AnnData(np.ones((300, 40), dtype=np.float32)).write_h5ad('{}')\n\
         ad.AnnData(np.zeros((500, 40), dtype=np.float32)).write_h5ad('{}')\n",
        a.display(),
        b.display()
    ));
    let target = dir.join("t.zarr");
    let convert = |src: &Path| {
        std::process::Command::new(engine_bin())
            .args([
                "convert",
                src.to_str().unwrap(),
                target.to_str().unwrap(),
                "--format",
                "zarr3",
                "--chunks",
                "10,10",
                "--overwrite",
            ])
            .output()
            .unwrap()
    };
    assert!(convert(&a).status.success());
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (checks, failures) = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let (mut checks, mut failures) = (0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                checks += 1;
                // One open of the root document: it is the old store's or the new one's.
                match std::fs::read_to_string(target.join("zarr.json")) {
                    Ok(text) if text.contains("\"anndata\"") => {}
                    Ok(text) => failures.push(format!("root metadata: {text}")),
                    Err(e) => failures.push(format!("zarr.json: {e}")),
                }
            }
            (checks, failures)
        });
        for _ in 0..12 {
            let (ra, rb) = std::thread::scope(|w| {
                let ta = w.spawn(|| convert(&a));
                let tb = w.spawn(|| convert(&b));
                (ta.join().unwrap(), tb.join().unwrap())
            });
            for r in [ra, rb] {
                assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        reader.join().unwrap()
    });
    assert!(
        failures.is_empty(),
        "{} of {checks}: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    assert!(checks > 100, "{checks}");
    // Whole, and one of the two; nothing else beside it.
    let x = engine_tests::read_matrix(&target, "X");
    assert!(x.len() == 300 * 40 || x.len() == 500 * 40, "{}", x.len());
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

/// A full disk (here a file-size limit, `ulimit -f`, which needs no privileges) fails the
/// write with an error naming the target; the old output stays as it was and no temporary is
/// left, for `convert` and `run` alike.
#[test]
fn a_full_disk_fails_cleanly() {
    let dir = scratch("safety-full");
    let src = dir.join("src.h5ad");
    engine_tests::python_ok(&format!(
        "import anndata as ad, numpy as np, scipy.sparse as sp\n\
         ad.AnnData(sp.random(20000, 500, density=0.1, format='csr', dtype=np.float32, random_state=0)).write_h5ad('{}')\n",
        src.display()
    ));
    let out_dir = dir.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join("o.h5ad");
    std::fs::write(&out, b"the old output").unwrap();
    let yaml = pipeline(&dir, &src, &out);
    // 1 MiB per file: the input is about 8 MiB.
    let limited = |args: &[&str]| {
        let r = std::process::Command::new("bash")
            .arg("-c")
            .arg("ulimit -f 1024 && exec \"$0\" \"$@\"")
            .arg(engine_bin())
            .args(args)
            .output()
            .unwrap();
        (
            r.status.code(),
            String::from_utf8_lossy(&r.stderr).into_owned(),
        )
    };
    for args in [
        vec![
            "convert",
            src.to_str().unwrap(),
            out.to_str().unwrap(),
            "--overwrite",
        ],
        vec!["run", yaml.to_str().unwrap(), "--overwrite"],
    ] {
        let (c, err) = limited(&args);
        assert_eq!(c, Some(1), "{args:?}: {err}");
        assert!(
            err.contains("o.h5ad") && !err.contains(".tmp-"),
            "{args:?}: {err}"
        );
        assert_eq!(std::fs::read(&out).unwrap(), b"the old output", "{args:?}");
        let names: Vec<_> = std::fs::read_dir(&out_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["o.h5ad"], "{args:?}");
    }
}
