//! scanpy's category colours and colour names.

use crate::Rgb;

/// matplotlib's `tab10`, which scanpy uses for up to 10 categories.
const TAB10: [Rgb; 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

/// matplotlib's `tab20`, which scanpy uses for 11 to 20 categories.
const TAB20: [Rgb; 20] = [
    (31, 119, 180),
    (174, 199, 232),
    (255, 127, 14),
    (255, 187, 120),
    (44, 160, 44),
    (152, 223, 138),
    (214, 39, 40),
    (255, 152, 150),
    (148, 103, 189),
    (197, 176, 213),
    (140, 86, 75),
    (196, 156, 148),
    (227, 119, 194),
    (247, 182, 210),
    (127, 127, 127),
    (199, 199, 199),
    (188, 189, 34),
    (219, 219, 141),
    (23, 190, 207),
    (158, 218, 229),
];

/// matplotlib's `Reds` (ColorBrewer's nine reds, evenly spaced), the dot plot's colour map.
const REDS: [(f64, f64, f64); 9] = [
    (1.0, 0.960_784_313_725_490_2, 0.941_176_470_588_235_3),
    (
        0.996_078_431_372_549,
        0.878_431_372_549_019_6,
        0.823_529_411_764_705_8,
    ),
    (
        0.988_235_294_117_647_1,
        0.733_333_333_333_333_3,
        0.631_372_549_019_607_8,
    ),
    (
        0.988_235_294_117_647_1,
        0.572_549_019_607_843_1,
        0.447_058_823_529_411_8,
    ),
    (
        0.984_313_725_490_196,
        0.415_686_274_509_803_94,
        0.290_196_078_431_372_6,
    ),
    (
        0.937_254_901_960_784_3,
        0.231_372_549_019_607_85,
        0.172_549_019_607_843_13,
    ),
    (
        0.796_078_431_372_549,
        0.094_117_647_058_823_53,
        0.113_725_490_196_078_43,
    ),
    (
        0.647_058_823_529_411_8,
        0.058_823_529_411_764_705,
        0.082_352_941_176_470_57,
    ),
    (0.403_921_568_627_451, 0.0, 0.050_980_392_156_862_74),
];

/// The `Reds` colour of `f` in 0..=1, as matplotlib looks it up: one of 256 levels,
/// each interpolated between the anchors.
pub fn reds(f: f64) -> Rgb {
    let f = if f.is_finite() {
        f.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let level = ((f * 256.0) as usize).min(255);
    let s = level as f64 / 255.0 * (REDS.len() - 1) as f64;
    let lo = (s.floor() as usize).min(REDS.len() - 2);
    let t = s - lo as f64;
    let (a, b) = (REDS[lo], REDS[lo + 1]);
    let c = |x: f64, y: f64| ((x + (y - x) * t) * 255.0).round() as u8;
    (c(a.0, b.0), c(a.1, b.1), c(a.2, b.2))
}

/// scanpy's colour for missing values (matplotlib's `lightgray`).
pub const NA_GREY: Rgb = (211, 211, 211);

/// The colours scanpy gives `n` categories when none are stored: `tab10` up to 10, `tab20`
/// up to 20; beyond that a hue wheel of evenly spaced colours (scanpy switches to a fixed
/// 102-colour list there).
pub fn default_colours(n: usize) -> Vec<Rgb> {
    if n <= 10 {
        TAB10[..n].to_vec()
    } else if n <= 20 {
        TAB20[..n].to_vec()
    } else {
        (0..n)
            .map(|i| {
                hsv(
                    i as f64 / n as f64,
                    0.65,
                    0.85 - 0.25 * (i % 3) as f64 / 2.0,
                )
            })
            .collect()
    }
}

fn hsv(h: f64, s: f64, v: f64) -> Rgb {
    let i = (h * 6.0).floor();
    let f = h * 6.0 - i;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - f * s), v * (1.0 - (1.0 - f) * s));
    let (r, g, b) = match i as i64 % 6 {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    };
    let c = |x: f64| (x * 255.0).round() as u8;
    (c(r), c(g), c(b))
}

/// A colour as matplotlib and scanpy write them: `#rrggbb`, `#rrggbbaa` (alpha ignored),
/// `#rgb`, or a few common names.
pub fn parse_colour(s: &str) -> Option<Rgb> {
    let s = s.trim();
    if let Some(hex) = s.strip_prefix('#') {
        let byte = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
        return match hex.len() {
            6 | 8 => Some((byte(0)?, byte(2)?, byte(4)?)),
            3 => {
                let nib = |i: usize| u8::from_str_radix(hex.get(i..i + 1)?, 16).ok();
                Some((nib(0)? * 17, nib(1)? * 17, nib(2)? * 17))
            }
            _ => None,
        };
    }
    Some(match s.to_ascii_lowercase().as_str() {
        "black" | "k" => (0, 0, 0),
        "white" | "w" => (255, 255, 255),
        "red" | "r" => (255, 0, 0),
        "green" | "g" => (0, 128, 0),
        "blue" | "b" => (0, 0, 255),
        "grey" | "gray" => (128, 128, 128),
        "lightgray" | "lightgrey" => NA_GREY,
        "orange" => (255, 165, 0),
        "purple" => (128, 0, 128),
        "tab:blue" => TAB10[0],
        "tab:orange" => TAB10[1],
        "tab:green" => TAB10[2],
        "tab:red" => TAB10[3],
        "tab:purple" => TAB10[4],
        "tab:brown" => TAB10[5],
        "tab:pink" => TAB10[6],
        "tab:gray" | "tab:grey" => TAB10[7],
        "tab:olive" => TAB10[8],
        "tab:cyan" => TAB10[9],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against `matplotlib.colormaps['Reds'](x)` (matplotlib 3.10), times 255, rounded.
    #[test]
    fn reds_is_matplotlibs() {
        assert_eq!(reds(0.0), (255, 245, 240));
        assert_eq!(reds(0.25), (252, 187, 161));
        assert_eq!(reds(0.5), (251, 105, 74));
        assert_eq!(reds(0.77), (196, 22, 28));
        assert_eq!(reds(1.0), (103, 0, 13));
    }

    #[test]
    fn colours_parse_as_matplotlib_writes_them() {
        assert_eq!(parse_colour("#1f77b4"), Some((31, 119, 180)));
        assert_eq!(parse_colour("#1f77b4ff"), Some((31, 119, 180)));
        assert_eq!(parse_colour("#fff"), Some((255, 255, 255)));
        assert_eq!(parse_colour("tab:orange"), Some((255, 127, 14)));
        assert_eq!(parse_colour("#12"), None);
        assert_eq!(parse_colour("nope"), None);
    }

    #[test]
    fn scanpy_palettes_by_category_count() {
        assert_eq!(default_colours(3), TAB10[..3].to_vec());
        assert_eq!(default_colours(12)[1], (174, 199, 232));
        let many = default_colours(40);
        assert_eq!(many.len(), 40);
        let mut distinct = many.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 40);
    }
}
