//! The error type of this crate.

/// What can go wrong; every message is one line naming the file or flag.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or argument is wrong.
    #[error("{0}")]
    Usage(String),
}
