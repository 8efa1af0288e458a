//! Round tick values, as matplotlib's default locator picks them for colour bars.

/// About five round values between `lo` and `hi` (steps of 1, 2 or 5 times a power
/// of ten), as matplotlib's colour bars show.
pub(crate) fn nice_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !lo.is_finite() || !hi.is_finite() {
        return Vec::new();
    }
    if hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

pub(crate) fn tick_label(v: f64) -> String {
    let r = (v * 1e6).round() / 1e6;
    if r == r.trunc() && r.abs() < 1e15 {
        format!("{}", r as i64)
    } else {
        format!("{r}")
    }
}

/// matplotlib's `MaxNLocator` for an axis of `length` points whose tick labels are `font`
/// points: at most `length / (spacing · font)` intervals (9 at most), each 1, 2, 2.5, 5 or
/// 10 times a power of ten, the smallest that covers `lo..=hi`.
pub(crate) fn axis_ticks(lo: f64, hi: f64, length: f64, font: f64, spacing: f64) -> Vec<f64> {
    if !lo.is_finite() || !hi.is_finite() {
        return Vec::new();
    }
    if hi <= lo {
        return vec![lo];
    }
    let bins = ((length / (spacing * font)).floor()).clamp(1.0, 9.0);
    let raw = (hi - lo) / bins;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * mag);
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// Labels for `ticks` with one number of decimals, as matplotlib's scalar formatter writes
/// them (`0.0, 2.5, 5.0`).
pub(crate) fn axis_labels(ticks: &[f64]) -> Vec<String> {
    let decimals = ticks
        .iter()
        .map(|t| {
            (0..6)
                .find(|&d| {
                    let scale = 10f64.powi(d);
                    ((t * scale).round() - t * scale).abs() < 1e-6
                })
                .unwrap_or(6)
        })
        .max()
        .unwrap_or(0) as usize;
    ticks
        .iter()
        .map(|t| {
            let text = format!("{t:.decimals$}");
            // No "-0.0".
            if text
                .trim_start_matches('-')
                .chars()
                .all(|c| c == '0' || c == '.')
            {
                text.trim_start_matches('-').to_string()
            } else {
                text
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What matplotlib draws on scanpy's marker-gene panels: x from -0.9 to 19.9 on about
    /// 300 points (0, 2.5, …, 17.5), scores from 0.09 to 0.72 (0.1, …, 0.7).
    #[test]
    fn axes_get_matplotlibs_ticks() {
        let x = axis_ticks(-0.9, 19.9, 300.0, 10.0, 3.0);
        assert_eq!(
            axis_labels(&x),
            ["0.0", "2.5", "5.0", "7.5", "10.0", "12.5", "15.0", "17.5"]
        );
        let y = axis_ticks(0.09, 0.72, 230.0, 10.0, 2.0);
        assert_eq!(
            axis_labels(&y),
            ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7"]
        );
        assert_eq!(
            axis_labels(&axis_ticks(-5.0, 5.0, 100.0, 10.0, 2.0)),
            ["-4", "-2", "0", "2", "4"]
        );
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_ticks(0.0, 10.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(nice_ticks(-3.0, 7.0), vec![-2.0, 0.0, 2.0, 4.0, 6.0]);
        assert_eq!(nice_ticks(1.0, 1.0), vec![1.0]);
        assert_eq!(tick_label(0.30000000000000004), "0.3");
        assert_eq!(tick_label(4.0), "4");
    }
}
