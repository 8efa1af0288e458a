//! Elementwise maps on X (scale, log1p, normalize_total's row factors) and their fused
//! chains, applied block by block.

use crate::block::XBlock;
use engine_matrix::AxisSelection;
use engine_matrix::Csr;
use ndarray::Array2;
use std::sync::Arc;

/// An elementwise map on X.
#[derive(Debug, Clone)]
pub(crate) enum XMap {
    /// `scale`: per column `(x - mean) / sd`, clipped.
    Standardize {
        mean: Arc<Vec<f64>>,
        sd: Arc<Vec<f64>>,
        zero_center: bool,
        max_value: Option<f64>,
    },
    Log1p,
    /// `normalize_total`: row `i` times `factors[i]` (positions at this depth).
    ScaleRows(Arc<Vec<f64>>),
    /// Maps applied in order in one sweep over each block (`fuse_elementwise`).
    Chain(Vec<XMap>),
}

impl XMap {
    /// The map with its per-row and per-column parameters restricted to a selection.
    pub(crate) fn restrict(
        &self,
        rows: Option<&AxisSelection>,
        cols: Option<&AxisSelection>,
    ) -> XMap {
        let take = |v: &Arc<Vec<f64>>, sel: Option<&AxisSelection>| match sel {
            Some(s) => Arc::new(s.indices().map(|i| v[i]).collect::<Vec<_>>()),
            None => v.clone(),
        };
        match self {
            XMap::Standardize {
                mean,
                sd,
                zero_center,
                max_value,
            } => XMap::Standardize {
                mean: take(mean, cols),
                sd: take(sd, cols),
                zero_center: *zero_center,
                max_value: *max_value,
            },
            XMap::ScaleRows(f) => XMap::ScaleRows(take(f, rows)),
            XMap::Log1p => XMap::Log1p,
            XMap::Chain(maps) => XMap::Chain(maps.iter().map(|m| m.restrict(rows, cols)).collect()),
        }
    }

    /// The map of one value at row position `i`, column `j`.
    fn scalar(&self, v: f64, i: usize, j: usize) -> f64 {
        match self {
            XMap::Standardize {
                mean,
                sd,
                zero_center,
                max_value,
            } => standardize(v, mean[j], sd[j], *zero_center, *max_value),
            XMap::Log1p => v.ln_1p(),
            XMap::ScaleRows(f) => v * f[i],
            XMap::Chain(maps) => maps.iter().fold(v, |v, m| m.scalar(v, i, j)),
        }
    }

    /// Appends `next` to this map as one kernel.
    pub fn then(self, next: XMap) -> XMap {
        match self {
            XMap::Chain(mut maps) => {
                maps.push(next);
                XMap::Chain(maps)
            }
            first => XMap::Chain(vec![first, next]),
        }
    }
}

/// A chain in one sweep: each stored value goes through every map in turn. Absent entries of
/// a sparse block stay absent while the maps keep zero at zero, and become a per-column fill
/// once one does not; a row scale after that point has no per-column fill, so the block is
/// then densified, as the unfused maps would.
fn apply_chain(maps: &[XMap], x: XBlock, pos: &AxisSelection) -> XBlock {
    let rows: Vec<usize> = pos.indices().collect();
    match x {
        XBlock::Sparse { mut x, fill } => {
            let mut col_fill: Option<Vec<f64>> = fill.as_ref().map(|f| f.to_vec());
            for m in maps {
                match (m, &mut col_fill) {
                    (XMap::ScaleRows(_), Some(_)) => {
                        // Nothing has been applied to the block yet: densify it as read.
                        let dense = XBlock::Sparse { x, fill };
                        return apply_chain_dense(maps, dense.into_dense(), &rows);
                    }
                    (XMap::ScaleRows(_) | XMap::Log1p, None) => {}
                    (m, f) => {
                        let cur = f.take().unwrap_or_else(|| vec![0.0; x.n_cols()]);
                        *f = Some(
                            cur.iter()
                                .enumerate()
                                .map(|(j, &v)| m.scalar(v, 0, j))
                                .collect(),
                        );
                    }
                }
            }
            for m in maps {
                sweep_sparse(m, &mut x, &rows);
            }
            let fill = col_fill
                .filter(|f| f.iter().any(|v| *v != 0.0))
                .map(Arc::new);
            XBlock::Sparse { x, fill }
        }
        XBlock::Dense(a) => apply_chain_dense(maps, a, &rows),
    }
}

fn apply_chain_dense(maps: &[XMap], mut a: Array2<f64>, rows: &[usize]) -> XBlock {
    let chain = XMap::Chain(maps.to_vec());
    for (mut row, &i) in a.outer_iter_mut().zip(rows) {
        for (j, v) in row.iter_mut().enumerate() {
            *v = chain.scalar(*v, i, j);
        }
    }
    XBlock::Dense(a)
}

/// One map over a sparse block's stored values, as its own tight loop: the block is in cache,
/// and a loop per map is several times faster than interpreting the whole chain per value
/// (the same operations in the same order, so the same bits).
fn sweep_sparse(m: &XMap, x: &mut Csr, rows: &[usize]) {
    match m {
        XMap::ScaleRows(f) => {
            for (r, &i) in rows.iter().enumerate().take(x.n_rows()) {
                let factor = f[i];
                let range = x.major_range(r);
                for v in &mut x.data[range] {
                    *v *= factor;
                }
            }
        }
        XMap::Log1p => x.data.iter_mut().for_each(|v| *v = v.ln_1p()),
        XMap::Standardize {
            mean,
            sd,
            zero_center,
            max_value,
        } => {
            for (v, &j) in x.data.iter_mut().zip(&x.indices) {
                let j = j as usize;
                *v = standardize(*v, mean[j], sd[j], *zero_center, *max_value);
            }
        }
        XMap::Chain(maps) => maps.iter().for_each(|m| sweep_sparse(m, x, rows)),
    }
}

fn standardize(v: f64, mean: f64, sd: f64, zero_center: bool, max_value: Option<f64>) -> f64 {
    let mut z = if zero_center { v - mean } else { v };
    z /= sd;
    if let Some(m) = max_value {
        z = z.clamp(if zero_center { -m } else { f64::MIN }, m);
    }
    z
}

/// Applies `m` to a block whose rows sit at positions `pos` of this depth.
pub(crate) fn apply_map(m: &XMap, x: XBlock, pos: &AxisSelection) -> XBlock {
    match (m, x) {
        (XMap::Chain(maps), x) => apply_chain(maps, x, pos),
        (
            XMap::Standardize {
                mean,
                sd,
                zero_center,
                max_value,
            },
            XBlock::Sparse { mut x, fill },
        ) => {
            let f = |j: usize| fill.as_ref().map_or(0.0, |f| f[j]);
            let new_fill: Vec<f64> = (0..x.n_cols())
                .map(|j| standardize(f(j), mean[j], sd[j], *zero_center, *max_value))
                .collect();
            for (&j, v) in x.indices.iter().zip(x.data.iter_mut()) {
                let j = j as usize;
                *v = standardize(*v, mean[j], sd[j], *zero_center, *max_value);
            }
            let fill = if new_fill.iter().all(|v| *v == 0.0) {
                None
            } else {
                Some(Arc::new(new_fill))
            };
            XBlock::Sparse { x, fill }
        }
        (
            XMap::Standardize {
                mean,
                sd,
                zero_center,
                max_value,
            },
            XBlock::Dense(mut a),
        ) => {
            for mut row in a.outer_iter_mut() {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = standardize(*v, mean[j], sd[j], *zero_center, *max_value);
                }
            }
            XBlock::Dense(a)
        }
        (XMap::Log1p, XBlock::Sparse { mut x, fill }) => {
            x.map_values(f64::ln_1p);
            let fill = fill.map(|f| Arc::new(f.iter().map(|v| v.ln_1p()).collect()));
            XBlock::Sparse { x, fill }
        }
        (XMap::Log1p, XBlock::Dense(mut a)) => {
            a.mapv_inplace(f64::ln_1p);
            XBlock::Dense(a)
        }
        (XMap::ScaleRows(factors), XBlock::Sparse { mut x, fill: None }) => {
            let f: Vec<f64> = pos.indices().map(|i| factors[i]).collect();
            x.scale_rows(&f);
            XBlock::Sparse { x, fill: None }
        }
        (XMap::ScaleRows(factors), other) => {
            // A row scale of standardised data has no per-column fill: densify.
            let mut a = other.into_dense();
            for (mut row, i) in a.outer_iter_mut().zip(pos.indices()) {
                row.mapv_inplace(|v| v * factors[i]);
            }
            XBlock::Dense(a)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block() -> XBlock {
        // 3 x 4 with absent entries in every column but the last.
        XBlock::Sparse {
            x: Csr::from_parts(
                4,
                vec![0, 2, 3, 5],
                vec![0, 3, 1, 2, 3],
                vec![1.0, 4.0, 2.0, 3.0, 5.0],
            ),
            fill: None,
        }
    }

    fn maps() -> (XMap, XMap, XMap) {
        let rows = XMap::ScaleRows(Arc::new(vec![9.0, 0.5, 2.0, 3.0, 7.0]));
        let cols = XMap::Standardize {
            mean: Arc::new(vec![0.1, 0.2, 0.3, 0.4]),
            sd: Arc::new(vec![1.0, 2.0, 0.5, 4.0]),
            zero_center: true,
            max_value: Some(1.5),
        };
        (rows, XMap::Log1p, cols)
    }

    /// The block through each map in turn, as unfused lineage steps apply them.
    fn one_by_one(ms: &[XMap], pos: &AxisSelection) -> Array2<f64> {
        ms.iter()
            .fold(block(), |x, m| apply_map(m, x, pos))
            .into_dense()
    }

    #[test]
    fn a_chain_in_one_sweep_equals_its_maps_one_by_one() {
        // Rows at positions 2..5 of their depth: the row factors are looked up by position.
        let pos = AxisSelection::range(2..5);
        let (rows, log, cols) = maps();
        for order in [
            vec![rows.clone(), log.clone(), cols.clone()],
            // A row scale after the fill exists: no per-column fill, so it densifies.
            vec![cols.clone(), log.clone(), rows.clone()],
            vec![log.clone(), cols.clone()],
        ] {
            let chain = order[1..]
                .iter()
                .fold(order[0].clone(), |c, m| c.then(m.clone()));
            let fused = apply_map(&chain, block(), &pos).into_dense();
            assert_eq!(fused, one_by_one(&order, &pos), "{order:?}");
        }
    }

    #[test]
    fn restricting_a_chain_restricts_every_map() {
        let (rows, log, cols) = maps();
        let chain = rows.then(log).then(cols);
        let keep_rows = AxisSelection::from_indices(&[1, 3]);
        let keep_cols = AxisSelection::from_indices(&[2]);
        let XMap::Chain(parts) = chain.restrict(Some(&keep_rows), Some(&keep_cols)) else {
            panic!("still a chain");
        };
        match (&parts[0], &parts[2]) {
            (XMap::ScaleRows(f), XMap::Standardize { mean, sd, .. }) => {
                assert_eq!(**f, vec![0.5, 3.0]);
                assert_eq!((**mean).clone(), vec![0.3]);
                assert_eq!((**sd).clone(), vec![0.5]);
            }
            other => panic!("{other:?}"),
        }
    }
}
