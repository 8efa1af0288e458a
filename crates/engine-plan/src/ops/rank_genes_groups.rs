//! `rank_genes_groups`: marker genes per group of an obs column (scanpy's
//! `sc.tl.rank_genes_groups`: t-tests and Wilcoxon's rank-sum test), `uns[key_added]`.

use super::{Bind, LogicalOp, Reads, add};
use crate::plan::Op;
use crate::schema::{ColType, Schema};
use engine_common::Result;

/// scanpy's `method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RankMethod {
    /// Welch's t-test (scanpy's default).
    TTest,
    /// Welch's t-test with the rest's variance over the group's size.
    TTestOverestimVar,
    /// Wilcoxon's rank-sum test (normal approximation, as scanpy).
    Wilcoxon,
}

impl RankMethod {
    pub fn name(self) -> &'static str {
        match self {
            RankMethod::TTest => "t-test",
            RankMethod::TTestOverestimVar => "t-test_overestim_var",
            RankMethod::Wilcoxon => "wilcoxon",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RankGenesGroups {
    pub groupby: String,
    /// The groups to rank; `None` ranks every category.
    pub groups: Option<Vec<String>>,
    /// `rest` or a group to compare against.
    pub reference: String,
    /// The step whose X and genes are ranked instead of the input's (its cells matched by
    /// name), as scanpy ranks `adata.raw`: the op's second input.
    pub raw: Option<String>,
    /// The file layer `raw` reads (scanpy's `layer`), when the values are a layer.
    pub layer: Option<String>,
    pub method: RankMethod,
    /// Wilcoxon's tie correction (scanpy's default: off).
    pub tie_correct: bool,
    /// Genes reported per group; `None` reports every gene.
    pub n_genes: Option<usize>,
    /// `benjamini-hochberg` or `bonferroni`.
    pub corr_method: String,
    pub key_added: String,
    /// Also record the fraction of cells expressing each gene per group (`pts`), and in the
    /// rest (`pts_rest`).
    pub pts: bool,
}

impl RankGenesGroups {
    pub(crate) fn bind(b: &Bind<'_>) -> Result<(Op, Schema)> {
        let step = b.step;
        let mut s = b.input_schema();
        let groupby = step.arg("groupby").as_str().unwrap_or_default().to_string();
        match s.obs.iter().find(|(c, _)| *c == groupby) {
            Some((_, ColType::Category)) => {}
            Some((_, t)) => {
                return Err(b.error(format!(
                    "`groupby` obs['{groupby}'] is {}, and groups need a categorical column",
                    t.name()
                )));
            }
            None => {
                return Err(b.error(format!(
                    "`groupby`: the input has no obs['{groupby}'] (its obs columns: {})",
                    s.obs
                        .iter()
                        .map(|(c, _)| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        // scanpy's default is `t-test` (1.12: `method=None` means it).
        let method = match step.arg("method").as_str().unwrap_or("t-test") {
            "t-test" => RankMethod::TTest,
            "t-test_overestim_var" => RankMethod::TTestOverestimVar,
            "wilcoxon" => RankMethod::Wilcoxon,
            other => {
                return Err(b.error(format!(
                    "`method: {other}` is not available: use t-test, t-test_overestim_var or wilcoxon"
                )));
            }
        };
        let groups = b.names("groups");
        let reference = step.arg("reference").as_str().unwrap_or("rest").to_string();
        let raw = step.arg("raw").as_str().map(str::to_string);
        let n_genes = match step.arg("n_genes").as_i64() {
            None => None,
            Some(n) if n > 0 => Some(n as usize),
            Some(n) => return Err(b.error(format!("`n_genes` must be at least 1, got {n}"))),
        };
        let key_added = step
            .arg("key_added")
            .as_str()
            .unwrap_or("rank_genes_groups")
            .to_string();
        add(&mut s.uns, &key_added);
        let op = Op::RankGenesGroups(RankGenesGroups {
            groupby,
            groups,
            reference,
            raw,
            layer: step.arg("layer").as_str().map(str::to_string),
            method,
            tie_correct: step.arg("tie_correct").as_bool().unwrap_or(false),
            n_genes,
            corr_method: step
                .arg("corr_method")
                .as_str()
                .unwrap_or("benjamini-hochberg")
                .to_string(),
            key_added,
            pts: step.arg("pts").as_bool().unwrap_or(false),
        });
        Ok((op, s))
    }
}

impl LogicalOp for RankGenesGroups {
    fn describe(&self) -> String {
        format!(
            "groupby={}, groups={}, reference={}, method={}{}, n_genes={}, corr_method={}, key_added={}, pts={}",
            self.groupby,
            self.groups
                .as_ref()
                .map_or("all".to_string(), |g| g.join(",")),
            self.reference,
            self.method.name(),
            if self.method == RankMethod::Wilcoxon {
                format!(", tie_correct={}", self.tie_correct)
            } else {
                String::new()
            } + &self
                .raw
                .as_ref()
                .map_or(String::new(), |r| format!(", raw={r}")),
            self.n_genes.map_or("all".to_string(), |n| n.to_string()),
            self.corr_method,
            self.key_added,
            self.pts
        )
    }

    fn reads(&self) -> Reads {
        Reads::Some {
            obs: vec![self.groupby.clone()],
            elements: vec![],
        }
    }
}
