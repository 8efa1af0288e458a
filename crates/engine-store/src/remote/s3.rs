//! S3-compatible object stores: credentials, region and endpoint as the AWS tools find them.
//!
//! In order: the `AWS_*` environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`), then the profile `AWS_PROFILE`
//! (or `default`) in `~/.aws/credentials` and `~/.aws/config`. With no credentials anywhere
//! requests go unsigned, which is how public buckets are read.

use object_store::aws::AmazonS3Builder;
use object_store::{ClientOptions, ObjectStore, RetryConfig};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// The bucket's store.
pub(super) fn build(
    bucket: &str,
    client: ClientOptions,
    retry: RetryConfig,
) -> object_store::Result<Arc<dyn ObjectStore>> {
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_client_options(client)
        .with_retry(retry);
    let profile = profile();
    let unset = |x: &str, y: &str| std::env::var_os(x).is_none() && std::env::var_os(y).is_none();
    if unset("AWS_REGION", "AWS_DEFAULT_REGION")
        && let Some(region) = profile.get("region")
    {
        b = b.with_region(region);
    }
    if unset("AWS_ENDPOINT_URL", "AWS_ENDPOINT")
        && let Some(endpoint) = profile.get("endpoint_url")
    {
        b = b.with_endpoint(endpoint);
    }
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        match (
            profile.get("aws_access_key_id"),
            profile.get("aws_secret_access_key"),
        ) {
            (Some(key), Some(secret)) => {
                b = b.with_access_key_id(key).with_secret_access_key(secret);
                if let Some(token) = profile.get("aws_session_token") {
                    b = b.with_token(token);
                }
            }
            _ => b = b.with_skip_signature(true),
        }
    }
    Ok(Arc::new(b.build()?))
}

/// The secrets a profile holds, so messages can be scrubbed of them.
pub(super) fn profile_secrets() -> Vec<String> {
    let p = profile();
    ["aws_secret_access_key", "aws_session_token"]
        .iter()
        .filter_map(|k| p.get(*k).filter(|v| v.len() >= 4).cloned())
        .collect()
}

/// The settings of the active profile, credentials and config merged (read once).
fn profile() -> &'static HashMap<String, String> {
    static PROFILE: OnceLock<HashMap<String, String>> = OnceLock::new();
    PROFILE.get_or_init(|| {
        let name = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let file = |var: &str, default: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
        };
        let mut out = HashMap::new();
        // In `config`, profiles other than `default` are headed `[profile NAME]`.
        if let Some(text) =
            file("AWS_CONFIG_FILE", "config").and_then(|p| std::fs::read_to_string(p).ok())
        {
            let header = if name == "default" {
                "default".to_string()
            } else {
                format!("profile {name}")
            };
            out.extend(section(&text, &header));
        }
        if let Some(text) = file("AWS_SHARED_CREDENTIALS_FILE", "credentials")
            .and_then(|p| std::fs::read_to_string(p).ok())
        {
            out.extend(section(&text, &name));
        }
        out
    })
}

/// The `key = value` pairs of one `[section]` of an INI file.
fn section(text: &str, name: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(h) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = h.trim() == name;
        } else if inside && let Some((k, v)) = line.split_once('=') {
            out.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::section;

    #[test]
    fn ini_sections_are_read_by_name() {
        let text = "[default]\naws_access_key_id = A\n# c\n[profile lab]\nregion=eu-west-1\n";
        assert_eq!(section(text, "default")["aws_access_key_id"], "A");
        assert_eq!(section(text, "profile lab")["region"], "eu-west-1");
        assert!(section(text, "lab").is_empty());
    }
}
