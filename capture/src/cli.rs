//! `tapedeck capture` and `tapedeck ca`.

use crate::Error;
use tapedeck_sessions::Outcome;

/// Flags of `tapedeck capture`.
#[derive(Debug, clap::Args)]
pub struct CaptureArgs {}

/// `tapedeck ca init|export`.
#[derive(Debug, clap::Subcommand)]
pub enum CaCommand {
    /// Create the CA.
    Init,
}

/// Runs the capture proxy until SIGINT/SIGTERM.
pub fn run_capture(_args: CaptureArgs) -> Result<Outcome, Error> {
    Err(Error::Usage("capture: coming in this change".into()))
}

/// Runs a `tapedeck ca` subcommand.
pub fn run_ca(_cmd: CaCommand) -> Result<Outcome, Error> {
    Err(Error::Usage("ca: coming in this change".into()))
}
