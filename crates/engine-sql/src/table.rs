//! obs and var as DataFusion tables that read lazily: the schema comes from metadata and a
//! scan reads only the projected columns (plus the index), in batches.

use crate::GeneRef;
use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Float64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;
use engine_common::{Error, Result};
use engine_matrix::AxisSelection;
use engine_store::Dataset;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Rows per record batch handed to DataFusion.
const BATCH_ROWS: usize = 65_536;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    Obs,
    Var,
}

impl Axis {
    pub fn name(self) -> &'static str {
        match self {
            Axis::Obs => "obs",
            Axis::Var => "var",
        }
    }
}

/// One dataset's obs or var.
#[derive(Debug)]
pub struct FrameTable {
    ds: Arc<Dataset>,
    axis: Axis,
    schema: SchemaRef,
    /// Frame columns (after the index) in schema order.
    columns: Vec<String>,
    /// Genes offered as hidden columns after the frame columns, with their var position.
    genes: Vec<(GeneRef, usize)>,
}

fn external(e: Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

impl FrameTable {
    /// Opens the table from metadata; `genes` are looked up in the var index.
    ///
    /// # Errors
    /// When the frame is damaged or a gene is not in var.
    pub fn open(ds: Arc<Dataset>, axis: Axis, genes: &BTreeSet<GeneRef>) -> Result<FrameTable> {
        let store = ds.store().clone();
        let base = if ds.has(axis.name())? {
            engine_store::arrow::frame_schema(store.as_ref(), axis.name())?
        } else {
            let n = match axis {
                Axis::Obs => ds.n_obs(),
                Axis::Var => ds.n_vars(),
            };
            let f = engine_store::Frame::with_range_index(n);
            engine_store::arrow::frame_to_batch(&f)?
                .schema()
                .as_ref()
                .clone()
        };
        let columns: Vec<String> = base
            .fields()
            .iter()
            .skip(1)
            .map(|f| f.name().clone())
            .collect();
        let mut gene_pos = Vec::new();
        if !genes.is_empty() {
            let var = ds.var(Some(&[]))?;
            let names: Vec<String> = (0..var.n_rows()).map(|i| var.index.render(i)).collect();
            for g in genes {
                if let Some(l) = &g.layer
                    && let Some(there) = engine_store::missing_layer(ds.store().as_ref(), l)?
                {
                    return Err(Error::usage(format!(
                        "{}: no layer '{l}' in {} ({there})",
                        g.call(),
                        ds.path().display()
                    )));
                }
                let name = &g.name;
                match names.iter().position(|n| n == name) {
                    Some(p) => gene_pos.push((g.clone(), p)),
                    None => {
                        let hint = names
                            .iter()
                            .map(|n| (strsim::jaro_winkler(n, name), n))
                            .filter(|(s, _)| *s > 0.85)
                            .max_by(|a, b| a.0.total_cmp(&b.0))
                            .map_or(String::new(), |(_, n)| format!(" (did you mean `{n}`?)"));
                        return Err(Error::usage(format!(
                            "{}: no such gene in the var index of {}{hint}",
                            g.call(),
                            ds.path().display()
                        )));
                    }
                }
            }
        }
        let mut fields: Vec<Field> = base.fields().iter().map(|f| f.as_ref().clone()).collect();
        for (g, _) in &gene_pos {
            fields.push(Field::new(g.column(), DataType::Float64, false));
        }
        let schema = Arc::new(Schema::new(fields).with_metadata(base.metadata().clone()));
        Ok(FrameTable {
            ds,
            axis,
            schema,
            columns,
            genes: gene_pos,
        })
    }

    /// The columns at `projection` (schema positions), in that order, as batches.
    fn read(&self, projection: &[usize]) -> Result<Vec<RecordBatch>> {
        let n_frame = 1 + self.columns.len();
        let wanted: Vec<String> = projection
            .iter()
            .filter(|&&i| (1..n_frame).contains(&i))
            .map(|&i| self.columns[i - 1].clone())
            .collect();
        let frame = match self.axis {
            Axis::Obs => self.ds.obs(Some(&wanted))?,
            Axis::Var => self.ds.var(Some(&wanted))?,
        };
        let batch = engine_store::arrow::frame_to_batch(&frame)?;
        let genes = self.gene_columns(projection, n_frame)?;
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(projection.len());
        for &i in projection {
            if i == 0 {
                arrays.push(batch.column(0).clone());
            } else if i < n_frame {
                let name = &self.columns[i - 1];
                let pos = batch
                    .schema()
                    .index_of(name)
                    .map_err(|_| Error::internal(format!("column `{name}` was not read")))?;
                arrays.push(batch.column(pos).clone());
            } else {
                let g = genes
                    .iter()
                    .find(|(j, _)| *j == i)
                    .ok_or_else(|| Error::internal("gene column not read"))?;
                arrays.push(g.1.clone());
            }
        }
        let schema = Arc::new(
            self.schema
                .project(projection)
                .map_err(|e| Error::internal(e.to_string()))?,
        );
        let n = frame.n_rows();
        let full = if arrays.is_empty() {
            RecordBatch::try_new_with_options(
                schema.clone(),
                vec![],
                &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(n)),
            )
        } else {
            RecordBatch::try_new(schema.clone(), arrays)
        }
        .map_err(|e| Error::internal(e.to_string()))?;
        Ok((0..n.max(1))
            .step_by(BATCH_ROWS)
            .map(|s| full.slice(s, BATCH_ROWS.min(n - s.min(n))))
            .collect())
    }

    /// Reads the projected gene columns, from X or their layer, in one pass over row blocks
    /// per matrix.
    fn gene_columns(&self, projection: &[usize], n_frame: usize) -> Result<Vec<(usize, ArrayRef)>> {
        let picked: Vec<(usize, &GeneRef, usize)> = projection
            .iter()
            .filter(|&&i| i >= n_frame)
            .map(|&i| {
                let (g, pos) = &self.genes[i - n_frame];
                (i, g, *pos)
            })
            .collect();
        let layers: BTreeSet<Option<&String>> = picked.iter().map(|p| p.1.layer.as_ref()).collect();
        let mut out = Vec::with_capacity(picked.len());
        for layer in layers {
            let x = match layer {
                None => self
                    .ds
                    .x()?
                    .ok_or_else(|| Error::usage("gene(): the dataset has no X"))?,
                Some(l) => self.ds.matrix(&format!("layers/{l}"))?,
            };
            let here: Vec<(usize, usize)> = picked
                .iter()
                .filter(|p| p.1.layer.as_ref() == layer)
                .map(|p| (p.0, p.2))
                .collect();
            out.extend(read_columns(&x, &here)?);
        }
        Ok(out)
    }
}

/// Columns of `x` as f64 arrays, one pass over row blocks: `(schema position, column)` pairs.
fn read_columns(
    x: &engine_store::Matrix,
    picked: &[(usize, usize)],
) -> Result<Vec<(usize, ArrayRef)>> {
    let cols: Vec<usize> = picked.iter().map(|p| p.1).collect();
    let sel = AxisSelection::from_indices(&cols);
    let order: Vec<usize> = sel.indices().collect();
    let n = x.n_rows();
    let mut values: Vec<Vec<f64>> = vec![Vec::with_capacity(n); picked.len()];
    let rows_per_block = (8 << 20) / (8 * x.n_cols().max(1)).max(1);
    for start in (0..n).step_by(rows_per_block.max(1024)) {
        let r = start..(start + rows_per_block.max(1024)).min(n);
        let block = x
            .read_block(&AxisSelection::range(r.clone()), &sel)?
            .to_dense()
            .to_f64_vec()
            .ok_or_else(|| Error::usage("gene(): the matrix is not numeric"))?;
        for (k, (_, col)) in picked.iter().enumerate() {
            let j = order.iter().position(|c| c == col).unwrap_or(0);
            values[k].extend((0..r.len()).map(|row| block[row * order.len() + j]));
        }
    }
    Ok(picked
        .iter()
        .zip(values)
        .map(|((i, _), v)| (*i, Arc::new(Float64Array::from(v)) as ArrayRef))
        .collect())
}

#[async_trait]
impl TableProvider for FrameTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let all: Vec<usize> = (0..self.schema.fields().len()).collect();
        let projection = projection.unwrap_or(&all);
        let batches = self.read(projection).map_err(external)?;
        let schema = Arc::new(self.schema.project(projection)?);
        Ok(MemorySourceConfig::try_new_exec(&[batches], schema, None)?)
    }
}
