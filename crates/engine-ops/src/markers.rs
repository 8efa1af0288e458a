//! Marker genes: scanpy's `rank_genes_groups` t-tests from per-group moments (a streaming
//! pass gathers them), Welch's test as scipy computes it, and the multiple-testing
//! corrections scanpy applies.

use statrs::distribution::{ContinuousCDF, StudentsT};

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
