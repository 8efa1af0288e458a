//! Scatter plots (PNG) of embeddings coloured by an obs column (categories with scanpy's
//! palette, numbers with viridis and a colour bar), drawn with plotters and an embedded
//! DejaVu Sans (assets/LICENSE_DEJAVU) so no system font library is needed.

use engine_common::{Error, Location, Result};
use plotters::prelude::*;
use plotters::style::colors::colormaps::{ColorMap, ViridisRGB};
use plotters::style::{FontStyle, register_font};
use std::path::Path;
use std::sync::Once;

/// matplotlib's `tab10`, which scanpy uses for up to 10 categories, then `tab20`'s extras.
const PALETTE: [(u8, u8, u8); 20] = [
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
    (174, 199, 232),
    (255, 187, 120),
    (152, 223, 138),
    (255, 152, 150),
    (197, 176, 213),
    (196, 156, 148),
    (247, 182, 210),
    (199, 199, 199),
    (219, 219, 141),
    (158, 218, 229),
];

fn fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Registering the embedded font only fails on malformed bytes, which would be a bug.
        let _ = register_font(
            "sans-serif",
            FontStyle::Normal,
            include_bytes!("../assets/DejaVuSans.ttf"),
        );
    });
}

/// What colours the points.
#[derive(Debug, Clone, Copy)]
pub enum Colouring<'a> {
    /// One colour.
    Single,
    /// A category index per point ([`MISSING`] for none) and the category names.
    Groups(&'a [u32], &'a [String]),
    /// A number per point (NaN for none), drawn with viridis, the highest on top as scanpy
    /// draws them.
    Values(&'a [f64]),
}

/// The category code of a point without one; drawn light grey, as scanpy draws NA.
pub const MISSING: u32 = u32::MAX;

const NA_GREY: RGBColor = RGBColor(211, 211, 211);

/// A scatter plot of points.
#[derive(Debug, Clone)]
pub struct Scatter<'a> {
    pub x: &'a [f64],
    pub y: &'a [f64],
    pub colour: Colouring<'a>,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
}

/// Draws `plot` to a PNG at `path` (800 × 600).
///
/// # Errors
/// When the points are empty or mismatched, or the file cannot be written.
pub fn scatter_png(plot: &Scatter<'_>, path: &Path) -> Result<()> {
    if plot.x.len() != plot.y.len() || plot.x.is_empty() {
        return Err(Error::internal(format!(
            "scatter of {} x and {} y values",
            plot.x.len(),
            plot.y.len()
        )));
    }
    fonts();
    let err = |e: &dyn std::fmt::Display| Error::io(Location::file(path), e);
    let range = |v: &[f64]| {
        let (lo, hi) = v
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        let pad = ((hi - lo) * 0.05).max(1e-9);
        (lo - pad)..(hi + pad)
    };
    let root = BitMapBackend::new(path, (800, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let legend_width = if matches!(plot.colour, Colouring::Single) {
        0
    } else {
        140
    };
    let (main, legend) = root.split_horizontally(800 - legend_width);
    let mut chart = ChartBuilder::on(&main)
        .caption(&plot.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(range(plot.x), range(plot.y))
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(&plot.x_label)
        .y_desc(&plot.y_label)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| err(&e))?;
    let color = |g: u32| {
        if g == MISSING {
            return NA_GREY;
        }
        let (r, gr, b) = PALETTE[g as usize % PALETTE.len()];
        RGBColor(r, gr, b)
    };
    let finite = |v: &[f64]| {
        v.iter()
            .filter(|x| x.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            })
    };
    let (lo, hi) = match plot.colour {
        Colouring::Values(v) => finite(v),
        _ => (0.0, 0.0),
    };
    let viridis = |v: f64| {
        if !v.is_finite() {
            NA_GREY
        } else if hi > lo {
            ViridisRGB.get_color_normalized(v as f32, lo as f32, hi as f32)
        } else {
            ViridisRGB.get_color(0.5)
        }
    };
    // Drawing order: by value for numbers (missing first), as given otherwise.
    let mut order: Vec<usize> = (0..plot.x.len()).collect();
    if let Colouring::Values(v) = plot.colour {
        order.sort_by(|&a, &b| {
            let key = |x: f64| if x.is_finite() { x } else { f64::NEG_INFINITY };
            key(v[a]).total_cmp(&key(v[b]))
        });
    }
    // Smaller dots for more points, as scanpy does (120000 / n, clamped).
    let size = ((120_000.0 / plot.x.len() as f64).sqrt()).clamp(1.0, 5.0) as u32;
    chart
        .draw_series(order.iter().map(|&i| {
            let c = match plot.colour {
                Colouring::Single => RGBColor(31, 119, 180),
                Colouring::Groups(g, _) => color(g[i]),
                Colouring::Values(v) => viridis(v[i]),
            };
            Circle::new((plot.x[i], plot.y[i]), size, c.filled())
        }))
        .map_err(|e| err(&e))?;
    let text = |s: String, at: (i32, i32)| Text::new(s, at, ("sans-serif", 15));
    match plot.colour {
        Colouring::Single => {}
        Colouring::Groups(codes, names) => {
            let mut entries: Vec<(String, RGBColor)> = names
                .iter()
                .enumerate()
                .map(|(k, n)| (n.clone(), color(k as u32)))
                .collect();
            if codes.contains(&MISSING) {
                entries.push(("NA".into(), NA_GREY));
            }
            for (k, (name, c)) in entries.into_iter().enumerate().take(30) {
                let y = 40 + 22 * k as i32;
                legend
                    .draw(&Circle::new((12, y), 6, c.filled()))
                    .map_err(|e| err(&e))?;
                legend.draw(&text(name, (26, y - 8))).map_err(|e| err(&e))?;
            }
        }
        Colouring::Values(_) => {
            // A colour bar: 200 px from the lowest value (bottom) to the highest (top).
            let (top, height) = (60, 200);
            for k in 0..height {
                let v = lo + (hi - lo) * (height - 1 - k) as f64 / (height - 1) as f64;
                legend
                    .draw(&Rectangle::new(
                        [(10, top + k), (30, top + k + 1)],
                        viridis(v).filled(),
                    ))
                    .map_err(|e| err(&e))?;
            }
            let label = |v: f64| format!("{}", (v * 1e4).round() / 1e4);
            legend
                .draw(&text(label(hi), (36, top - 6)))
                .map_err(|e| err(&e))?;
            legend
                .draw(&text(label(lo), (36, top + height - 10)))
                .map_err(|e| err(&e))?;
        }
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_png_with_one_colour_per_group() {
        let dir = std::env::temp_dir().join(format!("engine-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.png");
        let x: Vec<f64> = (0..200)
            .map(|i| (i % 2) as f64 * 10.0 + (i as f64 * 0.37).sin())
            .collect();
        let y: Vec<f64> = (0..200).map(|i| (i as f64 * 0.73).cos()).collect();
        let g: Vec<u32> = (0..200).map(|i| (i % 2) as u32).collect();
        let names = vec!["0".to_string(), "1".to_string()];
        let plot = Scatter {
            x: &x,
            y: &y,
            colour: Colouring::Groups(&g, &names),
            title: "pca".into(),
            x_label: "PC1".into(),
            y_label: "PC2".into(),
        };
        scatter_png(&plot, &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert!(bytes.len() > 2000);
        assert!(
            scatter_png(
                &Scatter {
                    x: &[],
                    y: &[],
                    colour: Colouring::Single,
                    title: String::new(),
                    x_label: String::new(),
                    y_label: String::new()
                },
                &path
            )
            .is_err()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn numbers_get_viridis_from_lowest_to_highest() {
        let dir = std::env::temp_dir().join(format!("engine-plot-v-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
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
        };
        scatter_png(&plot, &path).unwrap();
        let img = image_rgb(&path);
        let count = |c: RGBColor| img.iter().filter(|p| **p == (c.0, c.1, c.2)).count();
        // viridis' two ends, each painted by its clump and the colour bar.
        let (low, high) = (ViridisRGB.get_color(0.0), ViridisRGB.get_color(1.0));
        assert!(count(low) > 50, "no pixels of viridis' low end");
        assert!(count(high) > 50, "no pixels of viridis' high end");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The pixels of a PNG the bitmap backend wrote.
    fn image_rgb(path: &Path) -> Vec<(u8, u8, u8)> {
        let img = image::open(path).unwrap().to_rgb8();
        img.pixels().map(|p| (p[0], p[1], p[2])).collect()
    }
}
