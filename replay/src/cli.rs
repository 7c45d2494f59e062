//! `tapedeck replay`.

use crate::Error;
use tapedeck_sessions::Outcome;

/// Flags of `tapedeck replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {}

/// Runs a replay.
pub fn run_replay(_args: ReplayArgs) -> Result<Outcome, Error> {
    Err(Error::Usage("replay: coming in this change".into()))
}

pub use crate::correlation::{run_correlations, CorrelationsArgs};
