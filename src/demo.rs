//! `tapedeck demo`: the whole story on the embedded sample app.

use std::path::PathBuf;

use tapedeck_sessions::Outcome;

/// Flags of `tapedeck demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where to leave the journal, run reports, CSVs and HTML comparison.
    #[arg(long, default_value = "demo-out")]
    pub out: PathBuf,
}

/// Runs the demo.
pub fn run(_args: DemoArgs) -> anyhow::Result<Outcome> {
    anyhow::bail!("demo: coming in this change")
}
