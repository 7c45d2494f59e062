//! The replay engine of tapedeck.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cli;
pub mod correlation;
mod error;

pub use error::Error;
