//! `engine run`, `explain` and `check`: a pipeline through the library's facade.

use crate::alloc::release_freed_memory;
use crate::args::parse_params;
use anyhow::Result;
use std::io::IsTerminal;
use std::path::Path;

/// Loads a pipeline; its problems are printed with their places and become one usage error.
fn load(path: &Path, params: &[String]) -> Result<engine::Pipeline> {
    let overrides = parse_params(params)?;
    engine::Pipeline::from_file(path, &overrides).map_err(report)
}

/// Prints a pipeline's diagnostics (snippets and carets) before they become the exit error.
fn report(e: engine::Error) -> anyhow::Error {
    match e {
        engine::Error::Pipeline(d) => {
            eprintln!("{}", d.render());
            let n = d.items.len();
            engine::EngineError::usage(format!(
                "{n} problem{} in {}",
                if n == 1 { "" } else { "s" },
                d.file
            ))
            .into()
        }
        engine::Error::Engine(e) => e.into(),
    }
}

fn options(memory_limit: usize, disabled_rules: Vec<String>, overwrite: bool) -> engine::Options {
    engine::Options {
        memory_limit,
        disabled_rules,
        // Bars only for a person watching; logs and pipes stay clean.
        progress: std::io::stdout().is_terminal() && std::io::stderr().is_terminal(),
        overwrite,
        release_memory: Some(release_freed_memory),
        distributor: None,
        // The binary's signal thread removes the temporaries and exits (signals.rs).
        cancel: None,
    }
}

pub(crate) fn explain(
    path: &Path,
    params: &[String],
    memory_limit: usize,
    disabled_rules: Vec<String>,
) -> Result<()> {
    let pipeline = load(path, params)?;
    // Explaining writes nothing: existing outputs do not matter.
    let plans =
        engine::plan(&pipeline, &options(memory_limit, disabled_rules, true)).map_err(report)?;
    print!("{}", plans.explain());
    Ok(())
}

pub(crate) fn run(
    path: &Path,
    params: &[String],
    memory_limit: usize,
    disabled_rules: Vec<String>,
    metrics: bool,
    overwrite: bool,
) -> Result<()> {
    let pipeline = load(path, params)?;
    run_pipeline(
        &pipeline,
        &options(memory_limit, disabled_rules, overwrite),
        metrics,
    )
}

/// `engine concat`'s arguments besides the paths: the `concat` step's.
pub(crate) struct ConcatArgs {
    pub join: String,
    pub label: Option<String>,
    pub keys: Option<String>,
    pub index_unique: Option<String>,
    pub fill_value: Option<f64>,
    pub merge: Option<String>,
    pub uns_merge: Option<String>,
}

/// `engine concat IN... OUT`: the pipeline of a `read` per input, one `concat` and an output,
/// checked and run as any other, so it refuses and streams the same way.
pub(crate) fn concat(
    paths: &[std::path::PathBuf],
    args: &ConcatArgs,
    memory_limit: usize,
    metrics: bool,
    overwrite: bool,
) -> Result<()> {
    let (out, inputs) = paths
        .split_last()
        .ok_or_else(|| anyhow::anyhow!("concat needs inputs and an output"))?;
    let (mut text, ids) = reads("concat", inputs);
    text += &format!(
        "  - {{id: concat, op: concat, inputs: [{}], join: {}",
        ids.join(", "),
        q(&args.join)
    );
    for (key, value) in [
        ("label", &args.label),
        ("keys", &args.keys),
        ("index_unique", &args.index_unique),
        ("merge", &args.merge),
        ("uns_merge", &args.uns_merge),
    ] {
        if let Some(v) = value {
            text += &format!(", {key}: {}", q(v));
        }
    }
    if let Some(f) = args.fill_value {
        text += &format!(", fill_value: {f:?}");
    }
    text += &format!(
        "}}\noutputs:\n  - {{step: concat, path: {}}}\n",
        q(&out.display().to_string())
    );
    let pipeline =
        engine::Pipeline::from_text("engine concat", &text, false, &[]).map_err(report)?;
    run_pipeline(
        &pipeline,
        &options(memory_limit, Vec::new(), overwrite),
        metrics,
    )
}

/// YAML single-quoted scalars: a quote is doubled.
fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A pipeline's head with a `read` step per input (`in0`, `in1`, …), and their ids.
fn reads(name: &str, inputs: &[std::path::PathBuf]) -> (String, Vec<String>) {
    let mut text = format!("version: 1\nname: {name}\nsteps:\n");
    let mut ids = Vec::new();
    for (i, p) in inputs.iter().enumerate() {
        text += &format!(
            "  - {{id: in{i}, op: read, path: {}}}\n",
            q(&p.display().to_string())
        );
        ids.push(format!("in{i}"));
    }
    (text, ids)
}

/// `engine preshuffle`'s arguments besides the paths: the `preshuffle` step's.
pub(crate) struct PreshuffleArgs {
    pub dataset_size: Option<String>,
    pub shuffle_chunk_size: usize,
    pub n_obs_per_chunk: usize,
    pub shard_size: String,
    pub seed: u64,
    pub groupby: Option<String>,
    pub var_subset: Option<String>,
}

/// `engine preshuffle IN... OUT`: a `read` per input, their outer-joined concatenation with
/// each cell's file in `obs['src_path']` (as annbatch records it), and a `preshuffle` step.
pub(crate) fn preshuffle(
    paths: &[std::path::PathBuf],
    args: &PreshuffleArgs,
    memory_limit: usize,
    metrics: bool,
    overwrite: bool,
) -> Result<()> {
    let (out, inputs) = paths
        .split_last()
        .ok_or_else(|| anyhow::anyhow!("preshuffle needs inputs and an output"))?;
    let (mut text, ids) = reads("preshuffle", inputs);
    let input = if ids.len() > 1 {
        let keys: Vec<String> = inputs.iter().map(|p| q(&p.display().to_string())).collect();
        text += &format!(
            "  - {{id: all, op: concat, inputs: [{}], join: outer, label: src_path, keys: [{}]}}\n",
            ids.join(", "),
            keys.join(", ")
        );
        "all".to_string()
    } else {
        ids[0].clone()
    };
    text += &format!(
        "  - {{id: shuffled, op: preshuffle, input: {input}, path: {}, shuffle_chunk_size: {}, n_obs_per_chunk: {}, shard_size: {}, seed: {}",
        q(&out.display().to_string()),
        args.shuffle_chunk_size,
        args.n_obs_per_chunk,
        q(&args.shard_size),
        args.seed
    );
    for (key, value) in [
        ("dataset_size", &args.dataset_size),
        ("groupby", &args.groupby),
        ("var_subset", &args.var_subset),
    ] {
        if let Some(v) = value {
            text += &format!(", {key}: {}", q(v));
        }
    }
    text += "}\n";
    let pipeline =
        engine::Pipeline::from_text("engine preshuffle", &text, false, &[]).map_err(report)?;
    run_pipeline(
        &pipeline,
        &options(memory_limit, Vec::new(), overwrite),
        metrics,
    )
}

/// Plans and runs a loaded pipeline, printing what it wrote (and, with `metrics`, per stage
/// figures).
fn run_pipeline(pipeline: &engine::Pipeline, opts: &engine::Options, metrics: bool) -> Result<()> {
    let fetched = engine::fetched();
    let plans = engine::plan(pipeline, opts).map_err(report)?;
    let t = std::time::Instant::now();
    let report = engine::run(&plans, opts).map_err(report)?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    for o in &report.outputs {
        eprintln!("wrote {o}");
    }
    eprintln!("done in {:.2}s", t.elapsed().as_secs_f64());
    if metrics {
        println!(
            "{:<36} {:>9} {:>7} {:>12} {:>10}",
            "stage", "seconds", "blocks", "bytes", "peak MiB"
        );
        for s in &report.stages {
            let peak = s
                .peak_rss_kib
                .map_or("?".into(), |k| format!("{:.1}", k as f64 / 1024.0));
            println!(
                "{:<36} {:>9.3} {:>7} {:>12} {:>10}",
                s.name, s.seconds, s.blocks, s.bytes, peak
            );
        }
        let peak = engine::peak_rss_kib().map_or("unknown".into(), |k| {
            format!("{:.1} MiB", k as f64 / 1024.0)
        });
        println!("peak memory: {peak}");
        let remote = engine::fetched() - fetched;
        if remote.requests > 0 {
            println!(
                "remote: {} requests, {} bytes",
                remote.requests, remote.bytes
            );
        }
    }
    Ok(())
}

/// Validates the pipeline and plans it down to the physical plan (reading the inputs'
/// metadata, not their data), so whatever `run` would reject before reading data is
/// rejected here.
pub(crate) fn check(
    path: &Path,
    params: &[String],
    memory_limit: usize,
    overwrite: bool,
) -> Result<()> {
    let pipeline = load(path, params)?;
    let opts = engine::Options {
        overwrite,
        memory_limit,
        ..Default::default()
    };
    engine::check(&pipeline, &opts).map_err(report)?;
    let spec = pipeline.spec();
    let steps: Vec<String> = spec
        .steps
        .iter()
        .map(|s| format!("{}={}", s.id, s.op.name))
        .collect();
    println!(
        "{}: ok: {} steps ({}), {} outputs",
        path.display(),
        steps.len(),
        steps.join(" -> "),
        spec.outputs.len()
    );
    Ok(())
}
