//! The `engine` binary: argument parsing and dispatch, one module per command. The work is
//! the library's: pipelines go through the `engine` facade, the rest through the store and
//! SQL crates.

mod alloc;
mod args;
mod batches;
mod convert;
mod inspect;
mod ops;
mod pipeline;
mod signals;
mod sql;
mod validate;

use anyhow::Result;
use args::parse_bytes;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

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
    #[command(after_help = "Examples:
  engine run pipelines/counts.yaml
  engine run pipelines/counts_file.yaml --param input=pbmc.h5ad --param out=results
  engine run pipelines/counts.sql --param n_obs=100000 --memory-limit 1G --metrics
  engine run pipelines/blobs.yaml --param out=results --overwrite")]
    Run {
        /// The pipeline: YAML (.yaml, .yml) or the SQL-like form (.sql).
        pipeline: PathBuf,
        /// Override a declared parameter (repeatable): `--param n_obs=1000000`.
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// Memory the run may hold besides the binary's ~96 MiB (results, scratch and X blocks),
        /// e.g. 512M, 1.5G; a run that cannot fit is refused before it starts.
        #[arg(long, default_value = "256M")]
        memory_limit: String,
        /// Print per-stage wall time, blocks, bytes of matrix data decoded from storage, and peak
        /// memory.
        #[arg(long)]
        metrics: bool,
        /// Turn an optimizer rule off (repeatable), e.g. merge_passes.
        #[arg(long = "disable-rule")]
        disable_rules: Vec<String>,
        /// Replace outputs that exist (files or zarr stores, never other directories).
        #[arg(long)]
        overwrite: bool,
    },
    /// Print the logical, optimized and physical plans of a pipeline.
    #[command(after_help = "Examples:
  engine explain pipelines/counts.yaml
  engine explain pipelines/blobs.yaml --memory-limit 128M --disable-rule merge_passes")]
    Explain {
        /// The pipeline: YAML (.yaml, .yml) or the SQL-like form (.sql).
        pipeline: PathBuf,
        /// Override a declared parameter (repeatable): `--param n_obs=1000000`.
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// The memory limit the run would have (block sizes depend on it).
        #[arg(long, default_value = "256M")]
        memory_limit: String,
        /// Turn an optimizer rule off (repeatable), to see the plan without it.
        #[arg(long = "disable-rule")]
        disable_rules: Vec<String>,
    },
    /// Validate a pipeline without running it; reports every problem at once.
    #[command(after_help = "Examples:
  engine check pipelines/counts.yaml
  engine check pipelines/counts_file.sql --param input=pbmc.h5ad --memory-limit 512M")]
    Check {
        /// The pipeline: YAML (.yaml, .yml) or the SQL-like form (.sql).
        pipeline: PathBuf,
        /// Override a declared parameter: `--param n_obs=1000000`.
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// The memory limit the run would have: a run that cannot fit is refused here too.
        #[arg(long, default_value = "256M")]
        memory_limit: String,
        /// Check as `run --overwrite` would run: existing outputs may be replaced.
        #[arg(long)]
        overwrite: bool,
    },
    /// List the pipeline operators, or show one's parameters, defaults and output keys:
    /// `engine ops`, `engine ops pca`.
    #[command(after_help = "Examples:
  engine ops
  engine ops rank_genes_groups")]
    Ops {
        /// An operator name.
        name: Option<String>,
    },
    /// Show what is in an .h5ad or .zarr store and how it is stored.
    #[command(after_help = "Examples:
  engine inspect pbmc.h5ad
  engine inspect pbmc.zarr --json --head 0")]
    Inspect {
        /// An .h5ad file, a .zarr store (v2 or v3, directory or .zip), or a 10x output.
        path: PathBuf,
        /// Print machine-readable JSON.
        #[arg(long)]
        json: bool,
        /// Preview values shown per column.
        #[arg(long, default_value_t = 3)]
        head: usize,
    },
    /// Read every element of an .h5ad or zarr store and check every invariant anndata relies
    /// on; lists each problem with its element and exits 1 when there are errors.
    #[command(after_help = "Examples:
  engine validate pbmc.h5ad
  engine validate pbmc.zarr --json --block-size 256M")]
    Validate {
        /// An .h5ad file or a .zarr store (v2 or v3, directory or .zip).
        path: PathBuf,
        /// Print machine-readable JSON.
        #[arg(long)]
        json: bool,
        /// Bytes of matrix data read per block, e.g. 64M.
        #[arg(long, default_value = "64M")]
        block_size: String,
    },
    /// Query obs and var with SQL: `engine sql "SELECT cell_type, count(*) FROM obs GROUP BY 1"
    /// --data pbmc.h5ad`. With several datasets the tables are `NAME.obs` and `NAME.var`.
    #[command(after_help = "Examples:
  engine sql \"SELECT bulk_labels, count(*) AS n FROM obs GROUP BY 1 ORDER BY n DESC\" --data pbmc.h5ad
  engine sql \"SELECT * FROM var WHERE highly_variable\" --data pbmc.h5ad --output hvg.csv
  engine sql \"SELECT index, gene('CD3E') AS cd3e FROM obs WHERE bulk_labels = 'Dendritic'\" --data pbmc.h5ad
  engine sql \"SELECT a.obs.louvain, count(*) FROM a.obs JOIN b.obs ON a.obs.index = b.obs.index GROUP BY 1\" --data a=pbmc.h5ad --data b=pbmc.zarr")]
    Sql {
        /// One read-only SELECT over the tables `obs` and `var`.
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
    #[command(after_help = "Examples:
  engine convert pbmc.h5ad pbmc.zarr
  engine convert pbmc.h5ad pbmc_v3.zarr --format zarr3 --chunks 100,all --shards 1000,all
  engine convert pbmc.zarr pbmc_gzip.h5ad --compression gzip:4
  engine convert filtered_feature_bc_matrix.h5 tenx.h5ad --genome GRCh38")]
    Convert {
        /// The store to read: .h5ad, .zarr (v2 or v3, directory or .zip) or a 10x output.
        input: PathBuf,
        /// Where to write: .h5ad or .zarr (never replaced without --overwrite).
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
        /// One element's chunks, e.g. `X=all,5` or `layers/*=all,25` (repeatable).
        #[arg(long, value_name = "ELEMENT=SHAPE")]
        chunks_of: Vec<String>,
        /// Replace the output if it exists.
        #[arg(long)]
        overwrite: bool,
        /// Bytes per streamed block, e.g. 64M.
        #[arg(long, default_value = "64M")]
        block_size: String,
        /// 10x input: keep this genome's features (Cell Ranger 3) or read this genome's group
        /// (Cell Ranger 2), as scanpy's `genome=`.
        #[arg(long)]
        genome: Option<String>,
        /// 10x input: keep every feature type, not only Gene Expression (scanpy's
        /// `gex_only=False`).
        #[arg(long)]
        all_features: bool,
    },
    /// Concatenate datasets along obs into one file, streamed in bounded memory, as
    /// `anndata.concat` would (a pipeline of `read` steps and one `concat` step).
    #[command(after_help = "Examples:
  engine concat pbmc.h5ad pbmc.zarr both.h5ad --label batch --index-unique -
  engine concat pbmc.h5ad pbmc_v3.zarr pbmc_gzip.h5ad three.zarr --join outer --keys a,b,c --label src --merge same")]
    Concat {
        /// Two or more datasets, then the output (.h5ad, .zarr).
        #[arg(required = true, num_args = 3.., value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// inner (genes all inputs have) or outer (every gene).
        #[arg(long, default_value = "inner")]
        join: String,
        /// An obs column naming each cell's input by its key.
        #[arg(long)]
        label: Option<String>,
        /// The inputs' keys, comma-separated (default 0, 1, …).
        #[arg(long)]
        keys: Option<String>,
        /// Suffix cell names with this and the input's key.
        #[arg(long)]
        index_unique: Option<String>,
        /// An outer join's value for genes an input lacks.
        #[arg(long)]
        fill_value: Option<f64>,
        /// var columns kept: same, unique, first or only.
        #[arg(long)]
        merge: Option<String>,
        /// uns entries kept: same, unique, first or only.
        #[arg(long)]
        uns_merge: Option<String>,
        /// Memory the run may hold, e.g. 512M.
        #[arg(long, default_value = "256M")]
        memory_limit: String,
        /// Replace the output if it exists.
        #[arg(long)]
        overwrite: bool,
        /// Print per-stage time, bytes and peak memory.
        #[arg(long)]
        metrics: bool,
    },
    /// Shuffle datasets' cells into a collection of sharded zarr v3 datasets for minibatch
    /// loaders, as annbatch's `DatasetCollection.add_adatas` writes it (its `Loader` reads it).
    #[command(after_help = "Examples:
  engine preshuffle pbmc.h5ad pbmc.zarr collection.zarr --dataset-size 500 --shuffle-chunk-size 100 --seed 0
  engine preshuffle pbmc.h5ad shuffled.zarr --dataset-size 4M --n-obs-per-chunk 32 --shard-size 256 --groupby bulk_labels")]
    Preshuffle {
        /// One or more datasets, then the collection (.zarr).
        #[arg(required = true, num_args = 2.., value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Cells (100000) or bytes of X (2G) per dataset.
        #[arg(long, value_name = "SIZE")]
        dataset_size: Option<String>,
        /// Contiguous cells dealt together to a dataset.
        #[arg(long, default_value_t = 1000, value_name = "N")]
        shuffle_chunk_size: usize,
        /// Cells per zarr chunk of X.
        #[arg(long, default_value_t = 64, value_name = "N")]
        n_obs_per_chunk: usize,
        /// Cells (10000) or bytes (1G) per shard of X.
        #[arg(long, default_value = "1G", value_name = "SIZE")]
        shard_size: String,
        /// The same seed writes the same collection.
        #[arg(long, default_value_t = 0, value_name = "N")]
        seed: u64,
        /// Sort each dataset by these obs columns.
        #[arg(long, value_name = "COLUMNS")]
        groupby: Option<String>,
        /// Keep only these genes (comma-separated).
        #[arg(long, value_name = "GENES")]
        var_subset: Option<String>,
        /// Memory the run may hold, e.g. 4G.
        #[arg(long, default_value = "256M", value_name = "SIZE")]
        memory_limit: String,
        /// Replace the collection if it exists.
        #[arg(long)]
        overwrite: bool,
        /// Print per-stage time, bytes and peak memory.
        #[arg(long)]
        metrics: bool,
    },
    /// Draw one epoch of random minibatches from a preshuffled collection, as a training
    /// loader would (annbatch's chunk-then-shuffle), and report cells per second.
    #[command(after_help = "Examples:
  engine batches collection.zarr --batch-size 64 --chunk-size 256 --preload-nchunks 8
  engine batches shuffled.zarr --batch-size 32 --seed 1 --epochs 2")]
    Batches {
        /// A collection written by `engine preshuffle` or annbatch.
        collection: PathBuf,
        /// Cells per minibatch.
        #[arg(long, default_value_t = 64, value_name = "N")]
        batch_size: usize,
        /// Contiguous cells read as one slice.
        #[arg(long, default_value_t = 512, value_name = "N")]
        chunk_size: usize,
        /// Slices read (and permuted) together.
        #[arg(long, default_value_t = 32, value_name = "N")]
        preload_nchunks: usize,
        /// The same seed draws the same batches.
        #[arg(long, default_value_t = 0, value_name = "N")]
        seed: u64,
        /// Keep the stored order (no shuffling).
        #[arg(long)]
        no_shuffle: bool,
        /// Epochs to draw.
        #[arg(long, default_value_t = 1, value_name = "N")]
        epochs: usize,
    },
}

fn main() -> ExitCode {
    signals::install();
    alloc::no_huge_pages();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The report already named every problem.
        Err(e) if e.is::<validate::Invalid>() => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            let usage = e
                .downcast_ref::<engine::EngineError>()
                .is_some_and(|e| e.is_usage());
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Check {
            pipeline,
            params,
            memory_limit,
            overwrite,
        } => pipeline::check(&pipeline, &params, parse_bytes(&memory_limit)?, overwrite),
        Command::Explain {
            pipeline,
            params,
            memory_limit,
            disable_rules,
        } => pipeline::explain(
            &pipeline,
            &params,
            parse_bytes(&memory_limit)?,
            disable_rules,
        ),
        Command::Run {
            pipeline,
            params,
            memory_limit,
            metrics,
            disable_rules,
            overwrite,
        } => pipeline::run(
            &pipeline,
            &params,
            parse_bytes(&memory_limit)?,
            disable_rules,
            metrics,
            overwrite,
        ),
        Command::Ops { name } => ops::ops(name.as_deref()),
        Command::Inspect { path, json, head } => inspect::inspect(&path, json, head),
        Command::Validate {
            path,
            json,
            block_size,
        } => validate::validate(&path, json, parse_bytes(&block_size)?),
        Command::Sql {
            query,
            data,
            output,
            overwrite,
        } => sql::sql(&query, &data, output.as_deref(), overwrite),
        Command::Convert {
            input,
            output,
            format,
            chunks,
            shards,
            compression,
            chunks_of,
            overwrite,
            block_size,
            genome,
            all_features,
        } => convert::convert(&convert::Request {
            input: &input,
            output: &output,
            format: format.as_deref(),
            chunks: chunks.as_deref(),
            shards: shards.as_deref(),
            compression: compression.as_deref(),
            chunks_of: &chunks_of,
            overwrite,
            block_size: &block_size,
            genome: genome.as_deref(),
            all_features,
        }),
        Command::Concat {
            paths,
            join,
            label,
            keys,
            index_unique,
            fill_value,
            merge,
            uns_merge,
            memory_limit,
            overwrite,
            metrics,
        } => pipeline::concat(
            &paths,
            &pipeline::ConcatArgs {
                join,
                label,
                keys,
                index_unique,
                fill_value,
                merge,
                uns_merge,
            },
            parse_bytes(&memory_limit)?,
            metrics,
            overwrite,
        ),
        Command::Batches {
            collection,
            batch_size,
            chunk_size,
            preload_nchunks,
            seed,
            no_shuffle,
            epochs,
        } => batches::batches(
            &collection,
            &engine::loader::LoaderOptions {
                batch_size,
                chunk_size,
                preload_nchunks,
                shuffle: !no_shuffle,
                drop_last: false,
                seed,
            },
            epochs,
        ),
        Command::Preshuffle {
            paths,
            dataset_size,
            shuffle_chunk_size,
            n_obs_per_chunk,
            shard_size,
            seed,
            groupby,
            var_subset,
            memory_limit,
            overwrite,
            metrics,
        } => pipeline::preshuffle(
            &paths,
            &pipeline::PreshuffleArgs {
                dataset_size,
                shuffle_chunk_size,
                n_obs_per_chunk,
                shard_size,
                seed,
                groupby,
                var_subset,
            },
            parse_bytes(&memory_limit)?,
            metrics,
            overwrite,
        ),
    }
}
