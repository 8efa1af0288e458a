//! Scatter plots (PNG) of embeddings coloured by an obs column, drawn with plotters and an
//! embedded DejaVu Sans (assets/LICENSE_DEJAVU) so no system font library is needed.

use engine_common::{Error, Location, Result};
use plotters::prelude::*;
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

/// A scatter plot of points coloured by category.
#[derive(Debug, Clone)]
pub struct Scatter<'a> {
    pub x: &'a [f64],
    pub y: &'a [f64],
    /// Category index per point, with the category names; `None` draws one colour.
    pub groups: Option<(&'a [u32], &'a [String])>,
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
    let legend_width = if plot.groups.is_some() { 140 } else { 0 };
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
        let (r, gr, b) = PALETTE[g as usize % PALETTE.len()];
        RGBColor(r, gr, b)
    };
    // Smaller dots for more points, as scanpy does (120000 / n, clamped).
    let size = ((120_000.0 / plot.x.len() as f64).sqrt()).clamp(1.0, 5.0) as u32;
    chart
        .draw_series(plot.x.iter().zip(plot.y).enumerate().map(|(i, (&x, &y))| {
            let c = plot
                .groups
                .map_or(RGBColor(31, 119, 180), |(g, _)| color(g[i]));
            Circle::new((x, y), size, c.filled())
        }))
        .map_err(|e| err(&e))?;
    if let Some((_, names)) = plot.groups {
        for (k, name) in names.iter().enumerate().take(30) {
            let y = 40 + 22 * k as i32;
            legend
                .draw(&Circle::new((12, y), 6, color(k as u32).filled()))
                .map_err(|e| err(&e))?;
            legend
                .draw(&Text::new(name.clone(), (26, y - 8), ("sans-serif", 15)))
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
            groups: Some((&g, &names)),
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
                    groups: None,
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
}
