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

pub mod cli;
mod error;
pub mod grouping;
pub mod har;
pub mod journal;
pub mod keys;
pub mod model;
pub mod naming;
pub mod profile;

/// The date-time library of the model's timestamps, for callers that build exchanges.
pub use chrono;
pub use error::{Error, Outcome};
pub use grouping::{group_sessions, GroupOptions, Session};
pub use journal::{
    expand_paths, read_all, Damage, JournalFile, JournalReader, JournalWriter, Journals,
    ReadReport, WriterOptions, WriterSummary,
};
pub use keys::{jwt_claims, SessionKey, SessionKeyer};
pub use model::ClosingStats;
pub use model::{Body, Exchange, JournalHeader, Record, RecordedRequest, RecordedResponse};
pub use naming::EndpointNamer;
pub use profile::Profile;
