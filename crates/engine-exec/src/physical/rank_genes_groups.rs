//! `rank_genes_groups`: one pass over X for each group's per-gene sums and sums of squares
//! (and the whole's), then Welch's t-tests per group in memory, as scanpy ranks them. For
//! Wilcoxon's test, then one pass per block of genes that gathers those genes' nonzero values
//! within the working set, ranked gene by gene.

use super::{Data, ExecNode};
use crate::annotations::{dict, obs_groups, scalar_bool};
use crate::context::RunContext;
use crate::distribute::Kernel;
use crate::pass::fold_kernel;
use engine_common::{Error, Result};
use engine_matrix::DynArray;
use engine_ops::markers::{
    Moments, benjamini_hochberg, bonferroni, rank_sums, sort_values, top_scores, welch, wilcoxon,
};
use engine_ops::sparse::ColumnSums;
use engine_plan::{RankGenesGroups, RankMethod};
use engine_store::{Column, Frame, Value};
use ndarray::Array1;
use rayon::prelude::*;
use std::borrow::Cow;
use std::ops::Range;

#[derive(Debug)]
pub(crate) struct RankGenesGroupsNode {
    pub params: RankGenesGroups,
    /// Bytes Wilcoxon's gathered values may take (the memory estimate counts them).
    pub working_set: usize,
    /// The ranked X is float32 in the plan: values are ranked at that precision, so values
    /// scanpy holds as equal float32 numbers tie here too.
    pub f32_values: bool,
}

/// Bytes a gathered value takes at most: the value and its group code (16), twice over for
/// a vector's spare capacity while it grows.
const GATHERED_BYTES: usize = 32;

/// Consecutive blocks of genes whose nonzeros (`nnz[j]`) fit `working_set` bytes once
/// gathered; a gene that does not fit alone gets a block of its own.
fn gene_blocks(nnz: &[u64], working_set: usize) -> Vec<Range<usize>> {
    let per_block = (working_set / GATHERED_BYTES).max(1) as u64;
    let mut blocks = Vec::new();
    let (mut start, mut held) = (0, 0u64);
    for (j, &n) in nnz.iter().enumerate() {
        if j > start && held + n > per_block {
            blocks.push(start..j);
            (start, held) = (j, 0);
        }
        held += n;
    }
    if start < nnz.len() {
        blocks.push(start..nnz.len());
    }
    blocks
}

impl ExecNode for RankGenesGroupsNode {
    fn name(&self) -> &'static str {
        "RankGenesGroups"
    }

    fn stages(&self) -> Vec<String> {
        let mut stages = vec![format!(
            "pass over X: per-gene sums and sums of squares per group of obs['{}']",
            self.params.groupby
        )];
        if self.params.method == RankMethod::Wilcoxon {
            stages.push(format!(
                "passes over X by gene blocks within {} MiB: each gene's values ranked",
                crate::memory::mib(self.working_set)
            ));
        }
        stages.push(format!(
            "in memory: {} per group against {}, {} -> uns['{}']",
            self.params.method.name(),
            self.params.reference,
            self.params.corr_method,
            self.params.key_added
        ));
        stages
    }

    fn execute(&self, inputs: Vec<Cow<'_, Data>>, cx: &mut RunContext<'_>) -> Result<Option<Data>> {
        let p = &self.params;
        let mut inputs = inputs.into_iter();
        let main = inputs
            .next()
            .ok_or_else(|| Error::internal("RankGenesGroups node without an input"))?;
        // With `raw`, that step's X and genes, at this step's cells (as scanpy's `use_raw`).
        let ranked = match (&p.raw, inputs.next()) {
            (Some(step), Some(raw)) => Some((
                super::write::aligned(&main.ann, &raw, step, false)?,
                raw.ann.var.clone(),
            )),
            (None, None) => None,
            _ => return Err(Error::internal("RankGenesGroups inputs do not match `raw`")),
        };
        let Data {
            x: main_x,
            ann: mut a,
        } = main.into_owned();
        let (x, var) = match ranked {
            Some((x, var)) => (x, var),
            None => (main_x.clone(), a.var.clone()),
        };
        let step = cx.step().to_string();
        let (codes, categories) = obs_groups(&a.obs, &p.groupby, &step)?;
        let position = |g: &str| {
            categories.iter().position(|c| c == g).ok_or_else(|| {
                Error::step(
                    &step,
                    format!(
                        "obs['{}'] has no group `{g}` (its groups: {})",
                        p.groupby,
                        categories.join(", ")
                    ),
                )
            })
        };
        let reference = match p.reference.as_str() {
            "rest" => None,
            r => Some(position(r)?),
        };
        let groups: Vec<usize> = match &p.groups {
            Some(g) => g.iter().map(|g| position(g)).collect::<Result<_>>()?,
            None => (0..categories.len()).collect(),
        };
        let n_cat = categories.len();
        let n_vars = x.n_vars();
        let bar = cx.progress("group sums", x.blocks().len());
        // Each group's sums, then the total's.
        let kernel = Kernel::BatchSums {
            codes: Some(codes.clone()),
            n_batches: n_cat,
            expm1: false,
            clip: None,
            plain: true,
            check_counts: false,
        };
        let (partial, blocks) = fold_kernel(&x, cx, &bar, &kernel)?;
        let (mut sums, _) = partial.batch_sums()?;
        let total = sums
            .pop()
            .ok_or_else(|| Error::internal("group sums without a total"))?;
        cx.stage("group sums", blocks);
        // Wilcoxon's rank sums per group and gene, and the ties (per gene against the rest;
        // per group and gene against a reference group).
        let ranks = if p.method == RankMethod::Wilcoxon {
            let none = n_cat as u32;
            let mut sizes: Vec<u64> = sums.iter().map(|s| s.n).collect();
            sizes.push(total.n - sizes.iter().sum::<u64>());
            let mut rank_sum = vec![vec![0.0f64; n_vars]; n_cat];
            let mut ties = vec![vec![0.0f64; n_vars]; n_cat];
            let blocks = gene_blocks(&total.nnz, self.working_set);
            let bar = cx.progress("rank sums", blocks.len() * x.blocks().len());
            let mut read = 0;
            for genes in &blocks {
                let (lo, width) = (genes.start, genes.len());
                let kernel = Kernel::GeneValues {
                    codes: codes.clone(),
                    n_groups: none,
                    genes: (lo, lo + width),
                    f32_values: self.f32_values,
                };
                let (partial, n) = fold_kernel(&x, cx, &bar, &kernel)?;
                let mut values = partial.gene_values()?;
                read += n;
                let per_gene: Vec<Vec<(usize, f64, f64)>> = values
                    .par_iter_mut()
                    .map(|v| {
                        sort_values(v);
                        let compared = groups.iter().filter(|&&g| Some(g) != reference);
                        match reference {
                            None => {
                                let r = rank_sums(v, &sizes, |_| true);
                                compared.map(|&g| (g, r.sums[g], r.ties)).collect()
                            }
                            Some(rf) => compared
                                .map(|&g| {
                                    let r = rank_sums(v, &sizes, |c| {
                                        c as usize == g || c as usize == rf
                                    });
                                    (g, r.sums[g], r.ties)
                                })
                                .collect(),
                        }
                    })
                    .collect();
                drop(values);
                for (k, results) in per_gene.into_iter().enumerate() {
                    for (g, sum, tie) in results {
                        rank_sum[g][lo + k] = sum;
                        ties[g][lo + k] = tie;
                    }
                }
            }
            cx.stage(&format!("rank sums ({} gene blocks)", blocks.len()), read);
            Some((rank_sum, ties))
        } else {
            None
        };
        let moments =
            |s: &ColumnSums, j: usize| Moments::from_sums(s.sum[j], s.sumsq[j], s.n as f64);
        let gene_names: Vec<String> = (0..var.n_rows()).map(|i| var.index.render(i)).collect();
        let n_report = p.n_genes.unwrap_or(n_vars).min(n_vars);
        let mut fields: [Vec<(String, DynArray)>; 5] = Default::default();
        for &g in groups.iter().filter(|&&g| Some(g) != reference) {
            let group = &sums[g];
            let small = |n: u64, what: &str| {
                (n < 2).then(|| {
                    Error::step(
                        &step,
                        format!(
                            "{what} `{}` has {n} cell(s); the test needs at least 2",
                            categories[g]
                        ),
                    )
                })
            };
            if let Some(e) = small(group.n, "group") {
                return Err(e);
            }
            let mut scores = Vec::with_capacity(n_vars);
            let mut pvals = Vec::with_capacity(n_vars);
            let mut lfc = Vec::with_capacity(n_vars);
            for j in 0..n_vars {
                let mg = moments(group, j);
                let mut mr = match reference {
                    Some(r) => moments(&sums[r], j),
                    None => Moments::from_sums(
                        total.sum[j] - group.sum[j],
                        total.sumsq[j] - group.sumsq[j],
                        (total.n - group.n) as f64,
                    ),
                };
                if p.method == RankMethod::TTestOverestimVar {
                    // scanpy's overestimate: the rest's variance over the group's size.
                    mr.n = mg.n;
                }
                let (t, pv) = match &ranks {
                    Some((rank_sum, ties)) => {
                        // Against the rest every cell outside the group counts, as in scanpy.
                        let others = match reference {
                            Some(r) => sums[r].n,
                            None => total.n - group.n,
                        };
                        wilcoxon(
                            rank_sum[g][j],
                            group.n as f64,
                            others as f64,
                            ties[g][j],
                            p.tie_correct,
                        )
                    }
                    None => welch(mg, mr),
                };
                scores.push(t);
                pvals.push(pv);
                lfc.push(((mg.mean.exp_m1() + 1e-9) / (mr.mean.exp_m1() + 1e-9)).log2());
            }
            let rest_n = match reference {
                Some(r) => sums[r].n,
                None => total.n - group.n,
            };
            if let Some(e) = small(rest_n, "the reference of group") {
                return Err(e);
            }
            let adj = if p.corr_method == "bonferroni" {
                bonferroni(&pvals)
            } else {
                benjamini_hochberg(&pvals)
            };
            let top = top_scores(&scores, n_report);
            let name = categories[g].clone();
            let pick = |v: &[f64]| top.iter().map(|&j| v[j]).collect::<Vec<f64>>();
            let f32s = |v: Vec<f64>| {
                DynArray::F32(Array1::from_iter(v.into_iter().map(|x| x as f32)).into_dyn())
            };
            let f64s = |v: Vec<f64>| DynArray::F64(Array1::from(v).into_dyn());
            fields[0].push((
                name.clone(),
                DynArray::Str(
                    Array1::from_iter(top.iter().map(|&j| gene_names[j].clone())).into_dyn(),
                ),
            ));
            fields[1].push((name.clone(), f32s(pick(&scores))));
            fields[2].push((name.clone(), f32s(pick(&lfc))));
            fields[3].push((name.clone(), f64s(pick(&pvals))));
            fields[4].push((name, f64s(pick(&adj))));
        }
        let [names, scores, lfcs, pvals, adj] = fields;
        let mut extra = Vec::new();
        if p.pts {
            // scanpy's groups_order: the ranked groups, and a reference group beside them.
            let mut order = groups.clone();
            if let Some(r) = reference.filter(|r| !order.contains(r)) {
                order.push(r);
            }
            let frame = |fraction: &dyn Fn(usize, usize) -> f64| {
                Value::Frame(Frame {
                    index_name: var.index_name.clone(),
                    index: Column::Plain(DynArray::Str(
                        Array1::from(gene_names.clone()).into_dyn(),
                    )),
                    columns: order
                        .iter()
                        .map(|&g| {
                            let v = Array1::from_iter((0..n_vars).map(|j| fraction(g, j)));
                            (
                                categories[g].clone(),
                                Column::Plain(DynArray::F64(v.into_dyn())),
                            )
                        })
                        .collect(),
                })
            };
            let share = |nnz: u64, n: u64| nnz as f64 / n as f64;
            extra.push(("pts", frame(&|g, j| share(sums[g].nnz[j], sums[g].n))));
            if reference.is_none() {
                extra.push((
                    "pts_rest",
                    frame(&|g, j| share(total.nnz[j] - sums[g].nnz[j], total.n - sums[g].n)),
                ));
            }
        }
        a.uns.insert(
            p.key_added.clone(),
            dict(
                vec![
                    (
                        "params",
                        dict(
                            vec![
                                ("groupby", Value::String(p.groupby.clone())),
                                ("reference", Value::String(p.reference.clone())),
                                ("method", Value::String(p.method.name().into())),
                                ("use_raw", scalar_bool(p.raw.is_some() && p.layer.is_none())),
                                ("corr_method", Value::String(p.corr_method.clone())),
                            ]
                            .into_iter()
                            .chain(p.layer.iter().map(|l| ("layer", Value::String(l.clone()))))
                            .collect(),
                        ),
                    ),
                    ("names", Value::Records(names)),
                    ("scores", Value::Records(scores)),
                    ("logfoldchanges", Value::Records(lfcs)),
                    ("pvals", Value::Records(pvals)),
                    ("pvals_adj", Value::Records(adj)),
                ]
                .into_iter()
                .chain(extra)
                .collect(),
            ),
        );
        cx.stage(
            if p.method == RankMethod::Wilcoxon {
                "scores"
            } else {
                "t-tests"
            },
            0,
        );
        Ok(Some(Data { x: main_x, ann: a }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Genes are grouped in order while their gathered values fit; a gene too large alone
    /// still gets its block.
    #[test]
    fn gene_blocks_fit_the_working_set() {
        let fit = 10 * GATHERED_BYTES;
        assert_eq!(
            gene_blocks(&[4, 5, 1, 3, 30, 0, 2], fit),
            vec![0..3, 3..4, 4..5, 5..7]
        );
        assert_eq!(gene_blocks(&[], fit), Vec::<Range<usize>>::new());
        assert_eq!(gene_blocks(&[0, 0], 0), vec![0..2]);
    }
}
