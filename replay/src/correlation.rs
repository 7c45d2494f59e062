//! Correlation: recorded values that must be replaced by live ones.

use crate::Error;
use tapedeck_sessions::Outcome;

/// Flags of `tapedeck sessions correlations`.
#[derive(Debug, clap::Args)]
pub struct CorrelationsArgs {}

/// Prints the correlation rules found in journals.
pub fn run_correlations(_args: CorrelationsArgs) -> Result<Outcome, Error> {
    Err(Error::Usage("correlations: coming in this change".into()))
}
