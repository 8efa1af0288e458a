//! X described to another process: the source by its parameters or path, the rows and
//! columns read, and the maps and views applied since ([`LineageSpec`]), which a worker
//! reopens and recomputes block by block.

use crate::lineage::{Lineage, LineageStep};
use crate::maps::XMap;
use crate::source::{ScanSource, blobs, counts, file};
use engine_common::Result;
use engine_matrix::AxisSelection;
use engine_ops::counts::Counts;
use engine_ops::synthetic::Blobs;
use engine_plan::Source;
use engine_store::ReadCounter;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A source a worker can reopen: generated ones by their parameters (their rows do not
/// depend on which process computes them), files by path.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum SourceSpec {
    Blobs(Blobs),
    Counts(Counts),
    File {
        path: String,
        genome: Option<String>,
        gex_only: bool,
        layer: Option<String>,
        use_raw: bool,
    },
}

impl SourceSpec {
    /// The description of a scan's source; `None` for a concatenation.
    pub(crate) fn of(source: &Source) -> Option<SourceSpec> {
        Some(match source {
            Source::Synthetic {
                n_obs,
                n_vars,
                centers,
                cluster_std,
                seed,
                ..
            } => SourceSpec::Blobs(Blobs {
                n_obs: *n_obs,
                n_vars: *n_vars,
                centers: *centers,
                cluster_std: *cluster_std,
                seed: *seed,
            }),
            Source::Counts {
                n_obs,
                n_vars,
                n_types,
                n_batches,
                library_size,
                seed,
            } => SourceSpec::Counts(Counts {
                n_obs: *n_obs,
                n_vars: *n_vars,
                n_types: *n_types,
                n_batches: *n_batches,
                library_size: *library_size,
                seed: *seed,
            }),
            Source::File { path, options, .. } => SourceSpec::File {
                path: path.clone(),
                genome: options.genome.clone(),
                gex_only: options.gex_only,
                layer: options.layer.clone(),
                use_raw: options.use_raw,
            },
            Source::Concat(_) => return None,
        })
    }

    /// The same source for a process that may start in another directory: a local path
    /// made absolute.
    fn anywhere(mut self) -> SourceSpec {
        if let SourceSpec::File { path, .. } = &mut self {
            *path = absolute(path);
        }
        self
    }

    /// Opens the source; file reads count their bytes in `counter`.
    pub(crate) fn open(
        &self,
        chunk_starts: Option<&[usize]>,
        counter: &ReadCounter,
    ) -> Result<Arc<dyn crate::source::BlockSource>> {
        Ok(match self {
            SourceSpec::Blobs(b) => Arc::new(blobs::BlobSource::new(b.clone())),
            SourceSpec::Counts(c) => Arc::new(counts::CountsSource::new(c.clone())),
            SourceSpec::File {
                path,
                genome,
                gex_only,
                layer,
                use_raw,
            } => {
                let options = engine_store::ReadOptions {
                    genome: genome.clone(),
                    gex_only: *gex_only,
                    layer: layer.clone(),
                    use_raw: *use_raw,
                };
                Arc::new(file::FileSource::open(
                    path,
                    &options,
                    chunk_starts,
                    counter,
                )?)
            }
        })
    }
}

/// URLs stay as they are; local paths become absolute.
fn absolute(path: &str) -> String {
    if path.contains("://") {
        return path.to_string();
    }
    std::path::absolute(path).map_or_else(|_| path.to_string(), |p| p.display().to_string())
}

type Runs = Vec<(usize, usize)>;

fn runs(s: &AxisSelection) -> Runs {
    s.runs().iter().map(|r| (r.start, r.end)).collect()
}

fn selection(r: &Runs) -> AxisSelection {
    AxisSelection::from_runs(r.iter().map(|&(a, b)| a..b).collect())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum MapSpec {
    Standardize {
        mean: Vec<f64>,
        sd: Vec<f64>,
        zero_center: bool,
        max_value: Option<f64>,
    },
    Log1p,
    ScaleRows(Vec<f64>),
    Chain(Vec<MapSpec>),
}

impl MapSpec {
    fn of(m: &XMap) -> MapSpec {
        match m {
            XMap::Standardize {
                mean,
                sd,
                zero_center,
                max_value,
            } => MapSpec::Standardize {
                mean: mean.to_vec(),
                sd: sd.to_vec(),
                zero_center: *zero_center,
                max_value: *max_value,
            },
            XMap::Log1p => MapSpec::Log1p,
            XMap::ScaleRows(f) => MapSpec::ScaleRows(f.to_vec()),
            XMap::Chain(maps) => MapSpec::Chain(maps.iter().map(MapSpec::of).collect()),
        }
    }

    fn map(self) -> XMap {
        match self {
            MapSpec::Standardize {
                mean,
                sd,
                zero_center,
                max_value,
            } => XMap::Standardize {
                mean: Arc::new(mean),
                sd: Arc::new(sd),
                zero_center,
                max_value,
            },
            MapSpec::Log1p => XMap::Log1p,
            MapSpec::ScaleRows(f) => XMap::ScaleRows(Arc::new(f)),
            MapSpec::Chain(maps) => XMap::Chain(maps.into_iter().map(MapSpec::map).collect()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum StepSpec {
    Map(MapSpec),
    View {
        rows: Option<Runs>,
        cols: Option<Runs>,
    },
}

/// X as a worker rebuilds it: [`Lineage`] without opened handles.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LineageSpec {
    source: SourceSpec,
    rows: Runs,
    cols: Runs,
    chunk_starts: Option<Vec<usize>>,
    steps: Vec<StepSpec>,
    n_obs: usize,
    n_vars: usize,
    max_rows: usize,
}

impl LineageSpec {
    /// The description of `lin`, when its source has one.
    pub(crate) fn of(lin: &Lineage) -> Option<LineageSpec> {
        let s = &lin.source;
        Some(LineageSpec {
            source: s.spec.clone()?.anywhere(),
            rows: runs(&s.rows),
            cols: runs(&s.cols),
            chunk_starts: s.chunk_starts.as_ref().map(|c| c.to_vec()),
            steps: lin
                .steps
                .iter()
                .map(|step| match step {
                    LineageStep::Map(m) => StepSpec::Map(MapSpec::of(m)),
                    LineageStep::View { rows, cols } => StepSpec::View {
                        rows: rows.as_deref().map(runs),
                        cols: cols.as_deref().map(runs),
                    },
                })
                .collect(),
            n_obs: lin.n_obs,
            n_vars: lin.n_vars,
            max_rows: lin.max_rows,
        })
    }

    /// Reopens the source and rebuilds the lineage; reads count in `counter`.
    pub(super) fn open(self, counter: &ReadCounter) -> Result<Lineage> {
        let source = self.source.open(self.chunk_starts.as_deref(), counter)?;
        Ok(Lineage {
            source: Arc::new(ScanSource {
                source,
                rows: selection(&self.rows),
                cols: selection(&self.cols),
                chunk_starts: self.chunk_starts.map(Arc::new),
                // Bands save a remote scan repeated fetches; a task reads its rows once.
                bands: None,
                spec: Some(self.source),
                // A worker's task is stopped by its cluster, not by a flag.
                cancel: None,
            }),
            steps: self
                .steps
                .into_iter()
                .map(|s| match s {
                    StepSpec::Map(m) => LineageStep::Map(m.map()),
                    StepSpec::View { rows, cols } => LineageStep::View {
                        rows: rows.map(|r| Arc::new(selection(&r))),
                        cols: cols.map(|c| Arc::new(selection(&c))),
                    },
                })
                .collect(),
            n_obs: self.n_obs,
            n_vars: self.n_vars,
            max_rows: self.max_rows,
            moments: None,
        })
    }
}
