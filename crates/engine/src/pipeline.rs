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

    /// What outputs record in `uns['engine']`: the engine's version, the pipeline file, the
    /// SHA-256 of its text (as `sha256sum` prints it) and the parameters the run used.
    pub fn provenance(&self) -> engine_store::Value {
        use engine_spec::Arg;
        use engine_store::Value;
        use sha2::Digest;
        let hash = sha2::Sha256::digest(self.source.as_bytes());
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        let params = self
            .spec
            .params
            .iter()
            .filter_map(|p| {
                let scalar = |a: engine_matrix::DynArray| Value::Scalar(a);
                let zero_d = ndarray::IxDyn(&[]);
                let v = match &p.value {
                    Arg::Null => return None,
                    Arg::Int(i) => scalar(engine_matrix::DynArray::I64(
                        ndarray::ArrayD::from_elem(zero_d, *i),
                    )),
                    Arg::Float(f) => scalar(engine_matrix::DynArray::F64(
                        ndarray::ArrayD::from_elem(zero_d, *f),
                    )),
                    Arg::Bool(b) => scalar(engine_matrix::DynArray::Bool(
                        ndarray::ArrayD::from_elem(zero_d, *b),
                    )),
                    Arg::Str(s) => Value::String(s.clone()),
                };
                Some((p.name.clone(), v))
            })
            .collect();
        Value::Dict(
            [
                ("version", Value::String(env!("CARGO_PKG_VERSION").into())),
                ("pipeline", Value::String(self.file.clone())),
                ("pipeline_sha256", Value::String(hex)),
                ("params", Value::Dict(params)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        )
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
