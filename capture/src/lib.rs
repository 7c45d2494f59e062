//! The recording proxy of tapedeck.
//!
//! `tapedeck capture` sits between an app and its API: it forwards every
//! request (HTTP/1.1 and h2, plain or TLS) to the upstream, streams bodies
//! both ways as they arrive, and writes each exchange to a journal
//! (`*.jsonl.zst`) from a writer thread behind a bounded queue, so the
//! recording never slows the traffic down. Secrets are redacted with a
//! salted hash, session keys are assigned as exchanges complete, and files
//! rotate by size and time.
//!
//! ```no_run
//! # async fn run() -> Result<(), tapedeck_capture::Error> {
//! let config = tapedeck_capture::CaptureConfig::reverse("http://127.0.0.1:8000", "journals")?;
//! let capture = tapedeck_capture::start(config).await?;
//! println!("proxy on http://{}", capture.addr());
//! // ... traffic ...
//! let summary = capture.shutdown().await?;
//! println!("{summary}");
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod ca;
pub mod cli;
mod config;
mod error;
mod forward;
mod proxy;
mod recorder;
mod redact;
mod server;
mod stats;
mod tap;
mod upstream;

pub use config::{parse_duration, parse_size, CaptureConfig, Mode};
pub use error::Error;
pub use server::{start, CaptureSummary, RunningCapture};
pub use stats::CaptureStats;
