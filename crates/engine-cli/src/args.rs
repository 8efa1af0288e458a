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

/// Parses `1000,all` into `[1000, 0]` (0 = whole axis).
pub(crate) fn parse_shape(s: &str) -> Result<Vec<u64>> {
    s.split(',')
        .map(|p| match p.trim() {
            "all" | ":" => Ok(0),
            n => n.parse::<u64>().map_err(|_| {
                engine::EngineError::usage(format!(
                    "bad chunk size `{n}` in `{s}`: use numbers or `all`"
                ))
                .into()
            }),
        })
        .collect()
}

/// Parses `512M`, `2G`, `64k` or a plain byte count.
pub(crate) fn parse_bytes(s: &str) -> Result<usize> {
    let (num, mul) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1 << 10),
        Some('M' | 'm') => (&s[..s.len() - 1], 1 << 20),
        Some('G' | 'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let n: usize = num
        .parse()
        .map_err(|_| engine::EngineError::usage(format!("bad size `{s}`")))?;
    Ok(n * mul)
}
