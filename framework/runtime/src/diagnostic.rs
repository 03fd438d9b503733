//! Errors about a pipeline file, printed as `FILE:LINE:COL: error: ...` so
//! editors and terminals can jump to them.

use std::ops::Range;
use std::path::{Path, PathBuf};

/// Where a value came from: a span of the pipeline file, or a `--set`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Origin {
    /// Byte range in the pipeline file.
    File(Range<usize>),
    /// A command-line override, as the user typed it.
    Override(String),
    /// Nowhere in particular (a default, or the file as a whole).
    #[default]
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub origin: Origin,
    pub message: String,
}

impl Diagnostic {
    pub fn new(origin: &Origin, message: impl Into<String>) -> Diagnostic {
        Diagnostic { origin: origin.clone(), message: message.into() }
    }
}

/// A source file and the errors found in it.
#[derive(Debug, Clone)]
pub struct Report {
    pub file: PathBuf,
    pub source: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
        let offset = offset.min(source.len());
        let before = &source[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        (line, before[line_start..].chars().count() + 1)
    }

    pub fn render_one(file: &Path, source: &str, d: &Diagnostic) -> String {
        match &d.origin {
            Origin::File(span) => {
                let (line, col) = Self::line_col(source, span.start);
                format!("{}:{line}:{col}: error: {}", file.display(), d.message)
            }
            Origin::Override(set) => format!("{}: error: --set {set}: {}", file.display(), d.message),
            Origin::Unknown => format!("{}: error: {}", file.display(), d.message),
        }
    }

    /// Every diagnostic, one per line, in file order.
    pub fn render(&self) -> String {
        let mut sorted: Vec<&Diagnostic> = self.diagnostics.iter().collect();
        sorted.sort_by_key(|d| match &d.origin {
            Origin::File(span) => (0, span.start),
            Origin::Override(_) => (1, 0),
            Origin::Unknown => (2, 0),
        });
        sorted.iter().map(|d| Self::render_one(&self.file, &self.source, d)).collect::<Vec<_>>().join("\n")
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::error::Error for Report {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let src = "a = 1\nbé = 2\n";
        assert_eq!(Report::line_col(src, 0), (1, 1));
        assert_eq!(Report::line_col(src, 6), (2, 1));
        assert_eq!(Report::line_col(src, src.find('=').unwrap()), (1, 3));
        assert_eq!(Report::line_col(src, src.rfind('=').unwrap()), (2, 4));
    }
}
