//! A pipeline's text, parsed and validated, kept with its source so later mistakes (a step
//! planning rejects) can point into it.

use crate::error::Error;
use engine_spec::{Diagnostic, Diagnostics, PipelineSpec};
use std::path::Path;

#[derive(Debug, Clone)]
pub struct Pipeline {
    spec: PipelineSpec,
    file: String,
    source: String,
}

impl Pipeline {
    /// Reads and validates a pipeline file: `.sql` holds the piped SQL-like form, anything
    /// else YAML. `params` override its declared parameters.
    ///
    /// # Errors
    /// [`Error::Pipeline`] with every problem found; a usage error when the file is
    /// unreadable.
    pub fn from_file(path: &Path, params: &[(String, String)]) -> Result<Pipeline, Error> {
        let source = std::fs::read_to_string(path).map_err(|e| {
            Error::Engine(engine_common::Error::usage(format!(
                "{}: {e}",
                path.display()
            )))
        })?;
        let sql = path.extension().is_some_and(|e| e == "sql");
        Pipeline::from_text(&path.display().to_string(), &source, sql, params)
    }

    /// Validates pipeline text named `file` (for messages), SQL-like when `sql`.
    ///
    /// # Errors
    /// [`Error::Pipeline`] with every problem found.
    pub fn from_text(
        file: &str,
        source: &str,
        sql: bool,
        params: &[(String, String)],
    ) -> Result<Pipeline, Error> {
        let parse = if sql {
            engine_spec::parse_sql
        } else {
            engine_spec::parse_yaml
        };
        let spec = parse(file, source, params).map_err(Error::Pipeline)?;
        Ok(Pipeline {
            spec,
            file: file.to_string(),
            source: source.to_string(),
        })
    }

    pub fn spec(&self) -> &PipelineSpec {
        &self.spec
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    /// A problem at a place in the pipeline file.
    pub(crate) fn at(&self, span: engine_spec::Span, message: String) -> Error {
        Error::Pipeline(Diagnostics {
            file: self.file.clone(),
            source: self.source.clone(),
            items: vec![Diagnostic::new(span, message)],
        })
    }

    /// A mistake in one step becomes a diagnostic at that step's place in the text.
    pub(crate) fn at_step(&self, e: engine_common::Error) -> Error {
        match e {
            engine_common::Error::Step { step, message } => match self.spec.step(&step) {
                Some(s) => Error::Pipeline(Diagnostics {
                    file: self.file.clone(),
                    source: self.source.clone(),
                    items: vec![Diagnostic::new(s.span, format!("step `{step}`: {message}"))],
                }),
                None => Error::Engine(engine_common::Error::Step { step, message }),
            },
            other => Error::Engine(other),
        }
    }
}
