//! `tapedeck analyze`.

use tapedeck_sessions::Outcome;

/// `tapedeck analyze show|compare|check|merge`.
#[derive(Debug, clap::Subcommand)]
pub enum AnalyzeCommand {
    /// Print a run report.
    Show,
}

/// Runs an analyze subcommand.
pub fn run(_cmd: AnalyzeCommand) -> Result<Outcome, crate::report::ReportError> {
    Ok(Outcome::Success)
}
