use std::path::PathBuf;

/// Why an evaluation step could not be done.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// Input that cannot be evaluated as given (lengths, NaN, one class).
    #[error("{0}")]
    Invalid(String),
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("drawing {what}: {message}")]
    Plot { what: String, message: String },
    /// No usable font for plot text.
    #[error("{0}")]
    Font(String),
}

impl EvalError {
    pub fn invalid(message: impl Into<String>) -> EvalError {
        EvalError::Invalid(message.into())
    }
}
