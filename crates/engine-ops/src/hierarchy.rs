//! scanpy's `sc.tl.dendrogram` of groups: complete-linkage clustering of the groups by the
//! Pearson correlation of their mean representation (scipy's `linkage` on `1 - corr`), and
//! the leaf order and branch coordinates scipy's `dendrogram` gives.

/// One merge of two clusters (scipy's linkage row): leaves are `0..n`, the cluster formed by
/// merge `i` is `n + i`; `a < b`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Merge {
    pub a: usize,
    pub b: usize,
    pub distance: f64,
    pub size: usize,
}

/// `1 - pearson(rows)` between the rows of `means` (groups × dimensions), clipped to
/// `0..=2`, as scanpy gives `linkage`.
pub fn correlation_distances(means: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let centred: Vec<(Vec<f64>, f64)> = means
        .iter()
        .map(|m| {
            let mean = m.iter().sum::<f64>() / m.len().max(1) as f64;
            let c: Vec<f64> = m.iter().map(|v| v - mean).collect();
            let norm = c.iter().map(|v| v * v).sum::<f64>().sqrt();
            (c, norm)
        })
        .collect();
    centred
        .iter()
        .map(|(a, na)| {
            centred
                .iter()
                .map(|(b, nb)| {
                    let r = a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>() / (na * nb);
                    1.0 - r.clamp(-1.0, 1.0)
                })
                .collect()
        })
        .collect()
}

/// scipy's `linkage(squareform(d), method='complete')` on the symmetric distances `d`: the
/// two closest clusters merge first, a cluster's distance to another the largest between
/// their members.
pub fn complete_linkage(d: &[Vec<f64>]) -> Vec<Merge> {
    let n = d.len();
    // Active clusters: their id, members' distance row (complete linkage) and size.
    let mut ids: Vec<usize> = (0..n).collect();
    let mut rows: Vec<Vec<f64>> = d.to_vec();
    let mut sizes = vec![1usize; n];
    let mut merges = Vec::with_capacity(n.saturating_sub(1));
    while ids.len() > 1 {
        let (mut bi, mut bj, mut best) = (0, 1, f64::INFINITY);
        for (i, row) in rows.iter().enumerate() {
            for (j, &v) in row.iter().enumerate().skip(i + 1) {
                if v < best {
                    (bi, bj, best) = (i, j, v);
                }
            }
        }
        let (a, b) = (ids[bi].min(ids[bj]), ids[bi].max(ids[bj]));
        let size = sizes[bi] + sizes[bj];
        merges.push(Merge {
            a,
            b,
            distance: best,
            size,
        });
        // The merged cluster takes slot `bi`; slot `bj` goes.
        let merged: Vec<f64> = rows[bi]
            .iter()
            .zip(&rows[bj])
            .map(|(x, y)| x.max(*y))
            .collect();
        for (k, v) in merged.into_iter().enumerate() {
            rows[bi][k] = v;
            rows[k][bi] = v;
        }
        rows[bi][bi] = 0.0;
        ids[bi] = n + merges.len() - 1;
        sizes[bi] = size;
        ids.remove(bj);
        sizes.remove(bj);
        rows.remove(bj);
        for r in &mut rows {
            r.remove(bj);
        }
    }
    merges
}

/// A merge's branch: four (height, position) points, from its first cluster up, across and
/// down to its second.
pub type Branch = [(f64, f64); 4];

/// scipy's `dendrogram(Z)`: the leaves left to right (each merge's first cluster before its
/// second), and per merge its branch as four (height, position) points, positions counted
/// in leaves (the first leaf at 0) and heights the merge distances.
pub fn dendrogram(merges: &[Merge]) -> (Vec<usize>, Vec<Branch>) {
    let n = merges.len() + 1;
    let mut order = Vec::with_capacity(n);
    // In-order traversal from the root, without recursion.
    let mut stack = vec![2 * n - 2];
    while let Some(c) = stack.pop() {
        if c < n {
            order.push(c);
        } else {
            let m = merges[c - n];
            stack.push(m.b);
            stack.push(m.a);
        }
    }
    let mut position = vec![0.0; 2 * n - 1];
    let mut height = vec![0.0; 2 * n - 1];
    for (p, &leaf) in order.iter().enumerate() {
        position[leaf] = p as f64;
    }
    let branches = merges
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let c = n + i;
            position[c] = (position[m.a] + position[m.b]) / 2.0;
            height[c] = m.distance;
            [
                (height[m.a], position[m.a]),
                (m.distance, position[m.a]),
                (m.distance, position[m.b]),
                (height[m.b], position[m.b]),
            ]
        })
        .collect();
    (order, branches)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against scipy 1.18: for the condensed distances [0.3, 0.9, 0.8, 0.7, 0.5, 0.2]
    /// (4 points), `linkage(d, 'complete')` is [[2, 3, 0.2, 2], [0, 1, 0.3, 2],
    /// [4, 5, 0.9, 4]] and `dendrogram(Z)['leaves']` is [2, 3, 0, 1].
    #[test]
    fn matches_scipys_linkage_and_leaves() {
        // scipy's squareform of the condensed distances.
        let d = vec![
            vec![0.0, 0.3, 0.9, 0.8],
            vec![0.3, 0.0, 0.7, 0.5],
            vec![0.9, 0.7, 0.0, 0.2],
            vec![0.8, 0.5, 0.2, 0.0],
        ];
        let z = complete_linkage(&d);
        let rows: Vec<(usize, usize, f64, usize)> =
            z.iter().map(|m| (m.a, m.b, m.distance, m.size)).collect();
        assert_eq!(rows, [(2, 3, 0.2, 2), (0, 1, 0.3, 2), (4, 5, 0.9, 4)]);
        let (leaves, branches) = dendrogram(&z);
        assert_eq!(leaves, [2, 3, 0, 1]);
        // The root joins the two pairs' midpoints (0.5 and 2.5) at 0.9.
        assert_eq!(
            branches[2],
            [(0.2, 0.5), (0.9, 0.5), (0.9, 2.5), (0.3, 2.5)]
        );
    }

    #[test]
    fn correlation_distance_is_one_minus_pearson() {
        let d = correlation_distances(&[
            vec![1.0, 2.0, 3.0],
            vec![2.0, 4.0, 6.5],
            vec![3.0, 2.0, 1.0],
        ]);
        assert!(d[0][0].abs() < 1e-12);
        assert!((d[0][2] - 2.0).abs() < 1e-12);
        assert!(d[0][1] > 0.0 && d[0][1] < 0.01);
        assert_eq!(d[0][1], d[1][0]);
    }
}
