//! Errors cross the plugin boundary as values. The host adds the plugin and
//! stage names, so a plugin only says what went wrong.

use abi_stable::{std_types::RString, StableAbi};

/// Whose fault an error is, which decides how the host reports it.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StageErrorKind {
    /// Bad input or options: the user can fix it.
    Invalid,
    /// Something failed while working (I/O, numerics, backend).
    Failed,
    /// The plugin panicked; the panic was caught on the plugin's side.
    Panicked,
}

/// An error a stage returns instead of panicking. The message says what went
/// wrong in the plugin's words (e.g. "option `model`: file not found"); the
/// host prefixes the stage id and plugin name.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct StageError {
    /// Whose fault it is.
    pub kind: StageErrorKind,
    /// One line, without the stage or plugin name.
    pub message: RString,
}

impl StageError {
    /// A failure while working (kind `Failed`): I/O, numerics, backend.
    pub fn new(message: impl Into<String>) -> StageError {
        StageError { kind: StageErrorKind::Failed, message: RString::from(message.into()) }
    }
    /// Bad input or options the user can fix (kind `Invalid`).
    pub fn invalid(message: impl Into<String>) -> StageError {
        StageError { kind: StageErrorKind::Invalid, message: RString::from(message.into()) }
    }
    /// A caught panic (kind `Panicked`); made by the guards around every
    /// entry point, not by plugin code.
    pub fn panicked(message: impl Into<String>) -> StageError {
        StageError { kind: StageErrorKind::Panicked, message: RString::from(message.into()) }
    }
}

impl std::fmt::Display for StageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            StageErrorKind::Panicked => write!(f, "panicked: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for StageError {}

impl From<crate::tensor::TensorAccessError> for StageError {
    fn from(e: crate::tensor::TensorAccessError) -> Self {
        StageError::invalid(e.to_string())
    }
}

/// `?`-friendly conversion of any displayable error into a [`StageError`]
/// with context: `file.read().stage_context("reading model")?`.
pub trait ResultExt<T> {
    /// Wraps the error as a `Failed` [`StageError`] reading "`what`: error".
    fn stage_context(self, what: impl std::fmt::Display) -> Result<T, StageError>;
}

impl<T, E: std::fmt::Display> ResultExt<T> for Result<T, E> {
    fn stage_context(self, what: impl std::fmt::Display) -> Result<T, StageError> {
        self.map_err(|e| StageError::new(format!("{what}: {e}")))
    }
}
