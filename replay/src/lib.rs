//! The replay engine of tapedeck: recorded sessions replayed as many
//! virtual users against a release under test.
//!
//! Journals are grouped into sessions ([`pool`]); each virtual user (VU)
//! replays sessions of its role request by request with the recorded think
//! times scaled by `--speed` ([`vu`]), on its own HTTP connection
//! ([`client`]); the engine starts and stops VUs to follow the user plan or
//! arrival rate ([`engine`], [`schedule`]); results flow as small records to
//! a collector that keeps HdrHistograms, never individual latencies
//! ([`collector`]). The outcome is a [`RunReport`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), tapedeck_replay::Error> {
//! use tapedeck_replay::config::{parse_target, ReplayConfig, Speed};
//!
//! let mut config = ReplayConfig::new(
//!     vec!["journals/".into()],
//!     parse_target("http://127.0.0.1:9000")?,
//! );
//! config.speed = Speed::Factor(10.0);
//! let report = tapedeck_replay::replay(config).await?;
//! println!("{} requests", report.total_requests());
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cli;
pub mod client;
pub mod collector;
pub mod config;
pub mod correlation;
pub mod engine;
mod error;
pub mod hlog;
pub mod locust_csv;
pub mod metrics;
pub mod pool;
pub mod progress;
pub mod schedule;
pub mod vu;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hdrhistogram::Histogram;
use serde_json::json;
use tapedeck_analyze::report::{RunReport, Shard};
use tapedeck_analyze::threshold::{evaluate, parse_threshold, Threshold};
use tapedeck_sessions::Profile;

pub use config::ReplayConfig;
pub use error::Error;

use crate::collector::{CollectorSetup, HistoryRow, Live};
use crate::config::{Load, Speed};
use crate::correlation::Correlation;
use crate::engine::{Assignment, Model};
use crate::pool::{Grouping, Pool};
use crate::schedule::UserPlan;
use crate::vu::Shared;

/// A finished replay with the extras the CLI writes besides the report.
pub struct ReplayRun {
    /// The run report (thresholds evaluated).
    pub report: RunReport,
    /// Rows of Locust's `_stats_history.csv`.
    pub history: Vec<HistoryRow>,
    /// Scheduling lateness of the VUs (how late requests left vs their
    /// due time when the VU was on schedule), µs.
    pub lateness: Histogram<u64>,
    /// Warnings for stderr (skipped roles, damaged journals, ...).
    pub warnings: Vec<String>,
}

/// Runs a replay and returns its report (thresholds evaluated).
pub async fn replay(config: ReplayConfig) -> Result<RunReport, Error> {
    Ok(replay_run(config, false).await?.report)
}

/// Runs a replay; with `handle_signals`, Ctrl-C and SIGTERM end it early
/// and the report is marked partial.
pub async fn replay_run(config: ReplayConfig, handle_signals: bool) -> Result<ReplayRun, Error> {
    let thresholds: Vec<Threshold> = config
        .thresholds
        .iter()
        .map(|t| parse_threshold(t).map_err(|e| Error::Usage(format!("--threshold: {e}"))))
        .collect::<Result<_, _>>()?;
    let profile = Profile::load(config.profile.as_deref())?;
    let grouping = Grouping {
        session_key: config.session_key.clone(),
        idle_split: config.idle_split,
    };
    let pool = Pool::load(&config.journals, &config.targets, &profile, &grouping)?;
    if !config.allow_recorded_host {
        pool.guard(&config.targets)?;
    }
    let mut warnings = pool.warnings.clone();
    let correlation = Correlation::discover(&pool.sessions, &config.correlation)?;
    warnings.extend(correlation.warnings().iter().cloned());

    // Role weights matter only when VUs are assigned by role.
    let by_role = config.rate.is_some() || matches!(config.load, Load::Users { .. });
    let weights = if by_role {
        let (weights, mix_warnings) = role_weights(&pool, &config.load, &profile)?;
        warnings.extend(mix_warnings);
        weights
    } else {
        Vec::new()
    };
    let model = build_model(&config, &pool, weights);
    let deadline = config.run_time.or_else(|| {
        config
            .stages
            .as_ref()
            .map(|s| s.iter().map(|st| st.duration).sum())
    });

    let tls = if config.targets.iter().any(|t| t.is_tls()) {
        Some(Arc::new(client::tls_config(
            config.ca_cert.as_deref(),
            config.h2,
        )?))
    } else {
        None
    };

    let start = Instant::now();
    let start_wall = chrono::Utc::now();
    let live = Arc::new(Live::default());
    let hlog = match &config.hlog {
        Some(p) => Some(hlog::HlogWriter::create(p, std::time::SystemTime::now())?),
        None => None,
    };
    let metrics_text = config
        .metrics_listen
        .map(|_| Arc::new(Mutex::new(metrics::MetricsText::default())));
    let metrics_task = match (config.metrics_listen, &metrics_text) {
        (Some(addr), Some(text)) => {
            let (local, task) = metrics::serve(addr, text.clone()).await?;
            if config.progress {
                eprintln!("metrics on http://{local}/metrics");
            }
            Some(task)
        }
        _ => None,
    };
    let progress = (config.progress && std::io::stderr().is_terminal())
        .then(|| progress::Progress::new(deadline));
    let setup = CollectorSetup {
        endpoints: pool.endpoints.clone(),
        start,
        start_wall,
        slow: std::time::Duration::from_millis(profile.slow_request_ms()),
        live: live.clone(),
        hlog,
        metrics: metrics_text,
        progress,
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let collector = tokio::spawn(collector::collect(rx, setup));
    let journals = pool.journals.clone();
    let shared = Arc::new(Shared {
        pool,
        correlation,
        targets: config.targets.clone(),
        client: client::ClientConfig {
            connect_timeout: config.connect_timeout,
            timeout: config.timeout,
            h2: config.h2,
            tls,
        },
        speed: config.speed,
        learn: config.correlation.enabled,
        start,
        live,
    });
    let out = engine::run(
        shared,
        model,
        config.shard,
        deadline,
        handle_signals,
        tx,
        collector,
    )
    .await;
    if let Some(task) = metrics_task {
        task.abort();
    }
    if let Some(e) = &out.measured.hlog_error {
        warnings.push(format!("--hlog: {e}"));
    }

    let target = config
        .targets
        .iter()
        .map(|t| match &t.origin {
            Some(o) => format!("{o}={}", t.url()),
            None => t.url(),
        })
        .collect::<Vec<_>>()
        .join(",");
    let mut report = RunReport::new(config.label.clone(), target, start_wall);
    report.ended = start_wall + chrono::Duration::from_std(out.elapsed).unwrap_or_default();
    report.options = options(&config, &journals);
    report.journals = journals;
    report.shard = config.shard.map(|s| Shard {
        index: s.index,
        count: s.count,
    });
    report.partial = out.partial;
    let m = out.measured;
    report.endpoints = m.endpoints;
    report.timeline = m.timeline;
    report.failures = m.failures;
    report.slow_requests = m.slow_requests;
    report.lateness = tapedeck_analyze::report::Lateness::from_histogram(&m.lateness);
    report.thresholds = evaluate(&report, &thresholds);
    Ok(ReplayRun {
        report,
        history: m.history,
        lateness: m.lateness,
        warnings,
    })
}

/// Weight per pool role: `--mix`, else the profile's behaviour weights, else
/// the recorded proportions. Roles named but never recorded are skipped with
/// a warning.
fn role_weights(
    pool: &Pool,
    load: &Load,
    profile: &Profile,
) -> Result<(Vec<f64>, Vec<String>), Error> {
    let mut warnings = Vec::new();
    let mix: Vec<(String, f64)> = match load {
        Load::Users { mix: Some(m), .. } => m.clone(),
        _ => profile
            .behaviour
            .iter()
            .map(|(r, b)| (r.clone(), b.weight))
            .collect(),
    };
    let explicit = matches!(load, Load::Users { mix: Some(_), .. });
    for (role, w) in &mix {
        if *w > 0.0 && pool.role(role).is_none() {
            warnings.push(format!(
                "{}role {role} has no recorded session; skipped",
                if explicit { "--mix: " } else { "profile mix: " }
            ));
        }
    }
    let mut weights: Vec<f64> = pool
        .roles
        .iter()
        .map(|r| {
            mix.iter()
                .find(|(name, _)| *name == r.role)
                .map_or(0.0, |(_, w)| *w)
        })
        .collect();
    if weights.iter().all(|w| *w <= 0.0) {
        if explicit {
            return Err(Error::Usage(format!(
                "--mix: none of its roles has a recorded session (recorded roles: {})",
                pool.roles
                    .iter()
                    .map(|r| r.role.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        weights = pool.roles.iter().map(|r| r.sessions.len() as f64).collect();
    } else {
        for (r, w) in pool.roles.iter().zip(&weights) {
            if *w <= 0.0 {
                warnings.push(format!(
                    "role {} ({} recorded sessions) is not in the mix; not replayed",
                    r.role,
                    r.sessions.len()
                ));
            }
        }
    }
    Ok((weights, warnings))
}

fn build_model(config: &ReplayConfig, pool: &Pool, weights: Vec<f64>) -> Model {
    if let Some(rate) = config.rate {
        return Model::Open {
            rate,
            weights,
            arrivals: config
                .run_time
                .is_none()
                .then_some(pool.sessions.len() as u64),
        };
    }
    let once = config.run_time.is_none() && config.stages.is_none();
    if let Some(stages) = &config.stages {
        let assignment = match config.load {
            Load::Multiply(k) => Assignment::Multiply { k: k.max(1) },
            Load::Users { .. } => Assignment::Roles { weights },
        };
        return Model::Closed {
            plan: UserPlan::Stages(stages.clone()),
            assignment,
            once,
        };
    }
    match &config.load {
        Load::Users { users, .. } => Model::Closed {
            plan: UserPlan::Fixed {
                users: *users,
                spawn_rate: config.spawn_rate,
            },
            assignment: Assignment::Roles { weights },
            once,
        },
        Load::Multiply(k) => Model::Closed {
            plan: UserPlan::Fixed {
                users: k * pool.sessions.len() as u64,
                spawn_rate: config.spawn_rate,
            },
            assignment: Assignment::Multiply { k: (*k).max(1) },
            once,
        },
    }
}

/// The options that shape the load, for `analyze compare`'s setup check.
fn options(
    config: &ReplayConfig,
    journals: &[tapedeck_analyze::report::JournalRef],
) -> BTreeMap<String, serde_json::Value> {
    let mut o = BTreeMap::new();
    match &config.load {
        Load::Users { users, mix } => {
            // With stages or a rate the user count comes from those.
            if config.stages.is_none() && config.rate.is_none() {
                o.insert("users".into(), json!(users));
            }
            if let Some(m) = mix {
                let text: Vec<String> = m.iter().map(|(r, w)| format!("{r}={w}")).collect();
                o.insert("mix".into(), json!(text.join(",")));
            }
        }
        Load::Multiply(k) => {
            o.insert("multiply".into(), json!(k));
        }
    }
    o.insert(
        "speed".into(),
        match config.speed {
            Speed::Max => json!("max"),
            Speed::Factor(f) => json!(f),
        },
    );
    if let Some(stages) = &config.stages {
        let text: Vec<String> = stages
            .iter()
            .map(|s| format!("{}s:{}", s.duration.as_secs_f64(), s.users))
            .collect();
        o.insert("stages".into(), json!(text.join(",")));
    }
    if let Some(r) = config.rate {
        o.insert("rate".into(), json!(r));
    }
    if let Some(r) = config.spawn_rate {
        o.insert("spawn_rate".into(), json!(r));
    }
    if let Some(t) = config.run_time {
        o.insert("run_time_s".into(), json!(t.as_secs_f64()));
    }
    o.insert("h2".into(), json!(config.h2));
    o.insert("correlation".into(), json!(config.correlation.enabled));
    o.insert(
        "journals_sha256".into(),
        json!(journals
            .iter()
            .map(|j| j.sha256.clone())
            .collect::<Vec<_>>()),
    );
    o
}
