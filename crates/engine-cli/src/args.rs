//! Parsing of the command line's values: sizes, shapes, `--param` pairs.

use anyhow::Result;

/// A user mistake: exits with status 2.
pub(crate) fn usage(msg: String) -> anyhow::Error {
    engine::EngineError::usage(msg).into()
}

/// Parses `--param name=value` pairs.
pub(crate) fn parse_params(params: &[String]) -> Result<Vec<(String, String)>> {
    params
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .ok_or_else(|| usage(format!("--param {p}: expected NAME=VALUE")))
        })
        .collect()
}

/// Parses `1000,all` into `[1000, 0]` (0 = whole axis); a chunk of 0 is refused (`all`
/// says whole axis).
pub(crate) fn parse_shape(s: &str) -> Result<Vec<u64>> {
    s.split(',')
        .map(|p| match p.trim() {
            "all" | ":" => Ok(0),
            n => match n.parse::<u64>() {
                Ok(0) => Err(engine::EngineError::usage(format!(
                    "chunk size 0 in `{s}`: use `all` for a whole axis"
                ))
                .into()),
                Ok(v) => Ok(v),
                Err(_) => Err(engine::EngineError::usage(format!(
                    "bad chunk size `{n}` in `{s}`: use numbers or `all`"
                ))
                .into()),
            },
        })
        .collect()
}

/// Parses a size: `512M`, `64MiB`, `1.5G`, `2GB`, `64k` or a byte count (units are powers of
/// 1024). Zero and sizes past 1 PiB are refused.
pub(crate) fn parse_bytes(s: &str) -> Result<usize> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mul: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0f64.powi(4),
        _ => f64::NAN,
    };
    let bad = || {
        engine::EngineError::usage(format!(
            "bad size `{s}`: use a number with K, M, G or T (powers of 1024), e.g. 512M, 1.5G, 64MiB"
        ))
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    let bytes = n * mul;
    if !bytes.is_finite() {
        return Err(bad().into());
    }
    if bytes < 1.0 {
        return Err(engine::EngineError::usage(format!("size `{s}` is zero")).into());
    }
    if bytes > 1024.0f64.powi(5) {
        return Err(engine::EngineError::usage(format!("size `{s}` is past 1 PiB")).into());
    }
    Ok(bytes as usize)
}
