//! `neighbors`: the kNN graph on a representation (exact or NN-descent), then UMAP's
//! connectivities, in memory.

use super::{Data, ExecNode, single};
use crate::annotations::{dict, embedding, scalar_i64};
use crate::context::RunContext;
use engine_common::{Error, Result};
use engine_ops::knn::{self, EXACT_MAX_CELLS};
use engine_store::Value;
use ndarray::s;
use std::borrow::Cow;
use std::sync::Arc;

/// How the neighbours are searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KnnSearch {
    /// Blocked brute force (scanpy below [`EXACT_MAX_CELLS`] cells).
    Exact,
    /// Random-projection trees and NN-descent.
    NnDescent,
    /// The plan only bounds the cells (a filter upstream): scanpy's switch on the real count.
    ByCells,
}

impl KnnSearch {
    /// The search for `n_obs` cells, an upper bound when `bounded`.
    pub fn for_cells(n_obs: usize, bounded: bool) -> KnnSearch {
        if n_obs < EXACT_MAX_CELLS {
            KnnSearch::Exact
        } else if bounded {
            KnnSearch::ByCells
        } else {
            KnnSearch::NnDescent
        }
    }
}

#[derive(Debug)]
pub(crate) struct NeighborsNode {
    pub n_neighbors: usize,
    pub n_pcs: Option<usize>,
    pub use_rep: String,
    pub random_state: i64,
    pub search: KnnSearch,
}

impl ExecNode for NeighborsNode {
    fn name(&self) -> &'static str {
        match self.search {
            KnnSearch::Exact => "KnnExact",
            KnnSearch::NnDescent => "KnnNnDescent",
            KnnSearch::ByCells => "Knn",
        }
    }

    fn stages(&self) -> Vec<String> {
        vec![match self.search {
            KnnSearch::Exact => {
                "in memory: exact kNN on the representation, UMAP connectivities".into()
            }
            KnnSearch::NnDescent => {
                "in memory: NN-descent kNN on the representation, UMAP connectivities".into()
            }
            KnnSearch::ByCells => format!(
                "in memory: exact kNN below {EXACT_MAX_CELLS} cells, else NN-descent, on the representation, UMAP connectivities"
            ),
        }]
    }

    fn execute(&self, inputs: Vec<Cow<'_, Data>>, cx: &mut RunContext<'_>) -> Result<Option<Data>> {
        let Data { x, ann: mut a } = single(inputs, self.name())?.into_owned();
        let use_rep = &self.use_rep;
        let rep = a
            .obsm
            .get(use_rep)
            .ok_or_else(|| Error::step(cx.step(), format!("no obsm['{use_rep}']")))?;
        let rep = embedding(rep, use_rep)?;
        let cols = self.n_pcs.unwrap_or(rep.ncols()).min(rep.ncols());
        let view = rep.slice(s![.., ..cols]);
        if self.n_neighbors > view.nrows() {
            return Err(Error::step(
                cx.step(),
                format!(
                    "`n_neighbors` must be at most the number of cells, {} reach this step, got {}",
                    view.nrows(),
                    self.n_neighbors
                ),
            ));
        }
        let exact = match self.search {
            KnnSearch::Exact => true,
            KnnSearch::NnDescent => false,
            KnnSearch::ByCells => KnnSearch::for_cells(view.nrows(), false) == KnnSearch::Exact,
        };
        let (idx, dist) = if exact {
            knn::exact_knn(view.mapv(f64::from).view(), self.n_neighbors)
        } else {
            engine_ops::nndescent::nn_descent(view, self.n_neighbors, self.random_state as u64)
        };
        // The search's lists and candidates are gone; the graphs come next.
        cx.opts.release_freed();
        // Connectivities first: their scratch is the larger, and the distances graph does not
        // exist yet while it is held.
        let connectivities = knn::umap_connectivities(&idx, &dist);
        a.obsp
            .insert("distances".into(), Arc::new(knn::distances(&idx, &dist)));
        a.obsp
            .insert("connectivities".into(), Arc::new(connectivities));
        let mut params = vec![
            ("n_neighbors", scalar_i64(self.n_neighbors as i64)),
            ("method", Value::String("umap".into())),
            ("random_state", scalar_i64(self.random_state)),
            ("metric", Value::String("euclidean".into())),
            ("use_rep", Value::String(use_rep.clone())),
        ];
        if let Some(n) = self.n_pcs {
            params.push(("n_pcs", scalar_i64(n as i64)));
        }
        a.uns.insert(
            "neighbors".into(),
            dict(vec![
                ("connectivities_key", Value::String("connectivities".into())),
                ("distances_key", Value::String("distances".into())),
                ("params", dict(params)),
            ]),
        );
        cx.stage("kNN + connectivities", 0);
        Ok(Some(Data { x, ann: a }))
    }
}
