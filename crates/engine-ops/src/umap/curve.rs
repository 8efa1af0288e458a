//! The curve `1 / (1 + a d^2b)` the layout is optimised with.

/// Least-squares fit of `1 / (1 + a x^2b)` to 1 below `min_dist` and
/// `exp(-(x - min_dist) / spread)` above, on 300 points over `[0, 3 spread]`, from
/// `a = b = 1` (umap-learn's `find_ab_params`, which calls scipy's `curve_fit`); solved here
/// by Levenberg–Marquardt with the analytic Jacobian.
pub fn find_ab_params(spread: f64, min_dist: f64) -> (f64, f64) {
    let xs: Vec<f64> = (0..300).map(|i| 3.0 * spread * i as f64 / 299.0).collect();
    let ys: Vec<f64> = xs
        .iter()
        .map(|&x| {
            if x < min_dist {
                1.0
            } else {
                (-(x - min_dist) / spread).exp()
            }
        })
        .collect();
    let cost = |a: f64, b: f64| -> f64 {
        xs.iter()
            .zip(&ys)
            .map(|(&x, &y)| (1.0 / (1.0 + a * x.powf(2.0 * b)) - y).powi(2))
            .sum()
    };
    let (mut a, mut b) = (1.0f64, 1.0f64);
    let mut current = cost(a, b);
    let mut lambda = 1e-3;
    for _ in 0..500 {
        // Normal equations of the linearised problem.
        let (mut jaa, mut jab, mut jbb, mut ga, mut gb) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (&x, &y) in xs.iter().zip(&ys) {
            if x == 0.0 {
                // f = 1 and both derivatives vanish at the origin.
                continue;
            }
            let p = x.powf(2.0 * b);
            let f = 1.0 / (1.0 + a * p);
            let r = f - y;
            let da = -p * f * f;
            let db = -a * p * 2.0 * x.ln() * f * f;
            jaa += da * da;
            jab += da * db;
            jbb += db * db;
            ga += da * r;
            gb += db * r;
        }
        let mut improved = false;
        while lambda < 1e12 {
            let (m00, m11) = (jaa * (1.0 + lambda), jbb * (1.0 + lambda));
            let det = m00 * m11 - jab * jab;
            if det.abs() < f64::MIN_POSITIVE {
                lambda *= 10.0;
                continue;
            }
            let step_a = -(m11 * ga - jab * gb) / det;
            let step_b = -(m00 * gb - jab * ga) / det;
            let (na, nb) = (a + step_a, b + step_b);
            let trial = cost(na, nb);
            if na > 0.0 && nb > 0.0 && trial <= current {
                let converged = (step_a.abs() <= 1e-13 * a.abs().max(1e-13))
                    && (step_b.abs() <= 1e-13 * b.abs().max(1e-13));
                a = na;
                b = nb;
                let gain = current - trial;
                current = trial;
                lambda = (lambda / 10.0).max(1e-15);
                improved = !converged && gain > 0.0;
                break;
            }
            lambda *= 10.0;
        }
        if !improved {
            break;
        }
    }
    (a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ab_params_match_scipy_curve_fit() {
        // umap.umap_.find_ab_params(1.0, 0.5) and (1.0, 0.1) with scipy 1.18.1.
        let (a, b) = find_ab_params(1.0, 0.5);
        assert!(
            (a - 0.583_030_020_3).abs() < 1e-6 && (b - 1.334_166_992_4).abs() < 1e-6,
            "{a} {b}"
        );
        let (a, b) = find_ab_params(1.0, 0.1);
        assert!(
            (a - 1.576_943_460_3).abs() < 1e-6 && (b - 0.895_060_877_9).abs() < 1e-6,
            "{a} {b}"
        );
    }
}
