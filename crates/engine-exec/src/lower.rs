//! Lowering: the optimized logical plan becomes a physical plan. Every choice of how to run is
//! made here, once: block sizes within the memory budget, the PCA solver, the kNN search, the
//! writer's format and compression. EXPLAIN prints the result and the executor runs it.

use crate::context::workers;
use crate::memory;
use crate::physical::dotplot::DotplotNode;
use crate::physical::filter::FilterNode;
use crate::physical::hvg::HvgNode;
use crate::physical::hvg_v3::HvgV3Node;
use crate::physical::leiden::LeidenNode;
use crate::physical::log1p::Log1pNode;
use crate::physical::neighbors::{KnnSearch, NeighborsNode};
use crate::physical::normalize_total::NormalizeTotalNode;
use crate::physical::pca::{PcaNode, PcaSolver};
use crate::physical::plot::PlotNode;
use crate::physical::preshuffle::PreshuffleNode;
use crate::physical::qc::QcNode;
use crate::physical::rank_genes_groups::RankGenesGroupsNode;
use crate::physical::rank_genes_groups_plot::RankGenesGroupsPlotNode;
use crate::physical::rank_genes_groups_violin::RankGenesGroupsViolinNode;
use crate::physical::scale::ScaleNode;
use crate::physical::scan::{self, ScanNode};
use crate::physical::umap::UmapNode;
use crate::physical::view::ViewNode;
use crate::physical::violin::ViolinNode;
use crate::physical::where_view::WhereNode;
use crate::physical::write::WriteNode;
use crate::physical::{ExecNode, PhysicalNode, PhysicalPlan};
use engine_common::{Error, Result};
use engine_matrix::{AxisSelection, DType};
use engine_ops::hvg;
use engine_plan::{
    Filter, HvgFlavor, Leiden, Log1p, LogicalPlan, Neighbors, NodeId, NormalizeTotal, Op, Pca, Qc,
    Scale, Scan, Select, Source, Umap, Where, Write, io,
};
use engine_store::backend::{Compression, StoreFormat};

/// Lowers `plan` for a run that holds at most `memory_limit` bytes (besides
/// [`RUNTIME_OVERHEAD`](crate::memory::RUNTIME_OVERHEAD)): the results the plan keeps at its
/// costliest step are estimated first, and the X blocks in flight share what is left.
///
/// # Errors
/// When a step's parameters cannot run (an unknown output format or compression), as a
/// mistake in that step; when the results alone would not fit in `memory_limit`, saying how
/// much the run needs.
pub fn lower(plan: &LogicalPlan, memory_limit: usize) -> Result<PhysicalPlan> {
    let live = live_nodes(plan);
    let estimate = memory::estimate(plan, &live, workers(), memory_limit);
    let needed = estimate.peak + memory::MIN_BLOCK_BUDGET;
    if needed > memory_limit {
        return Err(Error::usage(format!(
            "the run needs about {} MiB (at step `{}`: {}) and the memory limit is {} MiB: raise it to at least {} MiB, or select fewer cells",
            memory::mib(needed),
            estimate.step,
            estimate.what,
            memory_limit >> 20,
            memory::mib(needed)
        )));
    }
    // The X blocks get what the results leave, at their real cost; what even the largest
    // blocks leave over is spare, which Wilcoxon's gathered values take (fewer passes).
    let mut left = memory_limit - estimate.peak;
    // A remote scan whose blocks split its chunks would fetch a chunk once per block. Dense
    // chunks taller than a block: the scan gathers bands of rows, each chunk fetched once
    // per band, in half of what is left (shared by such scans). And a cache of fetched
    // chunks (a quarter of what then remains, at most 256 MiB) for the rest. Both come out
    // of the blocks' share so the limit still holds.
    let scans: Vec<(usize, &Scan)> = plan
        .nodes
        .iter()
        .zip(&live)
        .enumerate()
        .filter_map(|(id, (n, &live))| match &n.op {
            Op::Scan(s) if live && scan_is_remote(s) => Some((id, s)),
            _ => None,
        })
        .collect();
    let half = left / 2;
    // Decided once here, on the blocks half the budget would give (the final blocks are no
    // larger), so the scans that get bands are exactly the ones paid for.
    let tall: Vec<usize> = scans
        .iter()
        .filter(|(_, s)| tall_chunks(s, scan_block_rows(s, half / memory::BLOCK_COST)))
        .map(|(id, _)| *id)
        .collect();
    let band_budget = (!tall.is_empty()).then(|| half / tall.len());
    left -= band_budget.unwrap_or(0) * tall.len();
    // The cache also serves the scan's other elements (obsp rows, obs columns).
    let remote_cache = if !scans.is_empty() {
        (left / 4).min(256 << 20)
    } else {
        0
    };
    left -= remote_cache;
    let spare = left.saturating_sub(memory::BLOCK_COST * workers() * io::BLOCK_TARGET_BYTES);
    let memory_limit = left / memory::BLOCK_COST;
    let execs = plan
        .nodes
        .iter()
        .enumerate()
        .map(|(id, _)| {
            let low_memory = estimate.randomized_pca.iter().any(|(i, _)| *i == id);
            lower_node(
                plan,
                NodeId(id),
                memory_limit,
                low_memory,
                spare,
                band_budget.filter(|_| tall.contains(&id)),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let roots = root_scans(plan);
    let mut nodes = Vec::with_capacity(plan.nodes.len());
    for ((n, exec), live) in plan.nodes.iter().zip(execs).zip(live) {
        let through_view = n
            .inputs
            .first()
            .and_then(|&x| roots[x.0])
            .filter(|(_, viewed)| *viewed)
            .and_then(|(id, _)| match &plan.node(id).op {
                Op::Scan(scan) => Some(scan),
                _ => None,
            })
            .map(|scan| {
                let max_rows = scan_block_rows(scan, memory_limit);
                scan::reads(scan, &io::even_blocks(selected_rows(scan).len(), max_rows))
            });
        nodes.push(PhysicalNode {
            step: n.step.clone(),
            logical: n.op.name(),
            inputs: n.inputs.iter().map(|i| i.0).collect(),
            exec: live.then_some(exec),
            through_view,
        });
    }
    Ok(PhysicalPlan {
        nodes,
        workers: workers(),
        memory: (estimate, memory_limit),
        remote_cache,
    })
}

/// Whether a scan reads a store by URL.
fn scan_is_remote(scan: &Scan) -> bool {
    match &scan.source {
        engine_plan::Source::File { storage, .. } => storage.remote,
        engine_plan::Source::Concat(c) => c.parts.iter().any(|p| p.storage.remote),
        _ => false,
    }
}

/// Whether `scan` reads a remote dense X whose chunks hold more selected rows than a block
/// of `max_rows`: read block by block, each block would fetch those chunks again.
fn tall_chunks(scan: &Scan, max_rows: usize) -> bool {
    let Source::File { storage, .. } = &scan.source else {
        return false;
    };
    let height = match (&storage.chunks, storage.encoding) {
        (Some(c), engine_plan::XEncoding::Dense) if storage.remote && c.len() >= 2 => {
            c[0].max(1) as usize
        }
        _ => return false,
    };
    if height <= max_rows {
        return false;
    }
    // Selected rows per chunk.
    let mut per_chunk: std::collections::BTreeMap<usize, usize> = Default::default();
    for r in selected_rows(scan).runs() {
        let mut s = r.start;
        while s < r.end {
            let e = ((s / height + 1) * height).min(r.end);
            *per_chunk.entry(s / height).or_default() += e - s;
            s = e;
        }
    }
    per_chunk.values().any(|&n| n > max_rows)
}

/// `low_memory_pca`: a PCA node runs randomized, its Gram matrix being too large for the limit.
/// `spare`: bytes the limit leaves beyond the costliest step and the largest X blocks.
/// `band_budget`: bytes for this scan's bands, when it is a remote scan with chunks taller
/// than its blocks.
fn lower_node(
    plan: &LogicalPlan,
    id: NodeId,
    memory_limit: usize,
    low_memory_pca: bool,
    spare: usize,
    band_budget: Option<usize>,
) -> Result<Box<dyn ExecNode>> {
    let n = plan.node(id);
    let f32_out = n.schema.x_dtype == Some(DType::F32);
    Ok(match &n.op {
        Op::Scan(scan) => {
            let max_rows = scan_block_rows(scan, memory_limit);
            let blocks = match &scan.chunk_starts {
                Some(starts) => io::aligned_blocks(&selected_rows(scan), starts, max_rows),
                None => io::even_blocks(selected_rows(scan).len(), max_rows),
            };
            Box::new(ScanNode {
                scan: scan.clone(),
                schema: n.schema.clone(),
                max_rows,
                blocks,
                band_budget,
            })
        }
        Op::Select(Select { rows, cols }) => Box::new(ViewNode {
            rows: rows.clone(),
            cols: cols.clone(),
        }),
        Op::Where(Where {
            rows,
            cols,
            obs,
            var,
        }) => Box::new(WhereNode {
            rows: rows.clone(),
            cols: cols.clone(),
            obs: obs.clone(),
            var: var.clone(),
        }),
        Op::Qc(Qc {
            qc_vars,
            percent_top,
            log1p,
        }) => Box::new(QcNode {
            qc_vars: qc_vars.clone(),
            percent_top: percent_top.clone(),
            log1p: *log1p,
            f32_out,
        }),
        Op::Filter(Filter { var, by, min, max }) => Box::new(FilterNode {
            var: *var,
            by: *by,
            min: *min,
            max: *max,
            f32_out,
        }),
        Op::NormalizeTotal(NormalizeTotal { target_sum, fused }) => Box::new(NormalizeTotalNode {
            target_sum: *target_sum,
            fused: *fused,
        }),
        Op::Log1p(Log1p { fused }) => Box::new(Log1pNode { fused: *fused }),
        Op::Hvg(h) => {
            let params = h.clone();
            match h.flavor {
                HvgFlavor::SeuratV3 => Box::new(HvgV3Node { params }),
                HvgFlavor::Seurat => Box::new(HvgNode {
                    params,
                    dispersion: hvg::Flavor::Seurat,
                }),
                HvgFlavor::CellRanger => Box::new(HvgNode {
                    params,
                    dispersion: hvg::Flavor::CellRanger,
                }),
            }
        }
        Op::Scale(Scale {
            params,
            fused,
            moments_merged,
        }) => Box::new(ScaleNode {
            params: *params,
            fused: *fused,
            moments_merged: *moments_merged,
        }),
        Op::Pca(Pca {
            n_comps,
            n_comps_auto,
            zero_center,
            standardize,
            mask_var,
            svd_solver,
            random_state,
        }) => {
            let (n_obs, n_vars) = (n.schema.n_obs, n.schema.n_vars);
            // A mask, or a filter or subset upstream, leaves only an upper bound on the genes
            // until the run.
            let bounded = mask_var.is_some() || n.schema.var_bound;
            let solver = if low_memory_pca {
                PcaSolver::Randomized
            } else {
                PcaSolver::choose(*svd_solver, n_vars, bounded)
            };
            Box::new(PcaNode {
                n_comps: *n_comps,
                n_comps_auto: *n_comps_auto,
                zero_center: *zero_center,
                standardize: *standardize,
                mask_var: mask_var.clone(),
                solver,
                random_state: *random_state,
                n_obs,
                n_vars,
                bounded,
            })
        }
        Op::Neighbors(Neighbors {
            n_neighbors,
            n_pcs,
            use_rep,
            random_state,
        }) => Box::new(NeighborsNode {
            n_neighbors: *n_neighbors,
            n_pcs: *n_pcs,
            use_rep: use_rep.clone(),
            random_state: *random_state,
            search: KnnSearch::for_cells(n.schema.n_obs, n.schema.obs_bound),
        }),
        Op::Leiden(Leiden {
            resolution,
            random_state,
            n_iterations,
            key_added,
        }) => Box::new(LeidenNode {
            params: engine_ops::leiden::LeidenParams {
                resolution: *resolution,
                n_iterations: *n_iterations,
                seed: *random_state as u64,
                ..Default::default()
            },
            random_state: *random_state,
            key_added: key_added.clone(),
        }),
        Op::Umap(Umap {
            min_dist,
            spread,
            n_components,
            maxiter,
            alpha,
            gamma,
            negative_sample_rate,
            spectral,
            random_state,
            a,
            b,
        }) => Box::new(UmapNode {
            params: engine_ops::umap::UmapParams {
                min_dist: *min_dist,
                spread: *spread,
                n_components: *n_components,
                n_epochs: *maxiter,
                alpha: *alpha,
                gamma: *gamma,
                negative_sample_rate: *negative_sample_rate,
                a: *a,
                b: *b,
                seed: *random_state as u64,
                spectral: *spectral,
            },
            random_state: *random_state,
        }),
        Op::RankGenesGroups(r) => Box::new(RankGenesGroupsNode {
            params: r.clone(),
            working_set: memory::gather_working_set(n.schema.n_obs).saturating_add(spare),
            f32_values: n
                .inputs
                .last()
                .is_some_and(|i| plan.node(*i).schema.x_dtype == Some(DType::F32)),
        }),
        Op::Plot(p) => Box::new(PlotNode { params: p.clone() }),
        Op::Preshuffle(p) => {
            let values = memory::row_values(plan, id);
            Box::new(PreshuffleNode {
                params: p.clone(),
                dataset_rows: memory::preshuffle_rows(p, values, Some(spare)),
                dtype: if n.schema.x_dtype == Some(DType::F64) {
                    DType::F64
                } else {
                    DType::F32
                },
            })
        }
        Op::Dotplot(p) => Box::new(DotplotNode {
            params: p.clone(),
            working_set: memory::gather_working_set(n.schema.n_obs).saturating_add(spare),
        }),
        Op::RankGenesGroupsPlot(p) => Box::new(RankGenesGroupsPlotNode { params: p.clone() }),
        Op::Violin(p) => Box::new(ViolinNode { params: p.clone() }),
        Op::RankGenesGroupsViolin(p) => Box::new(RankGenesGroupsViolinNode { params: p.clone() }),
        Op::Write(Write {
            path,
            format,
            chunks,
            compression,
            storage,
            slots,
        }) => {
            let format = match format {
                Some(f) => StoreFormat::parse(f).ok_or_else(|| {
                    Error::step(
                        &n.step,
                        format!("unknown format `{f}`: use h5ad, zarr2 or zarr3"),
                    )
                })?,
                None if path.ends_with(".h5ad") => StoreFormat::H5ad,
                None => StoreFormat::Zarr2,
            };
            let compression = match compression {
                Some(c) => Compression::parse(c).map_err(|why| Error::step(&n.step, why))?,
                None => Compression::None,
            };
            compression
                .check_for(format)
                .map_err(|why| Error::step(&n.step, why))?;
            let mut elements = engine_store::ElementOptions::default();
            for e in storage {
                let compression = e
                    .compression
                    .as_deref()
                    .map(Compression::parse)
                    .transpose()
                    .map_err(|why| {
                        Error::step(&n.step, format!("storage of `{}`: {why}", e.element))
                    })?;
                if let Some(c) = &compression {
                    c.check_for(format).map_err(|why| {
                        Error::step(&n.step, format!("storage of `{}`: {why}", e.element))
                    })?;
                }
                if e.shards.is_some() && format != StoreFormat::Zarr3 {
                    return Err(Error::step(
                        &n.step,
                        format!(
                            "storage of `{}`: shards need a zarr v3 output (format: zarr3)",
                            e.element
                        ),
                    ));
                }
                let rule = engine_store::ElementRule {
                    chunks: e.chunks.clone(),
                    shards: e.shards.clone(),
                    compression,
                };
                elements
                    .add(&e.element, rule)
                    .map_err(|why| Error::step(&n.step, format!("storage: {why}")))?;
            }
            // X keeps the plan's type (float64 stays float64); anything else is float32.
            let stored = |d: Option<DType>| {
                if d == Some(DType::F64) {
                    DType::F64
                } else {
                    DType::F32
                }
            };
            let slots = slots
                .iter()
                .zip(n.inputs.iter().skip(1))
                .map(|(s, i)| (s.clone(), stored(plan.node(*i).schema.x_dtype)))
                .collect();
            Box::new(WriteNode {
                path: path.clone(),
                format,
                chunks: chunks.clone(),
                compression,
                elements,
                dtype: stored(n.schema.x_dtype),
                slots,
                block_budget: memory_limit,
            })
        }
    })
}

/// The scan's rows as positions in its source.
fn selected_rows(scan: &Scan) -> AxisSelection {
    let (n, _) = scan.source_shape();
    scan.rows
        .as_ref()
        .map_or_else(|| AxisSelection::all(n), |r| r.sel.clone())
}

/// Rows per block of passes over `scan`: as many as fit the memory budget across the
/// workers, counting a row as the values it holds (a sparse row's stored values and their
/// indices, estimated from the row pointers or the generator's library size).
fn scan_block_rows(scan: &Scan, memory_limit: usize) -> usize {
    let (n_all, m_all) = scan.source_shape();
    let cols = scan.cols.as_ref().map_or(m_all, |c| c.sel.len());
    let row_width = match &scan.source {
        Source::Counts {
            n_vars,
            library_size,
            ..
        } => (library_size * 0.6).min(*n_vars as f64) as usize * 3 / 2,
        Source::File { storage, .. } => match &storage.indptr {
            Some(indptr) => {
                let nnz = indptr.last().copied().unwrap_or(0) as f64;
                let per_row = nnz / n_all.max(1) as f64 * cols as f64 / m_all.max(1) as f64;
                (per_row * 1.5).ceil() as usize
            }
            None => cols,
        },
        // The widest of its files' rows: a block may fall in any of them. An outer join's
        // filled genes are stored values when the fill is not zero.
        Source::Concat(c) => c
            .parts
            .iter()
            .map(|p| match &p.storage.indptr {
                Some(indptr) if c.fill_value.is_none_or(|f| f == 0.0) => {
                    let nnz = indptr.last().copied().unwrap_or(0) as f64;
                    let n = p.storage.shape[0].max(1) as f64;
                    (nnz / n * cols as f64 / p.storage.shape[1].max(1) as f64 * 1.5).ceil() as usize
                }
                _ => cols,
            })
            .max()
            .unwrap_or(cols),
        Source::Synthetic { .. } => cols,
    };
    io::max_block_rows(row_width.max(1), memory_limit, workers())
}

/// The scan feeding `id`'s X, and whether a view that was not pushed down sits in between.
/// For every node, the scan its first inputs lead back to and whether a view lies between,
/// in one forward pass (walking back from each node was quadratic on long chains).
fn root_scans(plan: &LogicalPlan) -> Vec<Option<(NodeId, bool)>> {
    let mut out: Vec<Option<(NodeId, bool)>> = Vec::with_capacity(plan.nodes.len());
    for (i, n) in plan.nodes.iter().enumerate() {
        let root = match &n.op {
            Op::Scan(_) => Some((NodeId(i), false)),
            op => n
                .inputs
                .first()
                .and_then(|x| out[x.0])
                .map(|(scan, viewed)| (scan, viewed || matches!(op, Op::Select(_)))),
        };
        out.push(root);
    }
    out
}

/// Nodes some sink (a writer, a plot) depends on.
fn live_nodes(plan: &LogicalPlan) -> Vec<bool> {
    let mut live = vec![false; plan.nodes.len()];
    for i in (0..plan.nodes.len()).rev() {
        if plan.nodes[i].op.is_sink() {
            live[i] = true;
        }
        if live[i] {
            for inp in &plan.nodes[i].inputs {
                live[inp.0] = true;
            }
        }
    }
    live
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::physical::pca::GRAM_MAX_VARS;
    use engine_plan::{Node, Schema, Source, SvdSolver};

    /// blobs (n_obs x n_vars) -> [bounded cells/genes] -> pca(solver) -> neighbors -> write.
    fn pipeline(n_obs: usize, n_vars: usize, bounded: bool, solver: SvdSolver) -> LogicalPlan {
        let schema = Schema {
            n_obs,
            n_vars,
            x_dtype: Some(DType::F32),
            obs_bound: bounded,
            var_bound: bounded,
            ..Default::default()
        };
        let node = |step: &str, op: Op, inputs: Vec<NodeId>| Node {
            step: step.into(),
            op,
            inputs,
            schema: schema.clone(),
        };
        let source = Source::Synthetic {
            n_obs,
            n_vars,
            centers: 2,
            cluster_std: 1.0,
            seed: 1,
            dtype: DType::F32,
        };
        LogicalPlan {
            nodes: vec![
                node("data", Op::Scan(Scan::new(source)), vec![]),
                node(
                    "pcs",
                    Op::Pca(Pca {
                        n_comps: 10,
                        n_comps_auto: false,
                        zero_center: true,
                        standardize: None,
                        mask_var: None,
                        svd_solver: solver,
                        random_state: 0,
                    }),
                    vec![NodeId(0)],
                ),
                node(
                    "graph",
                    Op::Neighbors(Neighbors {
                        n_neighbors: 15,
                        n_pcs: None,
                        use_rep: "X_pca".into(),
                        random_state: 0,
                    }),
                    vec![NodeId(1)],
                ),
                node(
                    "out",
                    Op::Write(Write {
                        path: "out.h5ad".into(),
                        format: None,
                        chunks: None,
                        compression: None,
                        storage: vec![],
                        slots: vec![],
                    }),
                    vec![NodeId(2)],
                ),
            ],
        }
    }

    /// `(step, physical name)` of every stage line.
    fn stages(plan: &LogicalPlan) -> Vec<(String, String)> {
        // Solver and search choices, whatever memory they need.
        lower(plan, 1 << 40)
            .unwrap()
            .explain()
            .lines()
            .filter(|l| l.starts_with("stage "))
            .map(|l| {
                let rest = l.split_once(": ").unwrap().1;
                let (step, tail) = rest.split_once(" (").unwrap();
                (
                    step.to_string(),
                    tail.split_once(')').unwrap().0.to_string(),
                )
            })
            .collect()
    }

    fn name_of(plan: &LogicalPlan, step: &str) -> String {
        stages(plan)
            .into_iter()
            .find(|(s, _)| s == step)
            .map(|(_, n)| n)
            .unwrap()
    }

    #[test]
    fn pca_solver_is_chosen_in_lowering_from_the_gene_count() {
        let at = |n_vars, bounded, s| name_of(&pipeline(1000, n_vars, bounded, s), "pcs");
        assert_eq!(at(GRAM_MAX_VARS, false, SvdSolver::Auto), "PcaGram");
        assert_eq!(
            at(GRAM_MAX_VARS + 1, false, SvdSolver::Auto),
            "PcaRandomized"
        );
        // Only a bound on the genes: at most GRAM_MAX_VARS is still surely the Gram.
        assert_eq!(at(GRAM_MAX_VARS, true, SvdSolver::Auto), "PcaGram");
        assert_eq!(at(GRAM_MAX_VARS + 1, true, SvdSolver::Auto), "PcaAuto");
        assert_eq!(at(20_000, false, SvdSolver::CovarianceEigh), "PcaGram");
        assert_eq!(at(50, true, SvdSolver::Randomized), "PcaRandomized");
    }

    /// Under a limit the Gram of 4,000 genes (128 MB per worker, 384 MB to decompose) does
    /// not fit, `auto` runs randomized and EXPLAIN says why; an explicit `covariance_eigh`
    /// is refused instead, and with room the Gram stays.
    #[test]
    fn a_gram_that_does_not_fit_runs_randomized() {
        let limit = 200 << 20;
        let explain = |s| lower(&pipeline(1000, 4000, false, s), limit).map(|p| p.explain());
        let text = explain(SvdSolver::Auto).unwrap();
        assert!(text.contains("pcs (PcaRandomized)"), "{text}");
        assert!(
            text.contains("step `pcs` runs PCA randomized: its Gram matrices would need about"),
            "{text}"
        );
        let e = explain(SvdSolver::CovarianceEigh).unwrap_err().to_string();
        assert!(e.contains("at step `pcs`: the PCA Gram matrices"), "{e}");
        assert_eq!(
            name_of(&pipeline(1000, 4000, false, SvdSolver::Auto), "pcs"),
            "PcaGram"
        );
    }

    #[test]
    fn knn_search_is_chosen_in_lowering_from_the_cell_count() {
        let at = |n_obs, bounded| name_of(&pipeline(n_obs, 50, bounded, SvdSolver::Auto), "graph");
        assert_eq!(at(engine_ops::knn::EXACT_MAX_CELLS - 1, false), "KnnExact");
        assert_eq!(at(engine_ops::knn::EXACT_MAX_CELLS, false), "KnnNnDescent");
        // A bound below the switch is surely exact; above it, the run decides.
        assert_eq!(at(engine_ops::knn::EXACT_MAX_CELLS - 1, true), "KnnExact");
        assert_eq!(at(engine_ops::knn::EXACT_MAX_CELLS, true), "Knn");
    }

    #[test]
    fn scan_blocks_in_explain_are_the_blocks_that_run() {
        // 100,000 float32 rows of 1,000 values within 8 MiB on every worker: the limit is
        // what the results hold plus 8 MiB of blocks at their real cost.
        let plan = pipeline(100_000, 1000, false, SvdSolver::Auto);
        let held = memory::estimate(&plan, &live_nodes(&plan), workers(), usize::MAX).peak;
        let lowered = lower(&plan, held + memory::BLOCK_COST * (8 << 20)).unwrap();
        let max_rows = io::max_block_rows(1000, 8 << 20, workers());
        let want = 100_000usize.div_ceil(max_rows);
        assert!(
            lowered
                .explain()
                .contains(&format!("scan data: each pass generated in {want} blocks")),
            "{}",
            lowered.explain()
        );
    }

    #[test]
    fn an_unknown_output_format_is_a_mistake_in_its_step() {
        let mut plan = pipeline(100, 5, false, SvdSolver::Auto);
        if let Op::Write(Write { format, .. }) = &mut plan.nodes[3].op {
            *format = Some("parquet".into());
        }
        match lower(&plan, 256 << 20) {
            Err(Error::Step { step, message }) => {
                assert_eq!(step, "out");
                assert!(message.contains("unknown format `parquet`"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nodes_no_output_needs_are_skipped() {
        let mut plan = pipeline(100, 5, false, SvdSolver::Auto);
        // The writer reads the PCA directly: the graph is dead.
        plan.nodes[3].inputs = vec![NodeId(1)];
        let text = lower(&plan, 256 << 20).unwrap().explain();
        assert!(
            text.contains("-- graph (Neighbors) not needed by any output: skipped"),
            "{text}"
        );
        assert!(!stages(&plan).iter().any(|(s, _)| s == "graph"));
    }

    /// A value is held while the steps between its producer and its last consumer run: an
    /// output of `pcs` listed last runs right after `pcs` and costs nothing later, while a
    /// second PCA on `data` after `graph` keeps `data` alive through `graph`.
    #[test]
    fn values_kept_for_later_steps_are_counted() {
        // Few genes and many neighbours: the kNN step is the costliest.
        let (n, d) = (50_000, 200);
        let mut base = pipeline(n, d, false, SvdSolver::Auto);
        if let Op::Neighbors(nb) = &mut base.nodes[2].op {
            nb.n_neighbors = 50;
        }
        let estimate = |p: &LogicalPlan| {
            let e = memory::estimate(p, &live_nodes(p), 2, usize::MAX);
            (e.peak, e.step)
        };
        let (peak, step) = estimate(&base);
        assert_eq!(step, "graph");

        let mut late_output = base.clone();
        let mut write = late_output.nodes[3].clone();
        write.step = "pcs:write".into();
        write.inputs = vec![NodeId(1)];
        late_output.nodes.push(write);
        assert_eq!(estimate(&late_output), (peak, "graph".into()));

        let mut late_pca = base.clone();
        let mut pca = late_pca.nodes[1].clone();
        pca.step = "pcs2".into();
        late_pca.nodes.insert(3, pca);
        let mut write = late_pca.nodes[4].clone();
        write.step = "pcs2:write".into();
        write.inputs = vec![NodeId(3)];
        late_pca.nodes.push(write);
        // data's frames (index strings, no columns) are held through graph.
        let frames = n * 56 + d * 56;
        assert_eq!(estimate(&late_pca), (peak + frames, "graph".into()));
    }
}
