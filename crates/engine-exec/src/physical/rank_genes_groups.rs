//! `rank_genes_groups`: one pass over X for each group's per-gene sums and sums of squares
//! (and the whole's), then Welch's t-tests per group in memory, as scanpy ranks them.

use super::{Data, ExecNode, single};
use crate::annotations::{dict, scalar_bool};
use crate::context::RunContext;
use crate::pass::fold_pass;
use crate::physical::hvg::rows_by_batch;
use engine_common::{Error, Result};
use engine_matrix::DynArray;
use engine_ops::markers::{Moments, benjamini_hochberg, bonferroni, top_scores, welch};
use engine_ops::sparse::ColumnSums;
use engine_plan::{RankGenesGroups, RankMethod};
use engine_store::{Column, Frame, Value};
use ndarray::Array1;
use std::borrow::Cow;

#[derive(Debug)]
pub(crate) struct RankGenesGroupsNode {
    pub params: RankGenesGroups,
}

impl ExecNode for RankGenesGroupsNode {
    fn name(&self) -> &'static str {
        "RankGenesGroups"
    }

    fn stages(&self) -> Vec<String> {
        vec![
            format!(
                "pass over X: per-gene sums and sums of squares per group of obs['{}']",
                self.params.groupby
            ),
            format!(
                "in memory: {} per group against {}, {} -> uns['{}']",
                self.params.method.name(),
                self.params.reference,
                self.params.corr_method,
                self.params.key_added
            ),
        ]
    }

    fn execute(&self, inputs: Vec<Cow<'_, Data>>, cx: &mut RunContext<'_>) -> Result<Option<Data>> {
        let Data { x, ann: mut a } = single(inputs, "RankGenesGroups")?.into_owned();
        let p = &self.params;
        let step = cx.step().to_string();
        let (codes, categories) = match a.obs.column(&p.groupby) {
            Some(Column::Categorical {
                codes, categories, ..
            }) => (
                codes
                    .to_i64_vec()
                    .ok_or_else(|| Error::internal("categorical codes are not integers"))?,
                (0..categories.len())
                    .map(|i| engine_store::value::render_scalar(categories, i))
                    .collect::<Vec<String>>(),
            ),
            _ => {
                return Err(Error::step(
                    &step,
                    format!("obs['{}'] must be categorical", p.groupby),
                ));
            }
        };
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
        let ((sums, total), blocks) = fold_pass(
            &x,
            &bar,
            || {
                (
                    vec![ColumnSums::new(n_vars); n_cat],
                    ColumnSums::new(n_vars),
                )
            },
            |(acc, total), r, block| {
                let m = block.to_csr()?;
                for (c, rows) in rows_by_batch(&codes, r, n_cat).iter().enumerate() {
                    acc[c].add(&m, Some(rows), |v| v);
                }
                total.add(&m, None, |v| v);
                Ok(())
            },
            |(a, ta), (b, tb)| {
                (
                    a.into_iter().zip(&b).map(|(x, y)| x.merge(y)).collect(),
                    ta.merge(&tb),
                )
            },
        )?;
        cx.stage("group sums", blocks);
        let moments =
            |s: &ColumnSums, j: usize| Moments::from_sums(s.sum[j], s.sumsq[j], s.n as f64);
        let gene_names: Vec<String> = (0..a.var.n_rows()).map(|i| a.var.index.render(i)).collect();
        let n_report = p.n_genes.unwrap_or(n_vars).min(n_vars);
        let mut fields: [Vec<(String, DynArray)>; 5] = Default::default();
        for &g in groups.iter().filter(|&&g| Some(g) != reference) {
            let group = &sums[g];
            let small = |n: u64, what: &str| {
                (n < 2).then(|| {
                    Error::step(
                        &step,
                        format!(
                            "{what} `{}` has {n} cell(s); a t-test needs at least 2",
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
                let (t, pv) = welch(mg, mr);
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
                    index_name: a.var.index_name.clone(),
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
                        dict(vec![
                            ("groupby", Value::String(p.groupby.clone())),
                            ("reference", Value::String(p.reference.clone())),
                            ("method", Value::String(p.method.name().into())),
                            ("use_raw", scalar_bool(false)),
                            ("corr_method", Value::String(p.corr_method.clone())),
                        ]),
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
        cx.stage("t-tests", 0);
        Ok(Some(Data { x, ann: a }))
    }
}
