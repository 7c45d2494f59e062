//! The recording proxy of tapedeck.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cli;
mod error;

pub use error::Error;
