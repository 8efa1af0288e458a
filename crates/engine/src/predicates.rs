//! `where` predicates in pipelines, answered by DataFusion through `engine-sql`.

use engine_common::Result;
use std::path::Path;

#[derive(Debug, Clone, Copy, Default)]
pub struct SqlPredicates;

impl engine_plan::Predicates for SqlPredicates {
    fn mask(
        &self,
        path: &Path,
        options: &engine_store::ReadOptions,
        var: bool,
        predicate: &str,
    ) -> Result<Vec<bool>> {
        engine_sql::mask(path, options, var, predicate)
    }

    fn mask_frame(
        &self,
        frame: &engine_store::Frame,
        var: bool,
        predicate: &str,
    ) -> Result<Vec<bool>> {
        engine_sql::mask_frame(frame, var, predicate)
    }
}
