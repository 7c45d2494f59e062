//! The journal format and session model of tapedeck.
//!
//! A journal (`*.jsonl.zst`) is a concatenation of independent zstd frames,
//! each holding whole JSON lines: a header line, then one line per recorded
//! exchange. This crate writes and reads journals (recovering what it can
//! from damaged ones), groups exchanges into user sessions, classifies
//! sessions by role, names endpoints from an application profile, and
//! converts to and from HAR.
//!
//! ```
//! use tapedeck_sessions::{group_sessions, read_all, GroupOptions, JournalWriter, Profile};
//! # fn main() -> Result<(), tapedeck_sessions::Error> {
//! # let dir = std::env::temp_dir().join(format!("tapedeck-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).expect("temp dir");
//! let path = dir.join("capture.jsonl.zst");
//! let writer = JournalWriter::create_file(&path, "http://127.0.0.1:8000")?;
//! // writer.write(&exchange)? for each recorded exchange, then:
//! writer.finish()?;
//!
//! let journals = read_all(&[path])?;
//! assert!(journals.files[0].report.is_clean());
//! let sessions = group_sessions(journals.exchanges, &GroupOptions::default(), &Profile::builtin());
//! for s in &sessions {
//!     println!("{} {} {} requests", s.id, s.role, s.exchanges.len());
//! }
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(())
//! # }
//! ```
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
