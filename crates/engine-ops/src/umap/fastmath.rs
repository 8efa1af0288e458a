//! Vectorisable `f32` sum and power for the SGD, rounding the same on every processor.

/// A sum in eight fixed partial sums: vectorises, and rounds the same on every processor.
#[inline(always)]
pub(super) fn sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for ch in &mut chunks {
        for (a, v) in acc.iter_mut().zip(ch) {
            *a += v;
        }
    }
    let tail: f32 = chunks.remainder().iter().sum();
    acc.iter().sum::<f32>() + tail
}

/// `x^y` for `x >= 0` as `2^(y log2 x)`, within 1e-5 relative for the layout's exponents.
/// glibc's `powf` took a third of the layout and cannot be vectorised; this is branch-free
/// and uses only adds, multiplies, a division and bit moves, so a loop over it vectorises.
/// (The result is the same on every processor: no fused multiply-adds are formed.)
#[inline(always)]
pub(super) fn pow(x: f32, y: f32) -> f32 {
    exp2(y * log2(x))
}

/// `log2 x` for `x >= 0`; finite (about -127) at 0.
#[inline(always)]
fn log2(x: f32) -> f32 {
    // x = 2^e m with m in [sqrt(1/2), sqrt(2)): subtracting sqrt(1/2)'s bits puts the
    // exponent of the result in the high bits.
    let bits = x.to_bits() as i32;
    let e = bits.wrapping_sub(0x3f35_04f3) >> 23;
    let m = f32::from_bits(bits.wrapping_sub(e << 23) as u32);
    // ln m = 2 atanh(s), s = (m - 1)/(m + 1), |s| < 0.172: five odd terms leave < 1e-9.
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let ln = s * (2.0 + s2 * (2.0 / 3.0 + s2 * (2.0 / 5.0 + s2 * (2.0 / 7.0 + s2 * (2.0 / 9.0)))));
    e as f32 + ln * std::f32::consts::LOG2_E
}

/// `2^y`, saturating outside the normal range.
#[inline(always)]
fn exp2(y: f32) -> f32 {
    let y = y.clamp(-126.0, 126.0);
    // Round to nearest by adding 1.5 * 2^23: the sum's low bits then hold the integer, so
    // neither a rounding instruction nor a (saturating, scalar) float-to-int cast is needed.
    const SHIFT: f32 = 12_582_912.0;
    let t = y + SHIFT;
    let n = t - SHIFT;
    let ni = (t.to_bits() as i32).wrapping_sub(SHIFT.to_bits() as i32);
    let f = (y - n) * std::f32::consts::LN_2;
    // e^f for |f| <= ln(2)/2 by its Taylor series to f^6: error below 2e-7.
    let p = 1.0
        + f * (1.0
            + f * (1.0 / 2.0
                + f * (1.0 / 6.0 + f * (1.0 / 24.0 + f * (1.0 / 120.0 + f * (1.0 / 720.0))))));
    p * f32::from_bits(((ni + 127) << 23) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_power_matches_powf() {
        // The layout's exponents (b for min_dist 0.5 and 0.1, and 1) over the distances it meets.
        for y in [0.8951f32, 0.7915, 1.0, 1.5] {
            let mut x = 1e-6f32;
            while x < 1e5 {
                let (got, want) = (pow(x, y), x.powf(y));
                assert!(
                    ((got - want) / want).abs() < 1e-5,
                    "{x}^{y}: {got} vs {want}"
                );
                x *= 1.0137;
            }
        }
        assert_eq!(pow(1.0, 0.9), 1.0);
        assert!(pow(0.0, 0.9) < 1e-30);
    }
}
