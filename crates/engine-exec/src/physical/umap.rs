//! `umap`: the layout of obsp['connectivities'] (spectral initialisation, then the seeded
//! SGD), in memory.

use super::{Data, ExecNode, single};
use crate::annotations::{dict, embedding, f32_block, scalar_f64, scalar_i64};
use crate::context::RunContext;
use engine_common::{Error, Result};
use engine_matrix::Block;
use engine_ops::umap::{self, UmapParams};
use engine_store::Value;
use ndarray::{CowArray, Ix2, s};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug)]
pub(crate) struct UmapNode {
    pub params: UmapParams,
    /// The seed as the pipeline gave it, for uns.
    pub random_state: i64,
}

impl ExecNode for UmapNode {
    fn name(&self) -> &'static str {
        "Umap"
    }

    fn stages(&self) -> Vec<String> {
        vec!["in memory: UMAP layout of obsp['connectivities']".into()]
    }

    fn execute(&self, inputs: Vec<Cow<'_, Data>>, cx: &mut RunContext<'_>) -> Result<Option<Data>> {
        let Data { x, ann: mut a } = single(inputs, "Umap")?.into_owned();
        let conn = a
            .obsp
            .get("connectivities")
            .ok_or_else(|| Error::step(cx.step(), "no obsp['connectivities']"))?;
        let params = &self.params;
        // The representation the graph was built on places disconnected components; borrowed,
        // not copied: at a million cells X_pca is 200 MB.
        let initial = match umap_representation(&a.uns, &a.obsm)? {
            Some((rep, cols)) => umap::initialize(conn, rep.slice(s![.., ..cols]), params),
            None => umap::initialize(conn, ndarray::ArrayView2::from(&[[0f32; 0]; 0]), params),
        };
        cx.stage("UMAP init", 0);
        let layout = umap::optimize(initial, params);
        a.obsm.insert("X_umap".into(), f32_block(layout.embedding));
        let mut uns = vec![("a", scalar_f64(layout.a)), ("b", scalar_f64(layout.b))];
        if self.random_state != 0 {
            uns.push(("random_state", scalar_i64(self.random_state)));
        }
        a.uns
            .insert("umap".into(), dict(vec![("params", dict(uns))]));
        cx.stage("UMAP layout", 0);
        Ok(Some(Data { x, ann: a }))
    }
}

/// The obsm matrix (and leading columns) `neighbors` built its graph on, as recorded in
/// `uns['neighbors']['params']`; `None` when there is none.
fn umap_representation<'a>(
    uns: &BTreeMap<String, Value>,
    obsm: &'a BTreeMap<String, Arc<Block>>,
) -> Result<Option<(CowArray<'a, f32, Ix2>, usize)>> {
    let params = match uns.get("neighbors") {
        Some(Value::Dict(d)) => match d.get("params") {
            Some(Value::Dict(p)) => Some(p),
            _ => None,
        },
        _ => None,
    };
    let use_rep = match params.and_then(|p| p.get("use_rep")) {
        Some(Value::String(r)) => r.as_str(),
        _ => "X_pca",
    };
    let n_pcs = match params.and_then(|p| p.get("n_pcs")) {
        Some(Value::Scalar(v)) => v.to_i64_vec().and_then(|v| v.first().copied()),
        _ => None,
    };
    Ok(match obsm.get(use_rep) {
        Some(rep) => {
            let rep = embedding(rep, use_rep)?;
            let cols = n_pcs.map_or(rep.ncols(), |n| (n.max(0) as usize).min(rep.ncols()));
            Some((rep, cols))
        }
        None => None,
    })
}
