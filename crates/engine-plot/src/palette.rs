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

/// matplotlib's `viridis` (its 256 listed colours, rounded to bytes), scanpy's colour map for
/// numbers.
const VIRIDIS: [Rgb; 256] = [
    (68, 1, 84),
    (68, 2, 86),
    (69, 4, 87),
    (69, 5, 89),
    (70, 7, 90),
    (70, 8, 92),
    (70, 10, 93),
    (70, 11, 94),
    (71, 13, 96),
    (71, 14, 97),
    (71, 16, 99),
    (71, 17, 100),
    (71, 19, 101),
    (72, 20, 103),
    (72, 22, 104),
    (72, 23, 105),
    (72, 24, 106),
    (72, 26, 108),
    (72, 27, 109),
    (72, 28, 110),
    (72, 29, 111),
    (72, 31, 112),
    (72, 32, 113),
    (72, 33, 115),
    (72, 35, 116),
    (72, 36, 117),
    (72, 37, 118),
    (72, 38, 119),
    (72, 40, 120),
    (72, 41, 121),
    (71, 42, 122),
    (71, 44, 122),
    (71, 45, 123),
    (71, 46, 124),
    (71, 47, 125),
    (70, 48, 126),
    (70, 50, 126),
    (70, 51, 127),
    (70, 52, 128),
    (69, 53, 129),
    (69, 55, 129),
    (69, 56, 130),
    (68, 57, 131),
    (68, 58, 131),
    (68, 59, 132),
    (67, 61, 132),
    (67, 62, 133),
    (66, 63, 133),
    (66, 64, 134),
    (66, 65, 134),
    (65, 66, 135),
    (65, 68, 135),
    (64, 69, 136),
    (64, 70, 136),
    (63, 71, 136),
    (63, 72, 137),
    (62, 73, 137),
    (62, 74, 137),
    (62, 76, 138),
    (61, 77, 138),
    (61, 78, 138),
    (60, 79, 138),
    (60, 80, 139),
    (59, 81, 139),
    (59, 82, 139),
    (58, 83, 139),
    (58, 84, 140),
    (57, 85, 140),
    (57, 86, 140),
    (56, 88, 140),
    (56, 89, 140),
    (55, 90, 140),
    (55, 91, 141),
    (54, 92, 141),
    (54, 93, 141),
    (53, 94, 141),
    (53, 95, 141),
    (52, 96, 141),
    (52, 97, 141),
    (51, 98, 141),
    (51, 99, 141),
    (50, 100, 142),
    (50, 101, 142),
    (49, 102, 142),
    (49, 103, 142),
    (49, 104, 142),
    (48, 105, 142),
    (48, 106, 142),
    (47, 107, 142),
    (47, 108, 142),
    (46, 109, 142),
    (46, 110, 142),
    (46, 111, 142),
    (45, 112, 142),
    (45, 113, 142),
    (44, 113, 142),
    (44, 114, 142),
    (44, 115, 142),
    (43, 116, 142),
    (43, 117, 142),
    (42, 118, 142),
    (42, 119, 142),
    (42, 120, 142),
    (41, 121, 142),
    (41, 122, 142),
    (41, 123, 142),
    (40, 124, 142),
    (40, 125, 142),
    (39, 126, 142),
    (39, 127, 142),
    (39, 128, 142),
    (38, 129, 142),
    (38, 130, 142),
    (38, 130, 142),
    (37, 131, 142),
    (37, 132, 142),
    (37, 133, 142),
    (36, 134, 142),
    (36, 135, 142),
    (35, 136, 142),
    (35, 137, 142),
    (35, 138, 141),
    (34, 139, 141),
    (34, 140, 141),
    (34, 141, 141),
    (33, 142, 141),
    (33, 143, 141),
    (33, 144, 141),
    (33, 145, 140),
    (32, 146, 140),
    (32, 146, 140),
    (32, 147, 140),
    (31, 148, 140),
    (31, 149, 139),
    (31, 150, 139),
    (31, 151, 139),
    (31, 152, 139),
    (31, 153, 138),
    (31, 154, 138),
    (30, 155, 138),
    (30, 156, 137),
    (30, 157, 137),
    (31, 158, 137),
    (31, 159, 136),
    (31, 160, 136),
    (31, 161, 136),
    (31, 161, 135),
    (31, 162, 135),
    (32, 163, 134),
    (32, 164, 134),
    (33, 165, 133),
    (33, 166, 133),
    (34, 167, 133),
    (34, 168, 132),
    (35, 169, 131),
    (36, 170, 131),
    (37, 171, 130),
    (37, 172, 130),
    (38, 173, 129),
    (39, 173, 129),
    (40, 174, 128),
    (41, 175, 127),
    (42, 176, 127),
    (44, 177, 126),
    (45, 178, 125),
    (46, 179, 124),
    (47, 180, 124),
    (49, 181, 123),
    (50, 182, 122),
    (52, 182, 121),
    (53, 183, 121),
    (55, 184, 120),
    (56, 185, 119),
    (58, 186, 118),
    (59, 187, 117),
    (61, 188, 116),
    (63, 188, 115),
    (64, 189, 114),
    (66, 190, 113),
    (68, 191, 112),
    (70, 192, 111),
    (72, 193, 110),
    (74, 193, 109),
    (76, 194, 108),
    (78, 195, 107),
    (80, 196, 106),
    (82, 197, 105),
    (84, 197, 104),
    (86, 198, 103),
    (88, 199, 101),
    (90, 200, 100),
    (92, 200, 99),
    (94, 201, 98),
    (96, 202, 96),
    (99, 203, 95),
    (101, 203, 94),
    (103, 204, 92),
    (105, 205, 91),
    (108, 205, 90),
    (110, 206, 88),
    (112, 207, 87),
    (115, 208, 86),
    (117, 208, 84),
    (119, 209, 83),
    (122, 209, 81),
    (124, 210, 80),
    (127, 211, 78),
    (129, 211, 77),
    (132, 212, 75),
    (134, 213, 73),
    (137, 213, 72),
    (139, 214, 70),
    (142, 214, 69),
    (144, 215, 67),
    (147, 215, 65),
    (149, 216, 64),
    (152, 216, 62),
    (155, 217, 60),
    (157, 217, 59),
    (160, 218, 57),
    (162, 218, 55),
    (165, 219, 54),
    (168, 219, 52),
    (170, 220, 50),
    (173, 220, 48),
    (176, 221, 47),
    (178, 221, 45),
    (181, 222, 43),
    (184, 222, 41),
    (186, 222, 40),
    (189, 223, 38),
    (192, 223, 37),
    (194, 223, 35),
    (197, 224, 33),
    (200, 224, 32),
    (202, 225, 31),
    (205, 225, 29),
    (208, 225, 28),
    (210, 226, 27),
    (213, 226, 26),
    (216, 226, 25),
    (218, 227, 25),
    (221, 227, 24),
    (223, 227, 24),
    (226, 228, 24),
    (229, 228, 25),
    (231, 228, 25),
    (234, 229, 26),
    (236, 229, 27),
    (239, 229, 28),
    (241, 229, 29),
    (244, 230, 30),
    (246, 230, 32),
    (248, 230, 33),
    (251, 231, 35),
    (253, 231, 37),
];

/// The `viridis` colour of `f` in 0..=1, as matplotlib looks it up (one of 256).
pub fn viridis(f: f64) -> Rgb {
    let f = if f.is_finite() {
        f.clamp(0.0, 1.0)
    } else {
        0.0
    };
    VIRIDIS[((f * 256.0) as usize).min(255)]
}

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

/// matplotlib's `Blues` (ColorBrewer's nine blues), the stacked violins' colour map.
const BLUES: [Rgb; 9] = [
    (0xf7, 0xfb, 0xff),
    (0xde, 0xeb, 0xf7),
    (0xc6, 0xdb, 0xef),
    (0x9e, 0xca, 0xe1),
    (0x6b, 0xae, 0xd6),
    (0x42, 0x92, 0xc6),
    (0x21, 0x71, 0xb5),
    (0x08, 0x51, 0x9c),
    (0x08, 0x30, 0x6b),
];

/// The `Reds` colour of `f` in 0..=1, as matplotlib looks it up: one of 256 levels,
/// each interpolated between the anchors.
pub fn reds(f: f64) -> Rgb {
    brewer(&REDS, f)
}

/// The `Blues` colour of `f` in 0..=1, looked up as `reds`.
pub fn blues(f: f64) -> Rgb {
    let anchors = BLUES.map(|(r, g, b)| {
        let c = |v: u8| f64::from(v) / 255.0;
        (c(r), c(g), c(b))
    });
    brewer(&anchors, f)
}

/// A ColorBrewer map as matplotlib's `LinearSegmentedColormap` of evenly spaced anchors
/// looks `f` up: one of 256 levels, interpolated between its two anchors.
fn brewer(anchors: &[(f64, f64, f64)], f: f64) -> Rgb {
    let f = if f.is_finite() {
        f.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let level = ((f * 256.0) as usize).min(255);
    let s = level as f64 / 255.0 * (anchors.len() - 1) as f64;
    let lo = (s.floor() as usize).min(anchors.len() - 2);
    let t = s - lo as f64;
    let (a, b) = (anchors[lo], anchors[lo + 1]);
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

    /// Against `matplotlib.colormaps['Blues'](x)` (matplotlib 3.10), times 255, rounded.
    #[test]
    fn blues_is_matplotlibs() {
        assert_eq!(blues(0.0), (247, 251, 255));
        assert_eq!(blues(0.25), (198, 219, 239));
        assert_eq!(blues(0.5), (106, 174, 214));
        assert_eq!(blues(0.77), (28, 107, 176));
        assert_eq!(blues(1.0), (8, 48, 107));
    }

    /// Against `matplotlib.colormaps['Reds'](x)` (matplotlib 3.10), times 255, rounded.
    #[test]
    fn reds_is_matplotlibs() {
        assert_eq!(reds(0.0), (255, 245, 240));
        assert_eq!(reds(0.25), (252, 187, 161));
        assert_eq!(reds(0.5), (251, 105, 74));
        assert_eq!(reds(0.77), (196, 22, 28));
        assert_eq!(reds(1.0), (103, 0, 13));
    }

    /// Against `matplotlib.colormaps['viridis'](x)`, times 255, rounded.
    #[test]
    fn viridis_is_matplotlibs() {
        assert_eq!(viridis(0.0), (68, 1, 84));
        assert_eq!(viridis(0.5), (33, 145, 140));
        assert_eq!(viridis(1.0), (253, 231, 37));
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
