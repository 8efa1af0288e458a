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

/// Parses a size (`512M`, `1.5G`, …; see [`engine::parse_bytes`]) as a usage error.
pub(crate) fn parse_bytes(s: &str) -> Result<usize> {
    engine::parse_bytes(s).map_err(|m| engine::EngineError::usage(m).into())
}
