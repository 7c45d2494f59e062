//! The error type of this crate.

/// What can go wrong; every message is one line naming the file or flag.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or argument is wrong.
    #[error("{0}")]
    Usage(String),
    /// A file or address named by a flag is unusable.
    #[error("{what}: {why}")]
    Input {
        /// The flag and its value, e.g. `--tls-cert cert.pem`.
        what: String,
        /// What is wrong with it.
        why: String,
    },
    /// TLS could not be set up.
    #[error("TLS setup: {0}")]
    Tls(String),
    /// The journal could not be opened, written or closed.
    #[error("journal: {0}")]
    Journal(String),
    /// Starting or running the proxy failed.
    #[error("{0}")]
    Runtime(String),
}
