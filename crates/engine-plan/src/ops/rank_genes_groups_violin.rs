//! `rank_genes_groups_violin`: scanpy's `sc.pl.rank_genes_groups_violin`, per ranked group a
//! figure of its top genes' values, the group's cells against the rest (or the reference) as
//! the two halves of each gene's violin, to PNG, SVG or PDF.

use super::dotplot::ranked_by;
use super::plot::{dpi, image_path};
use super::{Bind, LogicalOp, Reads};
use crate::plan::Op;
use crate::schema::{ColType, Schema};
use engine_common::Result;

#[derive(Debug, Clone, PartialEq)]
pub struct RankGenesGroupsViolin {
    pub key: String,
    /// The groups drawn, in order; `None` draws every ranked group.
    pub groups: Option<Vec<String>>,
    /// Each group's top `n_genes` of `uns[key]['names']`…
    pub n_genes: usize,
    /// …or these genes for every group (scanpy's `gene_names`).
    pub gene_names: Option<Vec<String>>,
    /// The categorical obs column the genes were ranked by (`uns[key]['params']`).
    pub groupby: String,
    /// The step whose X and genes give the values (scanpy's `use_raw`): the op's second
    /// input.
    pub raw: Option<String>,
    /// The group and the rest as the two halves of one violin; otherwise two violins side by
    /// side.
    pub split: bool,
    /// The cells drawn over the violins.
    pub strip: bool,
    /// seaborn's `jitter`: the spread of the points, shared between the two sides.
    pub jitter: f64,
    /// The points' diameter in points.
    pub size: f64,
    /// The image of group `g` is `path` with `_g` before its extension.
    pub path: String,
    pub dpi: u32,
}

impl RankGenesGroupsViolin {
    pub(crate) fn bind(b: &Bind<'_>) -> Result<(Op, Schema)> {
        let step = b.step;
        let s = b.input_schema();
        let key = b.ranking_key(&s)?;
        // scanpy reads the groups from the ranking's params; so does planning.
        let Some(groupby) = ranked_by(b, &key) else {
            return Err(b.error(format!(
                "cannot tell which obs column uns['{key}'] ranks: it comes from neither a `rank_genes_groups` step nor the input file's uns['{key}']['params']"
            )));
        };
        match s.obs.iter().find(|(c, _)| *c == groupby) {
            Some((_, ColType::Category)) => {}
            _ => {
                return Err(b.error(format!(
                    "uns['{key}'] ranks the groups of obs['{groupby}'], and the input has no such categorical column"
                )));
            }
        }
        let gene_names = b.names("gene_names");
        if let Some(genes) = &gene_names {
            if genes.is_empty() {
                return Err(b.error("`gene_names` names no gene"));
            }
            let values = if step.arg("raw").as_str().is_some() {
                b.inputs.last()
            } else {
                b.inputs.first()
            };
            if let Some(problem) = values.and_then(|&i| b.missing_gene(genes, i)) {
                return Err(b.error(format!("`gene_names`: {problem}")));
            }
        }
        let jitter = step.arg("jitter").as_f64().unwrap_or(0.1);
        if !(0.0..=1.0).contains(&jitter) {
            return Err(b.error(format!(
                "`jitter` must be between 0 and 1 (a share of a gene's width), got {jitter}"
            )));
        }
        let size = step.arg("size").as_f64().unwrap_or(1.0);
        if !(size > 0.0 && size <= 100.0) {
            return Err(b.error(format!(
                "`size` must be a diameter in points above 0 and at most 100, got {size}"
            )));
        }
        let op = Op::RankGenesGroupsViolin(RankGenesGroupsViolin {
            key,
            groups: b.names("groups"),
            n_genes: b.bounded("n_genes", 1_000)?,
            gene_names,
            groupby,
            raw: step.arg("raw").as_str().map(str::to_string),
            split: step.arg("split").as_bool().unwrap_or(true),
            strip: step.arg("strip").as_bool().unwrap_or(true),
            jitter,
            size,
            path: image_path(b)?,
            dpi: dpi(b)?,
        });
        Ok((op, s))
    }

    /// The image of one group: `path` with `_GROUP` before the extension, the group's name
    /// kept to characters a file name can hold.
    pub fn group_path(&self, group: &str) -> String {
        let safe: String = group
            .chars()
            .map(|c| {
                if c == '/' || c == '\\' || c.is_control() {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        let p = std::path::Path::new(&self.path);
        let stem = p
            .file_stem()
            .map_or(String::new(), |s| s.to_string_lossy().into_owned());
        let ext = p
            .extension()
            .map_or(String::new(), |e| format!(".{}", e.to_string_lossy()));
        p.with_file_name(format!("{stem}_{safe}{ext}"))
            .to_string_lossy()
            .into_owned()
    }
}

impl LogicalOp for RankGenesGroupsViolin {
    fn describe(&self) -> String {
        let genes = match &self.gene_names {
            Some(g) => format!("gene_names={}", g.join(",")),
            None => format!("n_genes={}", self.n_genes),
        };
        let mut text = format!(
            "key={}, groupby={}, groups={}, {genes}",
            self.key,
            self.groupby,
            self.groups
                .as_ref()
                .map_or("all".to_string(), |g| g.join(","))
        );
        if let Some(r) = &self.raw {
            text += &format!(", raw={r}");
        }
        if !self.split {
            text += ", split=false";
        }
        if !self.strip {
            text += ", strip=false";
        }
        if self.dpi != 150 {
            text += &format!(", dpi={}", self.dpi);
        }
        text + &format!(", path={}", self.path)
    }

    /// Its group column and the ranking.
    fn reads(&self) -> Reads {
        Reads::Some {
            obs: vec![self.groupby.clone()],
            elements: vec![format!("uns/{}", self.key)],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One file per group beside `path`, a slash in a group's name kept out of the path.
    #[test]
    fn each_group_gets_its_own_file() {
        let v = RankGenesGroupsViolin {
            key: "rank_genes_groups".into(),
            groups: None,
            n_genes: 20,
            gene_names: None,
            groupby: "bulk_labels".into(),
            raw: None,
            split: true,
            strip: true,
            jitter: 0.1,
            size: 1.0,
            path: "out/markers.violin.png".into(),
            dpi: 150,
        };
        assert_eq!(
            v.group_path("CD4+/CD25 T Reg"),
            "out/markers.violin_CD4+_CD25 T Reg.png"
        );
        assert_eq!(v.group_path("B"), "out/markers.violin_B.png");
    }
}
