//! scanpy's grouped marker plots: a row per group and a column per gene.
//! - The dot plot (`sc.pl.dotplot`): a dot's area is the fraction of the group's cells
//!   expressing the gene, its colour the group's mean expression (`Reds`).
//! - The stacked violins (`sc.pl.stacked_violin`): each cell a violin of the group's values,
//!   every row on its own scale, coloured by their median (`Blues`).
//!
//! Brackets above name the genes' groups; the legends stand to the right, as scanpy's
//! `BasePlot` lays them out.

use crate::Rgb;
use crate::output::{Figure, Format, render, text_size};
use crate::palette::{blues, reds};
use crate::scatter::rgb;
use crate::ticks::{nice_ticks, tick_label};
use crate::violin::{Body, desaturate, outline};
use engine_common::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ops::Range;
use std::path::Path;

/// What each group × gene cell shows, row by row.
#[derive(Debug, Clone)]
pub enum Cells<'a> {
    /// A dot: the fraction of the group's cells expressing the gene (0..=1).
    Dots(&'a [f64]),
    /// A violin of the group's values, or the value of a group without spread (a line).
    Violins(&'a [std::result::Result<Body, f64>]),
}

/// A grouped marker plot's values.
#[derive(Debug, Clone)]
pub struct Dotplot<'a> {
    /// Column labels.
    pub genes: &'a [String],
    /// Row labels, top to bottom.
    pub groups: &'a [String],
    pub cells: Cells<'a>,
    /// The value each cell's colour shows (a mean or median, perhaps standard-scaled), row
    /// by row.
    pub colour: &'a [f64],
    /// Bracketed runs of columns and their labels (the groups whose marker genes they are).
    pub brackets: &'a [(String, Range<usize>)],
    pub title: Option<String>,
    /// The colour bar's title (scanpy: "Mean expression\nin group", "Median expression\nin
    /// group").
    pub colour_title: String,
    /// The groups' dendrogram, drawn right of the dots: per merge four (height, row) points,
    /// rows counted from the top one at 0.
    pub tree: Option<&'a [[(f64, f64); 4]]>,
}

/// scanpy's constants, in inches: a gene column's and a group row's share of the figure, the
/// legends' width, the smallest figure height.
const CATEGORY_WIDTH: f64 = 0.37;
const CATEGORY_HEIGHT: f64 = 0.35;
const LEGENDS_WIDTH: f64 = 1.5;
/// The dendrogram's width (scanpy's `group_extra_size`).
const TREE_WIDTH: f64 = 0.8;
const MIN_FIGURE_HEIGHT: f64 = 2.5;
/// matplotlib's default subplot box: the share of the figure's width and height the grid
/// spans.
const GRID_WIDTH: f64 = 0.775;
const GRID_HEIGHT: f64 = 0.77;
/// The largest dot in points² (scanpy's `largest_dot`), and the exponent of its size scale.
const LARGEST_DOT: f64 = 200.0;
const SIZE_EXPONENT: f64 = 1.5;
/// matplotlib's "small" font, and the default one.
const SMALL_PT: f64 = 10.0 / 1.2;
const FONT_PT: f64 = 10.0;
const TITLE_PT: f64 = 12.0;
/// Tick length and the gap between a tick and its label.
const TICK: f64 = 3.5;
const PAD: f64 = 3.5;
const LINE: f64 = 0.8;

/// Draws `plot` to `path` as `format` (PNG at `dpi`).
///
/// # Errors
/// When the values do not match the labels, or the file cannot be written.
pub fn dotplot(plot: &Dotplot<'_>, format: Format, dpi: f64, path: &Path) -> Result<()> {
    let cells = plot.genes.len() * plot.groups.len();
    let drawn = match plot.cells {
        Cells::Dots(f) => f.len(),
        Cells::Violins(v) => v.len(),
    };
    if cells == 0 || drawn != cells || plot.colour.len() != cells {
        return Err(Error::internal(format!(
            "marker plot of {} genes and {} groups with {drawn} cells and {} colours",
            plot.genes.len(),
            plot.groups.len(),
            plot.colour.len()
        )));
    }
    if let Some((label, r)) = plot
        .brackets
        .iter()
        .find(|(_, r)| r.is_empty() || r.end > plot.genes.len())
    {
        return Err(Error::internal(format!(
            "bracket `{label}` over genes {r:?} of {}",
            plot.genes.len()
        )));
    }
    render(&Layout::of(plot), format, dpi, path)
}

/// scanpy's `dot_max`: the largest fraction rounded up to a tenth.
fn dot_max(fraction: &[f64]) -> f64 {
    (fraction.iter().copied().fold(0.0, f64::max) * 10.0).ceil() / 10.0
}

/// A dot's area in points² for a fraction, on the scale `0..=max`.
fn dot_area(f: f64, max: f64) -> f64 {
    if max <= 0.0 {
        return 0.0;
    }
    let scaled = if max == 1.0 {
        f
    } else {
        f.clamp(0.0, max) / max
    };
    scaled.powf(SIZE_EXPONENT) * LARGEST_DOT
}

/// The size legend's fractions: down from `max` by scanpy's step, above zero, ascending.
fn legend_fractions(max: f64) -> Vec<f64> {
    let step = if max <= 0.3 {
        0.05
    } else if max <= 0.6 {
        0.1
    } else {
        0.2
    };
    let mut out: Vec<f64> = (0..)
        .map(|i| max - step * f64::from(i))
        .take_while(|f| *f > 1e-9)
        .collect();
    out.reverse();
    out
}

/// Where everything goes, in points: `base` is the axes' bottom from the figure's top.
struct Layout<'p, 'a> {
    plot: &'p Dotplot<'a>,
    /// The axes' margin around the cells, in cells (scanpy: 0.3 beside dots, 0.5 around
    /// violins).
    x_pad: f64,
    /// Gene names read upwards (always beside dots; around violins when any is longer than
    /// two characters).
    genes_upright: bool,
    left: f64,
    base: f64,
    axes: (f64, f64),
    /// The dendrogram's width in points (0 without one).
    tree_w: f64,
    legend_x: f64,
    legend_w: f64,
    /// Bracket labels are turned upright when any is longer than four characters.
    upright: bool,
    size: (f64, f64),
}

/// Heights above the axes' bottom, in points.
const fn pt(inches: f64) -> f64 {
    inches * 72.0 * GRID_HEIGHT
}
const COLOUR_BAR: f64 = pt(0.08 * MIN_FIGURE_HEIGHT);
const SIZE_BOTTOM: f64 = COLOUR_BAR + pt(0.3 * MIN_FIGURE_HEIGHT);
const SIZE_BOX: f64 = pt(0.27 * MIN_FIGURE_HEIGHT);
const BRACKETS: f64 = pt(CATEGORY_HEIGHT / 2.0);

impl<'p, 'a> Layout<'p, 'a> {
    fn of(plot: &'p Dotplot<'a>) -> Self {
        let (n, m) = (plot.genes.len() as f64, plot.groups.len() as f64);
        // The outer grid's two columns (dots, legends) with scanpy's gap between them.
        let extra = if plot.tree.is_some() { TREE_WIDTH } else { 0.0 };
        let w_in = n * CATEGORY_WIDTH + extra + LEGENDS_WIDTH;
        let wspace = 0.7 / w_in;
        let cell = GRID_WIDTH * w_in / (2.0 + wspace) * 72.0;
        let axes_w = n * CATEGORY_WIDTH / w_in * 2.0 * cell;
        let tree_w = extra / w_in * 2.0 * cell;
        let legend_w = LEGENDS_WIDTH / w_in * 2.0 * cell;
        let axes_h = pt(m * CATEGORY_HEIGHT);
        let label_w = |labels: &[String], size: f64| {
            labels
                .iter()
                .map(|l| text_size(l, size).0)
                .fold(0.0, f64::max)
        };
        let violins = matches!(plot.cells, Cells::Violins(_));
        let genes_upright = !violins || plot.genes.iter().any(|g| g.chars().count() > 2);
        let left = 6.0 + label_w(plot.groups, SMALL_PT) + TICK + PAD;
        let gene_labels = if genes_upright {
            label_w(plot.genes, SMALL_PT)
        } else {
            SMALL_PT * 1.2
        };
        let below = TICK + PAD + gene_labels + 6.0;
        let labels: Vec<String> = plot.brackets.iter().map(|(l, _)| l.clone()).collect();
        let upright = labels.iter().any(|l| l.chars().count() > 4);
        let bracket_text = if upright {
            label_w(&labels, FONT_PT)
        } else {
            FONT_PT * 1.2
        };
        let mut above = axes_h;
        if !plot.brackets.is_empty() {
            above += BRACKETS * 1.1 + bracket_text;
        }
        if plot.title.is_some() {
            above += 6.0 + TITLE_PT * 1.2;
        }
        // The legends' top: the size legend's title, two lines in the middle of its box, or
        // the colour bar's.
        let legend_top = if violins {
            COLOUR_BAR + 6.0 + 2.0 * SMALL_PT * 1.2
        } else {
            SIZE_BOTTOM + SIZE_BOX / 2.0 + 6.0 + 2.0 * SMALL_PT * 1.2
        };
        let top = 6.0 + above.max(legend_top);
        let legend_x = left + axes_w + tree_w + 0.7 / w_in * cell;
        let right = legend_x + legend_w + 6.0;
        let width = right.max(
            plot.title
                .as_ref()
                .map_or(0.0, |t| left + text_size(t, TITLE_PT).0 + 6.0),
        );
        Layout {
            plot,
            x_pad: if violins { 0.5 } else { 0.3 },
            genes_upright,
            left,
            base: top,
            axes: (axes_w, axes_h),
            tree_w,
            legend_x,
            legend_w,
            upright,
            size: (width, top + below),
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
        let p = self.plot;
        let (n, m) = (p.genes.len(), p.groups.len());
        let at = |x: f64, y: f64| ((x * k).round() as i32, (y * k).round() as i32);
        let font = |size: f64| ("sans-serif", size * k).into_font().color(&BLACK);
        let line = ShapeStyle::from(&BLACK).stroke_width((LINE * k).round().max(1.0) as u32);
        let edge = ShapeStyle::from(&BLACK).stroke_width((0.2 * k).round().max(1.0) as u32);
        let (left, base) = (self.left, self.base);
        let (axes_w, axes_h) = self.axes;
        // Data to points: genes at j + 0.5 on [-pad, n + pad], groups at i + 0.5 on
        // [-0.5, m + 0.5], the first on top (scanpy's padding).
        let pad = self.x_pad;
        let gx = |x: f64| left + (x + pad) / (n as f64 + 2.0 * pad) * axes_w;
        let gy = |y: f64| base - axes_h + (y + 0.5) / (m as f64 + 1.0) * axes_h;
        let (lo, hi) = crate::scatter::finite_range(p.colour);
        let map = |f: f64| match p.cells {
            Cells::Dots(_) => reds(f),
            Cells::Violins(_) => blues(f),
        };
        let level = |v: f64| if hi > lo { (v - lo) / (hi - lo) } else { 0.0 };
        let disc = |x: f64, y: f64, area: f64, fill: RGBColor| {
            let r = area.sqrt() / 2.0 * k;
            [
                Circle::new(at(x, y), r, fill.filled()),
                Circle::new(at(x, y), r, edge),
            ]
        };
        let max = match p.cells {
            Cells::Dots(fraction) => dot_max(fraction),
            Cells::Violins(_) => 0.0,
        };
        match p.cells {
            Cells::Dots(fraction) => {
                for i in 0..m {
                    for j in 0..n {
                        let c = i * n + j;
                        let area = dot_area(fraction[c], max);
                        if area > 0.0 {
                            for d in disc(
                                gx(j as f64 + 0.5),
                                gy(i as f64 + 0.5),
                                area,
                                rgb(map(level(p.colour[c]))),
                            ) {
                                root.draw(&d)?;
                            }
                        }
                    }
                }
            }
            Cells::Violins(bodies) => {
                let half_cell = VIOLIN_WIDTH / 2.0 * axes_w / (n as f64 + 2.0 * pad);
                for i in 0..m {
                    let row = &bodies[i * n..(i + 1) * n];
                    let faces: Vec<Rgb> = (0..n).map(|j| map(level(p.colour[i * n + j]))).collect();
                    let stroke = ShapeStyle::from(&rgb(outline(&faces)))
                        .stroke_width((VIOLIN_EDGE * k).round().max(1.0) as u32);
                    // Each row on its own scale: its values' range and matplotlib's 5% margins.
                    let (vlo, vhi) = row_range(row);
                    // Row i spans i..i + 1 of the axes' group scale, its highest value on top.
                    let vy = |v: f64| gy(i as f64 + 1.0 - (v - vlo) / (vhi - vlo));
                    for (j, body) in row.iter().enumerate() {
                        let centre = gx(j as f64 + 0.5);
                        match body {
                            Ok(b) => {
                                let peak = b.density.iter().copied().fold(0.0, f64::max);
                                let half = |d: f64| {
                                    if peak > 0.0 {
                                        d / peak * half_cell
                                    } else {
                                        0.0
                                    }
                                };
                                let mut edge_points: Vec<(i32, i32)> = b
                                    .support
                                    .iter()
                                    .zip(&b.density)
                                    .map(|(v, d)| at(centre - half(*d), vy(*v)))
                                    .collect();
                                edge_points.extend(
                                    b.support
                                        .iter()
                                        .zip(&b.density)
                                        .rev()
                                        .map(|(v, d)| at(centre + half(*d), vy(*v))),
                                );
                                root.draw(&Polygon::new(
                                    edge_points.clone(),
                                    rgb(desaturate(faces[j])).filled(),
                                ))?;
                                edge_points.push(edge_points[0]);
                                root.draw(&PathElement::new(edge_points, stroke))?;
                            }
                            Err(v) => {
                                root.draw(&PathElement::new(
                                    vec![
                                        at(centre - half_cell, vy(*v)),
                                        at(centre + half_cell, vy(*v)),
                                    ],
                                    stroke,
                                ))?;
                            }
                        }
                    }
                }
            }
        }
        // The dendrogram: heights from its left edge (matplotlib's 5% margins), rows shared
        // with the dots.
        if let Some(tree) = p.tree {
            let top = tree
                .iter()
                .flat_map(|b| b.iter().map(|(h, _)| *h))
                .fold(0.0, f64::max)
                .max(1e-12);
            let x0 = left + axes_w;
            let hx = |h: f64| x0 + (h + 0.05 * top) / (1.1 * top) * self.tree_w;
            let branch = ShapeStyle::from(&RGBColor(0x55, 0x55, 0x55))
                .stroke_width((1.5 * k).round().max(1.0) as u32);
            for b in tree {
                root.draw(&PathElement::new(
                    b.iter()
                        .map(|&(h, r)| at(hx(h), gy(r + 0.5)))
                        .collect::<Vec<_>>(),
                    branch,
                ))?;
            }
        }
        // The frame, with outward ticks at every gene and group.
        root.draw(&Rectangle::new(
            [at(left, base - axes_h), at(left + axes_w, base)],
            line,
        ))?;
        let right_centre = Pos::new(HPos::Right, VPos::Center);
        for (i, g) in p.groups.iter().enumerate() {
            let y = gy(i as f64 + 0.5);
            root.draw(&PathElement::new(
                vec![at(left - TICK, y), at(left, y)],
                line,
            ))?;
            root.draw(&Text::new(
                g.clone(),
                at(left - TICK - PAD, y),
                font(SMALL_PT).pos(right_centre),
            ))?;
        }
        for (j, g) in p.genes.iter().enumerate() {
            let x = gx(j as f64 + 0.5);
            root.draw(&PathElement::new(
                vec![at(x, base), at(x, base + TICK)],
                line,
            ))?;
            // Read upwards, ending just below the tick, or level under it.
            let style = if self.genes_upright {
                font(SMALL_PT)
                    .pos(right_centre)
                    .transform(FontTransform::Rotate270)
            } else {
                font(SMALL_PT).pos(Pos::new(HPos::Center, VPos::Top))
            };
            root.draw(&Text::new(g.clone(), at(x, base + TICK + PAD), style))?;
        }
        // Brackets over each group's genes (scanpy's 0.2 and 0.7 insets), labels above.
        let mut top = base - axes_h;
        if !p.brackets.is_empty() {
            let bottom = base - axes_h;
            for (label, r) in p.brackets {
                let (x0, x1) = (gx(r.start as f64 + 0.2), gx((r.end - 1) as f64 + 0.7));
                let y1 = bottom - 0.6 * BRACKETS;
                root.draw(&PathElement::new(
                    vec![at(x0, bottom), at(x0, y1), at(x1, y1), at(x1, bottom)],
                    line,
                ))?;
                let (cx, cy) = ((x0 + x1) / 2.0, bottom - 1.1 * BRACKETS);
                if self.upright {
                    root.draw(&Text::new(
                        label.clone(),
                        at(cx, cy),
                        font(FONT_PT)
                            .pos(Pos::new(HPos::Left, VPos::Center))
                            .transform(FontTransform::Rotate270),
                    ))?;
                } else {
                    root.draw(&Text::new(
                        label.clone(),
                        at(cx, cy),
                        font(FONT_PT).pos(Pos::new(HPos::Center, VPos::Bottom)),
                    ))?;
                }
            }
            top = bottom
                - 1.1 * BRACKETS
                - p.brackets
                    .iter()
                    .map(|(l, _)| {
                        if self.upright {
                            text_size(l, FONT_PT).0
                        } else {
                            FONT_PT * 1.2
                        }
                    })
                    .fold(0.0, f64::max);
        }
        if let Some(title) = &p.title {
            root.draw(&Text::new(
                title.clone(),
                at(left + axes_w / 2.0, top - 6.0),
                font(TITLE_PT).pos(Pos::new(HPos::Center, VPos::Bottom)),
            ))?;
        }
        // The legends: the size key (grey dots of the legend fractions) over the colour bar.
        let (lx, lw) = (self.legend_x, self.legend_w);
        let centre_top = Pos::new(HPos::Center, VPos::Top);
        let two_lines = |text: &str, cx: f64, bottom: f64| {
            let lines: Vec<&str> = text.lines().collect();
            lines
                .iter()
                .rev()
                .enumerate()
                .map(|(r, l)| {
                    Text::new(
                        l.to_string(),
                        at(cx, bottom - r as f64 * SMALL_PT * 1.2),
                        font(SMALL_PT).pos(Pos::new(HPos::Center, VPos::Bottom)),
                    )
                })
                .collect::<Vec<_>>()
        };
        let sizes = match p.cells {
            Cells::Dots(_) => legend_fractions(max),
            Cells::Violins(_) => Vec::new(),
        };
        let box_bottom = base - SIZE_BOTTOM;
        let count = sizes.len() as f64;
        let sx = |i: f64| lx + (i + 0.5 + 0.15) / (count + 0.65) * lw;
        let dots_y =
            box_bottom - SIZE_BOX * (1.05 + LARGEST_DOT * 0.003) / (5.05 + LARGEST_DOT * 0.003);
        for (i, f) in sizes.iter().enumerate() {
            let x = sx(i as f64);
            for d in disc(x, dots_y, dot_area(*f, max), rgb(GREY)) {
                root.draw(&d)?;
            }
            root.draw(&PathElement::new(
                vec![at(x, box_bottom), at(x, box_bottom + TICK)],
                line,
            ))?;
            root.draw(&Text::new(
                format!("{}", (f * 100.0).round() as i64),
                at(x, box_bottom + TICK + PAD),
                font(SMALL_PT).pos(centre_top),
            ))?;
        }
        if !sizes.is_empty() {
            for t in two_lines(
                "Fraction of cells\nin group (%)",
                lx + lw / 2.0,
                box_bottom - SIZE_BOX / 2.0 - 6.0,
            ) {
                root.draw(&t)?;
            }
        }
        // The colour bar, lowest value left, with round ticks below.
        let bar_top = base - COLOUR_BAR;
        let steps = (lw * k).round().max(2.0) as usize;
        for s in 0..steps {
            let f = s as f64 / steps as f64;
            root.draw(&Rectangle::new(
                [
                    at(lx + lw * f, bar_top),
                    at(lx + lw * (f + 1.0 / steps as f64), base),
                ],
                rgb(map(f + 0.5 / steps as f64)).filled(),
            ))?;
        }
        root.draw(&Rectangle::new([at(lx, bar_top), at(lx + lw, base)], line))?;
        for t in nice_ticks(lo, hi) {
            let f = if hi > lo { (t - lo) / (hi - lo) } else { 0.0 };
            let x = lx + lw * f;
            root.draw(&PathElement::new(
                vec![at(x, base), at(x, base + TICK)],
                line,
            ))?;
            root.draw(&Text::new(
                tick_label(t),
                at(x, base + TICK + PAD),
                font(SMALL_PT).pos(centre_top),
            ))?;
        }
        for t in two_lines(&p.colour_title, lx + lw / 2.0, bar_top - 6.0) {
            root.draw(&t)?;
        }
        Ok(())
    }
}

/// A violin's full width, in cells (seaborn's `width`), and its outline in points (scanpy's
/// `linewidth`).
const VIOLIN_WIDTH: f64 = 0.8;
const VIOLIN_EDGE: f64 = 0.2;

/// A row of violins' value range with matplotlib's 5% margins (its autoscaled limits); a row
/// without spread gets matplotlib's widened singular limits.
fn row_range(row: &[std::result::Result<Body, f64>]) -> (f64, f64) {
    let (lo, hi) = row
        .iter()
        .flat_map(|b| match b {
            Ok(b) => b.support.clone(),
            Err(v) => vec![*v],
        })
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
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
}

/// The size legend's dots (matplotlib's `gray`).
const GREY: Rgb = (128, 128, 128);

#[cfg(test)]
mod tests {
    use super::*;

    /// scanpy's scale: `dot_max` rounds the largest fraction up to a tenth; a fraction at it
    /// gets the largest dot, half of it `0.5^1.5` of that area.
    #[test]
    fn dot_areas_follow_scanpys_scale() {
        assert_eq!(dot_max(&[0.12, 0.53, 0.0]), 0.6);
        assert_eq!(dot_max(&[1.0]), 1.0);
        assert!((dot_area(0.6, 0.6) - 200.0).abs() < 1e-12);
        assert!((dot_area(0.3, 0.6) - 200.0 * 0.5f64.powf(1.5)).abs() < 1e-12);
        assert!((dot_area(0.25, 1.0) - 200.0 * 0.125).abs() < 1e-12);
        assert_eq!(dot_area(0.0, 0.6), 0.0);
        assert_eq!(dot_area(0.5, 0.0), 0.0);
    }

    /// `np.arange(dot_max, dot_min, -step)[::-1]` for scanpy's three steps.
    #[test]
    fn the_size_legend_steps_down_from_the_largest() {
        let r = |v: Vec<f64>| v.iter().map(|x| (x * 100.0).round()).collect::<Vec<_>>();
        assert_eq!(r(legend_fractions(1.0)), [20.0, 40.0, 60.0, 80.0, 100.0]);
        assert_eq!(
            r(legend_fractions(0.6)),
            [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
        );
        assert_eq!(r(legend_fractions(0.2)), [5.0, 10.0, 15.0, 20.0]);
        assert_eq!(r(legend_fractions(0.7)), [10.0, 30.0, 50.0, 70.0]);
    }

    /// Each dot is drawn in the colour of its group's mean: the highest mean in `Reds`' end.
    #[test]
    fn the_highest_mean_is_the_darkest_dot() {
        let dir = std::env::temp_dir().join(format!("engine-dotplot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let genes: Vec<String> = ["CD3E", "MS4A1", "LYZ"].map(String::from).to_vec();
        let groups: Vec<String> = ["B cells", "CD14+ Monocyte"].map(String::from).to_vec();
        let fraction = [0.1, 0.9, 0.3, 0.05, 0.2, 1.0];
        let colour = [0.2, 2.5, 0.4, 0.1, 0.3, 4.0];
        let brackets = vec![("B cells".to_string(), 0..2), ("Mono".to_string(), 2..3)];
        let plot = Dotplot {
            genes: &genes,
            groups: &groups,
            cells: Cells::Dots(&fraction),
            colour: &colour,
            brackets: &brackets,
            title: Some("markers".into()),
            colour_title: "Mean expression\nin group".into(),
            tree: Some(&[[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]]),
        };
        let png = dir.join("d.png");
        dotplot(&plot, Format::Png, 150.0, &png).unwrap();
        let img = image::open(&png).unwrap().to_rgb8();
        let count = |c: Rgb| img.pixels().filter(|p| (p[0], p[1], p[2]) == c).count();
        // The darkest red fills the largest dot (area 200 pt² at 150 dpi: ~430 px) besides
        // the colour bar's end.
        assert!(count(reds(1.0)) > 300, "{}", count(reds(1.0)));
        // The dendrogram's branches, in scanpy's grey.
        assert!(count((0x55, 0x55, 0x55)) > 50, "no dendrogram");
        let svg = dir.join("d.svg");
        dotplot(&plot, Format::Svg, 150.0, &svg).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        for label in [
            "CD14+ Monocyte",
            "MS4A1",
            "Fraction of cells",
            "in group (%)",
        ] {
            assert!(text.contains(label), "no {label}");
        }
        let bad = Dotplot {
            cells: Cells::Dots(&fraction[..5]),
            ..plot.clone()
        };
        assert!(dotplot(&bad, Format::Png, 150.0, &png).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
