//! Plots as scanpy draws them: dot plots of marker genes (`Reds`, scanpy's dot scale and
//! legends) and their stacked violins (`Blues`), violins per group, a group's marker genes against the rest as split violins, the marker-gene panels of `rank_genes_groups`, and embedding scatters coloured by a category (scanpy's palettes or
//! the colours stored in `uns`) or a number (viridis with a colour bar), framed without ticks,
//! points sized `120000 / n_cells`, the legend beside the axes and never clipped. Drawn with
//! plotters into PNG (at a dpi) or SVG, and PDF from that SVG through svg2pdf; text uses an
//! embedded DejaVu Sans (assets/LICENSE_DEJAVU) so no system font library is needed.

mod dotplot;
mod output;
mod palette;
mod panels;
mod scatter;
mod split_violin;
mod ticks;
mod violin;

pub use dotplot::{Cells, Dotplot, dotplot};
pub use output::Format;
pub use palette::{NA_GREY, blues, default_colours, parse_colour, reds};
pub use panels::{RankPanel, RankPanels, rank_panels};
pub use scatter::{Colouring, LegendLoc, MISSING, Scatter, scatter};
pub use split_violin::{Side, SplitViolin, split_violin};
pub use violin::{Body, Violin, ViolinPanel, violin};

/// A colour as red, green, blue.
pub type Rgb = (u8, u8, u8);
