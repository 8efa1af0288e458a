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
