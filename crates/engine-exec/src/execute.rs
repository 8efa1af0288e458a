//! The driver: runs a physical plan's nodes in running order (sinks as soon as their inputs
//! exist), each value handed to its consumers and dropped after the last one.

use crate::context::{RunContext, workers};
use crate::options::{ExecOptions, RunReport};
use crate::physical::{Data, PhysicalPlan};
use engine_common::{Error, Result};
use std::borrow::Cow;
use std::collections::HashMap;

impl PhysicalPlan {
    /// Runs the plan.
    ///
    /// # Errors
    /// On read/write failures or invalid data.
    pub fn run(&self, opts: &ExecOptions) -> Result<RunReport> {
        if workers() > self.workers {
            return Err(Error::internal(format!(
                "the plan was lowered for {} worker threads and runs on {}: its blocks would \
                 exceed the memory limit (lower it in the thread pool that runs it)",
                self.workers,
                workers()
            )));
        }
        let _cache = engine_store::remote::cache_budget(self.remote_cache);
        let mut cx = RunContext::new(opts);
        // Consumers still to run per node: the last one takes the value instead of copying
        // it (an embedding or a graph is tens of MB at 50k cells).
        let mut pending = vec![0usize; self.nodes.len()];
        for n in self.nodes.iter().filter(|n| n.exec.is_some()) {
            for &i in &n.inputs {
                pending[i] += 1;
            }
        }
        let mut values: HashMap<usize, Data> = HashMap::new();
        for id in self.running_order() {
            let node = &self.nodes[id];
            let Some(exec) = &node.exec else { continue };
            crate::options::check_cancel(opts.cancel.as_ref())?;
            // Each stage starts with clean vector registers on every thread (see
            // `engine_ops::cpu`), and without the previous stage's freed memory.
            engine_ops::cpu::clean_all();
            opts.release_freed();
            cx.begin(&node.step);
            let missing = |i: usize| {
                Error::internal(format!(
                    "step `{}`: input #{i} has no value (the plan is not topological)",
                    node.step
                ))
            };
            let out = if exec.is_sink() {
                let inputs = node
                    .inputs
                    .iter()
                    .map(|&i| values.get(&i).map(Cow::Borrowed).ok_or_else(|| missing(i)))
                    .collect::<Result<Vec<_>>>()?;
                let out = exec.execute(inputs, &mut cx)?;
                for &i in &node.inputs {
                    pending[i] -= 1;
                    if pending[i] == 0 {
                        values.remove(&i);
                    }
                }
                out
            } else {
                let mut inputs = Vec::with_capacity(node.inputs.len());
                for &i in &node.inputs {
                    pending[i] -= 1;
                    let v = if pending[i] == 0 {
                        values.remove(&i)
                    } else {
                        values.get(&i).cloned()
                    };
                    inputs.push(Cow::Owned(v.ok_or_else(|| missing(i))?));
                }
                exec.execute(inputs, &mut cx)?
            };
            if let Some(v) = out {
                values.insert(id, v);
            }
        }
        drop(values);
        // The last chance to stop before the outputs replace what is there.
        crate::options::check_cancel(opts.cancel.as_ref())?;
        cx.commit()?;
        Ok(cx.finish())
    }
}
