//! Marker genes: scanpy's `rank_genes_groups` t-tests from per-group moments (a streaming
//! pass gathers them), Welch's test as scipy computes it, Wilcoxon's rank-sum test from one
//! gene's values at a time, and the multiple-testing corrections scanpy applies.

use statrs::distribution::{ContinuousCDF, StudentsT};
use statrs::function::erf::erfc;

/// A group's mean, variance (ddof 1, as scanpy's `_get_mean_var`) and size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moments {
    pub mean: f64,
    pub var: f64,
    pub n: f64,
}

impl Moments {
    /// From the sum and sum of squares of `n` values.
    pub fn from_sums(sum: f64, sumsq: f64, n: f64) -> Moments {
        let mean = sum / n;
        let var = (sumsq / n - mean * mean) * n / (n - 1.0);
        Moments { mean, var, n }
    }
}

/// `scipy.stats.ttest_ind_from_stats(…, equal_var=False)`: Welch's t statistic and its
/// two-sided p-value, with scanpy's fix-ups (an undefined statistic scores 0 with p = 1).
pub fn welch(a: Moments, b: Moments) -> (f64, f64) {
    let (va, vb) = (a.var / a.n, b.var / b.n);
    let mut df = (va + vb).powi(2) / (va * va / (a.n - 1.0) + vb * vb / (b.n - 1.0));
    if df.is_nan() {
        df = 1.0;
    }
    let t = (a.mean - b.mean) / (va + vb).sqrt();
    if t.is_nan() {
        return (0.0, 1.0);
    }
    let p = match StudentsT::new(0.0, 1.0, df) {
        Ok(d) => 2.0 * d.sf(t.abs()),
        Err(_) => f64::NAN,
    };
    (t, if p.is_nan() { 1.0 } else { p })
}

/// One gene's rank sums: per group code, the sum of the average ranks (scipy's `rankdata`)
/// of its cells among the cells taking part, and the ties' `sum(t^3 - t)` for the tie
/// correction.
#[derive(Debug, Clone, PartialEq)]
pub struct RankSums {
    pub sums: Vec<f64>,
    pub ties: f64,
}

/// Sorts one gene's nonzero values (each with its cell's group code) for [`rank_sums`].
pub fn sort_values(values: &mut [(f64, u32)]) {
    values.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
}

/// Rank sums of one gene over the cells whose group code `c` has `take(c)`: `values` are its
/// nonzero values with group codes, sorted by [`sort_values`]; `sizes[c]` counts the cells
/// of code `c`, so each code's zeros are `sizes[c]` minus its nonzeros, ranked as one tie
/// between the negative and the positive values. Sparse data is ranked without ever
/// spelling out its zeros.
pub fn rank_sums(values: &[(f64, u32)], sizes: &[u64], take: impl Fn(u32) -> bool) -> RankSums {
    let mut sums = vec![0.0; sizes.len()];
    let mut zeros: Vec<u64> = sizes.to_vec();
    for &(_, c) in values {
        zeros[c as usize] -= 1;
    }
    let zeros_taken: u64 = (0..sizes.len() as u32)
        .filter(|&c| take(c))
        .map(|c| zeros[c as usize])
        .sum();
    // Ranks handed out so far.
    let mut below = 0.0f64;
    let mut ties = 0.0f64;
    let mut tie = |t: f64| ties += t * t * t - t;
    let mut zeros_done = false;
    let zero_group = |below: &mut f64, sums: &mut [f64], tie: &mut dyn FnMut(f64)| {
        let t = zeros_taken as f64;
        let average = *below + (t + 1.0) / 2.0;
        for (c, s) in sums.iter_mut().enumerate() {
            if take(c as u32) {
                *s += zeros[c] as f64 * average;
            }
        }
        tie(t);
        *below += t;
    };
    let mut i = 0;
    while i < values.len() {
        let v = values[i].0;
        if !zeros_done && v > 0.0 {
            zero_group(&mut below, &mut sums, &mut tie);
            zeros_done = true;
        }
        let mut j = i;
        while j < values.len() && values[j].0.total_cmp(&v).is_eq() {
            j += 1;
        }
        let t = values[i..j].iter().filter(|&&(_, c)| take(c)).count() as f64;
        let average = below + (t + 1.0) / 2.0;
        for &(_, c) in &values[i..j] {
            if take(c) {
                sums[c as usize] += average;
            }
        }
        tie(t);
        below += t;
        i = j;
    }
    if !zeros_done {
        zero_group(&mut below, &mut sums, &mut tie);
    }
    RankSums { sums, ties }
}

/// Wilcoxon's rank-sum z-score and two-sided p-value as scanpy computes them: a group of
/// `n` cells with rank sum `rank_sum` against `m` others, with the tie correction
/// `1 - ties / (N^3 - N)` when `tie_correct` (an undefined score is 0, with p = 1).
pub fn wilcoxon(rank_sum: f64, n: f64, m: f64, ties: f64, tie_correct: bool) -> (f64, f64) {
    let total = n + m;
    let coef = if tie_correct && total >= 2.0 {
        1.0 - ties / (total * total * total - total)
    } else {
        1.0
    };
    let z = (rank_sum - n * (total + 1.0) / 2.0) / (coef * n * m * (total + 1.0) / 12.0).sqrt();
    let z = if z.is_nan() { 0.0 } else { z };
    (z, erfc(z.abs() / std::f64::consts::SQRT_2))
}

/// Benjamini-Hochberg adjusted p-values (statsmodels' `fdr_bh`, as scanpy calls it): over
/// every gene, not only those reported.
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let n = p.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| p[i].total_cmp(&p[j]));
    let mut adj = vec![0.0; n];
    let mut running = f64::INFINITY;
    for (rank, &i) in order.iter().enumerate().rev() {
        running = running.min(p[i] * n as f64 / (rank + 1) as f64);
        adj[i] = running.min(1.0);
    }
    adj
}

/// Bonferroni: each p-value times the number of genes, at most 1.
pub fn bonferroni(p: &[f64]) -> Vec<f64> {
    p.iter().map(|v| (v * p.len() as f64).min(1.0)).collect()
}

/// The positions of the `n` highest scores, highest first (scanpy's order; ties keep the
/// lower position first).
pub fn top_scores(scores: &[f64], n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&i, &j| scores[j].total_cmp(&scores[i]).then(i.cmp(&j)));
    order.truncate(n);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Welch's test against values scipy gives (`ttest_ind_from_stats(1.0, 1.0, 10, 0.0,
    /// 2.0, 20, equal_var=False)` = (1.8257418583505536, 0.07857958786913388)).
    #[test]
    fn welch_matches_scipy() {
        let a = Moments {
            mean: 1.0,
            var: 1.0,
            n: 10.0,
        };
        let b = Moments {
            mean: 0.0,
            var: 4.0,
            n: 20.0,
        };
        let (t, p) = welch(a, b);
        assert!((t - 1.825_741_858_350_553_6).abs() < 1e-12, "{t}");
        assert!((p - 0.078_579_587_869_133_88).abs() < 1e-12, "{p}");
        // Both constant and equal: score 0, p 1, as scanpy sets them.
        let c = Moments {
            mean: 0.0,
            var: 0.0,
            n: 5.0,
        };
        assert_eq!(welch(c, c), (0.0, 1.0));
    }

    /// Rank sums against scipy: `rankdata(x)` summed per group, and `tiecorrect`, for
    /// x = [0, 1.5, 0, 2, 2, -1, 0, 3, 1.5, 0, 2, 5] in groups [0, 1, 2, 0, 1, 0, 2, 2, 0, 1,
    /// 0, 2]: [29, 19, 30] and 0.9475524475524475 over all; group 0 against group 2 alone: 22
    /// and 0.9583333333333334.
    #[test]
    fn rank_sums_match_scipy() {
        let x = [0.0, 1.5, 0.0, 2.0, 2.0, -1.0, 0.0, 3.0, 1.5, 0.0, 2.0, 5.0];
        let g = [0u32, 1, 2, 0, 1, 0, 2, 2, 0, 1, 0, 2];
        let mut values: Vec<(f64, u32)> = x
            .iter()
            .zip(g)
            .filter(|(v, _)| **v != 0.0)
            .map(|(&v, c)| (v, c))
            .collect();
        sort_values(&mut values);
        let sizes = [5, 3, 4];
        let all = rank_sums(&values, &sizes, |_| true);
        assert_eq!(all.sums, vec![29.0, 19.0, 30.0]);
        let n = 12.0;
        assert!((1.0 - all.ties / (n * n * n - n) - 0.947_552_447_552_447_5).abs() < 1e-15);
        let pair = rank_sums(&values, &sizes, |c| c != 1);
        assert_eq!(pair.sums[0], 22.0);
        let n = 9.0;
        assert!((1.0 - pair.ties / (n * n * n - n) - 0.958_333_333_333_333_4).abs() < 1e-15);
        // No zeros at all, and only zeros.
        let dense = rank_sums(&[(1.0, 0), (2.0, 1)], &[1, 1], |_| true);
        assert_eq!((dense.sums, dense.ties), (vec![1.0, 2.0], 0.0));
        let empty = rank_sums(&[], &[2, 2], |_| true);
        assert_eq!((empty.sums, empty.ties), (vec![5.0, 5.0], 60.0));
    }

    /// scanpy's z for group 0 above against the rest (n = 5, m = 7): (29 - 5 * 13 / 2) /
    /// sqrt(5 * 7 * 13 / 12), p = 2 sf(|z|) (scipy: 0.5697643679606206 without the tie
    /// correction); all-tied genes score 0 with p = 1.
    #[test]
    fn wilcoxon_is_scanpys_normal_approximation() {
        let (z, p) = wilcoxon(29.0, 5.0, 7.0, 0.0, false);
        assert!((z - (29.0 - 32.5) / (5.0f64 * 7.0 * 13.0 / 12.0).sqrt()).abs() < 1e-15);
        assert!((p - 0.569_764_367_960_620_6).abs() < 1e-12, "{p}");
        assert_eq!(wilcoxon(5.0, 2.0, 2.0, 60.0, true), (0.0, 1.0));
    }

    /// BH by hand: p = [0.01, 0.04, 0.03, 0.5] -> sorted ranks 1..4 -> [0.04, 0.0533, 0.0533,
    /// 0.5].
    #[test]
    fn benjamini_hochberg_by_hand() {
        let adj = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.5]);
        let want = [0.04, 0.04 * 4.0 / 3.0, 0.04 * 4.0 / 3.0, 0.5];
        for (a, w) in adj.iter().zip(want) {
            assert!((a - w).abs() < 1e-12, "{adj:?}");
        }
        assert_eq!(bonferroni(&[0.1, 0.5]), vec![0.2, 1.0]);
        assert_eq!(top_scores(&[0.5, 2.0, -1.0, 2.0], 3), vec![1, 3, 0]);
    }
}
