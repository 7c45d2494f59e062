//! Run reports and release-to-release comparison for tapedeck.
//!
//! The replayer writes a [`report::RunReport`]; this crate reads reports,
//! compares two sets of them with statistics ([`compare`], [`stats`]), merges
//! shard reports exactly ([`merge`]), checks them against a profile's targets
//! ([`check`], [`threshold`]) and renders them ([`render`]).
//!
//! ```
//! use tapedeck_analyze::report::{new_histogram, EndpointReport, RunReport};
//! use tapedeck_analyze::{compare, threshold};
//!
//! let mut h = new_histogram();
//! for us in 1_000..1_200 {
//!     h.record(us).unwrap();
//! }
//! let mut ep = EndpointReport::new("Social Feed", "GET", h.clone(), h);
//! ep.requests = 200;
//! let mut run = RunReport::new("a", "http://127.0.0.1:8000", chrono::Utc::now());
//! run.endpoints.push(ep);
//!
//! let t = threshold::parse_threshold("Social Feed:p95<200ms").unwrap();
//! assert!(threshold::evaluate(&run, &[t])[0].ok);
//!
//! let c = compare::compare(&[run.clone()], &[run], &compare::CompareOptions::default());
//! assert_eq!(c.endpoints[0].verdict, compare::Verdict::Same);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod check;
pub mod cli;
pub mod compare;
pub mod merge;
pub mod render;
pub mod report;
pub mod stats;
pub mod threshold;

pub use report::RunReport;

use std::path::PathBuf;

/// Everything that can go wrong in `tapedeck analyze`. Messages name the
/// file or flag and what is wrong, on one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A run report could not be read or written.
    #[error(transparent)]
    Report(#[from] report::ReportError),
    /// A profile could not be read.
    #[error(transparent)]
    Profile(#[from] tapedeck_sessions::Error),
    /// An output file could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Shard reports that cannot be merged.
    #[error("cannot merge: {0}")]
    Merge(String),
    /// A flag or argument is wrong.
    #[error("{0}")]
    Usage(String),
}
