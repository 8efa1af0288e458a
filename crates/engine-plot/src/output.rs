//! A figure drawn once, into PNG, SVG or PDF.

use engine_common::{Error, Location, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use std::path::Path;
use std::sync::Once;

/// The embedded font, for plotters' text and for the PDF's.
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// SVG and PDF coordinates per point: plotters draws on whole units, so vector output is
/// drawn finer than a point and its size stated in points.
const VECTOR_UNITS_PER_PT: f64 = 4.0;

/// An image format, by the path's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Svg,
    Pdf,
}

impl Format {
    /// The format a path's extension names (case-insensitive), if it is one we write.
    pub fn of_path(path: &str) -> Option<Format> {
        let ext = Path::new(path).extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "png" => Some(Format::Png),
            "svg" => Some(Format::Svg),
            "pdf" => Some(Format::Pdf),
            _ => None,
        }
    }
}

pub(crate) fn fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Registering the embedded font only fails on malformed bytes, which would be a bug.
        let _ = register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// What a figure draws, laid out in points and drawn at `k` device units per point.
pub(crate) trait Figure {
    /// Width and height in points.
    fn size(&self) -> (f64, f64);
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        k: f64,
    ) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>>;
}

/// Renders `figure` to `path` as `format` (PNG at `dpi`).
pub(crate) fn render(figure: &impl Figure, format: Format, dpi: f64, path: &Path) -> Result<()> {
    fonts();
    let err = |e: &dyn std::fmt::Display| Error::io(Location::file(path), e);
    let (w, h) = figure.size();
    let px = |v: f64, k: f64| (v * k).ceil().max(1.0) as u32;
    match format {
        Format::Png => {
            let k = dpi / 72.0;
            let root = BitMapBackend::new(path, (px(w, k), px(h, k))).into_drawing_area();
            root.fill(&WHITE).map_err(|e| err(&e))?;
            figure.draw(&root, k).map_err(|e| err(&e))?;
            root.present().map_err(|e| err(&e))?;
        }
        Format::Svg | Format::Pdf => {
            let svg = svg_text(figure, w, h).map_err(|e| err(&e))?;
            let bytes = match format {
                Format::Svg => svg.into_bytes(),
                _ => pdf_of_svg(&svg).map_err(|e| err(&e))?,
            };
            std::fs::write(path, bytes).map_err(|e| err(&e))?;
        }
    }
    Ok(())
}

/// The figure as SVG text whose size is in points.
fn svg_text(figure: &impl Figure, w: f64, h: f64) -> std::result::Result<String, String> {
    let k = VECTOR_UNITS_PER_PT;
    let (uw, uh) = ((w * k).ceil() as u32, (h * k).ceil() as u32);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (uw, uh)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        figure.draw(&root, k).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    // plotters states the size in its units; the viewBox keeps them, the size is points.
    let from = format!("width=\"{uw}\" height=\"{uh}\"");
    let to = format!(
        "width=\"{}pt\" height=\"{}pt\"",
        f64::from(uw) / k,
        f64::from(uh) / k
    );
    if !svg.contains(&from) {
        return Err("plotters' SVG header changed: cannot state the size in points".into());
    }
    Ok(svg.replacen(&from, &to, 1))
}

/// The SVG as a one-page PDF, its text set in the embedded font.
fn pdf_of_svg(svg: &str) -> std::result::Result<Vec<u8>, String> {
    use svg2pdf::usvg;
    let mut options = usvg::Options::default();
    {
        let db = options.fontdb_mut();
        db.load_font_data(FONT.to_vec());
        db.set_sans_serif_family("DejaVu Sans");
    }
    let tree = usvg::Tree::from_str(svg, &options).map_err(|e| e.to_string())?;
    svg2pdf::to_pdf(
        &tree,
        svg2pdf::ConversionOptions::default(),
        svg2pdf::PageOptions::default(),
    )
    .map_err(|e| e.to_string())
}

/// Width and height in points of `text` set at `size` points.
pub(crate) fn text_size(text: &str, size: f64) -> (f64, f64) {
    fonts();
    // Measured at 10× and scaled, as plotters measures in whole units.
    let font = FontDesc::new(FontFamily::SansSerif, size * 10.0, FontStyle::Normal);
    match font.box_size(text) {
        Ok((w, h)) => (f64::from(w) / 10.0, f64::from(h) / 10.0),
        // No glyph box (an empty string): a typical width per character.
        Err(_) => (0.6 * size * text.chars().count() as f64, size),
    }
}
