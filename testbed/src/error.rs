//! The error type of this crate.

/// What can go wrong; every message is one line naming the flag, address
/// or target and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or argument is wrong.
    #[error("{0}")]
    Usage(String),
    /// The listen address could not be bound.
    #[error("testbed --listen {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The simulation target could not be reached.
    #[error("simulate --target {target}: {what}")]
    Target {
        /// The base URL.
        target: String,
        /// What failed, e.g. `connection refused`.
        what: String,
    },
    /// The tokio runtime or a signal handler could not be set up.
    #[error("{what}: {source}")]
    Runtime {
        /// What was being set up.
        what: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}
