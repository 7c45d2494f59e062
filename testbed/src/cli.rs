//! `tapedeck testbed` and `tapedeck simulate`.

use crate::Error;

/// Outcome of a command.
pub use tapedeck_sessions::Outcome;

/// Flags of `tapedeck testbed`.
#[derive(Debug, clap::Args)]
pub struct TestbedArgs {}

/// Flags of `tapedeck simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {}

/// Runs the sample API until SIGINT/SIGTERM.
pub fn run_testbed(_args: TestbedArgs) -> Result<Outcome, Error> {
    Err(Error::Usage("testbed: coming in this change".into()))
}

/// Drives simulated students and trainers against a target.
pub fn run_simulate(_args: SimulateArgs) -> Result<Outcome, Error> {
    Err(Error::Usage("simulate: coming in this change".into()))
}
