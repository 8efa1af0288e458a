//! The marker-gene panels (`sc.pl.rank_genes_groups`): one axes per group, its top genes'
//! names written upright at (rank, score), in rows of `ncols` panels sharing the score axis.

use crate::output::{Figure, Format, render, text_size};
use crate::ticks::{axis_labels, axis_ticks};
use engine_common::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// One group's ranking.
#[derive(Debug, Clone)]
pub struct RankPanel {
    /// `"{group} vs. {reference}"`.
    pub title: String,
    pub genes: Vec<String>,
    pub scores: Vec<f64>,
}

/// The panels and scanpy's options.
#[derive(Debug, Clone)]
pub struct RankPanels {
    pub panels: Vec<RankPanel>,
    /// Genes per panel: the x axis runs over this many ranks.
    pub n_genes: usize,
    pub ncols: usize,
    /// One score axis for all panels.
    pub sharey: bool,
    /// The gene names' size in points.
    pub fontsize: f64,
}

/// matplotlib's default figure per panel (6.4 × 4.8 in), its subplot box and scanpy's gaps.
const PANEL_W: f64 = 6.4 * 72.0;
const PANEL_H: f64 = 4.8 * 72.0;
const LEFT: f64 = 0.125;
const RIGHT: f64 = 0.9;
const BOTTOM: f64 = 0.11;
const TOP: f64 = 0.88;
const WSPACE: f64 = 0.22;
const HSPACE: f64 = 0.3;
const LABEL_PT: f64 = 10.0;
const TITLE_PT: f64 = 12.0;
const TICK: f64 = 3.5;
const PAD: f64 = 3.5;
const LINE: f64 = 0.8;

/// Draws `p` to `path` as `format` (PNG at `dpi`).
///
/// # Errors
/// When there is no panel, a panel's names and scores differ in length, or the file cannot
/// be written.
pub fn rank_panels(p: &RankPanels, format: Format, dpi: f64, path: &Path) -> Result<()> {
    if p.panels.is_empty() || p.ncols == 0 || p.n_genes == 0 {
        return Err(Error::internal("rank_genes_groups panels without a panel"));
    }
    if let Some(bad) = p.panels.iter().find(|x| x.genes.len() != x.scores.len()) {
        return Err(Error::internal(format!(
            "panel `{}` has {} names and {} scores",
            bad.title,
            bad.genes.len(),
            bad.scores.len()
        )));
    }
    render(&Layout::of(p), format, dpi, path)
}

/// The score range of `panels`: lowest to highest, and 30% more above for the names.
fn y_range<'a>(panels: impl Iterator<Item = &'a RankPanel>) -> (f64, f64) {
    let (lo, hi) = panels
        .flat_map(|p| p.scores.iter().copied())
        .filter(|s| s.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), s| {
            (a.min(s), b.max(s))
        });
    if !lo.is_finite() {
        return (-1.0, 1.0);
    }
    if hi <= lo {
        return (lo - 1.0, hi + 1.0);
    }
    (lo, hi + 0.3 * (hi - lo))
}

/// The score axis' ticks on an axes `h` points high.
fn y_ticks(lo: f64, hi: f64, h: f64) -> Vec<f64> {
    axis_ticks(lo, hi, h, LABEL_PT, 2.0)
}

struct Layout<'p> {
    p: &'p RankPanels,
    cols: usize,
    rows: usize,
    /// Each panel's axes: left, top, width, height in points.
    axes: Vec<(f64, f64, f64, f64)>,
    ranges: Vec<(f64, f64)>,
    size: (f64, f64),
}

impl<'p> Layout<'p> {
    fn of(p: &'p RankPanels) -> Self {
        let cols = p.ncols.min(p.panels.len());
        let rows = p.panels.len().div_ceil(cols);
        let (fig_w, fig_h) = (cols as f64 * PANEL_W, rows as f64 * PANEL_H);
        // matplotlib's grid: cells and gaps within the subplot box.
        let grid_w = (RIGHT - LEFT) * fig_w;
        let grid_h = (TOP - BOTTOM) * fig_h;
        let cell_w = grid_w / (cols as f64 + WSPACE * (cols as f64 - 1.0));
        let cell_h = grid_h / (rows as f64 + HSPACE * (rows as f64 - 1.0));
        let ranges: Vec<(f64, f64)> = if p.sharey {
            vec![y_range(p.panels.iter()); p.panels.len()]
        } else {
            p.panels
                .iter()
                .map(|x| y_range(std::iter::once(x)))
                .collect()
        };
        // Room left of the first column for its tick labels and the axis name, and above
        // the first row for its titles, as a tight bounding box keeps it.
        let tick_w = ranges
            .iter()
            .flat_map(|&(lo, hi)| axis_labels(&y_ticks(lo, hi, cell_h)))
            .map(|t| text_size(&t, LABEL_PT).0)
            .fold(0.0, f64::max);
        let left = 6.0 + LABEL_PT * 1.2 + PAD + tick_w + TICK + PAD;
        let top = 6.0 + TITLE_PT * 1.4;
        let axes = (0..p.panels.len())
            .map(|i| {
                let (r, c) = ((i / cols) as f64, (i % cols) as f64);
                (
                    left + c * cell_w * (1.0 + WSPACE),
                    top + r * cell_h * (1.0 + HSPACE),
                    cell_w,
                    cell_h,
                )
            })
            .collect();
        let width = left + grid_w + 6.0 + 2.0 * LABEL_PT;
        let height = top + grid_h + TICK + PAD + 2.4 * LABEL_PT + 6.0;
        Layout {
            p,
            cols,
            rows,
            axes,
            ranges,
            size: (width, height),
        }
    }
}

impl Figure for Layout<'_> {
    fn size(&self) -> (f64, f64) {
        self.size
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        k: f64,
    ) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let p = self.p;
        let at = |x: f64, y: f64| ((x * k).round() as i32, (y * k).round() as i32);
        let font = |size: f64| ("sans-serif", size * k).into_font().color(&BLACK);
        let line = ShapeStyle::from(&BLACK).stroke_width((LINE * k).round().max(1.0) as u32);
        let (x0, x1) = (-0.9, p.n_genes as f64 - 0.1);
        for (i, panel) in p.panels.iter().enumerate() {
            let (left, top, w, h) = self.axes[i];
            let (y0, y1) = self.ranges[i];
            let px = |x: f64| left + (x - x0) / (x1 - x0) * w;
            let py = |y: f64| top + h - (y - y0) / (y1 - y0) * h;
            root.draw(&Rectangle::new(
                [at(left, top), at(left + w, top + h)],
                line,
            ))?;
            let xt = axis_ticks(x0, x1, w, LABEL_PT, 3.0);
            for (t, label) in xt.iter().zip(axis_labels(&xt)) {
                let x = px(*t);
                root.draw(&PathElement::new(
                    vec![at(x, top + h), at(x, top + h + TICK)],
                    line,
                ))?;
                root.draw(&Text::new(
                    label,
                    at(x, top + h + TICK + PAD),
                    font(LABEL_PT).pos(Pos::new(HPos::Center, VPos::Top)),
                ))?;
            }
            let yt = y_ticks(y0, y1, h);
            for (t, label) in yt.iter().zip(axis_labels(&yt)) {
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
            // Each name upright from its score, centred on its rank.
            for (rank, (gene, score)) in panel.genes.iter().zip(&panel.scores).enumerate() {
                if !score.is_finite() {
                    continue;
                }
                root.draw(&Text::new(
                    gene.clone(),
                    at(px(rank as f64), py(*score)),
                    font(p.fontsize)
                        .pos(Pos::new(HPos::Left, VPos::Center))
                        .transform(FontTransform::Rotate270),
                ))?;
            }
            root.draw(&Text::new(
                panel.title.clone(),
                at(left + w / 2.0, top - 6.0),
                font(TITLE_PT).pos(Pos::new(HPos::Center, VPos::Bottom)),
            ))?;
            // "ranking" under the bottom row, "score" left of the first column.
            if i >= self.cols * (self.rows - 1) {
                root.draw(&Text::new(
                    "ranking".to_string(),
                    at(left + w / 2.0, top + h + TICK + PAD + 1.4 * LABEL_PT),
                    font(LABEL_PT).pos(Pos::new(HPos::Center, VPos::Top)),
                ))?;
            }
            if i % self.cols == 0 {
                let tick_w = axis_labels(&yt)
                    .iter()
                    .map(|t| text_size(t, LABEL_PT).0)
                    .fold(0.0, f64::max);
                root.draw(&Text::new(
                    "score".to_string(),
                    at(left - TICK - PAD - tick_w - PAD, top + h / 2.0),
                    font(LABEL_PT)
                        .pos(Pos::new(HPos::Center, VPos::Bottom))
                        .transform(FontTransform::Rotate270),
                ))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// scanpy's y limits: the lowest score to the highest plus 30% of the range.
    #[test]
    fn scores_leave_room_above_for_the_names() {
        let a = RankPanel {
            title: "a vs. rest".into(),
            genes: vec!["X".into(), "Y".into()],
            scores: vec![10.0, 4.0],
        };
        let b = RankPanel {
            scores: vec![2.0, f64::NAN],
            ..a.clone()
        };
        assert_eq!(y_range([&a].into_iter()), (4.0, 11.8));
        assert_eq!(y_range([&a, &b].into_iter()), (2.0, 12.4));
        assert_eq!(y_range([&b].into_iter()), (1.0, 3.0));
    }

    #[test]
    fn draws_one_panel_per_group_in_rows() {
        let dir = std::env::temp_dir().join(format!("engine-panels-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let panel = |g: &str| RankPanel {
            title: format!("{g} vs. rest"),
            genes: (0..20).map(|i| format!("{g}_gene{i}")).collect(),
            scores: (0..20).map(|i| 30.0 - f64::from(i)).collect(),
        };
        let p = RankPanels {
            panels: ["B", "NK", "T", "Mono", "DC"].map(panel).to_vec(),
            n_genes: 20,
            ncols: 4,
            sharey: true,
            fontsize: 8.0,
        };
        let svg = dir.join("r.svg");
        rank_panels(&p, Format::Svg, 100.0, &svg).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        for want in ["DC vs. rest", "Mono_gene19", "ranking", "score"] {
            assert!(text.contains(want), "no {want}");
        }
        // Two rows of 6.4 x 4.8 in panels: the canvas is about 4 panels wide, 2 high.
        let layout = Layout::of(&p);
        assert_eq!((layout.cols, layout.rows), (4, 2));
        assert!(layout.size.0 > 3.0 * PANEL_W && layout.size.1 > 1.5 * PANEL_H);
        let png = dir.join("r.png");
        rank_panels(&p, Format::Png, 100.0, &png).unwrap();
        assert!(image::open(&png).is_ok());
        let empty = RankPanels {
            panels: vec![],
            ..p.clone()
        };
        assert!(rank_panels(&empty, Format::Png, 100.0, &png).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
