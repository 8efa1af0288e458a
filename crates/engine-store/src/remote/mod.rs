//! Stores by URL: zarr over `http(s)://` and S3-compatible `s3://` object stores.
//!
//! Requests go through `object_store` (reqwest with rustls, its retries and backoff); the
//! [`storage`] adapter makes it a zarrs store that fetches exactly the keys and byte ranges a
//! read asks for, coalescing adjacent ranges. `file://` URLs are local paths.
//!
//! What every request fetched is counted process-wide ([`fetched`]) for `--metrics`.
//! Credentials come from the environment (or an AWS profile) and never appear in messages:
//! URLs are shown without their user information and errors are scrubbed of secrets.

mod s3;
mod storage;

pub(crate) use storage::ObjectStorage;

use engine_common::{Error, Location, Result};
use object_store::ObjectStore;
use object_store::{BackoffConfig, ClientOptions, RetryConfig};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// A remote store's address, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// The URL as given, minus user information: what messages show.
    pub shown: String,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// The full URL (user information included, for the client only).
    Http(String),
    S3 {
        bucket: String,
        prefix: String,
    },
}

/// The local path a `file://` URL names; other paths unchanged.
pub fn local(path: &Path) -> PathBuf {
    match path.to_str().and_then(|s| s.strip_prefix("file://")) {
        // `file:///abs` and `file://localhost/abs` name `/abs`.
        Some(rest) => PathBuf::from(rest.strip_prefix("localhost").unwrap_or(rest)),
        None => path.to_path_buf(),
    }
}

/// Whether `path` is a URL the engine reads remotely.
pub fn is_remote(path: &Path) -> bool {
    path.to_str().is_some_and(|s| {
        ["http://", "https://", "s3://"]
            .iter()
            .any(|p| s.len() > p.len() && s[..p.len()].eq_ignore_ascii_case(p))
    })
}

impl Remote {
    /// Parses an `http(s)://` or `s3://` URL; `None` for anything else.
    ///
    /// # Errors
    /// A URL that does not parse, or an `s3://` URL without a bucket.
    pub fn parse(path: &Path) -> Result<Option<Remote>> {
        if !is_remote(path) {
            return Ok(None);
        }
        let raw = path.to_str().unwrap_or_default().trim_end_matches('/');
        let url = url::Url::parse(raw)
            .map_err(|e| Error::format(Location::file(path), format!("not a valid URL: {e}")))?;
        let mut shown = url.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        let shown = shown.as_str().trim_end_matches('/').to_string();
        let kind = match url.scheme() {
            "s3" => {
                let bucket = url.host_str().unwrap_or_default().to_string();
                if bucket.is_empty() {
                    return Err(Error::format(
                        Location::file(&shown),
                        "an s3:// URL names a bucket: s3://BUCKET/path/to/store.zarr",
                    ));
                }
                let prefix = url.path().trim_matches('/').to_string();
                Kind::S3 { bucket, prefix }
            }
            _ => Kind::Http(raw.to_string()),
        };
        Ok(Some(Remote { shown, kind }))
    }

    /// Where errors point.
    pub fn location(&self, element: impl Into<String>) -> Location {
        Location::new(&self.shown, element)
    }

    /// The store's keys as zarrs reads them, rooted at this URL.
    pub(crate) fn storage(&self) -> Result<ObjectStorage> {
        let (store, prefix): (Arc<dyn ObjectStore>, String) = match &self.kind {
            Kind::Http(url) => {
                let store = object_store::http::HttpBuilder::new()
                    .with_url(url)
                    .with_client_options(client_options())
                    .with_retry(retry_config())
                    .build()
                    .map_err(|e| self.error("", &e))?;
                (Arc::new(store), String::new())
            }
            Kind::S3 { bucket, prefix } => (
                s3::build(bucket, client_options(), retry_config())
                    .map_err(|e| self.error("", &e))?,
                prefix.clone(),
            ),
        };
        Ok(ObjectStorage::new(store, prefix, self.shown.clone()))
    }

    /// An object-store error at `element`, scrubbed of secrets.
    pub(crate) fn error(&self, element: &str, e: &dyn std::fmt::Display) -> Error {
        Error::io(self.location(element), scrub(&e.to_string()))
    }
}

/// Removes credentials from a message: the secret values in the environment, and the user
/// information of any URL in it.
pub(crate) fn scrub(message: &str) -> String {
    let mut out = message.to_string();
    for var in [
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ACCESS_KEY_ID",
        "ENGINE_HTTP_PASSWORD",
    ] {
        if let Ok(v) = std::env::var(var)
            && v.len() >= 4
        {
            out = out.replace(&v, "***");
        }
    }
    for secret in s3::profile_secrets() {
        out = out.replace(&secret, "***");
    }
    // `scheme://user:password@host` → `scheme://host`.
    let mut clean = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        clean.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        let host = authority.rfind('@').map_or(0, |at| at + 1);
        clean.push_str(&authority[host..]);
        rest = &tail[end..];
    }
    clean.push_str(rest);
    clean
}

/// Seconds from an environment variable, or the default.
fn env_secs(var: &str, default: f64) -> Duration {
    let secs = std::env::var(var)
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(default);
    Duration::from_secs_f64(secs)
}

/// Timeouts: a request that has sent nothing for `ENGINE_HTTP_TIMEOUT` seconds (default 30)
/// is retried; connecting waits at most 10 s.
fn client_options() -> ClientOptions {
    ClientOptions::new()
        .with_timeout(env_secs("ENGINE_HTTP_TIMEOUT", 30.0))
        .with_connect_timeout(env_secs("ENGINE_HTTP_CONNECT_TIMEOUT", 10.0))
        .with_allow_http(true)
}

/// Retries with exponential backoff: `ENGINE_HTTP_RETRIES` tries after the first (default 5),
/// from `ENGINE_HTTP_BACKOFF` seconds (default 0.2) doubling up to 10 s.
fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: env_secs("ENGINE_HTTP_BACKOFF", 0.2),
            max_backoff: Duration::from_secs(10),
            base: 2.0,
        },
        max_retries: retries(),
        retry_timeout: Duration::from_secs(300),
    }
}

/// How many times a failed request is tried again.
pub(crate) fn retries() -> usize {
    std::env::var("ENGINE_HTTP_RETRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

/// The runtime every remote request runs on: one per process, two worker threads (requests
/// wait on the network, not the CPU).
fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RT: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("engine-remote")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| Error::internal(format!("cannot start the remote IO runtime: {e}")))
}

/// Runs `fut` on the remote runtime and waits for it, from any thread, including one inside
/// another runtime (DataFusion's scans call in from theirs).
pub(crate) fn run<T: Send + 'static>(
    fut: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T> {
    let rt = runtime()?;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    rt.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv()
        .map_err(|_| Error::internal("a remote request's task ended without an answer"))
}

/// Bytes of whole objects (chunks) remote reads may keep for reuse, set for one run.
static CACHE_BUDGET: AtomicU64 = AtomicU64::new(0);

/// Lets remote reads keep up to `bytes` of fetched chunks until the guard drops (the run
/// ends), when they are let go. A run whose blocks each read a tall chunk again then
/// fetches it once.
pub fn cache_budget(bytes: usize) -> CacheBudget {
    CACHE_BUDGET.store(bytes as u64, Ordering::Relaxed);
    CacheBudget(())
}

/// Ends a run's remote chunk cache when dropped.
#[derive(Debug)]
pub struct CacheBudget(());

impl Drop for CacheBudget {
    fn drop(&mut self) {
        CACHE_BUDGET.store(0, Ordering::Relaxed);
        storage::clear_caches();
    }
}

pub(crate) fn budget() -> u64 {
    CACHE_BUDGET.load(Ordering::Relaxed)
}

/// Requests made and bytes received by remote reads since the process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fetched {
    pub requests: u64,
    pub bytes: u64,
}

static REQUESTS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

/// What remote reads have fetched so far in this process; a run reports the difference.
pub fn fetched() -> Fetched {
    Fetched {
        requests: REQUESTS.load(Ordering::Relaxed),
        bytes: BYTES.load(Ordering::Relaxed),
    }
}

impl std::ops::Sub for Fetched {
    type Output = Fetched;
    fn sub(self, rhs: Fetched) -> Fetched {
        Fetched {
            requests: self.requests.saturating_sub(rhs.requests),
            bytes: self.bytes.saturating_sub(rhs.bytes),
        }
    }
}

fn count(bytes: u64) {
    REQUESTS.fetch_add(1, Ordering::Relaxed);
    BYTES.fetch_add(bytes, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_hide_their_credentials() {
        let r = Remote::parse(Path::new("https://u:secret@example.org/d/pbmc.zarr/"))
            .unwrap()
            .unwrap();
        assert_eq!(r.shown, "https://example.org/d/pbmc.zarr");
        let s3 = Remote::parse(Path::new("s3://bucket/a/b.zarr"))
            .unwrap()
            .unwrap();
        assert_eq!(
            s3.kind,
            Kind::S3 {
                bucket: "bucket".into(),
                prefix: "a/b.zarr".into()
            }
        );
        assert!(
            Remote::parse(Path::new("data/pbmc.zarr"))
                .unwrap()
                .is_none()
        );
        assert!(Remote::parse(Path::new("s3:///x.zarr")).is_err());
    }

    #[test]
    fn messages_lose_user_information() {
        assert_eq!(
            scrub("GET http://me:pw@host:8/x/0.0 failed; see https://h/y"),
            "GET http://host:8/x/0.0 failed; see https://h/y"
        );
    }

    #[test]
    fn file_urls_are_local_paths() {
        assert_eq!(
            local(Path::new("file:///tmp/a.zarr")),
            Path::new("/tmp/a.zarr")
        );
        assert_eq!(local(Path::new("a.zarr")), Path::new("a.zarr"));
    }
}
