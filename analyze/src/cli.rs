//! `tapedeck analyze show|compare|check|merge`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use tapedeck_sessions::profile::Profile;
use tapedeck_sessions::Outcome;

use crate::compare::{compare, CompareOptions};
use crate::report::RunReport;
use crate::{check, merge, render, threshold, Error};

/// Output format of `analyze` commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned table (colour on a terminal unless NO_COLOR is set).
    Text,
    /// Markdown (a pull-request comment or CI job summary).
    Md,
    /// Machine-readable JSON, versioned.
    Json,
    /// One self-contained HTML file (inline CSS, JS and SVG).
    Html,
}

/// `tapedeck analyze show|compare|check|merge`.
#[derive(Debug, clap::Subcommand)]
pub enum AnalyzeCommand {
    /// Print the end-of-run table of a run report again.
    #[command(
        after_help = "Examples:\n  tapedeck analyze show a.json\n  tapedeck analyze show a.json --format html -o a.html"
    )]
    Show(ShowArgs),
    /// Compare base runs with candidate runs: what got slower, with statistics.
    #[command(
        after_help = "Examples:\n  tapedeck analyze compare --base a1.json a2.json --candidate b1.json b2.json\n  tapedeck analyze compare --base a.json --candidate b.json --format html -o diff.html\n  tapedeck analyze compare --base a.json --candidate b.json --format md --no-fail >> \"$GITHUB_STEP_SUMMARY\"\n\nExit status: 0 no regression, 1 an endpoint is slower or its errors rose (unless --no-fail), 2 bad input."
    )]
    Compare(CompareArgs),
    /// Check a run against the profile's plan (target/acceptable/critical) and thresholds.
    #[command(
        after_help = "Examples:\n  tapedeck analyze check a.json\n  tapedeck analyze check a.json --threshold 'Social Feed:p95<200ms' --threshold 'error_rate<1%'\n  tapedeck analyze check a.json --profile myapp-profile.json --format md\n\nExit status: 0 passed, 1 a row is critical or a threshold failed, 2 bad input."
    )]
    Check(CheckArgs),
    /// Merge shard reports (`replay --shard I/N`) of one run exactly.
    #[command(
        after_help = "Examples:\n  tapedeck analyze merge shard-1.json shard-2.json shard-3.json -o run.json"
    )]
    Merge(MergeArgs),
}

/// `analyze show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The run report.
    pub run: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Write to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `analyze compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// Base runs (the release you trust). Several runs give a measured noise floor.
    #[arg(long, num_args = 1.., value_name = "RUN")]
    pub base: Vec<PathBuf>,
    /// Candidate runs (the release under test).
    #[arg(long, num_args = 1.., value_name = "RUN")]
    pub candidate: Vec<PathBuf>,
    /// Shorthand: BASE CANDIDATE as two positional files.
    #[arg(value_name = "BASE CANDIDATE", conflicts_with_all = ["base", "candidate"])]
    pub runs: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Write to FILE instead of standard output (a text summary still goes to standard output).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Smallest relative change that can count, e.g. `5%` or `0.05`.
    #[arg(long, default_value = "5%", value_parser = parse_noise)]
    pub noise: f64,
    /// Report regressions but exit 0.
    #[arg(long)]
    pub no_fail: bool,
    /// Exit 1 on a regression (the default; the opposite of --no-fail).
    #[arg(long, conflicts_with = "no_fail", hide = true)]
    pub fail_on_regression: bool,
}

/// `analyze check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The run report.
    pub run: PathBuf,
    /// Profile with the plan's targets (default: the built-in CoreVia profile).
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// Extra threshold, e.g. `Social Feed:p95<200ms`, `error_rate<1%`, `p(99)<2000`.
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Write to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `analyze merge`.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// Shard reports of one run.
    #[arg(required = true, value_name = "SHARD")]
    pub shards: Vec<PathBuf>,
    /// The merged run report to write.
    #[arg(short = 'o', long = "output", value_name = "RUN", required = true)]
    pub output: PathBuf,
}

/// Parses `--noise`: `5%` or a fraction such as `0.05`.
pub fn parse_noise(s: &str) -> Result<f64, String> {
    let bad = || format!("'{s}' is not a relative change (write 5% or 0.05)");
    let v = match s.trim().strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map_err(|_| bad())? / 100.0,
        None => {
            let v = s.trim().parse::<f64>().map_err(|_| bad())?;
            if v >= 1.0 {
                return Err(format!(
                    "'{s}' is ambiguous: write {s}% or a fraction below 1"
                ));
            }
            v
        }
    };
    if !v.is_finite() || v < 0.0 {
        return Err(bad());
    }
    Ok(v)
}

fn color_wanted(output: &Option<PathBuf>) -> bool {
    output.is_none() && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}

fn emit(output: &Option<PathBuf>, text: &str) -> Result<(), Error> {
    match output {
        Some(path) => {
            crate::report::write_private(path, text.as_bytes()).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })
        }
        None => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error of ours.
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
            Ok(())
        }
    }
}

/// Reads run reports for comparing (latency histograms only, see
/// [`RunReport::read_latencies`]), several files at once (decoding
/// histograms is most of the time `compare` takes), in the order given.
pub fn read_reports(paths: &[PathBuf]) -> Result<Vec<RunReport>, Error> {
    read_parallel(paths, RunReport::read_latencies)
}

fn read_parallel(
    paths: &[PathBuf],
    read: fn(&Path) -> Result<RunReport, crate::report::ReportError>,
) -> Result<Vec<RunReport>, Error> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut out = Vec::with_capacity(paths.len());
    for chunk in paths.chunks(workers.max(1)) {
        let results: Vec<Result<RunReport, Error>> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|p| scope.spawn(move || read(p).map_err(Error::from)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("reading a report does not panic"))
                .collect()
        });
        for r in results {
            out.push(r?);
        }
    }
    Ok(out)
}

fn json_text<T: serde::Serialize>(v: &T) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("report types always serialize");
    s.push('\n');
    s
}

/// Runs an analyze subcommand.
pub fn run(cmd: AnalyzeCommand) -> Result<Outcome, Error> {
    match cmd {
        AnalyzeCommand::Show(a) => show(a),
        AnalyzeCommand::Compare(a) => compare_cmd(a),
        AnalyzeCommand::Check(a) => check_cmd(a),
        AnalyzeCommand::Merge(a) => merge_cmd(a),
    }
}

fn show(a: ShowArgs) -> Result<Outcome, Error> {
    let r = RunReport::read(&a.run)?;
    let text = match a.format {
        Format::Text => render::text_run(&r),
        Format::Md => render::md_run(&r),
        Format::Json => json_text(&r),
        Format::Html => render::html_run(&r),
    };
    emit(&a.output, &text)?;
    Ok(Outcome::Success)
}

fn compare_cmd(a: CompareArgs) -> Result<Outcome, Error> {
    let (base, cand) = if a.base.is_empty() && a.candidate.is_empty() {
        match a.runs.as_slice() {
            [b, c] => (vec![b.clone()], vec![c.clone()]),
            _ => {
                return Err(Error::Usage(
                    "analyze compare: give --base RUN... --candidate RUN... (or exactly BASE CANDIDATE)"
                        .to_string(),
                ))
            }
        }
    } else if a.base.is_empty() || a.candidate.is_empty() {
        return Err(Error::Usage(format!(
            "analyze compare: {} is missing (both --base and --candidate are needed)",
            if a.base.is_empty() {
                "--base"
            } else {
                "--candidate"
            }
        )));
    } else {
        (a.base.clone(), a.candidate.clone())
    };
    let all: Vec<PathBuf> = base.iter().chain(&cand).cloned().collect();
    let mut runs = read_reports(&all)?;
    let cand = runs.split_off(base.len());
    let base = runs;
    let opts = CompareOptions {
        noise: a.noise,
        ..CompareOptions::default()
    };
    let c = compare(&base, &cand, &opts);
    let color = color_wanted(&a.output);
    let text = match a.format {
        Format::Text => render::text_compare(&c, color),
        Format::Md => render::md_compare(&c),
        Format::Json => json_text(&c),
        Format::Html => render::html_compare(&c),
    };
    emit(&a.output, &text)?;
    if a.output.is_some() && a.format != Format::Text {
        let summary = render::text_compare(&c, color_wanted(&None));
        emit(&None, &summary)?;
    }
    Ok(if c.regressed() && !a.no_fail {
        Outcome::GateFailed
    } else {
        Outcome::Success
    })
}

fn check_cmd(a: CheckArgs) -> Result<Outcome, Error> {
    let thresholds = a
        .thresholds
        .iter()
        .map(|t| {
            threshold::parse_threshold(t).map_err(|e| Error::Usage(format!("--threshold: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let profile = Profile::load(a.profile.as_deref())?;
    let r = RunReport::read(&a.run)?;
    let c = check::check(&r, &profile, &thresholds);
    let text = match a.format {
        Format::Text => render::text_check(&c, color_wanted(&a.output)),
        Format::Md => render::md_check(&c),
        Format::Json => json_text(&c),
        Format::Html => {
            return Err(Error::Usage(
                "analyze check: --format html is not available (use text, md or json; `analyze show --format html` renders the run)"
                    .to_string(),
            ))
        }
    };
    emit(&a.output, &text)?;
    Ok(if c.failed() {
        Outcome::GateFailed
    } else {
        Outcome::Success
    })
}

fn merge_cmd(a: MergeArgs) -> Result<Outcome, Error> {
    let shards = read_parallel(&a.shards, RunReport::read)?;
    let merged = merge::merge(&shards).map_err(|e| match e {
        Error::Merge(why) => Error::Merge(format!("{why} (files: {})", names(&a.shards))),
        other => other,
    })?;
    merged.write(&a.output)?;
    let count = shards.first().and_then(|s| s.shard).map_or(0, |s| s.count);
    if shards.len() as u32 != count {
        eprintln!(
            "tapedeck: warning: merged {} of {count} shards; {} is marked partial",
            shards.len(),
            a.output.display()
        );
    }
    println!(
        "merged {} shards into {}: {} requests, {} failures",
        shards.len(),
        a.output.display(),
        merged.total_requests(),
        merged.total_failures()
    );
    Ok(Outcome::Success)
}

fn names(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| Path::new(p).display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_flag() {
        assert_eq!(parse_noise("5%").unwrap(), 0.05);
        assert_eq!(parse_noise("0.1").unwrap(), 0.1);
        assert!(parse_noise("5").unwrap_err().contains("ambiguous"));
        assert!(parse_noise("lots").is_err());
        assert!(parse_noise("-3%").is_err());
    }
}
