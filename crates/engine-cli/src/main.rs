//! The `engine` binary: argument parsing and glue over the library crates.

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};
use engine_store::{ArrayOptions, Compression, ConvertOptions, Dataset, StoreFormat};
use serde_json::json;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

// glibc keeps freed multi-megabyte blocks once its mmap threshold has adapted, so peak memory
// grew with every streamed block; mimalloc returns them (measured: Gram pass 324 -> ~100 MiB).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "engine",
    version,
    about = "A streaming query engine for AnnData-shaped data"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a pipeline.
    Run {
        pipeline: PathBuf,
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// Bytes of X blocks in flight, e.g. 512M.
        #[arg(long, default_value = "256M")]
        memory_limit: String,
        /// Print per-stage wall time, blocks, bytes of matrix data decoded from storage, and peak
        /// memory.
        #[arg(long)]
        metrics: bool,
        /// Turn an optimizer rule off (repeatable), e.g. merge_passes.
        #[arg(long = "disable-rule")]
        disable_rules: Vec<String>,
    },
    /// Print the logical, optimized and physical plans of a pipeline.
    Explain {
        pipeline: PathBuf,
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// The memory limit the run would have (block sizes depend on it).
        #[arg(long, default_value = "256M")]
        memory_limit: String,
        #[arg(long = "disable-rule")]
        disable_rules: Vec<String>,
    },
    /// Validate a pipeline without running it; reports every problem at once.
    Check {
        pipeline: PathBuf,
        /// Override a declared parameter: `--param n_obs=1000000`.
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
    },
    /// Show what is in an .h5ad or .zarr store and how it is stored.
    Inspect {
        path: PathBuf,
        /// Print machine-readable JSON.
        #[arg(long)]
        json: bool,
        /// Preview values shown per column.
        #[arg(long, default_value_t = 3)]
        head: usize,
    },
    /// Query obs and var with SQL: `engine sql "SELECT cell_type, count(*) FROM obs GROUP BY 1"
    /// --data pbmc.h5ad`. With several datasets the tables are `NAME.obs` and `NAME.var`.
    Sql {
        query: String,
        /// A dataset, optionally named: `--data pbmc.h5ad` or `--data a=first.zarr`.
        #[arg(long = "data", value_name = "[NAME=]PATH", required = true)]
        data: Vec<String>,
        /// Write the result to a .csv, .json or .parquet file instead of printing it.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Replace the output if it exists.
        #[arg(long)]
        overwrite: bool,
    },
    /// Convert between h5ad and zarr, or rechunk, streaming block by block.
    Convert {
        input: PathBuf,
        output: PathBuf,
        /// Output format: h5ad, zarr2 or zarr3 (default: from the output extension).
        #[arg(long)]
        format: Option<String>,
        /// Chunk shape for X and layers, e.g. `1000,all` or `all,25`.
        #[arg(long)]
        chunks: Option<String>,
        /// Shard shape for X and layers (zarr v3), e.g. `10000,all`.
        #[arg(long)]
        shards: Option<String>,
        /// Compression: none, gzip[:level], zstd[:level], lz4, blosc-zstd[:level].
        #[arg(long)]
        compression: Option<String>,
        /// Replace the output if it exists.
        #[arg(long)]
        overwrite: bool,
        /// Bytes per streamed block, e.g. 64M.
        #[arg(long, default_value = "64M")]
        block_size: String,
    },
}

/// `where` predicates in pipelines, answered by DataFusion.
#[derive(Debug)]
struct SqlPredicates;

impl engine_plan::Predicates for SqlPredicates {
    fn mask(&self, path: &Path, var: bool, predicate: &str) -> engine_common::Result<Vec<bool>> {
        engine_sql::mask(path, var, predicate)
    }

    fn mask_frame(
        &self,
        frame: &engine_store::Frame,
        var: bool,
        predicate: &str,
    ) -> engine_common::Result<Vec<bool>> {
        engine_sql::mask_frame(frame, var, predicate)
    }
}

fn sql(query: &str, data: &[String], output: Option<&Path>, overwrite: bool) -> Result<()> {
    let mut session = engine_sql::SqlSession::new();
    for d in data {
        // `name=path`, unless the whole argument is an existing path containing `=`.
        match d.split_once('=') {
            Some((name, path)) if !Path::new(d).exists() => {
                session.add(Some(name), Path::new(path))?
            }
            _ => session.add(None, Path::new(d))?,
        }
    }
    match output {
        Some(path) => {
            session.query_to_file(query, path, overwrite)?;
            eprintln!("wrote {}", path.display());
        }
        None => {
            let (_, batches) = session.query(query)?;
            println!("{}", engine_sql::format_table(&batches)?);
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            eprintln!("{rows} row{}", if rows == 1 { "" } else { "s" });
        }
    }
    Ok(())
}

/// mimalloc v3's `mi_option_allow_thp`, by its place in `mi_option_t` (`mimalloc.h`); the sys
/// crate does not name it.
const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;

/// No transparent huge pages: with them mimalloc's arenas pin 2 MiB for a few live bytes,
/// which showed as peak memory (50k x 1k blobs workflow: 178 -> 159 MiB, no slower).
#[allow(unsafe_code)]
fn no_huge_pages() {
    // SAFETY: sets an integer option; mimalloc allows that at any time from any thread.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_ALLOW_THP, 0) };
    // mimalloc's first arena was reserved before `main` with huge pages allowed; this turns
    // them off for the whole process from here on, as mimalloc does when the option comes
    // from the environment.
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Returns this thread's freed memory and the arenas' to the system at once (mimalloc
/// otherwise waits a second, and a stage's scratch would count in the next stage's peak;
/// 50k x 1k blobs workflow: 159 -> 133 MiB, no slower).
#[allow(unsafe_code)]
fn release_freed_memory() {
    // SAFETY: no arguments beyond a flag; mimalloc allows it on any thread.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

fn main() -> ExitCode {
    no_huge_pages();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            let usage = e
                .downcast_ref::<engine_common::Error>()
                .is_some_and(|e| e.kind() == "usage");
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Check { pipeline, params } => check(&pipeline, &params),
        Command::Explain {
            pipeline,
            params,
            memory_limit,
            disable_rules,
        } => {
            let loaded = load(&pipeline, &params)?;
            let logical = plan(&loaded, &pipeline)?;
            let (optimized, applied) = engine_plan::optimize(&logical, &disable_rules)?;
            println!("== logical plan ==\n{}", logical.explain());
            println!(
                "== optimized plan (rules applied: {}) ==\n{}",
                if applied.is_empty() {
                    "none".to_string()
                } else {
                    applied.join(", ")
                },
                optimized.explain()
            );
            println!(
                "== physical plan ==\n{}",
                engine_exec::physical_plan(
                    &optimized,
                    &engine_exec::ExecOptions {
                        memory_limit: parse_bytes(&memory_limit)?,
                        ..Default::default()
                    }
                )
            );
            Ok(())
        }
        Command::Run {
            pipeline,
            params,
            memory_limit,
            metrics,
            disable_rules,
        } => {
            let loaded = load(&pipeline, &params)?;
            let logical = plan(&loaded, &pipeline)?;
            let (optimized, _) = engine_plan::optimize(&logical, &disable_rules)?;
            let opts = engine_exec::ExecOptions {
                memory_limit: parse_bytes(&memory_limit)?,
                overwrite: true,
                // Bars only for a person watching; logs and pipes stay clean.
                progress: std::io::stdout().is_terminal() && std::io::stderr().is_terminal(),
                predicates: std::sync::Arc::new(SqlPredicates),
                release_memory: Some(release_freed_memory),
            };
            let t = std::time::Instant::now();
            let report = engine_exec::run(&optimized, &opts)?;
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
                let peak = engine_exec::peak_rss_kib().map_or("unknown".into(), |k| {
                    format!("{:.1} MiB", k as f64 / 1024.0)
                });
                println!("peak memory: {peak}");
            }
            Ok(())
        }
        Command::Inspect { path, json, head } => inspect(&path, json, head),
        Command::Sql {
            query,
            data,
            output,
            overwrite,
        } => sql(&query, &data, output.as_deref(), overwrite),
        Command::Convert {
            input,
            output,
            format,
            chunks,
            shards,
            compression,
            overwrite,
            block_size,
        } => {
            let format = match format {
                Some(f) => StoreFormat::parse(&f).ok_or_else(|| {
                    usage(format!("unknown format `{f}`: use h5ad, zarr2 or zarr3"))
                })?,
                None => format_from_extension(&output)?,
            };
            let compression = match compression {
                Some(c) => {
                    Compression::parse(&c).ok_or_else(|| {
                        usage(format!("unknown compression `{c}`: use none, gzip[:level], zstd[:level], lz4, blosc-zstd[:level]"))
                    })?
                }
                None => Compression::None,
            };
            let opts = ConvertOptions {
                format,
                matrix: ArrayOptions {
                    chunks: chunks.as_deref().map(parse_shape).transpose()?,
                    shards: shards.as_deref().map(parse_shape).transpose()?,
                    compression,
                },
                block_bytes: parse_bytes(&block_size)?,
                overwrite,
            };
            let src = Dataset::open(&input)?;
            let t = std::time::Instant::now();
            let report = engine_store::convert(&src, &output, &opts)?;
            eprintln!(
                "wrote {} ({}, {} × {}) in {:.2}s: {} elements, {} matrix blocks",
                output.display(),
                format.name(),
                src.n_obs(),
                src.n_vars(),
                t.elapsed().as_secs_f64(),
                report.elements,
                report.matrix_blocks
            );
            Ok(())
        }
    }
}

/// A user mistake: exits with status 2.
fn usage(msg: String) -> anyhow::Error {
    engine_common::Error::usage(msg).into()
}

/// Parses `--param name=value` pairs.
fn parse_params(params: &[String]) -> Result<Vec<(String, String)>> {
    params
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .ok_or_else(|| usage(format!("--param {p}: expected NAME=VALUE")))
        })
        .collect()
}

/// A validated pipeline with the text it came from, to point into.
struct Loaded {
    spec: engine_spec::PipelineSpec,
    file: String,
    source: String,
}

/// Reads and validates a pipeline, printing every problem on failure.
fn load(path: &Path, params: &[String]) -> Result<Loaded> {
    let overrides = parse_params(params)?;
    let source =
        std::fs::read_to_string(path).map_err(|e| usage(format!("{}: {e}", path.display())))?;
    // `.sql` files hold the piped SQL-like form; everything else is YAML.
    let parse = if path.extension().is_some_and(|e| e == "sql") {
        engine_spec::parse_sql
    } else {
        engine_spec::parse_yaml
    };
    let file = path.display().to_string();
    let spec = parse(&file, &source, &overrides).map_err(|diags| {
        eprintln!("{}", diags.render());
        problems(diags.items.len(), path)
    })?;
    Ok(Loaded { spec, file, source })
}

fn problems(n: usize, path: &Path) -> anyhow::Error {
    usage(format!(
        "{n} problem{} in {}",
        if n == 1 { "" } else { "s" },
        path.display()
    ))
}

/// The logical plan; a mistake planning finds in one step (an input column the step needs,
/// an index out of range) is printed at that step's place in the file.
fn plan(loaded: &Loaded, path: &Path) -> Result<engine_plan::LogicalPlan> {
    engine_plan::plan(&loaded.spec, &SqlPredicates).map_err(|e| match e {
        engine_common::Error::Step { step, message } => match loaded.spec.step(&step) {
            Some(s) => {
                let diags = engine_spec::Diagnostics {
                    file: loaded.file.clone(),
                    source: loaded.source.clone(),
                    items: vec![engine_spec::Diagnostic::new(
                        s.span,
                        format!("step `{step}`: {message}"),
                    )],
                };
                eprintln!("{}", diags.render());
                problems(1, path)
            }
            None => engine_common::Error::Step { step, message }.into(),
        },
        other => other.into(),
    })
}

/// Validates the pipeline and plans it (which reads the inputs' metadata, not their data),
/// so every step's inputs and columns are checked too.
fn check(path: &Path, params: &[String]) -> Result<()> {
    let loaded = load(path, params)?;
    plan(&loaded, path)?;
    let spec = &loaded.spec;
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

fn format_from_extension(p: &Path) -> Result<StoreFormat> {
    match p.extension().and_then(|e| e.to_str()) {
        Some("h5ad" | "h5") => Ok(StoreFormat::H5ad),
        Some("zarr") => Ok(StoreFormat::Zarr2),
        _ => bail!(engine_common::Error::usage(format!(
            "cannot tell the format of {}; pass --format h5ad|zarr2|zarr3",
            p.display()
        ))),
    }
}

/// Parses `1000,all` into `[1000, 0]` (0 = whole axis).
fn parse_shape(s: &str) -> Result<Vec<u64>> {
    s.split(',')
        .map(|p| match p.trim() {
            "all" | ":" => Ok(0),
            n => n.parse::<u64>().map_err(|_| {
                engine_common::Error::usage(format!(
                    "bad chunk size `{n}` in `{s}`: use numbers or `all`"
                ))
                .into()
            }),
        })
        .collect()
}

fn parse_bytes(s: &str) -> Result<usize> {
    let (num, mul) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1 << 10),
        Some('M' | 'm') => (&s[..s.len() - 1], 1 << 20),
        Some('G' | 'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let n: usize = num
        .parse()
        .map_err(|_| engine_common::Error::usage(format!("bad size `{s}`")))?;
    Ok(n * mul)
}

fn inspect(path: &Path, as_json: bool, head: usize) -> Result<()> {
    let ds = Dataset::open(path)?;
    let elements = ds.summarize()?;
    let obs = ds.obs(None);
    let var = ds.var(None);
    let frame_json = |f: &engine_store::Frame| {
        let mut cols = vec![
            json!({"name": f.index_name, "index": true, "type": f.index.type_name(), "encoding": f.index.encoding(),
            "head": (0..head.min(f.n_rows())).map(|i| f.index.render(i)).collect::<Vec<_>>()}),
        ];
        for (n, c) in &f.columns {
            cols.push(
                json!({"name": n, "type": c.type_name(), "encoding": c.encoding(),
                "head": (0..head.min(c.len())).map(|i| c.render(i)).collect::<Vec<_>>()}),
            );
        }
        cols
    };
    if as_json {
        let out = json!({
            "path": path.display().to_string(),
            "format": ds.format().name(),
            "n_obs": ds.n_obs(),
            "n_vars": ds.n_vars(),
            "elements": elements.iter().map(|e| json!({
                "path": e.path, "encoding": e.encoding, "dtype": e.dtype, "shape": e.shape, "nnz": e.nnz, "error": e.error,
                "storage": e.storage.iter().map(|(p, i)| json!({"array": p, "chunks": i.chunks, "shards": i.shards,
                    "compression": i.compression, "stored_bytes": i.stored_bytes})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "obs": obs.as_ref().map(frame_json).map_err(|e| e.to_string()),
            "var": var.as_ref().map(frame_json).map_err(|e| e.to_string()),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("{} ({})", path.display(), ds.format().name());
    println!(
        "AnnData object with n_obs × n_vars = {} × {}",
        ds.n_obs(),
        ds.n_vars()
    );
    println!();
    println!(
        "{:<28} {:<28} {:<10} {:<18} nnz",
        "element", "encoding", "dtype", "shape"
    );
    for e in &elements {
        let shape = e
            .shape
            .as_ref()
            .map(|s| format!("{s:?}"))
            .unwrap_or_default();
        let nnz = e.nnz.map(|n| n.to_string()).unwrap_or_default();
        println!(
            "{:<28} {:<28} {:<10} {:<18} {}",
            e.path,
            e.encoding,
            e.dtype.clone().unwrap_or_default(),
            shape,
            nnz
        );
        if let Some(err) = &e.error {
            println!("{:<28} ! {err}", "");
        }
        if matches!(e.encoding.as_str(), "array" | "csr_matrix" | "csc_matrix")
            && !e.path.starts_with("obs/")
            && !e.path.starts_with("var/")
        {
            for (p, i) in &e.storage {
                let chunks = i
                    .chunks
                    .as_ref()
                    .map(|c| format!("chunks {c:?}"))
                    .unwrap_or_else(|| "contiguous".into());
                let shards = i
                    .shards
                    .as_ref()
                    .map(|s| format!(" shards {s:?}"))
                    .unwrap_or_default();
                let comp = if i.compression.is_empty() {
                    "uncompressed".to_string()
                } else {
                    i.compression.join(" + ")
                };
                println!("{:<28}   {p}: {chunks}{shards}, {comp}", "");
            }
        }
    }
    for (name, frame) in [("obs", obs), ("var", var)] {
        println!();
        match frame {
            Ok(f) => {
                println!("{name}: {} rows, {} columns", f.n_rows(), f.columns.len());
                let preview = |c: &engine_store::Column| {
                    (0..head.min(c.len()))
                        .map(|i| c.render(i))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                println!(
                    "  {:<24} {:<28} {}",
                    format!("{} (index)", f.index_name),
                    f.index.type_name(),
                    preview(&f.index)
                );
                for (n, c) in &f.columns {
                    println!("  {:<24} {:<28} {}", n, c.type_name(), preview(c));
                }
            }
            Err(e) => println!("{name}: unreadable: {e}"),
        }
    }
    Ok(())
}
