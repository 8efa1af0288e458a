//! Input references resolved into a DAG, with steps in a topological order.

use super::{Cx, Step, Unresolved};
use crate::diag::{Diagnostic, Span, did_you_mean};
use std::collections::HashMap;

impl Cx {
    pub(super) fn unknown_step(&mut self, s: &str, span: Span, steps: &[Unresolved]) {
        let d = Diagnostic::new(span, format!("no step with id `{s}`"));
        self.diags.push(
            match did_you_mean(s, steps.iter().map(|(st, _)| st.id.as_str())) {
                Some(h) => d.with_help(h),
                None => d,
            },
        );
    }

    /// Reports a reference to a step that produces no data (a plot), naming what it reads.
    pub(super) fn no_data(&mut self, s: &str, span: Span, steps: &[Unresolved]) -> bool {
        let Some((step, inputs)) = steps.iter().find(|(st, _)| st.id == s) else {
            return false;
        };
        if step.op.produces_data() {
            return false;
        }
        let d = Diagnostic::new(
            span,
            format!(
                "step `{s}` is a {}, which produces no data to take",
                step.op.name
            ),
        );
        self.diags.push(match inputs.first() {
            Some((from, _)) => d.with_help(format!("take its input, `{from}`")),
            None => d,
        });
        true
    }

    /// Resolves inputs and orders steps so inputs come first; reports dangling references and
    /// cycles. The DAG comes from the references, never from the order in the file.
    pub(super) fn order(&mut self, steps: Vec<Unresolved>) -> Vec<Step> {
        let index: HashMap<String, usize> = steps
            .iter()
            .enumerate()
            .map(|(i, (s, _))| (s.id.clone(), i))
            .collect();
        let mut edges: Vec<Vec<usize>> = vec![vec![]; steps.len()];
        for (i, (step, inputs)) in steps.iter().enumerate() {
            for (name, span) in inputs {
                match index.get(name) {
                    Some(&j) if j == i => {
                        self.err(*span, format!("step `{}` uses itself as input", step.id))
                    }
                    Some(&j) => {
                        self.no_data(name, *span, &steps);
                        edges[i].push(j);
                    }
                    None => self.unknown_step(name, *span, &steps),
                }
            }
        }
        // Depth-first topological sort with an explicit stack (a 200k-step chain overflowed the
        // call stack); a grey node seen again closes a cycle.
        let mut state = vec![0u8; steps.len()];
        let mut order = Vec::with_capacity(steps.len());
        for root in 0..steps.len() {
            if state[root] != 0 {
                continue;
            }
            let mut cycle = None;
            let mut stack = vec![(root, 0usize)];
            state[root] = 1;
            while let Some((i, next)) = stack.last_mut() {
                let i = *i;
                match edges[i].get(*next) {
                    Some(&j) => {
                        *next += 1;
                        match state[j] {
                            0 => {
                                state[j] = 1;
                                stack.push((j, 0));
                            }
                            1 => cycle = cycle.or(Some(j)),
                            _ => {}
                        }
                    }
                    None => {
                        state[i] = 2;
                        order.push(i);
                        stack.pop();
                    }
                }
            }
            if let Some(j) = cycle {
                let (s, inputs) = &steps[j];
                let span = inputs.first().map_or(s.span, |(_, sp)| *sp);
                self.err(span, format!("steps form a cycle through `{}`", s.id));
            }
        }
        let mut steps: Vec<Option<Unresolved>> = steps.into_iter().map(Some).collect();
        order
            .into_iter()
            .filter_map(|i| steps[i].take())
            .map(|(mut s, inputs)| {
                s.inputs = inputs.into_iter().map(|(n, _)| n).collect();
                s
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::spec::tests::GOOD;
    use crate::spec::{Arg, parse_yaml};

    /// A plot writes only its image: a step or an output that takes it is refused where it
    /// names it, pointing at the plot's own input (`run` met a missing value).
    #[test]
    fn a_plot_is_not_an_input() {
        let src = "\
version: 1
steps:
  - {id: data, op: synthetic, n_obs: 200, n_vars: 10}
  - {id: pcs, op: pca, input: data, n_comps: 3}
  - {id: fig, op: plot, input: pcs, path: pca.png}
  - {id: again, op: log1p, input: fig}
outputs:
  - {step: fig, path: out.h5ad}
  - {step: again, path: again.h5ad, raw: fig}
";
        let e = parse_yaml("p.yaml", src, &[]).unwrap_err();
        let mut items = e.items.clone();
        items.sort_by_key(|d| (d.span.line, d.span.col));
        let got: Vec<String> = items
            .iter()
            .map(|d| {
                let help = d.help.clone().unwrap_or_default();
                format!("{}:{}: {} ({help})", d.span.line, d.span.col, d.message)
            })
            .collect();
        let want = "is a plot, which produces no data to take (take its input, `pcs`)";
        assert_eq!(
            got,
            [
                format!("6:35: step `fig` {want}"),
                format!("8:12: step `fig` {want}"),
                format!("9:42: step `fig` {want}"),
            ],
        );
    }

    #[test]
    fn steps_follow_references_not_file_order() {
        let spec = parse_yaml("p.yaml", GOOD, &[]).unwrap();
        let ids: Vec<&str> = spec.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["data", "scaled", "pcs", "graph", "clusters"]);
        let pcs = spec.step("pcs").unwrap();
        assert_eq!(pcs.arg("n_comps"), &Arg::Int(10));
        assert_eq!(
            pcs.arg("svd_solver"),
            &Arg::Str("auto".into()),
            "defaults are filled in"
        );
        assert_eq!(spec.step("data").unwrap().arg("n_obs"), &Arg::Int(1000));
        assert_eq!(
            spec.step("data").unwrap().arg("cluster_std"),
            &Arg::Float(1.0)
        );
        assert_eq!(spec.step("graph").unwrap().arg("n_pcs"), &Arg::Null);
        assert_eq!(spec.outputs[0].path, "out/result.h5ad");
        assert_eq!(spec.outputs[0].chunks, Some(vec![100, 0]));
    }
}
