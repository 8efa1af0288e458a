//! `rank_genes_groups_plot`: scanpy's `sc.pl.rank_genes_groups`, a panel per group of the
//! marker genes in `uns[key]`, to PNG, SVG or PDF.

use super::plot::{dpi, image_path};
use super::{Bind, LogicalOp, Reads};
use crate::plan::Op;
use crate::schema::Schema;
use engine_common::Result;

#[derive(Debug, Clone, PartialEq)]
pub struct RankGenesGroupsPlot {
    pub key: String,
    /// The groups drawn, in order; `None` draws every ranked group.
    pub groups: Option<Vec<String>>,
    pub n_genes: usize,
    pub fontsize: u32,
    pub ncols: usize,
    pub sharey: bool,
    pub path: String,
    pub dpi: u32,
}

impl RankGenesGroupsPlot {
    pub(crate) fn bind(b: &Bind<'_>) -> Result<(Op, Schema)> {
        let step = b.step;
        let s = b.input_schema();
        let key = b.ranking_key(&s)?;
        let groups = b.names("groups");
        let op = Op::RankGenesGroupsPlot(RankGenesGroupsPlot {
            key,
            groups,
            n_genes: b.bounded("n_genes", 10_000)?,
            fontsize: b.bounded("fontsize", 100)? as u32,
            ncols: b.bounded("ncols", 100)?,
            sharey: step.arg("sharey").as_bool().unwrap_or(true),
            path: image_path(b)?,
            dpi: dpi(b)?,
        });
        Ok((op, s))
    }
}

impl LogicalOp for RankGenesGroupsPlot {
    fn describe(&self) -> String {
        format!(
            "key={}, groups={}, n_genes={}, ncols={}{}{}, path={}",
            self.key,
            self.groups
                .as_ref()
                .map_or("all".to_string(), |g| g.join(",")),
            self.n_genes,
            self.ncols,
            if self.sharey { "" } else { ", sharey=false" },
            if self.dpi == 150 {
                String::new()
            } else {
                format!(", dpi={}", self.dpi)
            },
            self.path
        )
    }

    fn reads(&self) -> Reads {
        Reads::elements(&[&format!("uns/{}", self.key)])
    }
}
