//! Streaming statistics with an associative merge, so a pass can run on one thread, on all
//! cores, or as shards, and give the same answer: per-column moments and the Gram matrix.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use ndarray::ArrayView2;

/// The median (the mean of the middle two for an even count); NaN when empty.
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// Per-column count, mean and sum of squared deviations (Chan et al.'s parallel update).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Moments {
    pub n: u64,
    pub mean: Vec<f64>,
    pub m2: Vec<f64>,
}

impl Moments {
    pub fn new(n_vars: usize) -> Moments {
        Moments {
            n: 0,
            mean: vec![0.0; n_vars],
            m2: vec![0.0; n_vars],
        }
    }

    /// Moments of one dense block (rows × vars).
    pub fn of_block(x: ArrayView2<'_, f64>) -> Moments {
        let (n, d) = x.dim();
        let mut m = Moments::new(d);
        if n == 0 {
            return m;
        }
        m.n = n as u64;
        for row in x.outer_iter() {
            for (s, v) in m.mean.iter_mut().zip(row) {
                *s += v;
            }
        }
        m.mean.iter_mut().for_each(|s| *s /= n as f64);
        for row in x.outer_iter() {
            for ((q, v), mu) in m.m2.iter_mut().zip(row).zip(&m.mean) {
                *q += (v - mu) * (v - mu);
            }
        }
        m
    }

    /// Combines two partial results; `a.merge(b) == b.merge(a)` up to rounding.
    pub fn merge(self, other: Moments) -> Moments {
        if self.n == 0 {
            return other;
        }
        if other.n == 0 {
            return self;
        }
        let (na, nb) = (self.n as f64, other.n as f64);
        let n = na + nb;
        let mut out = Moments::new(self.mean.len());
        out.n = self.n + other.n;
        for j in 0..self.mean.len() {
            let delta = other.mean[j] - self.mean[j];
            out.mean[j] = self.mean[j] + delta * nb / n;
            out.m2[j] = self.m2[j] + other.m2[j] + delta * delta * na * nb / n;
        }
        out
    }

    /// Variance with `ddof` (scanpy's `_get_mean_var` uses 1).
    pub fn var(&self, ddof: u64) -> Vec<f64> {
        let d = (self.n.saturating_sub(ddof)).max(1) as f64;
        self.m2.iter().map(|q| q / d).collect()
    }
}

/// Sum of outer products of rows shifted by a fixed vector, `Σ (x - k)(x - k)ᵀ`, plus their
/// column sums. The shift (an estimate of the mean, fixed before the pass) keeps the
/// covariance that is derived from it free of cancellation.
#[derive(Debug, Clone)]
pub struct Gram {
    pub n: u64,
    pub shift: Vec<f64>,
    pub sum: Vec<f64>,
    pub xtx: Mat<f64>,
}

impl Gram {
    pub fn new(shift: Vec<f64>) -> Gram {
        let d = shift.len();
        Gram {
            n: 0,
            sum: vec![0.0; d],
            xtx: Mat::zeros(d, d),
            shift,
        }
    }

    /// Adds one dense block (rows × vars).
    pub fn update(&mut self, x: ArrayView2<'_, f64>) {
        let n = x.nrows();
        if n == 0 {
            return;
        }
        let sum = &mut self.sum;
        let shifted = shifted(x, &self.shift, |j, s| sum[j] += s);
        matmul(
            self.xtx.as_mut(),
            Accum::Add,
            shifted.transpose(),
            shifted.as_ref(),
            1.0,
            // Blocks already run in parallel; this thread then clears what the kernel left.
            Par::Seq,
        );
        crate::cpu::clean();
        self.n += n as u64;
    }

    /// Combines two partial results over the same shift.
    ///
    /// # Panics
    /// When the shifts differ: that is a bug in the caller.
    pub fn merge(mut self, other: &Gram) -> Gram {
        assert_eq!(
            self.shift, other.shift,
            "Gram partials must share one shift"
        );
        self.n += other.n;
        self.sum
            .iter_mut()
            .zip(&other.sum)
            .for_each(|(a, b)| *a += b);
        self.xtx += &other.xtx;
        self
    }

    pub fn mean(&self) -> Vec<f64> {
        self.sum
            .iter()
            .zip(&self.shift)
            .map(|(s, k)| s / self.n.max(1) as f64 + k)
            .collect()
    }

    /// Sample covariance (ddof = 1).
    pub fn covariance(&self) -> Mat<f64> {
        let n = self.n as f64;
        let m: Vec<f64> = self.sum.iter().map(|s| s / n).collect();
        let d = self.sum.len();
        // Read from the upper triangle: sparse updates accumulate only that half.
        Mat::from_fn(d, d, |i, j| {
            (self.xtx[(i.min(j), i.max(j))] - n * m[i] * m[j]) / (n - 1.0).max(1.0)
        })
    }

    /// The correlation matrix: the covariance of the standardised data, which is what PCA
    /// sees after `scale`. Zero-variance columns get scale 1, as scanpy does.
    pub fn correlation(&self) -> (Mat<f64>, Vec<f64>) {
        let mut c = self.covariance();
        let sd: Vec<f64> = (0..c.nrows())
            .map(|i| c[(i, i)].sqrt())
            .map(|s| if s > 0.0 { s } else { 1.0 })
            .collect();
        let d = sd.len();
        for j in 0..d {
            for i in 0..d {
                c[(i, j)] /= sd[i] * sd[j];
            }
        }
        (c, sd)
    }
}

/// A dense block minus `shift`, column by column, as a faer matrix for the products;
/// `seen(j, value)` is called with each shifted value (for the column sums).
pub(crate) fn shifted(
    x: ArrayView2<'_, f64>,
    shift: &[f64],
    mut seen: impl FnMut(usize, f64),
) -> Mat<f64> {
    let (n, d) = x.dim();
    let mut out = Mat::<f64>::zeros(n, d);
    for (i, row) in x.outer_iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            let s = v - shift[j];
            out[(i, j)] = s;
            seen(j, s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, s};

    fn data() -> Array2<f64> {
        Array2::from_shape_fn((57, 4), |(i, j)| {
            ((i * 7 + j * 13) % 11) as f64 * (j as f64 + 1.0) + 1000.0
        })
    }

    #[test]
    fn merged_moments_equal_moments_of_the_whole() {
        let x = data();
        let whole = Moments::of_block(x.view());
        let parts = Moments::of_block(x.slice(s![..20, ..]))
            .merge(Moments::of_block(x.slice(s![20..41, ..])))
            .merge(Moments::of_block(x.slice(s![41.., ..])));
        for j in 0..4 {
            assert!((whole.mean[j] - parts.mean[j]).abs() < 1e-9);
            assert!((whole.m2[j] - parts.m2[j]).abs() < 1e-6);
        }
        // Closed form for column 0.
        let col: Vec<f64> = x.column(0).to_vec();
        let mu = col.iter().sum::<f64>() / 57.0;
        let var = col.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / 56.0;
        assert!((whole.var(1)[0] - var).abs() < 1e-9);
    }

    #[test]
    fn covariance_from_gram_matches_direct_computation() {
        let x = data();
        let mut a = Gram::new(vec![1000.0; 4]);
        a.update(x.slice(s![..30, ..]));
        let mut b = Gram::new(vec![1000.0; 4]);
        b.update(x.slice(s![30.., ..]));
        let g = a.merge(&b);
        let cov = g.covariance();
        let mu: Vec<f64> = (0..4).map(|j| x.column(j).mean().unwrap()).collect();
        for i in 0..4 {
            for j in 0..4 {
                let direct = x
                    .outer_iter()
                    .map(|r| (r[i] - mu[i]) * (r[j] - mu[j]))
                    .sum::<f64>()
                    / 56.0;
                assert!((cov[(i, j)] - direct).abs() < 1e-9, "{i},{j}");
            }
            assert!((g.mean()[i] - mu[i]).abs() < 1e-9);
        }
        let (corr, _) = g.correlation();
        assert!((0..4).all(|i| (corr[(i, i)] - 1.0).abs() < 1e-12));
    }
}

/// The position of the first value that is not a count (negative, fractional or not
/// finite), if any: what a step that expects raw counts warns about.
pub fn first_non_count(values: &[f64]) -> Option<usize> {
    values
        .iter()
        .position(|v| !(v.is_finite() && *v >= 0.0 && v.fract() == 0.0))
}

#[cfg(test)]
mod count_tests {
    use super::first_non_count;

    #[test]
    fn counts_are_non_negative_whole_numbers() {
        assert_eq!(first_non_count(&[0.0, 1.0, 3e6]), None);
        assert_eq!(first_non_count(&[0.0, 2.0, 0.5]), Some(2));
        assert_eq!(first_non_count(&[-1.0, 0.5]), Some(0));
        assert_eq!(first_non_count(&[1.0, f64::NAN]), Some(1));
        assert_eq!(first_non_count(&[]), None);
    }
}
