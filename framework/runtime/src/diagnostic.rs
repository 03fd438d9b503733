//! Errors about a pipeline file, printed as `FILE:LINE:COL: error: ...` so
//! editors and terminals can jump to them.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a value came from: a span of the pipeline file, or a `--set`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Origin {
    /// Byte range in the pipeline file.
    File(Range<usize>),
    /// A value set from outside the file: `--set`, or a camera manifest.
    Override(Setting),
    /// Nowhere in particular (a default, or the file as a whole).
    #[default]
    Unknown,
}

/// One `dotted.path=value` override of a pipeline, and where it was written:
/// on the command line (`place` is `None`), or in another file such as a
/// camera manifest, whose errors then point at that file's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub assignment: String,
    pub place: Option<Arc<Place>>,
}

/// A span of a file other than the pipeline's, with what it is about
/// (e.g. "camera `gate`"), prefixed to its errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub file: PathBuf,
    pub source: Arc<str>,
    pub span: Range<usize>,
    pub about: String,
}

impl Setting {
    /// An override typed as `--set KEY=VALUE`.
    pub fn cli(assignment: &str) -> Setting {
        Setting { assignment: assignment.to_string(), place: None }
    }

    /// Every `--set` of a command line.
    pub fn from_cli(assignments: &[String]) -> Vec<Setting> {
        assignments.iter().map(|a| Setting::cli(a)).collect()
    }
}

impl Place {
    /// `FILE:LINE:COL: error: ABOUT: message`.
    pub fn render(&self, message: &str) -> String {
        let (line, col) = Report::line_col(&self.source, self.span.start);
        format!("{}:{line}:{col}: error: {}: {message}", self.file.display(), self.about)
    }
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
            Origin::Override(Setting { place: Some(place), .. }) => place.render(&d.message),
            Origin::Override(Setting { assignment, place: None }) => {
                format!("{}: error: --set {assignment}: {}", file.display(), d.message)
            }
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
