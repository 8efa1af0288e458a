//! Sharded arrays read remotely: which shards and inner chunks a selection needs, and where
//! they sit in each shard (its index), so a read can fetch every index once and then the
//! inner chunks as coalesced byte ranges before zarrs decodes them.

use serde_json::Value as Json;
use std::ops::Range;
use zarrs::storage::byte_range::ByteRange;

/// How a v3 array's shards are laid out, when their index is the plain one (little-endian
/// `(offset, nbytes)` pairs, optionally followed by a crc32c checksum).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ShardLayout {
    shard: Vec<u64>,
    inner: Vec<u64>,
    index_at_end: bool,
    checksum: bool,
}

impl ShardLayout {
    /// The layout from array metadata; `None` unless the array is sharded with a plain index.
    pub fn from_meta(meta: &Json) -> Option<ShardLayout> {
        let codecs = meta.get("codecs")?.as_array()?;
        let [sharding] = codecs.as_slice() else {
            return None;
        };
        if sharding.get("name")?.as_str()? != "sharding_indexed" {
            return None;
        }
        let cfg = sharding.get("configuration")?;
        let shard = u64s(meta.pointer("/chunk_grid/configuration/chunk_shape")?)?;
        let inner = u64s(cfg.get("chunk_shape")?)?;
        let names: Vec<&str> = cfg
            .get("index_codecs")?
            .as_array()?
            .iter()
            .map(|c| c.get("name").and_then(Json::as_str).unwrap_or("?"))
            .collect();
        let little = cfg
            .get("index_codecs")?
            .as_array()?
            .first()?
            .pointer("/configuration/endian")
            .and_then(Json::as_str)
            .is_none_or(|e| e == "little");
        let checksum = match names.as_slice() {
            ["bytes"] => false,
            ["bytes", "crc32c"] => true,
            _ => return None,
        };
        let index_at_end = cfg.get("index_location").and_then(Json::as_str) != Some("start");
        (little && shard.len() == inner.len() && inner.iter().all(|&c| c > 0)).then_some(
            ShardLayout {
                shard,
                inner,
                index_at_end,
                checksum,
            },
        )
    }

    /// Inner chunks per shard along each dimension.
    fn per_shard(&self) -> Vec<u64> {
        self.shard
            .iter()
            .zip(&self.inner)
            .map(|(s, c)| s.div_ceil(*c))
            .collect()
    }

    /// Where a shard's index is.
    pub fn index_range(&self) -> ByteRange {
        let n = self.per_shard().iter().product::<u64>() * 16 + if self.checksum { 4 } else { 0 };
        if self.index_at_end {
            ByteRange::Suffix(n)
        } else {
            ByteRange::FromStart(0, Some(n))
        }
    }

    /// The shards `sel` touches (grid indices).
    pub fn shards(&self, sel: &[Range<u64>]) -> Vec<Vec<u64>> {
        let ranges: Vec<Range<u64>> = sel
            .iter()
            .zip(&self.shard)
            .map(|(r, s)| {
                if r.is_empty() {
                    0..0
                } else {
                    r.start / s..(r.end - 1) / s + 1
                }
            })
            .collect();
        cartesian(&ranges)
    }

    /// Whether `sel` holds all of shard `shard` (zarrs then fetches the shard whole, in one
    /// request). A last shard cut short by the array's end never is: zarrs reads it by parts.
    pub fn covers(&self, shard: &[u64], sel: &[Range<u64>]) -> bool {
        shard.iter().enumerate().all(|(d, &s)| {
            sel[d].start <= s * self.shard[d] && sel[d].end >= (s + 1) * self.shard[d]
        })
    }

    /// Byte ranges, within shard `shard`, of the inner chunks `sel` touches, by the shard's
    /// `index` (absent chunks have none).
    pub fn chunk_ranges(
        &self,
        shard: &[u64],
        sel: &[Range<u64>],
        index: &[u8],
    ) -> Option<Vec<Range<u64>>> {
        let per = self.per_shard();
        let n: u64 = per.iter().product();
        if (index.len() as u64) < n * 16 {
            return None;
        }
        // Inner chunks of this shard the selection touches, as local grid ranges.
        let local: Vec<Range<u64>> = sel
            .iter()
            .enumerate()
            .map(|(d, r)| {
                let first = shard[d] * per[d];
                let lo = (r.start / self.inner[d]).max(first);
                let hi = (r.end.saturating_sub(1) / self.inner[d] + 1).min(first + per[d]);
                lo.saturating_sub(first)..hi.saturating_sub(first).max(lo.saturating_sub(first))
            })
            .collect();
        let mut out = Vec::new();
        for at in cartesian(&local) {
            let linear = at.iter().zip(&per).fold(0, |acc, (i, p)| acc * p + i) as usize;
            let entry = &index[linear * 16..linear * 16 + 16];
            let offset = u64::from_le_bytes(entry[..8].try_into().ok()?);
            let nbytes = u64::from_le_bytes(entry[8..].try_into().ok()?);
            if offset != u64::MAX && nbytes != u64::MAX && nbytes > 0 {
                out.push(offset..offset + nbytes);
            }
        }
        out.sort_by_key(|r| r.start);
        Some(out)
    }
}

fn u64s(j: &Json) -> Option<Vec<u64>> {
    j.as_array()?.iter().map(Json::as_u64).collect()
}

/// Every index tuple in the product of `ranges`, in C order.
fn cartesian(ranges: &[Range<u64>]) -> Vec<Vec<u64>> {
    let mut out = vec![Vec::new()];
    for r in ranges {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                r.clone().map(move |i| {
                    let mut p = prefix.clone();
                    p.push(i);
                    p
                })
            })
            .collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn layout() -> ShardLayout {
        ShardLayout::from_meta(&json!({
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [700, 100]}},
            "codecs": [{"name": "sharding_indexed", "configuration": {
                "chunk_shape": [700, 5],
                "codecs": [{"name": "bytes"}],
                "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}],
                "index_location": "end"}}]
        }))
        .unwrap()
    }

    #[test]
    fn the_index_and_the_touched_chunks_are_found() {
        let l = layout();
        assert_eq!(l.index_range(), ByteRange::Suffix(20 * 16 + 4));
        assert_eq!(
            l.shards(&[0..700, 95..205]),
            vec![vec![0, 0], vec![0, 1], vec![0, 2]]
        );
        assert!(l.covers(&[0, 1], &[0..700, 95..205]));
        assert!(!l.covers(&[0, 2], &[0..700, 95..205]));
        assert!(!l.covers(&[0, 7], &[0..700, 700..765]));
        // Inner chunk k at offset 1000 k, 10 bytes long; chunk 3 absent.
        let mut index = Vec::new();
        for k in 0..20u64 {
            let (o, n) = if k == 3 {
                (u64::MAX, u64::MAX)
            } else {
                (1000 * k, 10)
            };
            index.extend(o.to_le_bytes());
            index.extend(n.to_le_bytes());
        }
        index.extend([0; 4]);
        // Columns 112..125 of shard 1 are its inner chunks 2, 3 and 4 (global 22..25).
        let got = l
            .chunk_ranges(&[0, 1], &[0..700, 112..125], &index)
            .unwrap();
        assert_eq!(got, vec![2000..2010, 4000..4010]);
    }

    #[test]
    fn other_index_codecs_are_left_to_zarrs() {
        let mut meta = json!({
            "chunk_grid": {"configuration": {"chunk_shape": [10]}},
            "codecs": [{"name": "sharding_indexed", "configuration": {
                "chunk_shape": [5], "codecs": [],
                "index_codecs": [{"name": "bytes"}, {"name": "zstd"}]}}]
        });
        assert!(ShardLayout::from_meta(&meta).is_none());
        meta["codecs"][0]["configuration"]["index_codecs"] = json!([{"name": "bytes"}]);
        assert!(ShardLayout::from_meta(&meta).is_some());
    }
}
