//! The embedded CoreVia-shaped sample API and simulated mobile clients.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cli;
mod error;

pub use error::Error;
