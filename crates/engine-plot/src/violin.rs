//! The violin plot (`sc.pl.violin`, through seaborn): per key a panel, per group a violin of
//! the values' density (its widest point the same for every group, cut at the lowest and
//! highest value) in the group's colour, the cells' values scattered over it as small black
//! points jittered across the violin.

use crate::Rgb;
use crate::output::{Figure, Format, render, text_size};
use crate::scatter::rgb;
use crate::ticks::{axis_labels, axis_ticks};
use engine_common::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// One group's violin: the density at evenly spaced values from the lowest to the highest;
/// `None` when it has no spread (drawn as a line at its mean, as seaborn does).
#[derive(Debug, Clone)]
pub struct Body {
    pub support: Vec<f64>,
    pub density: Vec<f64>,
}

/// One key's panel.
#[derive(Debug, Clone)]
pub struct ViolinPanel<'a> {
    /// The y axis' name (the gene or obs column).
    pub key: String,
    /// The groups' names under the violins.
    pub names: Vec<String>,
    /// Every cell's value and group (`u32::MAX`: none).
    pub values: &'a [f32],
    pub codes: &'a [u32],
    /// Per group: its body, its mean when it has no spread, or nothing when it is empty.
    pub bodies: Vec<Option<std::result::Result<Body, f64>>>,
}

#[derive(Debug, Clone)]
pub struct Violin<'a> {
    pub groups: &'a [String],
    /// Per group, before seaborn's 75% saturation.
    pub colours: &'a [Rgb],
    pub panels: Vec<ViolinPanel<'a>>,
    pub x_label: String,
    /// Group names turned upright (scanpy's `rotation=90`).
    pub upright: bool,
    /// The points over the violins (scanpy's `stripplot`), `jitter` either side of the group.
    pub stripplot: bool,
    pub jitter: f64,
    /// The points' diameter in points.
    pub size: f64,
}

/// scanpy's axes for a violin panel (`setup_axes` with ticks): 5.42 × 3.5 in, and the gap
/// before the next panel.
const AXES_W: f64 = 5.42 * 72.0;
const AXES_H: f64 = 0.73 * 4.8 * 72.0;
const GAP: f64 = 0.3 * AXES_W;
/// A violin's full width, in groups.
const WIDTH: f64 = 0.8;
const LABEL_PT: f64 = 10.0;
const TICK: f64 = 3.5;
const PAD: f64 = 3.5;
const LINE: f64 = 0.8;
/// seaborn's violin outline: 1.25 × matplotlib's patch line width.
const EDGE: f64 = 1.25;

/// Draws `v` to `path` as `format` (PNG at `dpi`).
///
/// # Errors
/// When there is no group or panel, the values and groups differ in length, or the file
/// cannot be written.
pub fn violin(v: &Violin<'_>, format: Format, dpi: f64, path: &Path) -> Result<()> {
    if v.groups.is_empty() || v.panels.is_empty() || v.colours.len() < v.groups.len() {
        return Err(Error::internal(format!(
            "violin plot of {} groups, {} colours and {} panels",
            v.groups.len(),
            v.colours.len(),
            v.panels.len()
        )));
    }
    if let Some(p) = v.panels.iter().find(|p| {
        p.values.len() != p.codes.len()
            || p.bodies.len() != v.groups.len()
            || p.names.len() != v.groups.len()
    }) {
        return Err(Error::internal(format!(
            "violin panel `{}`: {} values, {} groups, {} bodies",
            p.key,
            p.values.len(),
            p.codes.len(),
            p.bodies.len()
        )));
    }
    render(&Layout::of(v), format, dpi, path)
}

/// seaborn's `desaturate(colour, 0.75)`: the HLS saturation times 0.75.
pub(crate) fn desaturate(c: Rgb) -> Rgb {
    let (r, g, b) = (
        f64::from(c.0) / 255.0,
        f64::from(c.1) / 255.0,
        f64::from(c.2) / 255.0,
    );
    let (max, min) = (r.max(g).max(b), r.min(g).min(b));
    let l = (max + min) / 2.0;
    if max == min {
        return c;
    }
    let d = max - min;
    let s = if l <= 0.5 {
        d / (max + min)
    } else {
        d / (2.0 - max - min)
    };
    let h = if max == r {
        ((g - b) / d).rem_euclid(6.0)
    } else if max == g {
        (b - r) / d + 2.0
    } else {
        (r - g) / d + 4.0
    } / 6.0;
    let s = s * 0.75;
    // Back from HLS, as Python's colorsys does.
    let m2 = if l <= 0.5 {
        l * (1.0 + s)
    } else {
        l + s - l * s
    };
    let m1 = 2.0 * l - m2;
    let v = |hue: f64| {
        let hue = hue.rem_euclid(1.0);
        if hue < 1.0 / 6.0 {
            m1 + (m2 - m1) * hue * 6.0
        } else if hue < 0.5 {
            m2
        } else if hue < 2.0 / 3.0 {
            m1 + (m2 - m1) * (2.0 / 3.0 - hue) * 6.0
        } else {
            m1
        }
    };
    let c = |x: f64| (x * 255.0).round() as u8;
    (c(v(h + 1.0 / 3.0)), c(v(h)), c(v(h - 1.0 / 3.0)))
}

/// seaborn's outline grey: 0.6 × the lowest HLS lightness among the colours.
pub(crate) fn outline(colours: &[Rgb]) -> Rgb {
    let lightness = colours
        .iter()
        .map(|c| {
            let max = c.0.max(c.1).max(c.2);
            let min = c.0.min(c.1).min(c.2);
            (f64::from(max) + f64::from(min)) / 2.0 / 255.0
        })
        .fold(1.0, f64::min);
    let g = (lightness * 0.6 * 255.0).round() as u8;
    (g, g, g)
}

struct Layout<'v, 'a> {
    v: &'v Violin<'a>,
    /// Each panel's axes: its left and top, and its y range.
    axes: Vec<(f64, f64, f64, f64)>,
    size: (f64, f64),
}

impl<'v, 'a> Layout<'v, 'a> {
    fn of(v: &'v Violin<'a>) -> Self {
        let ranges: Vec<(f64, f64)> = v
            .panels
            .iter()
            .map(|p| {
                let (lo, hi) = p
                    .values
                    .iter()
                    .zip(p.codes)
                    .filter(|(x, c)| x.is_finite() && (**c as usize) < v.groups.len())
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (x, _)| {
                        (a.min(f64::from(*x)), b.max(f64::from(*x)))
                    });
                if !lo.is_finite() {
                    (-0.055, 0.055)
                } else if hi > lo {
                    let m = 0.05 * (hi - lo);
                    (lo - m, hi + m)
                } else {
                    (
                        lo - 0.055 * lo.abs().max(1.0),
                        hi + 0.055 * hi.abs().max(1.0),
                    )
                }
            })
            .collect();
        let tick_w = ranges
            .iter()
            .flat_map(|&(lo, hi)| axis_labels(&axis_ticks(lo, hi, AXES_H, LABEL_PT, 2.0)))
            .map(|t| text_size(&t, LABEL_PT).0)
            .fold(0.0, f64::max);
        let left_room = LABEL_PT * 1.2 + PAD + tick_w + TICK + PAD;
        let group_w = v
            .panels
            .iter()
            .flat_map(|p| &p.names)
            .map(|g| text_size(g, LABEL_PT).0)
            .fold(0.0, f64::max);
        let below = TICK
            + PAD
            + if v.upright { group_w } else { LABEL_PT * 1.2 }
            + if v.x_label.is_empty() {
                0.0
            } else {
                PAD + LABEL_PT * 1.2
            }
            + 6.0;
        let top = 6.0 + LABEL_PT;
        let axes = ranges
            .iter()
            .enumerate()
            .map(|(i, &(lo, hi))| {
                (
                    6.0 + left_room + i as f64 * (AXES_W + GAP.max(left_room + 6.0)),
                    top,
                    lo,
                    hi,
                )
            })
            .collect::<Vec<_>>();
        let last = axes.last().map_or(0.0, |a| a.0);
        // Horizontal group names may reach past the last panel's right edge.
        let right = if v.upright { 0.0 } else { group_w / 2.0 };
        Layout {
            v,
            axes,
            size: (last + AXES_W + right + 6.0, top + AXES_H + below),
        }
    }
}

impl Figure for Layout<'_, '_> {
    fn size(&self) -> (f64, f64) {
        self.size
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        k: f64,
    ) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let v = self.v;
        let at = |x: f64, y: f64| ((x * k).round() as i32, (y * k).round() as i32);
        let font = |size: f64| ("sans-serif", size * k).into_font().color(&BLACK);
        let line = ShapeStyle::from(&BLACK).stroke_width((LINE * k).round().max(1.0) as u32);
        let edge_colour = rgb(outline(&v.colours[..v.groups.len()]));
        let edge = ShapeStyle::from(&edge_colour).stroke_width((EDGE * k).round().max(1.0) as u32);
        let n = v.groups.len() as f64;
        for (panel, &(left, top, lo, hi)) in v.panels.iter().zip(&self.axes) {
            let px = |x: f64| left + (x + 0.5) / n * AXES_W;
            let py = |y: f64| top + AXES_H - (y - lo) / (hi - lo) * AXES_H;
            for (g, body) in panel.bodies.iter().enumerate() {
                let centre = g as f64;
                match body {
                    Some(Ok(b)) => {
                        let peak = b.density.iter().copied().fold(0.0, f64::max);
                        let half = |d: f64| {
                            if peak > 0.0 {
                                d / peak * WIDTH / 2.0
                            } else {
                                0.0
                            }
                        };
                        let mut outline: Vec<(i32, i32)> = b
                            .support
                            .iter()
                            .zip(&b.density)
                            .map(|(s, d)| at(px(centre - half(*d)), py(*s)))
                            .collect();
                        outline.extend(
                            b.support
                                .iter()
                                .zip(&b.density)
                                .rev()
                                .map(|(s, d)| at(px(centre + half(*d)), py(*s))),
                        );
                        root.draw(&Polygon::new(
                            outline.clone(),
                            rgb(desaturate(v.colours[g])).filled(),
                        ))?;
                        outline.push(outline[0]);
                        root.draw(&PathElement::new(outline, edge))?;
                    }
                    Some(Err(mean)) => {
                        root.draw(&PathElement::new(
                            vec![
                                at(px(centre - WIDTH / 2.0), py(*mean)),
                                at(px(centre + WIDTH / 2.0), py(*mean)),
                            ],
                            edge,
                        ))?;
                    }
                    None => {}
                }
            }
            if v.stripplot {
                let mut jitter = Jitter::default();
                for (x, &c) in panel.values.iter().zip(panel.codes) {
                    if (c as usize) >= v.groups.len() || !x.is_finite() {
                        continue;
                    }
                    let pos = at(
                        px(f64::from(c) + jitter.next_spread() * v.jitter),
                        py(f64::from(*x)),
                    );
                    point(root, pos, v.size / 2.0 * k, BLACK)?;
                }
            }
            // The frame, ticks at the groups and at round values.
            root.draw(&Rectangle::new(
                [at(left, top), at(left + AXES_W, top + AXES_H)],
                line,
            ))?;
            for (g, name) in panel.names.iter().enumerate() {
                let x = px(g as f64);
                let bottom = top + AXES_H;
                root.draw(&PathElement::new(
                    vec![at(x, bottom), at(x, bottom + TICK)],
                    line,
                ))?;
                let text = if v.upright {
                    Text::new(
                        name.clone(),
                        at(x, bottom + TICK + PAD),
                        font(LABEL_PT)
                            .pos(Pos::new(HPos::Right, VPos::Center))
                            .transform(FontTransform::Rotate270),
                    )
                } else {
                    Text::new(
                        name.clone(),
                        at(x, bottom + TICK + PAD),
                        font(LABEL_PT).pos(Pos::new(HPos::Center, VPos::Top)),
                    )
                };
                root.draw(&text)?;
            }
            y_axis(root, k, (left, top, AXES_H), (lo, hi), &panel.key)?;
            if !v.x_label.is_empty() {
                let names = if v.upright {
                    panel
                        .names
                        .iter()
                        .map(|g| text_size(g, LABEL_PT).0)
                        .fold(0.0, f64::max)
                } else {
                    LABEL_PT * 1.2
                };
                root.draw(&Text::new(
                    v.x_label.clone(),
                    at(left + AXES_W / 2.0, top + AXES_H + TICK + PAD + names + PAD),
                    font(LABEL_PT).pos(Pos::new(HPos::Center, VPos::Top)),
                ))?;
            }
        }
        Ok(())
    }
}

/// Jitter for a strip of points, from a fixed sequence so the same data draws the same
/// picture.
pub(crate) struct Jitter(u64);

impl Default for Jitter {
    fn default() -> Self {
        Jitter(0x9E37_79B9_7F4A_7C15)
    }
}

impl Jitter {
    /// The next offset, uniform in -1..1 (xorshift).
    pub(crate) fn next_spread(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        2.0 * ((self.0 >> 11) as f64 / (1u64 << 53) as f64) - 1.0
    }
}

/// One strip point of `radius` device units (a pixel when smaller than one).
pub(crate) fn point<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    pos: (i32, i32),
    radius: f64,
    colour: RGBColor,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    if radius < 1.0 {
        root.draw_pixel(pos, &colour)
    } else {
        root.draw(&Circle::new(pos, radius, colour.filled()))
    }
}

/// A violin plot's y axis beside axes at `left`, `top` of `height` points showing `lo..hi`:
/// ticks at round values with their labels, and `name` upright beside them.
pub(crate) fn y_axis<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    k: f64,
    (left, top, height): (f64, f64, f64),
    (lo, hi): (f64, f64),
    name: &str,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let at = |x: f64, y: f64| ((x * k).round() as i32, (y * k).round() as i32);
    let font = |size: f64| ("sans-serif", size * k).into_font().color(&BLACK);
    let line = ShapeStyle::from(&BLACK).stroke_width((LINE * k).round().max(1.0) as u32);
    let py = |y: f64| top + height - (y - lo) / (hi - lo) * height;
    let yt = axis_ticks(lo, hi, height, LABEL_PT, 2.0);
    let labels = axis_labels(&yt);
    let tick_w = labels
        .iter()
        .map(|t| text_size(t, LABEL_PT).0)
        .fold(0.0, f64::max);
    for (t, label) in yt.iter().zip(labels) {
        let y = py(*t);
        root.draw(&PathElement::new(
            vec![at(left - TICK, y), at(left, y)],
            line,
        ))?;
        root.draw(&Text::new(
            label,
            at(left - TICK - PAD, y),
            font(LABEL_PT).pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
    }
    root.draw(&Text::new(
        name.to_string(),
        at(left - TICK - PAD - tick_w - PAD, top + height / 2.0),
        font(LABEL_PT)
            .pos(Pos::new(HPos::Center, VPos::Bottom))
            .transform(FontTransform::Rotate270),
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against seaborn 0.13's colours: `desaturate('#1f77b4', .75)` and the outline grey
    /// of tab10's first three.
    #[test]
    fn colours_are_seaborns() {
        assert_eq!(desaturate((31, 119, 180)), (50, 116, 161));
        assert_eq!(desaturate((255, 127, 14)), (225, 129, 44));
        assert_eq!(desaturate((127, 127, 127)), (127, 127, 127));
        assert_eq!(
            outline(&[(31, 119, 180), (255, 127, 14), (44, 160, 44)]),
            (61, 61, 61)
        );
    }
}
