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
    let opts = options(memory_limit, disabled_rules, overwrite);
    let plans = engine::plan(&pipeline, &opts).map_err(report)?;
    let t = std::time::Instant::now();
    let report = engine::run(&plans, &opts).map_err(report)?;
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
