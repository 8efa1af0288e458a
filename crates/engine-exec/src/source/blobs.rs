//! Gaussian blobs generated block by block (`synthetic`).

use super::{BlockSource, wants_obs};
use crate::annotations::{Annotations, categorical, set_column};
use crate::block::XBlock;
use engine_common::Result;
use engine_matrix::AxisSelection;
use engine_ops::synthetic::Blobs;
use engine_plan::{Scan, Schema};
use engine_store::Frame;
use ndarray::Array2;

#[derive(Debug)]
pub(crate) struct BlobSource {
    blobs: Blobs,
    centers: Array2<f64>,
}

impl BlobSource {
    pub fn new(blobs: Blobs) -> BlobSource {
        let centers = blobs.center_matrix();
        BlobSource { blobs, centers }
    }
}

impl BlockSource for BlobSource {
    fn shape(&self) -> (usize, usize) {
        (self.blobs.n_obs, self.blobs.n_vars)
    }

    fn read(&self, rows: &AxisSelection, cols: &AxisSelection) -> Result<XBlock> {
        let (x, _) = self.blobs.rows(&self.centers, rows.indices(), rows.len());
        Ok(XBlock::Dense(x).with_cols(cols, self.blobs.n_vars))
    }

    fn annotations(
        &self,
        scan: &Scan,
        _: &Schema,
        rows: &AxisSelection,
        cols: &AxisSelection,
    ) -> Result<Annotations> {
        let row_pos: Vec<usize> = rows.indices().collect();
        let col_pos: Vec<usize> = cols.indices().collect();
        let mut a = Annotations {
            obs: Frame::with_range_index(self.blobs.n_obs).take(&row_pos),
            var: Frame::with_range_index(self.blobs.n_vars).take(&col_pos),
            ..Default::default()
        };
        if wants_obs(scan, "blob") {
            let labels: Vec<u32> = rows.indices().map(|r| self.blobs.label(r) as u32).collect();
            set_column(&mut a.obs, "blob", categorical(&labels, self.blobs.centers));
        }
        Ok(a)
    }
}
