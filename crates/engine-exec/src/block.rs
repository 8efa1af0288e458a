//! A row block of X as passes see it.

use engine_common::{Error, Result};
use engine_matrix::{AxisSelection, Csr};
use ndarray::{Array2, Axis};
use std::sync::Arc;

/// A row block of X: dense, or CSR whose absent entries equal a per-column fill (zero when
/// there is none), which keeps standardised sparse data sparse.
#[derive(Debug, Clone)]
pub(crate) enum XBlock {
    Dense(Array2<f64>),
    Sparse { x: Csr, fill: Option<Arc<Vec<f64>>> },
}

impl XBlock {
    pub fn into_dense(self) -> Array2<f64> {
        match self {
            XBlock::Dense(a) => a,
            XBlock::Sparse { x, fill } => x.to_dense(fill.as_deref().map(Vec::as_slice)),
        }
    }

    /// The block as CSR values (dense blocks keep their non-zeros), for kernels that count
    /// non-zeros; the fill must be absent.
    pub fn to_csr(&self) -> Result<std::borrow::Cow<'_, Csr>> {
        match self {
            XBlock::Sparse { x, fill: None } => Ok(std::borrow::Cow::Borrowed(x)),
            XBlock::Sparse { fill: Some(_), .. } => Err(Error::usage(
                "this step needs unscaled values (counts or normalised counts), but X was standardised by `scale` upstream",
            )),
            XBlock::Dense(a) => {
                let rows: Vec<Vec<(u32, f64)>> = a
                    .outer_iter()
                    .map(|r| {
                        r.iter()
                            .enumerate()
                            .filter(|(_, v)| **v != 0.0)
                            .map(|(j, v)| (j as u32, *v))
                            .collect()
                    })
                    .collect();
                Ok(std::borrow::Cow::Owned(Csr::from_rows(a.ncols(), &rows)))
            }
        }
    }

    pub(crate) fn take_rows(&self, local: &[usize]) -> XBlock {
        match self {
            XBlock::Dense(a) => XBlock::Dense(a.select(Axis(0), local)),
            XBlock::Sparse { x, fill } => XBlock::Sparse {
                x: x.select_rows(local),
                fill: fill.clone(),
            },
        }
    }

    /// The block's columns `cols` of `n_cols`; the block itself when that is all of them.
    pub(crate) fn with_cols(self, cols: &AxisSelection, n_cols: usize) -> XBlock {
        if cols.is_full(n_cols) {
            self
        } else {
            self.select_cols(cols)
        }
    }

    pub(crate) fn select_cols(&self, cols: &AxisSelection) -> XBlock {
        match self {
            XBlock::Dense(a) => {
                XBlock::Dense(a.select(Axis(1), &cols.indices().collect::<Vec<_>>()))
            }
            XBlock::Sparse { x, fill } => XBlock::Sparse {
                x: x.select_cols(cols),
                fill: fill
                    .as_ref()
                    .map(|f| Arc::new(cols.indices().map(|j| f[j]).collect())),
            },
        }
    }

    pub(crate) fn concat(mut parts: Vec<XBlock>, n_cols: usize) -> Result<XBlock> {
        if parts.len() == 1 {
            return Ok(parts
                .pop()
                .unwrap_or(XBlock::Dense(Array2::zeros((0, n_cols)))));
        }
        if parts.is_empty() {
            return Ok(XBlock::Dense(Array2::zeros((0, n_cols))));
        }
        if let XBlock::Sparse { fill, .. } = &parts[0] {
            let fill = fill.clone();
            let csr: Vec<Csr> = parts
                .into_iter()
                .map(|p| match p {
                    XBlock::Sparse { x, .. } => Ok(x),
                    XBlock::Dense(_) => {
                        Err(Error::internal("a lineage mixed dense and sparse blocks"))
                    }
                })
                .collect::<Result<_>>()?;
            return Ok(XBlock::Sparse {
                x: Csr::vstack(&csr, n_cols),
                fill,
            });
        }
        let dense: Vec<Array2<f64>> = parts.into_iter().map(XBlock::into_dense).collect();
        let views: Vec<_> = dense.iter().map(|p| p.view()).collect();
        ndarray::concatenate(Axis(0), &views)
            .map(XBlock::Dense)
            .map_err(|e| Error::internal(e.to_string()))
    }
}
