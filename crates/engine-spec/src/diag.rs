//! Source positions and diagnostics rendered the way compilers print them:
//!
//! ```text
//! pipeline.yaml:12:7: error: unknown key `n_comp` for op `pca`
//!    |
//! 12 |       n_comp: 30
//!    |       ^^^^^^
//!    = help: did you mean `n_comps`?
//! ```

use std::fmt;

/// A position in the pipeline text: 1-based line and column (in characters), and a length
/// for the underline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub line: usize,
    pub col: usize,
    pub len: usize,
}

impl Span {
    pub fn new(line: usize, col: usize, len: usize) -> Span {
        Span { line, col, len }
    }
}

/// One problem found in a pipeline file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub span: Span,
    pub message: String,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            span,
            message: message.into(),
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// Renders `file:line:col: error: …` with the source line and a caret underline.
    pub fn render(&self, file: &str, source: &str) -> String {
        let mut out = format!(
            "{file}:{}:{}: error: {}",
            self.span.line, self.span.col, self.message
        );
        if let Some(line) = source.lines().nth(self.span.line.saturating_sub(1)) {
            let num = self.span.line.to_string();
            let pad = " ".repeat(num.len());
            let caret_pad: String = line
                .chars()
                .take(self.span.col.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            out.push_str(&format!(
                "\n{pad} |\n{num} | {line}\n{pad} | {caret_pad}{}",
                "^".repeat(self.span.len.max(1))
            ));
            if let Some(h) = &self.help {
                out.push_str(&format!("\n{pad} = help: {h}"));
            }
        } else if let Some(h) = &self.help {
            out.push_str(&format!("\n  = help: {h}"));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.span.line, self.span.col, self.message)
    }
}

/// All problems in one file, reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics {
    pub file: String,
    pub source: String,
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Every diagnostic rendered, sorted by position, separated by blank lines.
    pub fn render(&self) -> String {
        let mut items = self.items.clone();
        items.sort_by_key(|d| (d.span.line, d.span.col));
        items
            .iter()
            .map(|d| d.render(&self.file, &self.source))
            .collect::<Vec<_>>()
            .join("\n\n")
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::error::Error for Diagnostics {}

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_with_snippet_caret_and_help() {
        let src = "steps:\n  - id: a\n    n_comp: 3\n";
        let d = Diagnostic::new(Span::new(3, 5, 6), "unknown key `n_comp`")
            .with_help("did you mean `n_comps`?");
        assert_eq!(
            d.render("p.yaml", src),
            "p.yaml:3:5: error: unknown key `n_comp`\n  |\n3 |     n_comp: 3\n  |     ^^^^^^\n  = help: did you mean `n_comps`?"
        );
    }

    #[test]
    fn suggestions_only_for_near_misses() {
        assert_eq!(
            did_you_mean("scael", ["scale", "pca", "leiden"]).as_deref(),
            Some("did you mean `scale`?")
        );
        assert_eq!(did_you_mean("umap_3d", ["scale", "pca"]), None);
    }
}
