//! Where outputs appear, without ever destroying what is not ours.
//!
//! Every writer works at a temporary sibling (`.tmp-<pid>-<n>-<name>`) registered for removal;
//! [`AtomicTarget::commit`] puts it in place only after everything was written and closed.
//! An existing target is replaced only with `overwrite`, and only if it is a regular file, a
//! symbolic link or a zarr store; the swap is one atomic exchange of the two paths (a reader
//! sees the old store or the new one, whole), after which the old one is removed. Temporaries
//! left by processes that died are removed by the next write beside them.

use engine_common::{Error, Location, Result};
use std::path::{Path, PathBuf};

/// A temporary path next to the target, put in its place on commit.
#[derive(Debug)]
pub struct AtomicTarget {
    target: PathBuf,
    tmp: PathBuf,
    committed: bool,
}

/// Whether `dir` is a zarr store: zarr metadata at its top.
fn is_zarr_store(dir: &Path) -> bool {
    ["zarr.json", ".zgroup", ".zattrs", ".zarray", ".zmetadata"]
        .iter()
        .any(|m| dir.join(m).is_file())
}

/// Refuses to replace what is not a file, a link or a zarr store: a project folder, a
/// device (`/dev/null`), a socket.
fn check_replaceable(target: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(target) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(Location::file(target), e)),
    };
    let t = meta.file_type();
    if t.is_file() || t.is_symlink() || (t.is_dir() && is_zarr_store(target)) {
        return Ok(());
    }
    Err(Error::usage(format!(
        "{} is {}; not replacing it",
        target.display(),
        if t.is_dir() {
            "a directory that is not a zarr store"
        } else {
            "not a regular file or directory"
        }
    )))
}

/// A hash of this machine's name, in temporaries' names: a pid means something only on the
/// host that wrote it (a shared file system is seen by other machines' processes too).
fn host() -> u32 {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    name.trim().bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// A sibling name of this process for `name`: `.<kind>-<pid>-<host>.<n>-<name>` (`kind` is
/// `tmp` for what is being written, `old` for a target moved aside). [`owner`] parses it back.
fn temp_name(kind: &str, name: &str) -> String {
    format!(
        ".{kind}-{}-{:08x}.{}-{name}",
        std::process::id(),
        host(),
        unique()
    )
}

/// Removes a file or a directory tree, whichever `p` is; what is already gone is fine.
fn remove_any(p: &Path) {
    let _ = std::fs::remove_dir_all(p);
    let _ = std::fs::remove_file(p);
}

/// The kind (`tmp` or `old`), pid and host of a temporary named for `name`
/// (`.tmp-<pid>-<host>.<n>-<name>`, as [`temp_name`] makes them), or `None` when the entry is
/// not one.
fn owner(entry: &str, name: &str) -> Option<(&'static str, u32, u32)> {
    let (kind, rest) = if let Some(r) = entry.strip_prefix(".tmp-") {
        ("tmp", r)
    } else {
        ("old", entry.strip_prefix(".old-")?)
    };
    let (pid, rest) = rest.split_once('-')?;
    let (tag, tail) = rest.split_once('-')?;
    let (host, n) = tag.split_once('.')?;
    (tail == name && n.bytes().all(|b| b.is_ascii_digit())).then_some(())?;
    Some((kind, pid.parse().ok()?, u32::from_str_radix(host, 16).ok()?))
}

/// Tidies what a process that died (SIGKILL, a crash) left beside `name` on this host: its
/// temporaries are removed (ours by name, and nobody will finish them); a target it had moved
/// aside (`.old-…`) is moved back when the target is missing, and otherwise kept.
fn remove_stale(dir: &Path, name: &str) {
    let proc = Path::new("/proc");
    if !proc.is_dir() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let here = host();
    for e in entries.flatten() {
        let entry = e.file_name().to_string_lossy().into_owned();
        let Some((kind, pid, h)) = owner(&entry, name) else {
            continue;
        };
        if h != here || pid == std::process::id() || proc.join(pid.to_string()).exists() {
            continue;
        }
        let p = e.path();
        if kind == "tmp" {
            remove_any(&p);
        } else {
            let target = dir.join(name);
            if std::fs::symlink_metadata(&target).is_err() {
                let _ = std::fs::rename(&p, &target);
            }
        }
    }
}

/// What [`AtomicTarget::new`] would refuse about `target`, without preparing to write:
/// an existing target without `overwrite`, or one that may not be replaced.
///
/// # Errors
/// As [`AtomicTarget::new`], for the target itself.
pub fn check_target(target: &Path, overwrite: bool) -> Result<()> {
    if std::fs::symlink_metadata(target).is_ok() {
        if !overwrite {
            return Err(Error::usage(format!(
                "{} already exists (pass --overwrite to replace it)",
                target.display()
            )));
        }
        check_replaceable(target)?;
    }
    Ok(())
}

impl AtomicTarget {
    /// Prepares to write `target`. Refuses to replace an existing target unless `overwrite`
    /// is set, and never replaces one that is not a file, a link or a zarr store.
    ///
    /// # Errors
    /// When the target exists (and `overwrite` is off), cannot be replaced, or its directory
    /// is missing.
    pub fn new(target: &Path, overwrite: bool) -> Result<AtomicTarget> {
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(Error::usage(format!(
                "directory {} does not exist",
                dir.display()
            )));
        }
        let name = target
            .file_name()
            .ok_or_else(|| Error::usage(format!("{} is not a file path", target.display())))?
            .to_string_lossy()
            .into_owned();
        // First: it may bring back a target a killed writer had moved aside.
        remove_stale(&dir, &name);
        check_target(target, overwrite)?;
        // The target name stays at the end so extension-sniffing writers (PNG) still work.
        let tmp = dir.join(temp_name("tmp", &name));
        if let Ok(mut t) = TEMPORARIES.lock() {
            t.push(tmp.clone());
        }
        Ok(AtomicTarget {
            target: target.to_path_buf(),
            tmp,
            committed: false,
        })
    }

    /// The temporary path to write to.
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    /// An error raised while writing the temporary, naming the target instead.
    pub fn blame(&self, e: Error) -> Error {
        e.with_path_replaced(&self.tmp, &self.target)
    }

    /// What [`Self::commit`] would refuse now: the target became something that may not be
    /// replaced, or the temporary is gone.
    ///
    /// # Errors
    /// As [`Self::commit`]'s checks.
    pub fn check(&self) -> Result<()> {
        if std::fs::symlink_metadata(&self.tmp).is_err() {
            return Err(Error::internal(format!(
                "the output written for {} is missing before it was put in place",
                self.target.display()
            )));
        }
        if std::fs::symlink_metadata(&self.target).is_ok() {
            check_replaceable(&self.target)?;
        }
        Ok(())
    }

    /// Puts the finished temporary in place: a rename onto a new path, or an atomic exchange
    /// with the existing target followed by the removal of the old one.
    ///
    /// # Errors
    /// When the target became something that may not be replaced, or the file system
    /// refuses; the temporary is then removed and the target left as it was.
    pub fn commit(mut self) -> Result<()> {
        let loc = || Location::file(&self.target);
        if std::fs::symlink_metadata(&self.target).is_ok() {
            // It may have changed since `new`.
            check_replaceable(&self.target)?;
            match exchange(&self.tmp, &self.target) {
                Ok(()) => {
                    self.committed = true;
                    // The old target now sits at the temporary's path.
                    remove_any(&self.tmp);
                    return Ok(());
                }
                Err(e)
                    if e.raw_os_error() == Some(libc::EINVAL)
                        || e.raw_os_error() == Some(libc::ENOSYS) =>
                {
                    // No atomic exchange here: move the old one aside first.
                    let name = self.target.file_name().unwrap_or_default();
                    let aside = self
                        .tmp
                        .with_file_name(temp_name("old", &name.to_string_lossy()));
                    std::fs::rename(&self.target, &aside).map_err(|e| Error::io(loc(), e))?;
                    if let Err(e) = std::fs::rename(&self.tmp, &self.target) {
                        let _ = std::fs::rename(&aside, &self.target);
                        return Err(Error::io(loc(), e));
                    }
                    self.committed = true;
                    remove_any(&aside);
                    return Ok(());
                }
                Err(e) => return Err(Error::io(loc(), e)),
            }
        }
        std::fs::rename(&self.tmp, &self.target).map_err(|e| Error::io(loc(), e))?;
        self.committed = true;
        Ok(())
    }
}

/// Swaps two paths atomically (Linux `renameat2(RENAME_EXCHANGE)`).
#[allow(unsafe_code)]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let ca = std::ffi::CString::new(a.as_os_str().as_bytes())?;
    let cb = std::ffi::CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: two NUL-terminated paths that live across the call; AT_FDCWD resolves them
    // relative to the working directory as `rename` would.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl Drop for AtomicTarget {
    fn drop(&mut self) {
        if !self.committed {
            remove_any(&self.tmp);
        }
        if let Ok(mut t) = TEMPORARIES.lock() {
            t.retain(|p| p != &self.tmp);
        }
    }
}

/// Temporaries being written, for a process that must stop without unwinding.
static TEMPORARIES: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Whether the process is stopping; writers hold it for reading while they touch the file
/// system, so the stopping thread can wait for writes in flight and none starts after.
static STOPPING: std::sync::RwLock<bool> = std::sync::RwLock::new(false);

/// Held by a writer while it writes into a temporary (a zarr writer recreates missing
/// directories, so a write racing the removal would bring the temporary back).
///
/// # Errors
/// When the process is stopping.
pub(crate) fn write_guard() -> Result<std::sync::RwLockReadGuard<'static, bool>> {
    let g = STOPPING
        .read()
        .map_err(|_| Error::internal("poisoned stop flag"))?;
    if *g {
        return Err(Error::Resources("the process is stopping".into()));
    }
    Ok(g)
}

/// Removes every temporary still being written. For exits that skip destructors (a signal,
/// a call into a C library that never returns); the targets stay as they were. Writes in
/// flight finish first (up to a second) and none starts after.
pub fn remove_temporaries() {
    let mut stop = None;
    for _ in 0..100 {
        if let Ok(mut g) = STOPPING.try_write() {
            *g = true;
            stop = Some(g);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // Kept until the process exits: no write starts after the removal.
    std::mem::forget(stop);
    // try_lock: the thread holding the lock may be the one that is stuck.
    if let Ok(t) = TEMPORARIES.try_lock() {
        for p in t.iter() {
            remove_any(p);
        }
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    t ^ (N.fetch_add(1, Ordering::Relaxed) << 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporaries_are_recognised_by_name() {
        assert_eq!(
            owner(".tmp-123-0000abcd.456-out.h5ad", "out.h5ad"),
            Some(("tmp", 123, 0xabcd))
        );
        assert_eq!(
            owner(".old-9-00000001.1-out.zarr", "out.zarr"),
            Some(("old", 9, 1))
        );
        assert_eq!(owner(".tmp-123-0000abcd.456-out.h5ad", "other.h5ad"), None);
        assert_eq!(owner(".tmp-x-0000abcd.456-out.h5ad", "out.h5ad"), None);
        assert_eq!(owner(".tmp-123-456-out.h5ad", "out.h5ad"), None);
        assert_eq!(owner("out.h5ad", "out.h5ad"), None);
    }

    /// Replacing keeps what is not ours: a project folder and a device are refused, a zarr
    /// store and a file are replaced whole.
    #[test]
    fn only_files_and_stores_are_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("project");
        std::fs::create_dir(&project).unwrap();
        std::fs::write(project.join("main.py"), "print()").unwrap();
        let e = AtomicTarget::new(&project, true).unwrap_err();
        assert!(e.to_string().contains("not a zarr store"), "{e}");
        assert!(project.join("main.py").exists());
        let e = AtomicTarget::new(Path::new("/dev/null"), true).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");

        let store = dir.path().join("s.zarr");
        std::fs::create_dir(&store).unwrap();
        std::fs::write(store.join("zarr.json"), "{}").unwrap();
        std::fs::write(store.join("old-chunk"), "x").unwrap();
        let t = AtomicTarget::new(&store, true).unwrap();
        std::fs::create_dir(t.tmp_path()).unwrap();
        std::fs::write(t.tmp_path().join("zarr.json"), "{\"new\": 1}").unwrap();
        t.commit().unwrap();
        assert!(!store.join("old-chunk").exists());
        assert_eq!(
            std::fs::read_to_string(store.join("zarr.json")).unwrap(),
            "{\"new\": 1}"
        );
        // Nothing but the store is left in the directory.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    /// A dead process's temporary beside the target is removed by the next write; a live
    /// one's is not.
    #[test]
    fn stale_temporaries_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // pid 2^22 + 1 is above Linux's pid_max default range for live processes here.
        let h = host();
        let dead = dir.path().join(format!(".tmp-4194305-{h:08x}.1-out.h5ad"));
        let other_host = dir
            .path()
            .join(format!(".tmp-4194305-{:08x}.1-out.h5ad", h ^ 1));
        let live = dir
            .path()
            .join(format!(".tmp-{}-{h:08x}.2-out.h5ad", std::process::id()));
        // A target a dead process had moved aside comes back; it is never deleted.
        let aside = dir.path().join(format!(".old-4194305-{h:08x}.3-out.h5ad"));
        for p in [&dead, &other_host, &live] {
            std::fs::write(p, "x").unwrap();
        }
        std::fs::write(&aside, "the user's data").unwrap();
        let t = AtomicTarget::new(&dir.path().join("out.h5ad"), false);
        // The restored target now exists, so a write without overwrite is refused.
        assert!(t.is_err());
        assert!(!dead.exists());
        assert!(other_host.exists() && live.exists());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out.h5ad")).unwrap(),
            "the user's data"
        );
    }
}
