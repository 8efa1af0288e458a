//! Sparse single-cell-like counts generated block by block (`synthetic_counts`).

use super::{BlockSource, wants_obs};
use crate::annotations::{Annotations, named_categorical, set_column};
use crate::block::XBlock;
use engine_common::Result;
use engine_matrix::AxisSelection;
use engine_ops::counts::{Counts, CountsModel};
use engine_plan::{Scan, Schema};
use engine_store::{Column, Frame};

#[derive(Debug)]
pub(crate) struct CountsSource {
    counts: Counts,
    model: CountsModel,
}

impl CountsSource {
    pub fn new(counts: Counts) -> CountsSource {
        let model = counts.model();
        CountsSource { counts, model }
    }
}

impl BlockSource for CountsSource {
    fn shape(&self) -> (usize, usize) {
        (self.counts.n_obs, self.counts.n_vars)
    }

    fn read(&self, rows: &AxisSelection, cols: &AxisSelection) -> Result<XBlock> {
        let x = XBlock::Sparse {
            x: self.model.rows(rows.indices()),
            fill: None,
        };
        Ok(x.with_cols(cols, self.counts.n_vars))
    }

    fn annotations(
        &self,
        scan: &Scan,
        _: &Schema,
        rows: &AxisSelection,
        cols: &AxisSelection,
    ) -> Result<Annotations> {
        let counts = &self.counts;
        let row_pos: Vec<usize> = rows.indices().collect();
        let col_pos: Vec<usize> = cols.indices().collect();
        let names = counts.var_names();
        let mut a = Annotations {
            obs: Frame::with_range_index(counts.n_obs).take(&row_pos),
            var: Frame {
                index_name: "_index".into(),
                index: Column::Plain(engine_store::encoding::str_array(
                    col_pos.iter().map(|&j| names[j].clone()),
                )),
                columns: vec![],
            },
            ..Default::default()
        };
        let label = |name: &str, k: usize, f: &dyn Fn(usize) -> usize| {
            let codes: Vec<u32> = row_pos.iter().map(|&r| f(r) as u32).collect();
            named_categorical(&codes, (0..k).map(|c| format!("{name}{c}")))
        };
        if wants_obs(scan, "cell_type") {
            let c = label("type_", counts.n_types, &|r| counts.cell_type(r));
            set_column(&mut a.obs, "cell_type", c);
        }
        if wants_obs(scan, "batch") {
            let c = label("batch_", counts.n_batches, &|r| counts.batch(r));
            set_column(&mut a.obs, "batch", c);
        }
        Ok(a)
    }
}
