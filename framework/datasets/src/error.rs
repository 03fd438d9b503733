use std::path::PathBuf;

/// What went wrong reading a dataset; every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cause is part of the message, not a chained source, so that a
    /// report printing the whole chain names it once.
    #[error("{}: {cause}", path.display())]
    Io { path: PathBuf, cause: std::io::Error },
    /// The data is there but not what was expected.
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |cause| Error::Io { path: path.to_path_buf(), cause }
}

pub(crate) fn invalid<T>(message: impl Into<String>) -> Result<T> {
    Err(Error::Invalid(message.into()))
}
