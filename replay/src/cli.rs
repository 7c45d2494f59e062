//! `tapedeck replay`: flags, then the run, then the outputs.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use tapedeck_analyze::report::write_private;
use tapedeck_sessions::Outcome;

use crate::config::{
    parse_duration, parse_mix, parse_rate, parse_shard, parse_speed, parse_stages, parse_target,
    Load, ReplayConfig,
};
use crate::correlation::CorrelationOptions;
use crate::Error;

pub use crate::correlation::{run_correlations, CorrelationsArgs};

const EXAMPLES: &str = "Examples:
  tapedeck replay journals/ --target http://127.0.0.1:9000 --multiply 10 --speed 10 --report a.json
  tapedeck replay journals/ --target http://127.0.0.1:9000 --users 100 --mix student=9,trainer=1 --stages 1m:100,5m:100,1m:0 --csv run
  tapedeck replay journals/ --target http://127.0.0.1:9000 --rate 20/s --run-time 5m --threshold 'Social Feed:p95<200ms'

Without --run-time or --stages every VU replays its session once and the run
ends when all are done; with --run-time VUs loop over their sessions until
the time is up (requests still in flight then are not counted).";

/// Flags of `tapedeck replay`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct ReplayArgs {
    /// Journal files or directories of journals.
    #[arg(required = true, value_name = "JOURNAL")]
    pub journals: Vec<PathBuf>,
    /// Target URL, or ORIGIN=URL to map one recorded origin (repeatable).
    #[arg(long, required = true, value_name = "URL|ORIGIN=URL")]
    pub target: Vec<String>,
    /// Number of virtual users (roles by --mix or the profile's weights).
    #[arg(long, conflicts_with = "multiply", allow_hyphen_values = true)]
    pub users: Option<String>,
    /// K virtual users per recorded session (default: 1).
    #[arg(long, value_name = "K", allow_hyphen_values = true)]
    pub multiply: Option<String>,
    /// Role weights for --users, --stages and --rate, e.g. student=9,trainer=1.
    #[arg(long, value_name = "ROLE=W,...")]
    pub mix: Option<String>,
    /// Divide recorded think times by this factor, or `max` for none.
    #[arg(long, default_value = "1", allow_hyphen_values = true)]
    pub speed: String,
    /// Users started per second, e.g. 10/s (default: all at once).
    #[arg(long, value_name = "N/s", allow_hyphen_values = true)]
    pub spawn_rate: Option<String>,
    /// User plan of linear ramps, e.g. 1m:10,5m:100,1m:0.
    #[arg(
        long,
        value_name = "D:USERS,...",
        conflicts_with = "multiply",
        allow_hyphen_values = true
    )]
    pub stages: Option<String>,
    /// Stop after this long (500ms, 30s, 5m, 2h).
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub run_time: Option<String>,
    /// Open model: session arrivals per second, each on a fresh user.
    #[arg(
        long,
        value_name = "N/s",
        conflicts_with_all = ["users", "multiply", "stages", "spawn_rate"],
        allow_hyphen_values = true
    )]
    pub rate: Option<String>,
    /// users.csv (username,password,role): one identity per virtual user.
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,
    /// Re-sign recorded HS256 tokens with this secret, per virtual user.
    #[arg(
        long,
        value_name = "SECRET",
        env = "TAPEDECK_JWT_SECRET",
        hide_env_values = true
    )]
    pub jwt_secret: Option<String>,
    /// Correlation rules to add or veto (JSON).
    #[arg(long, value_name = "FILE")]
    pub correlation: Option<PathBuf>,
    /// Write the run report (JSON).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Write Locust-compatible CSVs PREFIX_stats.csv, ...
    #[arg(long, value_name = "PREFIX")]
    pub csv: Option<String>,
    /// Write an HdrHistogram interval log.
    #[arg(long, value_name = "FILE")]
    pub hlog: Option<PathBuf>,
    /// Write an HTML report.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Name of this run in reports.
    #[arg(long, default_value = "replay")]
    pub label: String,
    /// Gate, e.g. 'Social Feed:p95<200ms', 'error_rate<1%', 'rps>100' (repeatable).
    #[arg(long, value_name = "EXPR")]
    pub threshold: Vec<String>,
    /// Application profile (default: the built-in CoreVia profile).
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// Run shard I of N (deterministic 1/N of the users and of the rate).
    #[arg(long, value_name = "I/N", allow_hyphen_values = true)]
    pub shard: Option<String>,
    /// Allow a target that is the upstream the journals were recorded against.
    #[arg(long)]
    pub allow_recorded_host: bool,
    /// Send recorded requests as they are (no value substitution).
    #[arg(long)]
    pub no_correlation: bool,
    /// Evaluate and report thresholds but exit 0.
    #[arg(long)]
    pub no_fail: bool,
    /// TCP connect timeout.
    #[arg(
        long,
        default_value = "5s",
        value_name = "DURATION",
        allow_hyphen_values = true
    )]
    pub connect_timeout: String,
    /// Whole-request timeout.
    #[arg(
        long,
        default_value = "30s",
        value_name = "DURATION",
        allow_hyphen_values = true
    )]
    pub timeout: String,
    /// Speak HTTP/2 to the target (h2c with prior knowledge, or ALPN h2 over https).
    #[arg(long)]
    pub h2: bool,
    /// Also trust these CA certificates (PEM) for https targets.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Serve Prometheus metrics on this address while running (a bare port
    /// listens on 127.0.0.1).
    #[arg(long, value_name = "ADDR|PORT")]
    pub metrics_listen: Option<String>,
    /// How exchanges group into sessions: auto|header:NAME|cookie:NAME|jwt:CLAIM.
    #[arg(long, value_name = "KEY")]
    pub session_key: Option<String>,
    /// A gap longer than this starts a new session.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub idle_split: Option<String>,
    /// No progress line and no end-of-run table.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Turns flags into a configuration (every value checked, errors name the flag).
pub fn config_from_args(args: &ReplayArgs) -> Result<ReplayConfig, Error> {
    let targets = args
        .target
        .iter()
        .map(|t| parse_target(t))
        .collect::<Result<Vec<_>, _>>()?;
    if targets.iter().filter(|t| t.origin.is_none()).count() > 1 {
        return Err(Error::Usage(
            "--target: only one plain URL target is allowed; map others with ORIGIN=URL".into(),
        ));
    }
    let mut config = ReplayConfig::new(args.journals.clone(), targets[0].clone());
    config.targets = targets;
    let mix = args.mix.as_deref().map(parse_mix).transpose()?;
    let count = |flag: &str, v: &Option<String>| -> Result<Option<u64>, Error> {
        v.as_deref()
            .map(|s| match s.trim().parse::<u64>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(Error::Usage(format!(
                    "{flag} {s:?}: must be a whole number >= 1"
                ))),
            })
            .transpose()
    };
    let users = count("--users", &args.users)?;
    let multiply = count("--multiply", &args.multiply)?;
    config.load = match (users, multiply) {
        (Some(users), _) => Load::Users { users, mix },
        (None, Some(k)) => {
            if mix.is_some() {
                return Err(Error::Usage(
                    "--mix applies to --users, --stages or --rate, not to --multiply".into(),
                ));
            }
            Load::Multiply(k)
        }
        (None, None) if mix.is_some() || args.stages.is_some() || args.rate.is_some() => {
            Load::Users { users: 0, mix }
        }
        (None, None) => Load::Multiply(1),
    };
    config.speed = parse_speed(&args.speed)?;
    config.spawn_rate = args
        .spawn_rate
        .as_deref()
        .map(|s| parse_rate("--spawn-rate", s))
        .transpose()?;
    config.stages = args.stages.as_deref().map(parse_stages).transpose()?;
    if config.stages.is_some() && users.is_some() {
        return Err(Error::Usage(
            "--stages sets the user count over time; drop --users".into(),
        ));
    }
    if config.stages.is_some() && config.spawn_rate.is_some() {
        return Err(Error::Usage(
            "--spawn-rate applies to --users and --multiply; --stages ramps users itself".into(),
        ));
    }
    config.run_time = args
        .run_time
        .as_deref()
        .map(|s| parse_duration("--run-time", s))
        .transpose()?;
    if config.run_time.is_some_and(|d| d.is_zero()) {
        return Err(Error::Usage("--run-time must be longer than 0".into()));
    }
    config.rate = args
        .rate
        .as_deref()
        .map(|s| parse_rate("--rate", s))
        .transpose()?;
    config.correlation = CorrelationOptions {
        enabled: !args.no_correlation,
        rules_file: args.correlation.clone(),
        credentials: args.credentials.clone(),
        jwt_secret: args.jwt_secret.clone(),
    };
    config.label = args.label.clone();
    config.thresholds = args.threshold.clone();
    config.profile = args.profile.clone();
    config.shard = args.shard.as_deref().map(parse_shard).transpose()?;
    config.allow_recorded_host = args.allow_recorded_host;
    config.connect_timeout = parse_duration("--connect-timeout", &args.connect_timeout)?;
    config.timeout = parse_duration("--timeout", &args.timeout)?;
    if config.connect_timeout.is_zero() || config.timeout.is_zero() {
        return Err(Error::Usage(
            "--connect-timeout and --timeout must be longer than 0".into(),
        ));
    }
    config.h2 = args.h2;
    config.ca_cert = args.ca_cert.clone();
    config.metrics_listen = args
        .metrics_listen
        .as_deref()
        .map(parse_listen)
        .transpose()?;
    config.session_key = args.session_key.clone();
    config.idle_split = args
        .idle_split
        .as_deref()
        .map(|s| parse_duration("--idle-split", s))
        .transpose()?;
    config.hlog = args.hlog.clone();
    config.progress = !args.quiet;
    Ok(config)
}

/// `--metrics-listen`: `ADDR:PORT`, or a bare port on loopback.
fn parse_listen(s: &str) -> Result<SocketAddr, Error> {
    let s = s.trim();
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse().map_err(|_| {
        Error::Usage(format!(
            "--metrics-listen {s:?}: not ADDR:PORT or a port (e.g. 127.0.0.1:9100)"
        ))
    })
}

/// Runs a replay.
pub fn run_replay(args: ReplayArgs) -> Result<Outcome, Error> {
    let config = config_from_args(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Runtime(e.to_string()))?;
    let run = runtime.block_on(crate::replay_run(config, true))?;
    // Dropping the runtime here would wait for nothing: every task ended.
    drop(runtime);
    for w in &run.warnings {
        eprintln!("tapedeck: warning: {w}");
    }
    let report = &run.report;
    if let Some(p) = &args.report {
        report.write(p)?;
    }
    if let Some(prefix) = &args.csv {
        crate::locust_csv::write(prefix, report, &run.history)?;
    }
    if let Some(p) = &args.html {
        let html = tapedeck_analyze::render::html_run(report);
        write_private(p, html.as_bytes()).map_err(|source| Error::Io {
            path: p.clone(),
            source,
        })?;
    }
    if !args.quiet {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(tapedeck_analyze::render::text_run(report).as_bytes());
        let _ = out.flush();
    }
    if !run.lateness.is_empty() {
        let ms = |q: f64| run.lateness.value_at_quantile(q) as f64 / 1000.0;
        eprintln!(
            "scheduling lateness: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} scheduled sends)",
            ms(0.5),
            ms(0.99),
            run.lateness.max() as f64 / 1000.0,
            run.lateness.len()
        );
    }
    if report.partial {
        eprintln!("tapedeck: run interrupted; reports are marked partial");
    }
    let breached: Vec<&str> = report
        .thresholds
        .iter()
        .filter(|t| !t.ok)
        .map(|t| t.expr.as_str())
        .collect();
    if !breached.is_empty() {
        eprintln!("tapedeck: threshold breached: {}", breached.join("; "));
        if !args.no_fail {
            return Ok(Outcome::GateFailed);
        }
    }
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_listen_takes_an_address_or_a_loopback_port() {
        assert_eq!(
            parse_listen("9100").unwrap(),
            "127.0.0.1:9100".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            parse_listen("0.0.0.0:9100").unwrap(),
            "0.0.0.0:9100".parse::<SocketAddr>().unwrap()
        );
        let e = parse_listen("nowhere").unwrap_err().to_string();
        assert!(e.contains("--metrics-listen"), "{e}");
    }
}
