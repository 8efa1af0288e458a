//! A Gaussian kernel density estimate as seaborn's violins draw it: scipy's `gaussian_kde`
//! with Scott's bandwidth, evaluated at evenly spaced points from the lowest to the highest
//! value, widened by `cut` bandwidths either side (seaborn's `cut`; scanpy's violins pass 0).

use rayon::prelude::*;

/// The density of `values` at `points` evenly spaced values from their minimum minus `cut`
/// bandwidths to their maximum plus as many: `(support, density)`. `None` when there are
/// fewer than two values or they do not vary, where scipy's estimate is singular.
pub fn violin_density(values: &[f64], points: usize, cut: f64) -> Option<(Vec<f64>, Vec<f64>)> {
    let n = values.len();
    if n < 2 || points < 2 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0);
    if var.is_nan() || var <= 0.0 || !var.is_finite() {
        return None;
    }
    // Scott's factor n^(-1/5): the kernel's variance is the data's times its square.
    let factor = (n as f64).powf(-0.2);
    let sigma2 = var * factor * factor;
    let norm = 1.0 / (n as f64 * (2.0 * std::f64::consts::PI * sigma2).sqrt());
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let (lo, hi) = (lo - cut * sigma2.sqrt(), hi + cut * sigma2.sqrt());
    let support: Vec<f64> = (0..points)
        .map(|i| lo + (hi - lo) * i as f64 / (points - 1) as f64)
        .collect();
    let density = support
        .par_iter()
        .map(|&x| {
            values
                .iter()
                .map(|&v| (-(x - v) * (x - v) / (2.0 * sigma2)).exp())
                .sum::<f64>()
                * norm
        })
        .collect();
    Some((support, density))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `scipy.stats.gaussian_kde([0, 1, 1, 2, 5])` at `np.linspace(0, 5, 4)` (scipy 1.18).
    #[test]
    fn matches_scipys_gaussian_kde() {
        let (support, density) = violin_density(&[0.0, 1.0, 1.0, 2.0, 5.0], 4, 0.0).unwrap();
        let want_support = [0.0, 5.0 / 3.0, 10.0 / 3.0, 5.0];
        for (s, w) in support.iter().zip(want_support) {
            assert!((s - w).abs() < 1e-12);
        }
        let want = [
            0.166_275_241_776,
            0.189_006_258_661,
            0.095_726_859_766,
            0.064_841_307_837,
        ];
        for (d, w) in density.iter().zip(want) {
            assert!((d - w).abs() < 1e-11, "{d} vs {w}");
        }
        // seaborn's default `cut=2`: the support reaches two bandwidths past the extremes.
        let (support, density) = violin_density(&[0.0, 1.0, 1.0, 2.0, 5.0], 4, 2.0).unwrap();
        let want_support = [-2.788_283_04, 0.737_238_99, 4.262_761_01, 7.788_283_04];
        let want = [0.010_755_63, 0.200_718_57, 0.073_030_83, 0.007_756_57];
        for ((s, d), (ws, w)) in support
            .iter()
            .zip(&density)
            .zip(want_support.iter().zip(want))
        {
            assert!((s - ws).abs() < 1e-8, "{s} vs {ws}");
            assert!((d - w).abs() < 1e-8, "{d} vs {w}");
        }
        assert!(violin_density(&[3.0, 3.0, 3.0], 100, 0.0).is_none());
        assert!(violin_density(&[3.0], 100, 0.0).is_none());
    }
}
