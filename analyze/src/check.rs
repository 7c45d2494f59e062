//! `analyze check`: one run against a profile's plan (the CoreVia load-test
//! plan's table: target / acceptable / critical p95 per endpoint, throughput
//! and error rate), plus any `--threshold` expressions.

use serde::Serialize;
use tapedeck_sessions::profile::{Levels, Profile};

use crate::report::{RunReport, ThresholdResult};
use crate::threshold::{evaluate, Threshold};

/// Status of one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// At or better than the target.
    Ok,
    /// Worse than the target, within the acceptable level.
    Acceptable,
    /// Worse than acceptable, not yet critical.
    Degraded,
    /// Beyond the critical level: blocks a release.
    Critical,
    /// Throughput under the plan's minimum (depends on the load applied,
    /// so it does not fail the check).
    BelowMinimum,
    /// The run has no requests for this row.
    NoData,
}

impl Status {
    /// Label for tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Acceptable => "acceptable",
            Status::Degraded => "degraded",
            Status::Critical => "CRITICAL",
            Status::BelowMinimum => "below minimum",
            Status::NoData => "no data",
        }
    }
}

/// One row of the plan table.
#[derive(Debug, Clone, Serialize)]
pub struct CheckRow {
    /// What is measured, e.g. `Social Feed p95` or `Throughput`.
    pub what: String,
    /// Observed value (ms, req/s or fraction), `None` without data.
    pub observed: Option<f64>,
    /// Unit of the values: `ms`, `req/s` or `ratio`.
    pub unit: &'static str,
    /// Target level.
    pub target: f64,
    /// Acceptable level (the minimum for throughput).
    pub acceptable: f64,
    /// Critical level (the maximum planned for throughput).
    pub critical: f64,
    /// Status of the row.
    pub status: Status,
}

/// The whole check (`--format json` writes this).
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Always `tapedeck-check`.
    pub format: &'static str,
    /// Format version.
    pub version: u32,
    /// The run's label.
    pub label: String,
    /// The profile's name.
    pub profile: String,
    /// Plan rows.
    pub rows: Vec<CheckRow>,
    /// `--threshold` results.
    pub thresholds: Vec<ThresholdResult>,
}

impl Check {
    /// True when a row is critical or a threshold failed.
    pub fn failed(&self) -> bool {
        self.rows.iter().any(|r| r.status == Status::Critical)
            || self.thresholds.iter().any(|t| !t.ok)
    }
}

fn lower_is_better(v: f64, l: &Levels) -> Status {
    if v <= l.target {
        Status::Ok
    } else if v <= l.acceptable {
        Status::Acceptable
    } else if v <= l.critical {
        Status::Degraded
    } else {
        Status::Critical
    }
}

/// Checks a run against a profile's targets and extra thresholds.
pub fn check(run: &RunReport, profile: &Profile, thresholds: &[Threshold]) -> Check {
    let mut rows = Vec::new();
    for (name, levels) in &profile.targets.p95_ms {
        let ep = run
            .endpoints
            .iter()
            .find(|e| &e.name == name && !e.histogram.is_empty());
        rows.push(CheckRow {
            what: format!("{name} p95"),
            observed: ep.map(|e| e.p95_ms),
            unit: "ms",
            target: levels.target,
            acceptable: levels.acceptable,
            critical: levels.critical,
            status: ep.map_or(Status::NoData, |e| lower_is_better(e.p95_ms, levels)),
        });
    }
    let total = run.total_requests();
    if let Some(range) = profile.targets.throughput_rps {
        let rps = total as f64 / run.duration_s();
        rows.push(CheckRow {
            what: "Throughput".to_string(),
            observed: (total > 0).then_some(rps),
            unit: "req/s",
            target: range.target,
            acceptable: range.minimum,
            critical: range.maximum,
            status: if total == 0 {
                Status::NoData
            } else if rps >= range.target {
                Status::Ok
            } else if rps >= range.minimum {
                Status::Acceptable
            } else {
                Status::BelowMinimum
            },
        });
    }
    if let Some(levels) = profile.targets.error_rate {
        let rate = if total == 0 {
            0.0
        } else {
            run.total_failures() as f64 / total as f64
        };
        rows.push(CheckRow {
            what: "Error rate".to_string(),
            observed: (total > 0).then_some(rate),
            unit: "ratio",
            target: levels.target,
            acceptable: levels.acceptable,
            critical: levels.critical,
            status: if total == 0 {
                Status::NoData
            } else {
                lower_is_better(rate, &levels)
            },
        });
    }
    Check {
        format: "tapedeck-check",
        version: 1,
        label: run.label.clone(),
        profile: profile.profile.clone(),
        rows,
        thresholds: evaluate(run, thresholds),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{new_histogram, EndpointReport};
    use crate::threshold::parse_threshold;
    use chrono::{Duration, Utc};

    fn run(feed_us: u64, failures: u64) -> RunReport {
        let mut r = RunReport::new("a", "http://127.0.0.1:1", Utc::now());
        r.ended = r.started + Duration::seconds(10);
        let mut h = new_histogram();
        for _ in 0..100 {
            h.record(feed_us).unwrap();
        }
        let mut ep = EndpointReport::new("Social Feed", "GET", h.clone(), h);
        ep.requests = 100;
        ep.failures = failures;
        r.endpoints.push(ep);
        r
    }

    #[test]
    fn statuses_follow_plan_levels() {
        let p = Profile::builtin();
        let status = |c: &Check, what: &str| c.rows.iter().find(|r| r.what == what).unwrap().status;
        let c = check(&run(150_000, 0), &p, &[]);
        assert_eq!(status(&c, "Social Feed p95"), Status::Ok);
        assert_eq!(status(&c, "Login p95"), Status::NoData);
        assert_eq!(status(&c, "Throughput"), Status::BelowMinimum);
        assert_eq!(status(&c, "Error rate"), Status::Ok);
        assert!(!c.failed());
        let c = check(&run(400_000, 2), &p, &[]);
        assert_eq!(status(&c, "Social Feed p95"), Status::Acceptable);
        assert_eq!(status(&c, "Error rate"), Status::Degraded);
        let c = check(&run(1_500_000, 10), &p, &[]);
        assert_eq!(status(&c, "Social Feed p95"), Status::Critical);
        assert_eq!(status(&c, "Error rate"), Status::Critical);
        assert!(c.failed());
        let t = parse_threshold("Social Feed:p95<100ms").unwrap();
        assert!(check(&run(150_000, 0), &p, &[t]).failed());
    }
}
