//! Run reports and release-to-release comparison for tapedeck.
//!
//! The replayer writes a [`report::RunReport`]; this crate reads reports,
//! compares two sets of them with statistics, merges shard reports exactly,
//! checks them against a profile's targets and renders them.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod report;

pub use report::RunReport;
pub mod cli;
