//! The error type of this crate.

use std::path::PathBuf;

/// What can go wrong; every message is one line naming the file or flag.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or argument is wrong.
    #[error("{0}")]
    Usage(String),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A journal or profile could not be read.
    #[error(transparent)]
    Sessions(#[from] tapedeck_sessions::Error),
    /// A run report could not be written.
    #[error(transparent)]
    Report(#[from] tapedeck_analyze::report::ReportError),
    /// The `--credentials` file is unreadable or malformed.
    #[error("credentials {}: {what}", path.display())]
    Credentials {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong, e.g. `line 3: 2 fields, the header has 3`.
        what: String,
    },
    /// The `--correlation` rules file is unreadable or malformed.
    #[error("correlation rules {}: {what}", path.display())]
    RulesFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The runtime could not start.
    #[error("cannot start the replay runtime: {0}")]
    Runtime(String),
}
