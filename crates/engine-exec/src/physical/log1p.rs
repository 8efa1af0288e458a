//! `log1p`: a map that later passes apply; no pass of its own.

use super::{Data, ExecNode, single};
use crate::context::RunContext;
use crate::maps::XMap;
use engine_common::Result;
use engine_store::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;

#[derive(Debug)]
pub(crate) struct Log1pNode {
    pub fused: bool,
}

impl ExecNode for Log1pNode {
    fn name(&self) -> &'static str {
        "Log1p"
    }

    fn stages(&self) -> Vec<String> {
        vec![]
    }

    fn execute(&self, inputs: Vec<Cow<'_, Data>>, _: &mut RunContext<'_>) -> Result<Option<Data>> {
        let Data {
            x: mut lin,
            mut ann,
        } = single(inputs, "Log1p")?.into_owned();
        lin.push_map(XMap::Log1p, self.fused);
        ann.uns.insert("log1p".into(), Value::Dict(BTreeMap::new()));
        Ok(Some(Data { x: lin, ann }))
    }
}
