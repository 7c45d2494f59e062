//! `tapedeck`: record real API traffic, replay it as many virtual users, and
//! tell whether a release got slower.
//!
//! This file parses flags and dispatches to the crates; it holds no logic.
//! Exit codes are mapped in one place: 0 ok, 1 a gate failed, 2 usage or
//! input error (one line on stderr naming the file or flag).

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use tapedeck_sessions::Outcome;

mod demo;

#[derive(Debug, Parser)]
#[command(
    name = "tapedeck",
    version,
    about = "Record real mobile-app API traffic, replay it as many virtual users, and tell whether a release got slower",
    after_help = "Examples:\n  tapedeck demo --out demo-out\n  tapedeck capture --upstream http://127.0.0.1:8000 --out journals/\n  tapedeck replay journals/*.jsonl.zst --target http://127.0.0.1:9000 --multiply 10 --speed 10 --report a.json\n  tapedeck analyze compare --base a.json --candidate b.json"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the largest flag set does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// The whole story on the embedded sample app: capture, replay A and B, compare.
    Demo(demo::DemoArgs),
    /// Run the embedded CoreVia-shaped sample API.
    Testbed(tapedeck_testbed::cli::TestbedArgs),
    /// Drive simulated students and trainers against an API.
    Simulate(tapedeck_testbed::cli::SimulateArgs),
    /// Record traffic through a proxy into journals.
    Capture(tapedeck_capture::cli::CaptureArgs),
    /// Manage the CA used to intercept HTTPS in forward-proxy mode.
    #[command(subcommand)]
    Ca(tapedeck_capture::cli::CaCommand),
    /// Inspect, filter and convert journals.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Replay journals as many virtual users against a target.
    Replay(tapedeck_replay::cli::ReplayArgs),
    /// Show, compare, check and merge run reports.
    #[command(subcommand)]
    Analyze(tapedeck_analyze::cli::AnalyzeCommand),
    /// Print shell completions (bash, zsh, fish, ...).
    #[command(
        after_help = "Examples:\n  tapedeck completions bash > /etc/bash_completion.d/tapedeck\n  tapedeck completions zsh > ~/.zfunc/_tapedeck\n  tapedeck completions fish > ~/.config/fish/completions/tapedeck.fish"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
enum SessionsCommand {
    #[command(flatten)]
    Journal(tapedeck_sessions::cli::SessionsCommand),
    /// The value-carrying rules replay will apply (tokens, ids).
    Correlations(tapedeck_replay::cli::CorrelationsArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout and usage errors to stderr.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // The README test checks that every documented command still parses,
    // without running it.
    if std::env::var_os("TAPEDECK_PARSE_ONLY").is_some() {
        return ExitCode::SUCCESS;
    }
    match dispatch(cli.command) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::GateFailed) => ExitCode::from(1),
        Err(e) => {
            eprintln!("tapedeck: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The crates' errors already say what failed and why on one line (their
/// messages include the cause), so the source chain is not printed again.
fn one_line(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

fn dispatch(command: Command) -> anyhow::Result<Outcome> {
    Ok(match command {
        Command::Demo(args) => demo::run(args)?,
        Command::Testbed(args) => tapedeck_testbed::cli::run_testbed(args).map_err(one_line)?,
        Command::Simulate(args) => tapedeck_testbed::cli::run_simulate(args).map_err(one_line)?,
        Command::Capture(args) => tapedeck_capture::cli::run_capture(args).map_err(one_line)?,
        Command::Ca(cmd) => tapedeck_capture::cli::run_ca(cmd).map_err(one_line)?,
        Command::Sessions(SessionsCommand::Journal(cmd)) => {
            tapedeck_sessions::cli::run(cmd).map_err(one_line)?
        }
        Command::Sessions(SessionsCommand::Correlations(args)) => {
            tapedeck_replay::cli::run_correlations(args).map_err(one_line)?
        }
        Command::Replay(args) => tapedeck_replay::cli::run_replay(args).map_err(one_line)?,
        Command::Analyze(cmd) => tapedeck_analyze::cli::run(cmd).map_err(one_line)?,
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "tapedeck",
                &mut std::io::stdout(),
            );
            Outcome::Success
        }
    })
}
