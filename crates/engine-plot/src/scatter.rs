//! The embedding scatter (`sc.pl.embedding`): a framed square of points without ticks, the
//! axis names below and left, the colour key's name as title, and the legend or colour bar
//! to the right of the axes.

use crate::Rgb;
use crate::output::{Figure, Format, render, text_size};
use crate::palette::{NA_GREY, viridis};
use crate::ticks::{nice_ticks, tick_label};
use engine_common::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// The category code of a point without one; drawn light grey, as scanpy draws NA.
pub const MISSING: u32 = u32::MAX;

/// What colours the points.
#[derive(Debug, Clone, Copy)]
pub enum Colouring<'a> {
    /// One colour.
    Single,
    /// A category index per point ([`MISSING`] for none), the category names and their
    /// colours.
    Groups(&'a [u32], &'a [String], &'a [Rgb]),
    /// A number per point (NaN for none), drawn with viridis, the highest on top as scanpy
    /// draws them.
    Values(&'a [f64]),
}

/// Where the category legend goes (scanpy's `legend_loc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegendLoc {
    /// Beside the axes, in as many columns as scanpy uses (`right margin`).
    RightMargin,
    /// Each category's name at the median of its points (`on data`).
    OnData,
    /// None.
    Hidden,
}

/// A scatter plot of points.
#[derive(Debug, Clone)]
pub struct Scatter<'a> {
    pub x: &'a [f64],
    pub y: &'a [f64],
    pub colour: Colouring<'a>,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Marker area in points² (matplotlib's `s`); scanpy's `120000 / n` when `None`.
    pub size: Option<f64>,
    pub legend: LegendLoc,
}

/// The axes' width and height in points: matplotlib's default figure (6.4 × 4.8 in) less its
/// default margins, as scanpy draws into it.
const AXES_W: f64 = 357.0;
const AXES_H: f64 = 266.0;
const TITLE_PT: f64 = 12.0;
const LABEL_PT: f64 = 10.0;
const LEGEND_PT: f64 = 10.0;
const PAD: f64 = 6.0;
/// A legend entry's marker radius (matplotlib's default marker, 6 points wide) and row
/// height.
const KEY_RADIUS: f64 = 3.0;
const ROW: f64 = 1.5 * LEGEND_PT;
const COLOUR_BAR: f64 = 10.0;

/// Draws `plot` to `path` as `format` (PNG at `dpi`).
///
/// # Errors
/// When the points are empty or mismatched, or the file cannot be written.
pub fn scatter(plot: &Scatter<'_>, format: Format, dpi: f64, path: &Path) -> Result<()> {
    if plot.x.len() != plot.y.len() || plot.x.is_empty() {
        return Err(Error::internal(format!(
            "scatter of {} x and {} y values",
            plot.x.len(),
            plot.y.len()
        )));
    }
    if let Colouring::Groups(codes, names, colours) = plot.colour
        && (codes.len() != plot.x.len() || colours.len() < names.len())
    {
        return Err(Error::internal(format!(
            "scatter of {} points with {} group codes, {} groups and {} colours",
            plot.x.len(),
            codes.len(),
            names.len(),
            colours.len()
        )));
    }
    render(&Layout::of(plot), format, dpi, path)
}

/// Where everything goes, in points from the top left.
struct Layout<'p, 'a> {
    plot: &'p Scatter<'a>,
    /// The axes' top-left corner.
    axes: (f64, f64),
    /// Legend entries per column and each column's width.
    rows: usize,
    columns: Vec<f64>,
    size: (f64, f64),
}

impl<'p, 'a> Layout<'p, 'a> {
    fn of(plot: &'p Scatter<'a>) -> Self {
        let left = PAD + text_size(&plot.y_label, LABEL_PT).1 + PAD;
        let top = PAD
            + if plot.title.is_empty() {
                0.0
            } else {
                TITLE_PT * 1.4
            };
        let bottom = PAD + text_size(&plot.x_label, LABEL_PT).1 + PAD;
        let (mut rows, mut columns) = (0, Vec::new());
        let mut right = PAD;
        match plot.colour {
            Colouring::Groups(codes, names, _) if plot.legend == LegendLoc::RightMargin => {
                let mut labels: Vec<&str> = names.iter().map(String::as_str).collect();
                if codes.contains(&MISSING) {
                    labels.push("NA");
                }
                // scanpy's columns: one up to 14 entries, two up to 30, then three.
                let ncol = match labels.len() {
                    0..=14 => 1,
                    15..=30 => 2,
                    _ => 3,
                };
                rows = labels.len().div_ceil(ncol).max(1);
                columns = labels
                    .chunks(rows)
                    .map(|col| {
                        let text = col
                            .iter()
                            .map(|l| text_size(l, LEGEND_PT).0)
                            .fold(0.0, f64::max);
                        2.0 * KEY_RADIUS + PAD + text + 2.0 * PAD
                    })
                    .collect();
                right += PAD + columns.iter().sum::<f64>();
            }
            Colouring::Values(v) => {
                let (lo, hi) = finite_range(v);
                // The colour bar's tick labels.
                let ticks_width = nice_ticks(lo, hi)
                    .iter()
                    .map(|t| text_size(&tick_label(*t), LEGEND_PT).0)
                    .fold(0.0, f64::max);
                right += PAD + COLOUR_BAR + 4.0 + ticks_width + PAD;
            }
            _ => {}
        }
        let height = top + AXES_H.max(rows as f64 * ROW) + bottom;
        let title_width = text_size(&plot.title, TITLE_PT).0 + 2.0 * PAD;
        let width = (left + AXES_W + right).max(title_width);
        Layout {
            plot,
            axes: (left, top),
            rows,
            columns,
            size: (width, height),
        }
    }
}

pub(crate) fn finite_range(v: &[f64]) -> (f64, f64) {
    v.iter()
        .filter(|x| x.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        })
}

pub(crate) fn rgb(c: Rgb) -> RGBColor {
    RGBColor(c.0, c.1, c.2)
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
        let at = |x: f64, y: f64| ((x * k).round() as i32, (y * k).round() as i32);
        let font = |pt: f64| ("sans-serif", pt * k).into_font().color(&BLACK);
        let (ax, ay) = self.axes;
        // Data to points: 5% padding inside the frame, as matplotlib's margins.
        let range = |v: &[f64]| {
            let (lo, hi) = finite_range(v);
            let pad = ((hi - lo) * 0.05).max(1e-9);
            (lo - pad, hi + pad)
        };
        let ((x0, x1), (y0, y1)) = (range(p.x), range(p.y));
        let to = |x: f64, y: f64| {
            at(
                ax + (x - x0) / (x1 - x0) * AXES_W,
                ay + AXES_H - (y - y0) / (y1 - y0) * AXES_H,
            )
        };
        let (lo, hi) = match p.colour {
            Colouring::Values(v) => finite_range(v),
            _ => (0.0, 0.0),
        };
        let viridis = |v: f64| {
            if !v.is_finite() {
                rgb(NA_GREY)
            } else if hi > lo {
                rgb(viridis((v - lo) / (hi - lo)))
            } else {
                rgb(viridis(0.0))
            }
        };
        let colour_of = |i: usize| match p.colour {
            Colouring::Single => rgb((31, 119, 180)),
            Colouring::Groups(g, _, colours) => match g[i] {
                MISSING => rgb(NA_GREY),
                c => rgb(colours[c as usize]),
            },
            Colouring::Values(v) => viridis(v[i]),
        };
        // Missing values first (beneath), then numbers lowest first, categories as given.
        let mut order: Vec<usize> = (0..p.x.len()).collect();
        match p.colour {
            Colouring::Values(v) => order.sort_by(|&a, &b| {
                let key = |x: f64| if x.is_finite() { x } else { f64::NEG_INFINITY };
                key(v[a]).total_cmp(&key(v[b]))
            }),
            Colouring::Groups(g, _, _) => order.sort_by_key(|&i| g[i] != MISSING),
            Colouring::Single => {}
        }
        // matplotlib's marker area `s` is in points²; scanpy draws marker '.', a disc half as
        // wide as 'o' (whose diameter is the square root of `s`).
        let area = p.size.unwrap_or(120_000.0 / p.x.len() as f64);
        let radius = 0.25 * area.sqrt() * k;
        for &i in &order {
            if !(p.x[i].is_finite() && p.y[i].is_finite()) {
                continue;
            }
            let c = colour_of(i);
            let pos = to(p.x[i], p.y[i]);
            if radius < 1.0 {
                root.draw_pixel(pos, &c)?;
            } else {
                root.draw(&Circle::new(pos, radius, c.filled()))?;
            }
        }
        // The frame, without ticks.
        root.draw(&Rectangle::new(
            [at(ax, ay), at(ax + AXES_W, ay + AXES_H)],
            ShapeStyle::from(&BLACK).stroke_width((0.8 * k).round().max(1.0) as u32),
        ))?;
        let centre = Pos::new(HPos::Center, VPos::Center);
        if !p.title.is_empty() {
            root.draw(&Text::new(
                p.title.clone(),
                at(ax + AXES_W / 2.0, ay - TITLE_PT * 0.8),
                font(TITLE_PT).pos(centre),
            ))?;
        }
        root.draw(&Text::new(
            p.x_label.clone(),
            at(ax + AXES_W / 2.0, ay + AXES_H + PAD + LABEL_PT * 0.6),
            font(LABEL_PT).pos(centre),
        ))?;
        root.draw(&Text::new(
            p.y_label.clone(),
            at(ax - PAD - LABEL_PT * 0.6, ay + AXES_H / 2.0),
            font(LABEL_PT)
                .pos(centre)
                .transform(FontTransform::Rotate270),
        ))?;
        let left = Pos::new(HPos::Left, VPos::Center);
        match p.colour {
            Colouring::Groups(codes, names, colours) => {
                let mut entries: Vec<(&str, Rgb)> = names
                    .iter()
                    .zip(colours)
                    .map(|(n, c)| (n.as_str(), *c))
                    .collect();
                if codes.contains(&MISSING) {
                    entries.push(("NA", NA_GREY));
                }
                match p.legend {
                    LegendLoc::RightMargin => {
                        // Centred on the axes, column after column.
                        let height = self.rows as f64 * ROW;
                        let top = ay + AXES_H / 2.0 - height / 2.0;
                        let mut x = ax + AXES_W + 2.0 * PAD;
                        for (col, width) in entries.chunks(self.rows.max(1)).zip(&self.columns) {
                            for (r, (name, c)) in col.iter().enumerate() {
                                let y = top + (r as f64 + 0.5) * ROW;
                                root.draw(&Circle::new(
                                    at(x + KEY_RADIUS, y),
                                    KEY_RADIUS * k,
                                    rgb(*c).filled(),
                                ))?;
                                root.draw(&Text::new(
                                    name.to_string(),
                                    at(x + 2.0 * KEY_RADIUS + PAD, y),
                                    font(LEGEND_PT).pos(left),
                                ))?;
                            }
                            x += width;
                        }
                    }
                    LegendLoc::OnData => {
                        for (g, (name, _)) in entries.iter().enumerate().take(names.len()) {
                            let mut xs: Vec<f64> = Vec::new();
                            let mut ys: Vec<f64> = Vec::new();
                            for i in (0..p.x.len()).filter(|&i| codes[i] == g as u32) {
                                xs.push(p.x[i]);
                                ys.push(p.y[i]);
                            }
                            if let (Some(mx), Some(my)) = (median(&mut xs), median(&mut ys)) {
                                root.draw(&Text::new(
                                    name.to_string(),
                                    to(mx, my),
                                    font(LEGEND_PT).pos(centre),
                                ))?;
                            }
                        }
                    }
                    LegendLoc::Hidden => {}
                }
            }
            Colouring::Values(_) => {
                // A bar beside the axes from the lowest value (bottom) to the highest (top),
                // with round ticks.
                let bar_x = ax + AXES_W + 2.0 * PAD;
                let steps = (AXES_H * k).round().max(2.0) as usize;
                for s in 0..steps {
                    let f = s as f64 / (steps - 1) as f64;
                    let y = ay + AXES_H * (1.0 - f);
                    root.draw(&Rectangle::new(
                        [
                            at(bar_x, y - AXES_H / steps as f64),
                            at(bar_x + COLOUR_BAR, y),
                        ],
                        viridis(lo + (hi - lo) * f).filled(),
                    ))?;
                }
                for t in nice_ticks(lo, hi) {
                    let f = if hi > lo { (t - lo) / (hi - lo) } else { 0.5 };
                    let y = ay + AXES_H * (1.0 - f);
                    root.draw(&PathElement::new(
                        vec![at(bar_x + COLOUR_BAR, y), at(bar_x + COLOUR_BAR + 3.0, y)],
                        BLACK,
                    ))?;
                    root.draw(&Text::new(
                        tick_label(t),
                        at(bar_x + COLOUR_BAR + 4.0, y),
                        font(LEGEND_PT).pos(left),
                    ))?;
                }
            }
            Colouring::Single => {}
        }
        Ok(())
    }
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::default_colours;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("engine-plot-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn groups() -> (Vec<f64>, Vec<f64>, Vec<u32>, Vec<String>) {
        let x = (0..300)
            .map(|i| (i % 3) as f64 * 10.0 + (i as f64 * 0.37).sin())
            .collect();
        let y = (0..300).map(|i| (i as f64 * 0.73).cos()).collect();
        let g = (0..300).map(|i| (i % 3) as u32).collect();
        let names = vec![
            "B cells".to_string(),
            "CD4+/CD25 T Reg".to_string(),
            "CD14+ Monocyte".to_string(),
        ];
        (x, y, g, names)
    }

    /// Every format is written; the PNG carries each group's colour, its legend is inside
    /// the image (the canvas grows to hold the longest label), and nothing else is coloured.
    #[test]
    fn writes_each_format_with_one_colour_per_group() {
        let dir = scratch("formats");
        let (x, y, g, names) = groups();
        let colours = default_colours(3);
        let plot = Scatter {
            x: &x,
            y: &y,
            colour: Colouring::Groups(&g, &names, &colours),
            title: "bulk_labels".into(),
            x_label: "UMAP1".into(),
            y_label: "UMAP2".into(),
            size: None,
            legend: LegendLoc::RightMargin,
        };
        let png = dir.join("s.png");
        scatter(&plot, Format::Png, 100.0, &png).unwrap();
        let img = image::open(&png).unwrap().to_rgb8();
        // The legend's width: beyond the axes (4 in at 100 dpi, plus the left margin).
        let label = text_size("CD4+/CD25 T Reg", LEGEND_PT).0;
        assert!(
            img.width() as f64 > (AXES_W + label) * 100.0 / 72.0,
            "{}",
            img.width()
        );
        for c in &colours {
            assert!(
                img.pixels().filter(|p| (p[0], p[1], p[2]) == *c).count() > 30,
                "no pixels of {c:?}"
            );
        }
        let svg = dir.join("s.svg");
        scatter(&plot, Format::Svg, 100.0, &svg).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.contains("pt\" height=\"") && text.contains("CD4+/CD25 T Reg"));
        let pdf = dir.join("s.pdf");
        scatter(&plot, Format::Pdf, 100.0, &pdf).unwrap();
        let bytes = std::fs::read(&pdf).unwrap();
        assert_eq!(&bytes[..5], b"%PDF-");
        assert!(
            scatter(
                &Scatter {
                    x: &[],
                    y: &[],
                    colour: Colouring::Single,
                    title: String::new(),
                    x_label: String::new(),
                    y_label: String::new(),
                    size: None,
                    legend: LegendLoc::RightMargin,
                },
                Format::Png,
                100.0,
                &png
            )
            .is_err()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn numbers_get_viridis_from_lowest_to_highest() {
        let dir = scratch("values");
        let path = dir.join("v.png");
        // Two far-apart clumps: the left one all at the minimum, the right one at the maximum.
        let x: Vec<f64> = (0..400).map(|i| if i < 200 { 0.0 } else { 10.0 }).collect();
        let y: Vec<f64> = vec![0.0; 400];
        let v: Vec<f64> = (0..400).map(|i| if i < 200 { -3.0 } else { 7.0 }).collect();
        let plot = Scatter {
            x: &x,
            y: &y,
            colour: Colouring::Values(&v),
            title: "n_counts".into(),
            x_label: "UMAP1".into(),
            y_label: "UMAP2".into(),
            size: None,
            legend: LegendLoc::RightMargin,
        };
        scatter(&plot, Format::Png, 150.0, &path).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        let count = |c: RGBColor| {
            img.pixels()
                .filter(|p| (p[0], p[1], p[2]) == (c.0, c.1, c.2))
                .count()
        };
        // viridis' two ends, each painted by its clump and the colour bar.
        let (low, high) = (rgb(viridis(0.0)), rgb(viridis(1.0)));
        assert!(count(low) > 50, "no pixels of viridis' low end");
        assert!(count(high) > 50, "no pixels of viridis' high end");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// scanpy's point size: 120000 / n points², so 100 points cover far more than 10,000.
    #[test]
    fn points_shrink_with_their_number() {
        let dir = scratch("sizes");
        let coloured = |n: usize| {
            let x: Vec<f64> = (0..n).map(|i| (i * 7919 % n) as f64).collect();
            let y: Vec<f64> = (0..n).map(|i| (i * 104_729 % n) as f64).collect();
            let path = dir.join(format!("n{n}.png"));
            let plot = Scatter {
                x: &x,
                y: &y,
                colour: Colouring::Single,
                title: String::new(),
                x_label: "PC1".into(),
                y_label: "PC2".into(),
                size: None,
                legend: LegendLoc::RightMargin,
            };
            scatter(&plot, Format::Png, 72.0, &path).unwrap();
            let img = image::open(&path).unwrap().to_rgb8();
            img.pixels()
                .filter(|p| (p[0], p[1], p[2]) == (31, 119, 180))
                .count() as f64
                / n as f64
        };
        // Pixels per point: 120000/100 = 1200 pt² (a 17.3 pt disc) against 12 pt².
        let (few, many) = (coloured(100), coloured(10_000));
        assert!(few > 20.0 * many, "{few} vs {many} pixels per point");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
