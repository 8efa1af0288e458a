//! One obs or var column over several files, as `pd.concat` with anndata's dtype unification
//! builds it: categoricals take the natural-sorted union of their categories, a column some
//! rows lack becomes nullable (bool, strings) or float (integers).

use engine_common::{Error, Result};
use engine_matrix::DynArray;
use engine_plan::ColType;
use engine_store::Column;
use ndarray::Array1;

/// A column's values as strings (plain or categorical strings).
pub(super) fn strings(col: &Column) -> Option<Vec<String>> {
    match col {
        Column::Plain(DynArray::Str(a)) => Some(a.iter().cloned().collect()),
        Column::Categorical {
            codes,
            categories: DynArray::Str(cats),
            ..
        } => {
            let cats: Vec<&String> = cats.iter().collect();
            codes.to_i64_vec().map(|c| {
                c.iter()
                    .map(|&i| {
                        usize::try_from(i)
                            .ok()
                            .and_then(|i| cats.get(i))
                            .map_or(String::new(), |s| (*s).clone())
                    })
                    .collect()
            })
        }
        Column::Nullable {
            values: DynArray::Str(a),
            ..
        } => Some(a.iter().cloned().collect()),
        // Other types as Python prints them (an integer index), in one pass.
        Column::Plain(a) => Some(engine_matrix::dyn_map!(a, v => v
            .iter()
            .map(|x| format!("{x:?}").trim_matches('"').to_string())
            .collect())),
        _ => None,
    }
}

/// One column over several pieces: each piece a column (or none) and, per output row, the
/// row of it to take (`None`: missing). Typed as the plan promoted it.
pub(super) fn concat_column(
    pieces: &[(Option<&Column>, Vec<Option<usize>>)],
    ty: ColType,
    name: &str,
) -> Result<Column> {
    let unsupported = || {
        Error::data(format!(
            "concatenating obs/var column `{name}`: its types cannot be combined"
        ))
    };
    let n: usize = pieces.iter().map(|(_, at)| at.len()).sum();
    let missing = pieces
        .iter()
        .any(|(c, at)| c.is_none() || at.iter().any(Option::is_none));
    // Each piece's values and mask (true: missing in the file).
    let plain = |c: &Column| -> Option<(DynArray, Vec<bool>)> {
        match c {
            Column::Plain(a) => Some((a.clone(), vec![false; a.len()])),
            Column::Nullable { values, mask, .. } => Some((values.clone(), mask.clone())),
            Column::Categorical { .. } => None,
        }
    };
    match ty {
        ColType::Category => {
            // anndata: the union of the categories, natural-sorted, unordered.
            let mut cats: Vec<String> = Vec::new();
            let mut per: Vec<Option<(Vec<i64>, Vec<String>)>> = Vec::new();
            for (c, _) in pieces {
                match c {
                    Some(Column::Categorical {
                        codes,
                        categories: DynArray::Str(cs),
                        ..
                    }) => {
                        let cs: Vec<String> = cs.iter().cloned().collect();
                        for s in &cs {
                            if !cats.contains(s) {
                                cats.push(s.clone());
                            }
                        }
                        per.push(Some((codes.to_i64_vec().ok_or_else(unsupported)?, cs)));
                    }
                    None => per.push(None),
                    Some(_) => return Err(unsupported()),
                }
            }
            cats.sort_by(|a, b| natural_cmp(a, b));
            let slot: std::collections::HashMap<&str, i64> = cats
                .iter()
                .enumerate()
                .map(|(i, s)| (s.as_str(), i as i64))
                .collect();
            let mut codes = Vec::with_capacity(n);
            for ((_, at), p) in pieces.iter().zip(&per) {
                for r in at {
                    codes.push(match (r, p) {
                        (Some(r), Some((c, cs))) => usize::try_from(c[*r])
                            .ok()
                            .and_then(|i| cs.get(i))
                            .map_or(-1, |s| slot[s.as_str()]),
                        _ => -1,
                    });
                }
            }
            Ok(Column::Categorical {
                codes: small_codes(codes, cats.len()),
                categories: DynArray::Str(Array1::from(cats).into_dyn()),
                ordered: false,
            })
        }
        ColType::Str => {
            let mut values = Vec::with_capacity(n);
            let mut mask = Vec::with_capacity(n);
            for (c, at) in pieces {
                let (v, m) = match c {
                    Some(c) => (
                        strings(c).ok_or_else(unsupported)?,
                        match c {
                            Column::Nullable { mask, .. } => mask.clone(),
                            _ => vec![false; c.len()],
                        },
                    ),
                    None => (Vec::new(), Vec::new()),
                };
                for r in at {
                    match r {
                        Some(r) => {
                            values.push(v[*r].clone());
                            mask.push(m[*r]);
                        }
                        None => {
                            values.push(String::new());
                            mask.push(true);
                        }
                    }
                }
            }
            let values = DynArray::Str(Array1::from(values).into_dyn());
            Ok(if mask.iter().any(|m| *m) {
                Column::Nullable {
                    values,
                    mask,
                    na_value: Some("NaN".into()),
                }
            } else {
                Column::Plain(values)
            })
        }
        ColType::Bool => {
            let (mut values, mut mask) = (Vec::with_capacity(n), Vec::with_capacity(n));
            for (c, at) in pieces {
                let got = match c {
                    Some(c) => Some(plain(c).ok_or_else(unsupported)?),
                    None => None,
                };
                let v: Option<Vec<bool>> = match &got {
                    Some((DynArray::Bool(a), _)) => Some(a.iter().copied().collect()),
                    Some(_) => return Err(unsupported()),
                    None => None,
                };
                for r in at {
                    match (r, &v, &got) {
                        (Some(r), Some(v), Some((_, m))) => {
                            values.push(v[*r]);
                            mask.push(m[*r]);
                        }
                        _ => {
                            values.push(false);
                            mask.push(true);
                        }
                    }
                }
            }
            let values = DynArray::Bool(Array1::from(values).into_dyn());
            Ok(if missing || mask.iter().any(|m| *m) {
                Column::Nullable {
                    values,
                    mask,
                    na_value: None,
                }
            } else {
                Column::Plain(values)
            })
        }
        ColType::Int => {
            let (mut values, mut mask) = (Vec::with_capacity(n), Vec::with_capacity(n));
            let mut dtype = None;
            for (c, at) in pieces {
                let (a, m) = plain(c.ok_or_else(unsupported)?).ok_or_else(unsupported)?;
                dtype = match dtype {
                    None => Some(a.dtype()),
                    Some(d) if d == a.dtype() => Some(d),
                    Some(_) => Some(engine_matrix::DType::I64),
                };
                let v = a.to_i64_vec().ok_or_else(unsupported)?;
                for r in at {
                    let r = r.ok_or_else(unsupported)?;
                    values.push(v[r]);
                    mask.push(m[r]);
                }
            }
            let values = cast_ints(values, dtype.unwrap_or(engine_matrix::DType::I64));
            Ok(if mask.iter().any(|m| *m) {
                Column::Nullable {
                    values,
                    mask,
                    na_value: None,
                }
            } else {
                Column::Plain(values)
            })
        }
        ColType::Float => {
            let mut values = Vec::with_capacity(n);
            let mut all_f32 = true;
            for (c, at) in pieces {
                let got = match c {
                    Some(c) => Some(plain(c).ok_or_else(unsupported)?),
                    None => None,
                };
                if let Some((a, _)) = &got {
                    all_f32 &= a.dtype() == engine_matrix::DType::F32;
                }
                let v = match &got {
                    Some((a, _)) => Some(a.to_f64_vec().ok_or_else(unsupported)?),
                    None => None,
                };
                for r in at {
                    values.push(match (r, &v, &got) {
                        (Some(r), Some(v), Some((_, m))) if !m[*r] => v[*r],
                        _ => f64::NAN,
                    });
                }
            }
            Ok(Column::Plain(if all_f32 {
                DynArray::F32(
                    Array1::from(values.iter().map(|v| *v as f32).collect::<Vec<_>>()).into_dyn(),
                )
            } else {
                DynArray::F64(Array1::from(values).into_dyn())
            }))
        }
    }
}

/// Integers in `dtype` (the files' common type, else int64).
fn cast_ints(v: Vec<i64>, dtype: engine_matrix::DType) -> DynArray {
    use engine_matrix::DType as D;
    match dtype {
        D::I32 => {
            DynArray::I32(Array1::from(v.iter().map(|x| *x as i32).collect::<Vec<_>>()).into_dyn())
        }
        D::I8 => {
            DynArray::I8(Array1::from(v.iter().map(|x| *x as i8).collect::<Vec<_>>()).into_dyn())
        }
        D::I16 => {
            DynArray::I16(Array1::from(v.iter().map(|x| *x as i16).collect::<Vec<_>>()).into_dyn())
        }
        D::U8 => {
            DynArray::U8(Array1::from(v.iter().map(|x| *x as u8).collect::<Vec<_>>()).into_dyn())
        }
        D::U16 => {
            DynArray::U16(Array1::from(v.iter().map(|x| *x as u16).collect::<Vec<_>>()).into_dyn())
        }
        D::U32 => {
            DynArray::U32(Array1::from(v.iter().map(|x| *x as u32).collect::<Vec<_>>()).into_dyn())
        }
        D::U64 => {
            DynArray::U64(Array1::from(v.iter().map(|x| *x as u64).collect::<Vec<_>>()).into_dyn())
        }
        _ => DynArray::I64(Array1::from(v).into_dyn()),
    }
}

/// Categorical codes in the smallest integer type pandas would pick for `n` categories.
fn small_codes(codes: Vec<i64>, n: usize) -> DynArray {
    if n < 128 {
        DynArray::I8(Array1::from(codes.iter().map(|c| *c as i8).collect::<Vec<_>>()).into_dyn())
    } else if n < 32_768 {
        DynArray::I16(Array1::from(codes.iter().map(|c| *c as i16).collect::<Vec<_>>()).into_dyn())
    } else {
        DynArray::I32(Array1::from(codes.iter().map(|c| *c as i32).collect::<Vec<_>>()).into_dyn())
    }
}

/// natsort's default order: runs of digits compare as numbers, the rest as text.
pub(crate) fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (x, y) = (chunks(a), chunks(b));
    for (p, q) in x.iter().zip(&y) {
        let o = match (p, q) {
            ((true, p), (true, q)) => {
                let (p, q) = (p.trim_start_matches('0'), q.trim_start_matches('0'));
                p.len().cmp(&q.len()).then_with(|| p.cmp(q))
            }
            // natsort puts numbers before text.
            ((true, _), (false, _)) => std::cmp::Ordering::Less,
            ((false, _), (true, _)) => std::cmp::Ordering::Greater,
            ((false, p), (false, q)) => p.cmp(q),
        };
        if o != std::cmp::Ordering::Equal {
            return o;
        }
    }
    x.len().cmp(&y.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `natsort.natsorted(['b10', 'b9', 'a', '10', '9', 'B'])` is
    /// `['9', '10', 'B', 'a', 'b9', 'b10']`.
    #[test]
    fn categories_sort_as_natsort_does() {
        let mut v = vec!["b10", "b9", "a", "10", "9", "B"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["9", "10", "B", "a", "b9", "b10"]);
    }
}
