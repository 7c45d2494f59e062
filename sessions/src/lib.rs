//! The journal format and session model of tapedeck.
//!
//! A journal (`*.jsonl.zst`) is a concatenation of independent zstd frames,
//! each holding whole JSON lines: a header line, then one line per recorded
//! exchange. This crate writes and reads journals (recovering what it can
//! from damaged ones), groups exchanges into user sessions, classifies
//! sessions by role, names endpoints from an application profile, and
//! converts to and from HAR.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
pub mod model;
pub mod profile;

pub use error::{Error, Outcome};
pub use model::{Body, Exchange, JournalHeader, Record, RecordedRequest, RecordedResponse};
pub use profile::Profile;
pub mod cli;
