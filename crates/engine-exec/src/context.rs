//! Per-run state the nodes share: the options, the bytes the run's reads decoded, the stage
//! rows of the report, and the step whose node is running. Nothing here is process-global,
//! so two runs in one process (a notebook, a test harness) keep their figures apart.

use crate::options::{ExecOptions, RunReport, StageReport, peak_rss_kib};
use engine_common::Result;
use engine_store::ReadCounter;
use engine_store::write::AtomicTarget;
use indicatif::{ProgressBar, ProgressStyle};
use std::time::Instant;

#[derive(Debug)]
pub(crate) struct RunContext<'o> {
    pub opts: &'o ExecOptions,
    /// Every matrix a scan opens counts its block reads here.
    pub bytes: ReadCounter,
    report: RunReport,
    /// Finished outputs waiting at their temporaries: they are put in place together once
    /// every step has succeeded, so a failed run changes no output.
    staged: Vec<AtomicTarget>,
    step: String,
    /// When the current stage row began, and the byte count then.
    since: Instant,
    read: u64,
}

impl<'o> RunContext<'o> {
    pub fn new(opts: &'o ExecOptions) -> Self {
        RunContext {
            opts,
            bytes: ReadCounter::new(),
            report: RunReport::default(),
            staged: Vec::new(),
            step: String::new(),
            since: Instant::now(),
            read: 0,
        }
    }

    /// Starts the node of pipeline step `step`: its first stage row counts from here.
    pub fn begin(&mut self, step: &str) {
        self.step = step.to_string();
        self.since = Instant::now();
        self.read = self.bytes.get();
    }

    pub fn step(&self) -> &str {
        &self.step
    }

    /// Records a stage row `"{step}: {what}"` with the time and bytes since the last row.
    pub fn stage(&mut self, what: &str, blocks: usize) {
        let now = self.bytes.get();
        self.report.stages.push(StageReport {
            name: format!("{}: {what}", self.step),
            seconds: std::mem::replace(&mut self.since, Instant::now())
                .elapsed()
                .as_secs_f64(),
            blocks,
            bytes: now - std::mem::replace(&mut self.read, now),
            peak_rss_kib: peak_rss_kib(),
        });
    }

    /// An output written completely to its temporary; it takes its place at [`Self::commit`].
    pub fn output(&mut self, target: AtomicTarget) {
        self.report
            .outputs
            .push(target.target().to_string_lossy().into_owned());
        self.staged.push(target);
    }

    /// Puts every staged output in place, once each target has been checked again (one that
    /// became unreplaceable during the run stops the commit before anything moves).
    pub fn commit(&mut self) -> Result<()> {
        for t in &self.staged {
            t.check()?;
        }
        for t in self.staged.drain(..) {
            t.commit()?;
        }
        Ok(())
    }

    /// Something the running step noticed and went on with, for the report.
    pub fn warn(&mut self, message: Option<String>) {
        if let Some(m) = message {
            self.report
                .warnings
                .push(format!("step `{}`: {m}", self.step));
        }
    }

    /// A bar over a pass's blocks on stderr when a person is watching, else a hidden one.
    pub fn progress(&self, what: &str, blocks: usize) -> ProgressBar {
        if !self.opts.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(blocks as u64);
        if let Ok(style) = ProgressStyle::with_template(
            "{msg:>24} [{bar:40}] {pos}/{len} blocks, {elapsed} (eta {eta})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(format!("{}: {what}", self.step));
        bar
    }

    pub fn finish(self) -> RunReport {
        self.report
    }
}

/// Worker threads a pass spreads over.
pub(crate) fn workers() -> usize {
    rayon::current_num_threads().max(1)
}
