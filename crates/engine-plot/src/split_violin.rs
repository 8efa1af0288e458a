//! One group's marker genes against the rest (`sc.pl.rank_genes_groups_violin`, through
//! seaborn's `violinplot(split=True)`): per gene a violin whose left half is the density of
//! the group's values and whose right half is the rest's, each half scaled to the same width,
//! in matplotlib's first two colours, the cells jittered over their half.

use crate::Rgb;
use crate::output::{Figure, Format, render, text_size};
use crate::scatter::rgb;
use crate::ticks::{axis_labels, axis_ticks};
use crate::violin::{Body, Jitter, desaturate, outline, point, y_axis};
use engine_common::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// What one side of a gene's violin shows: a density, a line at the mean of values that do
/// not vary (seaborn's fallback), or nothing for no cells.
pub type Side = Option<std::result::Result<Body, f64>>;

#[derive(Debug, Clone)]
pub struct SplitViolin<'a> {
    /// `GROUP vs. REFERENCE`.
    pub title: String,
    pub genes: Vec<String>,
    /// Per gene, the group's side and the reference's.
    pub sides: Vec<[Side; 2]>,
    /// Per gene, the group's values and the reference's, for the points.
    pub values: Vec<[&'a [f32]; 2]>,
    /// Halves of one violin; otherwise a whole violin per side, side by side.
    pub split: bool,
    pub strip: bool,
    /// seaborn's `jitter`, shared between the two sides.
    pub jitter: f64,
    /// The points' diameter in points.
    pub size: f64,
}

/// matplotlib's default figure (6.4 × 4.8 in) and axes (77.5% × 77% of it).
const AXES_W: f64 = 0.775 * 6.4 * 72.0;
const AXES_H: f64 = 0.77 * 4.8 * 72.0;
/// The width of a gene's slot both sides take.
const WIDTH: f64 = 0.8;
const LABEL_PT: f64 = 10.0;
const TITLE_PT: f64 = 12.0;
const TICK: f64 = 3.5;
const PAD: f64 = 3.5;
const LINE: f64 = 0.8;
const EDGE: f64 = 1.25;
/// matplotlib's `C0` and `C1`, the sides' colours.
const COLOURS: [Rgb; 2] = [(31, 119, 180), (255, 127, 14)];
/// seaborn's `dark:black` points: a near-black for the group, black for the rest.
const POINTS: [Rgb; 2] = [(38, 38, 38), (0, 0, 0)];

/// Draws `v` to `path` as `format` (PNG at `dpi`).
///
/// # Errors
/// When there is no gene, the genes, sides and values differ in number, or the file cannot
/// be written.
pub fn split_violin(v: &SplitViolin<'_>, format: Format, dpi: f64, path: &Path) -> Result<()> {
    if v.genes.is_empty() || v.sides.len() != v.genes.len() || v.values.len() != v.genes.len() {
        return Err(Error::internal(format!(
            "split violin of {} genes, {} sides and {} values",
            v.genes.len(),
            v.sides.len(),
            v.values.len()
        )));
    }
    render(&Layout::of(v), format, dpi, path)
}

struct Layout<'v, 'a> {
    v: &'v SplitViolin<'a>,
    /// The axes' left and top, and the y range.
    axes: (f64, f64, f64, f64),
    size: (f64, f64),
}

impl<'v, 'a> Layout<'v, 'a> {
    fn of(v: &'v SplitViolin<'a>) -> Self {
        // The y range: everything drawn (supports reach past the values), with matplotlib's
        // 5% margins.
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        let mut see = |x: f64| {
            if x.is_finite() {
                lo = lo.min(x);
                hi = hi.max(x);
            }
        };
        for side in v.sides.iter().flatten().flatten() {
            match side {
                Ok(b) => b.support.iter().for_each(|s| see(*s)),
                Err(mean) => see(*mean),
            }
        }
        if v.strip {
            for x in v.values.iter().flatten().flat_map(|s| s.iter()) {
                see(f64::from(*x));
            }
        }
        let (lo, hi) = if !lo.is_finite() {
            (-0.055, 0.055)
        } else if hi > lo {
            let m = 0.05 * (hi - lo);
            (lo - m, hi + m)
        } else {
            (
                lo - 0.055 * lo.abs().max(1.0),
                hi + 0.055 * hi.abs().max(1.0),
            )
        };
        let tick_w = axis_labels(&axis_ticks(lo, hi, AXES_H, LABEL_PT, 2.0))
            .iter()
            .map(|t| text_size(t, LABEL_PT).0)
            .fold(0.0, f64::max);
        let gene_w = v
            .genes
            .iter()
            .map(|g| text_size(g, LABEL_PT).0)
            .fold(0.0, f64::max);
        let left = 6.0 + LABEL_PT * 1.2 + PAD + tick_w + TICK + PAD;
        let top = 6.0 + TITLE_PT * 1.2 + 6.0;
        let below = TICK + PAD + gene_w + PAD + LABEL_PT * 1.2 + 6.0;
        // A long title may reach past the axes.
        let title_w = text_size(&v.title, TITLE_PT).0;
        let width = (left + AXES_W + 6.0).max(left + AXES_W / 2.0 + title_w / 2.0 + 6.0);
        Layout {
            v,
            axes: (left, top, lo, hi),
            size: (width, top + AXES_H + below),
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
        let (left, top, lo, hi) = self.axes;
        let at = |x: f64, y: f64| ((x * k).round() as i32, (y * k).round() as i32);
        let font = |size: f64| ("sans-serif", size * k).into_font().color(&BLACK);
        let line = ShapeStyle::from(&BLACK).stroke_width((LINE * k).round().max(1.0) as u32);
        let edge = ShapeStyle::from(&rgb(outline(&COLOURS)))
            .stroke_width((EDGE * k).round().max(1.0) as u32);
        let n = v.genes.len() as f64;
        let px = |x: f64| left + (x + 0.5) / n * AXES_W;
        let py = |y: f64| top + AXES_H - (y - lo) / (hi - lo) * AXES_H;
        // Each side's centre and how far it reaches: halves meet at the gene's centre; whole
        // violins sit a quarter slot either side of it.
        let half = WIDTH / 2.0;
        let place = |gene: usize, side: usize| -> (f64, f64, f64) {
            let c = gene as f64;
            let sign = if side == 0 { -1.0 } else { 1.0 };
            if v.split {
                // (base, direction, reach): from the centre outwards.
                (c, sign, half)
            } else {
                (c + sign * half / 2.0, 0.0, half / 2.0)
            }
        };
        for (g, sides) in v.sides.iter().enumerate() {
            for (s, side) in sides.iter().enumerate() {
                let (base, dir, reach) = place(g, s);
                match side {
                    Some(Ok(b)) => {
                        let peak = b.density.iter().copied().fold(0.0, f64::max);
                        let span = |d: f64| if peak > 0.0 { d / peak * reach } else { 0.0 };
                        // Outer outline up the support, inner one down (the centre line for a
                        // half), as matplotlib's `fill_betweenx` orders them.
                        let (outer, inner): (Vec<_>, Vec<_>) = b
                            .support
                            .iter()
                            .zip(&b.density)
                            .map(|(y, d)| {
                                let w = span(*d);
                                if dir == 0.0 {
                                    (at(px(base - w), py(*y)), at(px(base + w), py(*y)))
                                } else {
                                    (at(px(base + dir * w), py(*y)), at(px(base), py(*y)))
                                }
                            })
                            .unzip();
                        let mut points = outer;
                        points.extend(inner.into_iter().rev());
                        root.draw(&Polygon::new(
                            points.clone(),
                            rgb(desaturate(COLOURS[s])).filled(),
                        ))?;
                        points.push(points[0]);
                        root.draw(&PathElement::new(points, edge))?;
                    }
                    Some(Err(mean)) => {
                        let (a, b) = if dir == 0.0 {
                            (base - reach, base + reach)
                        } else {
                            (base, base + dir * reach)
                        };
                        root.draw(&PathElement::new(
                            vec![at(px(a), py(*mean)), at(px(b), py(*mean))],
                            edge,
                        ))?;
                    }
                    None => {}
                }
            }
        }
        if v.strip {
            let mut jitter = Jitter::default();
            for (g, values) in v.values.iter().enumerate() {
                for (s, vals) in values.iter().enumerate() {
                    let centre = g as f64 + if s == 0 { -half / 2.0 } else { half / 2.0 };
                    let drawn = vals.iter().filter(|x| x.is_finite()).count();
                    for x in vals.iter().filter(|x| x.is_finite()) {
                        let u = jitter.next_spread();
                        // A lone point is not jittered (seaborn).
                        let dx = if drawn > 1 { u * v.jitter / 2.0 } else { 0.0 };
                        let pos = at(px(centre + dx), py(f64::from(*x)));
                        point(root, pos, v.size / 2.0 * k, rgb(POINTS[s]))?;
                    }
                }
            }
        }
        // The frame, the genes upright under their violins, round values up the side.
        root.draw(&Rectangle::new(
            [at(left, top), at(left + AXES_W, top + AXES_H)],
            line,
        ))?;
        let bottom = top + AXES_H;
        for (g, name) in v.genes.iter().enumerate() {
            let x = px(g as f64);
            root.draw(&PathElement::new(
                vec![at(x, bottom), at(x, bottom + TICK)],
                line,
            ))?;
            root.draw(&Text::new(
                name.clone(),
                at(x, bottom + TICK + PAD),
                font(LABEL_PT)
                    .pos(Pos::new(HPos::Right, VPos::Center))
                    .transform(FontTransform::Rotate270),
            ))?;
        }
        let gene_w = v
            .genes
            .iter()
            .map(|g| text_size(g, LABEL_PT).0)
            .fold(0.0, f64::max);
        root.draw(&Text::new(
            "genes",
            at(left + AXES_W / 2.0, bottom + TICK + PAD + gene_w + PAD),
            font(LABEL_PT).pos(Pos::new(HPos::Center, VPos::Top)),
        ))?;
        y_axis(root, k, (left, top, AXES_H), (lo, hi), "expression")?;
        root.draw(&Text::new(
            v.title.clone(),
            at(left + AXES_W / 2.0, top - 6.0),
            font(TITLE_PT).pos(Pos::new(HPos::Center, VPos::Bottom)),
        ))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// seaborn's colours for `rank_genes_groups_violin` (scanpy 1.12, seaborn 0.13): the
    /// halves' faces `desaturate('C0'/'C1', .75)` and their outline grey (0.2482 of white).
    #[test]
    fn colours_are_seaborns() {
        assert_eq!(desaturate(COLOURS[0]), (50, 116, 161));
        assert_eq!(desaturate(COLOURS[1]), (225, 129, 44));
        assert_eq!(outline(&COLOURS), (63, 63, 63));
    }
}
