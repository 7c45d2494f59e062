//! `tapedeck sessions`.

use crate::{Error, Outcome};

/// `tapedeck sessions list|show|stats|verify|filter|import-har|export-har|correlations`.
#[derive(Debug, clap::Subcommand)]
pub enum SessionsCommand {
    /// One line per session.
    List,
}

/// Runs a sessions subcommand.
pub fn run(_cmd: SessionsCommand) -> Result<Outcome, Error> {
    Ok(Outcome::Success)
}
