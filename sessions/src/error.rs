//! The error type of the sessions crate.

use std::path::PathBuf;

/// Everything that can go wrong reading or writing journals, HAR files and
/// profiles. Messages name the file and what is wrong, on one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be opened, read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file exists but is not what it should be.
    #[error("{}: {what}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, e.g. `not a tapedeck journal (no zstd frame at byte 0)`.
        what: String,
    },
    /// A flag or argument is wrong.
    #[error("{0}")]
    Usage(String),
}

/// What a command ended with when it did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything passed: exit 0.
    Success,
    /// A threshold, SLO or regression gate failed: exit 1.
    GateFailed,
}
