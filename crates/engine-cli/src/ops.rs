//! `engine ops [NAME]`: the operator catalogue, as a list or one operator in full.

use anyhow::{Result, bail};
use engine::{DefaultValue, OPS, OpDef};

/// Prints every operator with its summary, or `name`'s parameters, output keys and an
/// example step.
pub(crate) fn ops(name: Option<&str>) -> Result<()> {
    let Some(name) = name else {
        let width = OPS.iter().map(|o| o.name.len()).max().unwrap_or(0);
        for o in OPS {
            println!("{:width$}  {}", o.name, o.summary);
        }
        println!("\n`engine ops NAME` shows an operator's parameters and what it writes.");
        return Ok(());
    };
    let Some(op) = engine::op(name) else {
        let hint = engine::did_you_mean(name, OPS.iter().map(|o| o.name))
            .map_or(String::new(), |h| format!(" ({h})"));
        bail!(engine::EngineError::usage(format!(
            "no operator `{name}`{hint}; `engine ops` lists them"
        )));
    };
    print!("{}", describe(op));
    Ok(())
}

/// One operator in full.
fn describe(op: &OpDef) -> String {
    let mut out = format!("{}: {}\n\n", op.name, op.summary);
    out += &match op.inputs {
        0 => "input: none (a source)\n".to_string(),
        1 => "input: one step (`input: ID`)\n".to_string(),
        engine::VARIADIC => "inputs: two or more steps (`input: [A, B, …]`)\n".to_string(),
        n => format!("inputs: {n} steps\n"),
    };
    if op.params.is_empty() {
        out += "parameters: none\n";
    } else {
        out += "parameters:\n";
        let width = op.params.iter().map(|p| p.name.len()).max().unwrap_or(0);
        for p in op.params {
            let default = match p.default {
                DefaultValue::Required => "required".to_string(),
                DefaultValue::Null => "default None".to_string(),
                DefaultValue::Int(i) => format!("default {i}"),
                DefaultValue::Float(f) => format!("default {f}"),
                DefaultValue::Bool(b) => format!("default {b}"),
                DefaultValue::Str(s) => format!("default {s:?}"),
            };
            out += &format!("  {:width$}  {}, {default}\n", p.name, p.ty.describe());
        }
    }
    out += &format!("writes: {}\n", op.writes);
    let required: String = op
        .params
        .iter()
        .filter(|p| p.default == DefaultValue::Required)
        .map(|p| format!(", {}: …", p.name))
        .collect();
    let input = if op.inputs == engine::VARIADIC {
        ", input: [a, b]"
    } else if op.inputs > 0 {
        ", input: previous"
    } else {
        ""
    };
    out += &format!(
        "example:\n  - {{id: {}, op: {}{input}{required}}}\n",
        op.name, op.name
    );
    out
}
