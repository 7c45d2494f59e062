//! End-to-end tests through the real `tapedeck` binary and real servers on
//! 127.0.0.1. One test binary, one module per area.

mod common;

mod analyze;
mod capture;
mod cli;
mod correlation;
mod metrics;
mod readme;
mod reliability;
mod replay;
mod sessions;
mod testbed;
