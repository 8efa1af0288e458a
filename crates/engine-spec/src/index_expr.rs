//! Index expressions for views, as Python writes them: `"0:1000"`, `"5"`, `"-100:"`,
//! `"0:50000:10"`, and comma-separated lists of these (`"0:10, 20, 30:40"`). Negative numbers
//! count from the end; steps are positive. The result is a set of positions, in file order.

use std::fmt;
use std::ops::Range;

/// What is wrong with an index expression, and where in its text when that is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexError {
    /// Byte offset of the offending item (parse errors).
    pub at: Option<usize>,
    pub message: String,
}

impl IndexError {
    fn at(at: usize, message: impl Into<String>) -> IndexError {
        IndexError {
            at: Some(at),
            message: message.into(),
        }
    }

    fn new(message: impl Into<String>) -> IndexError {
        IndexError {
            at: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for IndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for IndexError {}

/// One item of an index expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexItem {
    One(i64),
    Slice {
        start: Option<i64>,
        stop: Option<i64>,
        step: i64,
    },
}

/// Parses an expression.
///
/// # Errors
/// The first malformed item, at its byte offset.
pub fn parse(text: &str) -> Result<Vec<IndexItem>, IndexError> {
    let mut items = Vec::new();
    if text.trim().is_empty() {
        return Ok(items); // An empty list selects nothing.
    }
    let mut offset = 0;
    for part in text.split(',') {
        let start = offset + (part.len() - part.trim_start().len());
        offset += part.len() + 1;
        let p = part.trim();
        if p.is_empty() {
            return Err(IndexError::at(start, "empty item in index list"));
        }
        let num = |s: &str, at: usize| -> Result<Option<i64>, IndexError> {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            s.parse::<i64>()
                .map(Some)
                .map_err(|_| IndexError::at(at, format!("`{s}` is not an integer")))
        };
        let fields: Vec<&str> = p.split(':').collect();
        let item = match fields.as_slice() {
            [one] => IndexItem::One(num(one, start)?.unwrap_or_default()),
            [a, b] => IndexItem::Slice {
                start: num(a, start)?,
                stop: num(b, start)?,
                step: 1,
            },
            [a, b, c] => {
                let step = num(c, start)?.unwrap_or(1);
                if step <= 0 {
                    return Err(IndexError::at(
                        start,
                        format!("slice step must be positive, got {step}"),
                    ));
                }
                IndexItem::Slice {
                    start: num(a, start)?,
                    stop: num(b, start)?,
                    step,
                }
            }
            _ => {
                return Err(IndexError::at(
                    start,
                    format!("`{p}` is not an index or a slice"),
                ));
            }
        };
        items.push(item);
    }
    Ok(items)
}

/// The positions an expression selects from `0..n`, as runs in increasing order.
///
/// # Errors
/// When a single index is out of range (slices clip, as in Python), or when items are out of
/// order or repeat: views keep the file's row order, so a reordering list would silently
/// differ from what anndata returns for it.
pub fn resolve(items: &[IndexItem], n: usize) -> Result<Vec<Range<usize>>, IndexError> {
    let n_i = n as i64;
    let clip = |v: i64| -> usize {
        let v = if v < 0 { v + n_i } else { v };
        v.clamp(0, n_i) as usize
    };
    let mut runs = Vec::new();
    for item in items {
        match *item {
            IndexItem::One(i) => {
                let j = if i < 0 { i + n_i } else { i };
                if !(0..n_i).contains(&j) {
                    return Err(IndexError::new(format!(
                        "index {i} is out of range for {n} entries"
                    )));
                }
                runs.push(j as usize..j as usize + 1);
            }
            IndexItem::Slice { start, stop, step } => {
                let (a, b) = (start.map_or(0, clip), stop.map_or(n, clip));
                if step == 1 {
                    if a < b {
                        runs.push(a..b);
                    }
                } else {
                    runs.extend((a..b).step_by(step as usize).map(|i| i..i + 1));
                }
            }
        }
    }
    let mut last_end = 0;
    for r in &runs {
        if r.start < last_end {
            return Err(IndexError::new(format!(
                "positions must increase and not repeat (views keep the file order); {} comes after {}",
                r.start,
                last_end - 1
            )));
        }
        last_end = r.end;
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn positions(text: &str, n: usize) -> Vec<usize> {
        let mut v: Vec<usize> = resolve(&parse(text).unwrap(), n)
            .unwrap()
            .into_iter()
            .flatten()
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    #[test]
    fn python_slice_semantics() {
        assert_eq!(positions("2:5", 10), vec![2, 3, 4]);
        assert_eq!(positions("-3:", 10), vec![7, 8, 9]);
        assert_eq!(positions(":3, 8", 10), vec![0, 1, 2, 8]);
        assert_eq!(positions("", 10), Vec::<usize>::new());
        assert!(resolve(&parse("5, 2").unwrap(), 10).is_err());
        assert!(resolve(&parse("0:5, 4").unwrap(), 10).is_err());
        assert_eq!(positions("0:10:4", 10), vec![0, 4, 8]);
        assert_eq!(positions("-1", 10), vec![9]);
        assert_eq!(positions("5:100", 8), vec![5, 6, 7]);
    }

    #[test]
    fn errors_point_at_the_item() {
        assert_eq!(parse("0:5, x").unwrap_err().at, Some(5));
        assert!(parse("1:2:0").unwrap_err().message.contains("positive"));
        assert!(parse("1,,2").is_err());
        assert!(resolve(&parse("10").unwrap(), 10).is_err());
    }
}
