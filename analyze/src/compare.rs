//! `analyze compare`: is the candidate slower than the base, where, and how
//! sure are we?
//!
//! Endpoints are paired by name. For each, the pooled latency histograms of
//! the two sides (all runs of a side added) go through a Mann–Whitney U test
//! ([`crate::stats::mann_whitney_u`]), and the relative change of the median
//! and of the mean are measured. The verdict rule:
//!
//! - `?` when either side has fewer than 30 requests (too few to judge).
//! - `slower` when the test is significant **and** both the median and the
//!   mean grew by more than the effect floor; `faster` symmetrically (both
//!   shrank by more than the floor, as a ratio: `base / candidate − 1 >
//!   floor`).
//! - `~` otherwise.
//!
//! Significance is family-wise: a comparison asks "is *any* endpoint
//! slower?", so each of the m judged endpoints is tested at α / m
//! (Bonferroni, α = 0.01). Without it, 15 endpoints at p < 0.01 raise a
//! false alarm in one comparison out of seven on sampling noise alone.
//!
//! Why both median and mean: the median is robust to a few outliers, the
//! mean moves when the body of the distribution moves; a shift in only one
//! of them is usually noise (a handful of stalls, or bucket granularity). A
//! change limited to the far tail (p99) is reported but makes no verdict.
//! The mean used by the rule (and by the run-to-run spread below) is the
//! mean of the fastest 90 % of requests ([`TRIM_KEEP`]), and so is the
//! Δmean column: a one-second stall of the whole machine during one run
//! delays every request in flight (7 % of a 15 s run at a steady rate) and
//! doubles that run's plain mean, which would swamp both the spread and the
//! verdict. The absolute `mean_ms` shown per side is the plain mean.
//!
//! The effect floor is where run-to-run noise is handled. Thousands of
//! requests make tiny drifts between two runs "significant", so the
//! within-run test alone raises false alarms; two replays of one build on a
//! busy 2-core machine differ by 5–20 % per endpoint at p50.
//!
//! - With ≥ 2 runs on **a** side (the A, B, A recipe: two base runs, one
//!   candidate run), the runs that exist measure the drift:
//!   - per endpoint, `spread` is the largest `max / min − 1` of the per-run
//!     medians and of the per-run means, over the sides with ≥ 2 runs;
//!   - `drift`, machine-wide, is the 75th percentile ([`DRIFT_QUANTILE`])
//!     of `spread` over the endpoints with ≥ 300 requests in every run
//!     ([`DRIFT_MIN_REQUESTS`]; ≥ 30 when none has that many). Drift is
//!     mostly machine-wide (every endpoint of a run moves together), so
//!     the endpoints' spreads are so many looks at one number; the 75th
//!     percentile rather than the median because a single pair of runs
//!     tends to land close together, and endpoints with few requests are
//!     left out because the sampling error of their per-run medians (5 %
//!     at 100 requests) would pass for drift;
//!   - with a single run on the other side, that run's own machine-wide
//!     offset is in no spread: `shift`, the |median p50 change| over the
//!     same endpoints, measures it (a regression of a few endpoints barely
//!     moves the median);
//!   - the floor is `min(max(--noise, M × max(spread, drift)) + shift,
//!     max(20 %, max(spread, drift)))` with M = [`DRIFT_MULTIPLIER`] (2.5):
//!     never more conservative than one run each, unless the runs
//!     themselves drift further apart than that.
//!
//!   Why M = 2.5: one pair of runs sees the machine drift once, and the
//!   next run can land further away (the ratio of two such draws is
//!   heavy-tailed). Measured on synthetic runs with machine-wide drift plus
//!   per-endpoint jitter (`tests/noise.rs`, 200 comparisons each): without
//!   `shift`, M = 3 flags something in 8.5 % of same-build A, B, A
//!   comparisons on a noisy machine (±8 % machine, ±3 % per endpoint), and
//!   M = 3.5 (4.5 %) finds a 14 % regression of one endpoint on a quiet
//!   machine in only 76 % of trials. M = 2.5 with `shift`: at most 3.5 %
//!   false alarms on every tested shape and machine, and the 14 %
//!   regression found alone in 93.5 % (M = 3 with `shift`: 84.5 %).
//!
//!   With ≥ 3 runs on **both** sides, a t-test on the run level can vouch
//!   for a lower floor: the per-run medians (and means), on a log scale,
//!   give a pooled standard deviation s with k_base + k_cand − 2 degrees of
//!   freedom, and `exp(t · s · √(1/k_base + 1/k_cand)) − 1`, with t the
//!   Student critical value at α / m, replaces the drift floor when lower
//!   (never below `--noise`). Five quiet runs a side find a 10 % change.
//! - With one run on both sides, no spread can be measured: the floor is
//!   the larger of `--noise` and [`SINGLE_RUN_DRIFT`] (20 %), and the output
//!   says so. A real 10 % regression needs several runs to be seen.
//!
//! Error rates are tested separately (two-proportion z-test at α / m, and at
//! least 0.1 percentage point apart): `errors: up|down|~|?`.

use std::collections::{BTreeMap, BTreeSet};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::report::{EndpointReport, RunReport, TimelinePoint};
use crate::stats::{mann_whitney_u_buckets, t_critical, two_proportion_p, Buckets};

/// The comparison format name.
pub const COMPARE_FORMAT: &str = "tapedeck-compare";
/// The comparison format version.
pub const COMPARE_VERSION: u32 = 1;
/// The verdict's mean is the mean of the fastest 90 % of requests: one stall
/// of the machine in one run (every request in flight waits a second) would
/// otherwise move a run's mean by more than any regression.
pub const TRIM_KEEP: f64 = 0.90;
/// Default effect floor (`--noise`).
pub const DEFAULT_NOISE: f64 = 0.05;
/// The drift assumed between two single runs of the same build.
pub const SINGLE_RUN_DRIFT: f64 = 0.20;
/// Family-wise significance level (split over the endpoints judged).
pub const ALPHA: f64 = 0.01;
/// Fewer requests than this on a side gives `?`.
pub const MIN_REQUESTS: u64 = 30;
/// Safety multiplier on the observed run-to-run drift: a few runs
/// underestimate how far a further run can land.
pub const DRIFT_MULTIPLIER: f64 = 2.5;
/// Which quantile of the per-endpoint spreads is the machine-wide drift.
pub const DRIFT_QUANTILE: f64 = 0.75;
/// Requests per run an endpoint needs for its spread to count towards the
/// machine-wide drift (when any endpoint has that many; otherwise
/// [`MIN_REQUESTS`]). With fewer, the sampling error of a run's median
/// (several percent at 100 requests) swamps the drift being measured.
pub const DRIFT_MIN_REQUESTS: u64 = 300;
/// Smallest error-rate difference that can count (0.1 percentage point).
pub const MIN_ERROR_RATE_DELTA: f64 = 0.001;

/// Knobs of the comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompareOptions {
    /// Effect floor as a fraction (`--noise 5%` is 0.05).
    pub noise: f64,
    /// Floor used when no side has several runs.
    pub single_run_drift: f64,
    /// Safety multiplier on the drift observed between runs of a side.
    pub drift_multiplier: f64,
    /// Family-wise significance level; each endpoint is tested at
    /// `alpha / m` over the m endpoints judged.
    pub alpha: f64,
    /// Minimum requests per side for a verdict.
    pub min_requests: u64,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            noise: DEFAULT_NOISE,
            single_run_drift: SINGLE_RUN_DRIFT,
            drift_multiplier: DRIFT_MULTIPLIER,
            alpha: ALPHA,
            min_requests: MIN_REQUESTS,
        }
    }
}

/// Latency verdict of one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// Significantly and materially slower.
    #[serde(rename = "slower")]
    Slower,
    /// Significantly and materially faster.
    #[serde(rename = "faster")]
    Faster,
    /// No change beyond noise.
    #[serde(rename = "~")]
    Same,
    /// Too little data to judge.
    #[serde(rename = "?")]
    Unknown,
}

impl Verdict {
    /// `slower`, `faster`, `~` or `?`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Slower => "slower",
            Verdict::Faster => "faster",
            Verdict::Same => "~",
            Verdict::Unknown => "?",
        }
    }
}

/// Error-rate verdict of one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ErrorVerdict {
    /// The error rate rose significantly.
    #[serde(rename = "up")]
    Up,
    /// The error rate fell significantly.
    #[serde(rename = "down")]
    Down,
    /// No significant change.
    #[serde(rename = "~")]
    Same,
    /// Too little data.
    #[serde(rename = "?")]
    Unknown,
}

impl ErrorVerdict {
    /// `up`, `down`, `~` or `?`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorVerdict::Up => "up",
            ErrorVerdict::Down => "down",
            ErrorVerdict::Same => "~",
            ErrorVerdict::Unknown => "?",
        }
    }
}

/// What one side (all its runs pooled) measured on one endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct SideStats {
    /// Runs of this side that called the endpoint.
    pub runs: usize,
    /// Requests sent.
    pub requests: u64,
    /// Failed requests.
    pub failures: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Mean, ms.
    pub mean_ms: f64,
    /// Maximum, ms.
    pub max_ms: f64,
    /// Requests per second (per run, averaged over runs).
    pub rps: f64,
    /// Failures / requests.
    pub error_rate: f64,
    /// Median of each run, ms (the run-to-run spread comes from these).
    pub run_p50_ms: Vec<f64>,
    /// The latency percentile spectrum `[quantile, ms]` (for charts).
    pub spectrum: Vec<[f64; 2]>,
    #[serde(skip)]
    buckets: Buckets,
    /// Mean of the fastest 90 %, ms: the mean the verdict uses.
    pub trimmed_mean_ms: f64,
    /// Trimmed mean of each run, ms.
    #[serde(skip)]
    run_means_ms: Vec<f64>,
    #[serde(skip)]
    run_requests: Vec<u64>,
}

/// Relative changes, candidate vs base (`0.1` = 10 % more).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Changes {
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Mean.
    pub mean: Option<f64>,
    /// Throughput.
    pub rps: Option<f64>,
    /// Error rate, in absolute fraction points (0.02 = 2 points more).
    pub error_rate: Option<f64>,
}

/// The comparison of one endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointComparison {
    /// Endpoint name.
    pub name: String,
    /// Latency verdict.
    pub verdict: Verdict,
    /// Error-rate verdict.
    pub errors: ErrorVerdict,
    /// The base side (absent when only the candidate called it).
    pub base: Option<SideStats>,
    /// The candidate side (absent when only the base called it).
    pub candidate: Option<SideStats>,
    /// Relative changes.
    pub change: Changes,
    /// Mann–Whitney U p-value (two-sided).
    pub p_value: f64,
    /// Mann–Whitney U statistic of the base sample.
    pub u: f64,
    /// Latency samples on the base side.
    pub n_base: u64,
    /// Latency samples on the candidate side.
    pub n_candidate: u64,
    /// Two-proportion p-value of the error rates.
    pub error_p_value: f64,
    /// The effect floor applied to the median (fraction).
    pub floor: f64,
    /// The effect floor applied to the mean (fraction).
    pub floor_mean: f64,
    /// Observed run-to-run spread of this endpoint: the largest `max / min
    /// − 1` of the per-run medians and means over the sides with ≥ 2 runs.
    pub spread: Option<f64>,
    /// The significance level this endpoint was tested at (α / m).
    pub alpha: f64,
    /// Why the verdict is what it is, when that is not obvious.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// Geometric mean of the per-endpoint ratios (endpoints with a verdict
/// other than `?`), as relative changes.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Geomean {
    /// Endpoints included.
    pub endpoints: usize,
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// Mean.
    pub mean: Option<f64>,
}

/// A change in one kind of failure.
#[derive(Debug, Clone, Serialize)]
pub struct FailureChange {
    /// Endpoint name.
    pub endpoint: String,
    /// Error text.
    pub error: String,
    /// Count over the base runs.
    pub base: u64,
    /// Count over the candidate runs.
    pub candidate: u64,
}

/// One side's identity, for headers.
#[derive(Debug, Clone, Serialize)]
pub struct SideInfo {
    /// Run labels.
    pub labels: Vec<String>,
    /// Targets.
    pub targets: Vec<String>,
    /// Requests over all runs.
    pub requests: u64,
    /// Per-second timeline of each run (for charts).
    pub timelines: Vec<Vec<TimelinePoint>>,
}

/// The A-vs-A control: the first two base runs compared with each other
/// under the one-run rule. Two runs of one build: anything flagged here is
/// noise, and the largest drift shows how much noise there is.
#[derive(Debug, Clone, Serialize)]
pub struct Control {
    /// Labels of the two base runs.
    pub runs: [String; 2],
    /// Endpoints the one-run rule would flag (should be none).
    pub flagged: Vec<String>,
    /// Largest |relative change| of p50 over judged endpoints.
    pub max_p50_drift: f64,
    /// The endpoint with that drift.
    pub max_p50_drift_endpoint: String,
}

/// The whole comparison (`--format json` writes exactly this).
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Always [`COMPARE_FORMAT`].
    pub format: &'static str,
    /// Always [`COMPARE_VERSION`].
    pub version: u32,
    /// The base side.
    pub base: SideInfo,
    /// The candidate side.
    pub candidate: SideInfo,
    /// `--noise` as a fraction.
    pub noise: f64,
    /// How the effect floor was chosen, in one sentence.
    pub floor_rule: String,
    /// Machine-wide run-to-run drift: the [`DRIFT_QUANTILE`] of the
    /// endpoints' spreads, when a side has ≥ 2 runs.
    pub drift: Option<f64>,
    /// When one side has a single run and the other several: that run's
    /// machine-wide offset (|median p50 change| over the endpoints), added
    /// to every floor.
    pub shift: Option<f64>,
    /// Per-endpoint comparisons, in base order then candidate-only ones.
    pub endpoints: Vec<EndpointComparison>,
    /// Failure kinds whose count changed.
    pub errors: Vec<FailureChange>,
    /// Geometric mean row.
    pub geomean: Geomean,
    /// Things that make the comparison less trustworthy.
    pub warnings: Vec<String>,
    /// Base run 1 against base run 2, when there are two base runs.
    pub control: Option<Control>,
}

impl Comparison {
    /// True when an endpoint is `slower` or its errors went `up`.
    pub fn regressed(&self) -> bool {
        self.endpoints
            .iter()
            .any(|e| e.verdict == Verdict::Slower || e.errors == ErrorVerdict::Up)
    }

    /// Names of the endpoints judged `slower`, in table order.
    pub fn slower(&self) -> Vec<&str> {
        self.names_where(|e| e.verdict == Verdict::Slower)
    }

    /// Names of the endpoints whose error rate went `up`, in table order.
    pub fn errors_up(&self) -> Vec<&str> {
        self.names_where(|e| e.errors == ErrorVerdict::Up)
    }

    fn names_where(&self, keep: impl Fn(&EndpointComparison) -> bool) -> Vec<&str> {
        self.endpoints
            .iter()
            .filter(|e| keep(e))
            .map(|e| e.name.as_str())
            .collect()
    }
}

const SPECTRUM: &[f64] = &[
    0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.925, 0.95, 0.96, 0.97, 0.98,
    0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99999,
];

/// The latency percentile spectrum of a histogram as `[quantile, ms]` pairs.
pub fn spectrum(h: &Histogram<u64>) -> Vec<[f64; 2]> {
    spectrum_of(&Buckets::from_histogram(h))
}

fn spectrum_of(b: &Buckets) -> Vec<[f64; 2]> {
    if b.total == 0 {
        return Vec::new();
    }
    b.quantiles(SPECTRUM)
        .into_iter()
        .zip(SPECTRUM)
        .map(|(us, &q)| [q, us as f64 / 1000.0])
        .collect()
}

fn side_stats(runs: &[&EndpointReport], run_seconds: &[f64]) -> SideStats {
    // One pass over each histogram; everything else works on the buckets.
    let per_run: Vec<Buckets> = runs
        .iter()
        .map(|e| Buckets::from_histogram(&e.histogram))
        .collect();
    let pooled = Buckets::merged(&per_run.iter().collect::<Vec<_>>());
    let requests = runs.iter().map(|e| e.requests).sum();
    let failures = runs.iter().map(|e| e.failures).sum();
    let rps: f64 = runs
        .iter()
        .zip(run_seconds)
        .map(|(e, secs)| e.requests as f64 / secs)
        .sum();
    let ms = |us: u64| us as f64 / 1000.0;
    let [p50, p95, p99] = {
        let v = pooled.quantiles(&[0.5, 0.95, 0.99]);
        [ms(v[0]), ms(v[1]), ms(v[2])]
    };
    let recorded: Vec<&Buckets> = per_run.iter().filter(|b| b.total > 0).collect();
    SideStats {
        runs: runs.len(),
        requests,
        failures,
        p50_ms: p50,
        p95_ms: p95,
        p99_ms: p99,
        mean_ms: pooled.mean() / 1000.0,
        max_ms: runs
            .iter()
            .filter(|e| !e.histogram.is_empty())
            .map(|e| ms(e.histogram.max()))
            .fold(0.0, f64::max),
        rps: rps / runs.len().max(1) as f64,
        error_rate: if requests == 0 {
            0.0
        } else {
            failures as f64 / requests as f64
        },
        run_p50_ms: recorded
            .iter()
            .map(|b| ms(b.quantiles(&[0.5])[0]))
            .collect(),
        trimmed_mean_ms: pooled.trimmed_mean(TRIM_KEEP) / 1000.0,
        run_means_ms: recorded
            .iter()
            .map(|b| b.trimmed_mean(TRIM_KEEP) / 1000.0)
            .collect(),
        run_requests: recorded.iter().map(|b| b.total).collect(),
        spectrum: spectrum_of(&pooled),
        buckets: pooled,
    }
}

/// Pooled standard deviation of log values of two groups and its degrees
/// of freedom; `None` unless both groups have ≥ 2 values.
fn pooled_log_sd(a: &[f64], b: &[f64]) -> Option<(f64, f64)> {
    if a.len() < 2 || b.len() < 2 || a.iter().chain(b).any(|v| *v <= 0.0) {
        return None;
    }
    let ss = |v: &[f64]| {
        let logs: Vec<f64> = v.iter().map(|x| x.ln()).collect();
        let mean = logs.iter().sum::<f64>() / logs.len() as f64;
        logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>()
    };
    let df = (a.len() + b.len() - 2) as f64;
    Some((((ss(a) + ss(b)) / df).sqrt(), df))
}

/// `max / min − 1` of per-run values; `None` with fewer than two or a
/// non-positive value.
fn relative_spread(values: &[f64]) -> Option<f64> {
    if values.len() < 2 || values.iter().any(|v| *v <= 0.0) {
        return None;
    }
    let max = values.iter().copied().fold(f64::MIN, f64::max);
    let min = values.iter().copied().fold(f64::MAX, f64::min);
    Some(max / min - 1.0)
}

/// The observed run-to-run spread of one endpoint: the largest relative
/// spread of the per-run medians and means over the sides with ≥ 2 runs.
fn endpoint_spread(sides: &[&SideStats]) -> Option<f64> {
    sides
        .iter()
        .flat_map(|s| {
            [
                relative_spread(&s.run_p50_ms),
                relative_spread(&s.run_means_ms),
            ]
        })
        .flatten()
        .reduce(f64::max)
}

/// Nearest-rank quantile of unsorted values; `None` when empty.
fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

/// The run-level floor: `exp(t · s · √(1/ka + 1/kb)) − 1`.
fn run_level_floor(a: &[f64], b: &[f64], alpha: f64) -> Option<f64> {
    let (sd, df) = pooled_log_sd(a, b)?;
    let se = sd * (1.0 / a.len() as f64 + 1.0 / b.len() as f64).sqrt();
    Some((t_critical(alpha, df) * se).exp() - 1.0)
}

/// Run-to-run noise measured from the runs of a comparison.
#[derive(Debug, Clone, Copy)]
struct RunNoise {
    /// Machine-wide drift between runs of one side.
    drift: f64,
    /// How far a lone run landed from the other side, machine-wide (0 when
    /// both sides have several runs).
    shift: f64,
}

fn ratio(c: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| c / b)
}

fn compare_endpoint(
    name: &str,
    base: Option<SideStats>,
    cand: Option<SideStats>,
    noise: Option<RunNoise>,
    alpha: f64,
    o: &CompareOptions,
) -> EndpointComparison {
    let mut out = EndpointComparison {
        name: name.to_string(),
        verdict: Verdict::Unknown,
        errors: ErrorVerdict::Unknown,
        base: None,
        candidate: None,
        change: Changes::default(),
        p_value: 1.0,
        u: 0.0,
        n_base: 0,
        n_candidate: 0,
        error_p_value: 1.0,
        floor: o.noise.max(o.single_run_drift),
        floor_mean: o.noise.max(o.single_run_drift),
        spread: None,
        alpha,
        note: String::new(),
    };
    let (b, c) = match (base, cand) {
        (Some(b), Some(c)) => (b, c),
        (b, c) => {
            out.note = if b.is_some() {
                "only in base".to_string()
            } else {
                "only in candidate".to_string()
            };
            out.base = b;
            out.candidate = c;
            return out;
        }
    };
    let rel = |c: f64, b: f64| ratio(c, b).map(|r| r - 1.0);
    out.change = Changes {
        p50: rel(c.p50_ms, b.p50_ms),
        p95: rel(c.p95_ms, b.p95_ms),
        p99: rel(c.p99_ms, b.p99_ms),
        mean: rel(c.trimmed_mean_ms, b.trimmed_mean_ms),
        rps: rel(c.rps, b.rps),
        error_rate: Some(c.error_rate - b.error_rate),
    };
    let mw = mann_whitney_u_buckets(&b.buckets, &c.buckets);
    out.p_value = mw.p_value;
    out.u = mw.u;
    out.n_base = mw.n1;
    out.n_candidate = mw.n2;

    // Effect floors for the median and the mean.
    let single = o.noise.max(o.single_run_drift);
    out.spread = endpoint_spread(&[&b, &c]);
    let (floor_p50, floor_mean) = match noise {
        None => (single, single),
        Some(RunNoise { drift, shift }) => {
            let observed = out.spread.unwrap_or(0.0).max(drift);
            // Never more conservative than one run each, unless the runs
            // themselves already drift further apart than that.
            let cap = single.max(observed);
            let measured = (o.noise.max(o.drift_multiplier * observed) + shift).min(cap);
            // With ≥ 3 runs on both sides a t-test on the runs' values can
            // vouch for a lower floor than the drift rule.
            let floor = |bv: &[f64], cv: &[f64]| -> f64 {
                if bv.len() < 3 || cv.len() < 3 {
                    return measured;
                }
                run_level_floor(bv, cv, alpha)
                    .map_or(measured, |t_floor| o.noise.max(t_floor).min(measured))
            };
            (
                floor(&b.run_p50_ms, &c.run_p50_ms),
                floor(&b.run_means_ms, &c.run_means_ms),
            )
        }
    };
    out.floor = floor_p50;
    out.floor_mean = floor_mean;

    // Error rates.
    if b.requests < o.min_requests || c.requests < o.min_requests {
        out.errors = ErrorVerdict::Unknown;
    } else {
        out.error_p_value = two_proportion_p(b.failures, b.requests, c.failures, c.requests);
        let delta = c.error_rate - b.error_rate;
        out.errors = if out.error_p_value < alpha && delta.abs() >= MIN_ERROR_RATE_DELTA {
            if delta > 0.0 {
                ErrorVerdict::Up
            } else {
                ErrorVerdict::Down
            }
        } else {
            ErrorVerdict::Same
        };
    }

    // Latency.
    if mw.n1 < o.min_requests || mw.n2 < o.min_requests {
        out.verdict = Verdict::Unknown;
        out.note = format!(
            "too few requests to judge ({} vs {}, need {})",
            mw.n1, mw.n2, o.min_requests
        );
    } else {
        let r50 = ratio(c.p50_ms, b.p50_ms).unwrap_or(1.0);
        let rmean = ratio(c.trimmed_mean_ms, b.trimmed_mean_ms).unwrap_or(1.0);
        let significant = mw.p_value < alpha;
        let slower = r50 > 1.0 + floor_p50 && rmean > 1.0 + floor_mean;
        let faster = 1.0 / r50 > 1.0 + floor_p50 && 1.0 / rmean > 1.0 + floor_mean;
        out.verdict = match (significant, slower, faster) {
            (true, true, _) => Verdict::Slower,
            (true, _, true) => Verdict::Faster,
            _ => Verdict::Same,
        };
        if out.verdict == Verdict::Same {
            if !significant && (slower || faster) {
                out.note = "large change but not significant".to_string();
            } else if significant && (r50 - 1.0).abs() > o.noise {
                out.note = "within run-to-run noise".to_string();
            }
        }
    }
    out.base = Some(b);
    out.candidate = Some(c);
    out
}

fn differing_keys(
    a: &BTreeMap<String, serde_json::Value>,
    b: &BTreeMap<String, serde_json::Value>,
) -> Vec<String> {
    a.keys()
        .chain(b.keys())
        .filter(|k| k.as_str() != "shard" && a.get(*k) != b.get(*k))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The shape of a target: scheme, origin mappings and path, not host and
/// port (base and candidate usually run on different hosts or ports).
fn target_shape(target: &str) -> Vec<String> {
    target
        .split(',')
        .map(|t| {
            let (origin, url) = t.split_once('=').unwrap_or(("", t));
            let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
            let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("");
            format!("{origin}={scheme}://*{path}")
        })
        .collect()
}

fn warnings(base: &[RunReport], cand: &[RunReport]) -> Vec<String> {
    let mut w = Vec::new();
    let first = &base[0];
    let all: Vec<(&str, usize, &RunReport)> = base
        .iter()
        .enumerate()
        .map(|(i, r)| ("base", i, r))
        .chain(cand.iter().enumerate().map(|(i, r)| ("candidate", i, r)))
        .collect();
    for (side, i, r) in all.iter().skip(1) {
        let which = format!("{side} run {} ('{}')", i + 1, r.label);
        let keys = differing_keys(&first.options, &r.options);
        if !keys.is_empty() {
            w.push(format!(
                "OPTIONS DIFFER: {which} was run with different {} than base run 1: this diff measures the setup, not the release",
                keys.join(", ")
            ));
        }
        let sums = |r: &RunReport| -> BTreeSet<String> {
            r.journals.iter().map(|j| j.sha256.clone()).collect()
        };
        if sums(first) != sums(r) {
            w.push(format!(
                "JOURNALS DIFFER: {which} replayed different journals than base run 1: the traffic is not the same"
            ));
        }
        if target_shape(&first.target) != target_shape(&r.target) {
            w.push(format!(
                "TARGET SHAPE DIFFERS: {which} targets {} but base run 1 targets {}",
                r.target, first.target
            ));
        }
    }
    for (side, i, r) in &all {
        if r.partial {
            w.push(format!(
                "{side} run {} ('{}') was interrupted before its end (partial)",
                i + 1,
                r.label
            ));
        }
    }
    if base.len() < 2 && cand.len() < 2 {
        w.push(format!(
            "one run on a side: run-to-run noise cannot be measured, so changes under {:.0}% are treated as noise; give ≥ 2 runs on a side (interleaved A, B, A) to detect smaller changes",
            SINGLE_RUN_DRIFT * 100.0
        ));
    }
    w
}

/// Compares base runs with candidate runs. Neither slice may be empty
/// (an empty side compares as all `?`).
pub fn compare(base: &[RunReport], cand: &[RunReport], o: &CompareOptions) -> Comparison {
    let mut names: Vec<String> = Vec::new();
    for r in base.iter().chain(cand) {
        for e in &r.endpoints {
            if !names.contains(&e.name) {
                names.push(e.name.clone());
            }
        }
    }
    let side = |runs: &[RunReport], name: &str| -> Option<SideStats> {
        let (eps, secs): (Vec<&EndpointReport>, Vec<f64>) = runs
            .iter()
            .filter_map(|r| {
                r.endpoints
                    .iter()
                    .find(|e| e.name == name)
                    .map(|e| (e, r.duration_s()))
            })
            .unzip();
        (!eps.is_empty()).then(|| side_stats(&eps, &secs))
    };
    let sides: Vec<(Option<SideStats>, Option<SideStats>)> = names
        .iter()
        .map(|n| (side(base, n), side(cand, n)))
        .collect();
    // Bonferroni over the endpoints that can get a verdict.
    let judged = sides
        .iter()
        .filter(|(b, c)| {
            let enough = |s: &Option<SideStats>| {
                s.as_ref()
                    .is_some_and(|s| s.buckets.total >= o.min_requests)
            };
            enough(b) && enough(c)
        })
        .count()
        .max(1);
    let alpha = o.alpha / judged as f64;
    // Machine-wide drift: a high quantile of the endpoints' own spreads,
    // over the endpoints with enough requests in every run for their
    // per-run medians to measure the machine rather than sampling error.
    let spreads_over = |min: u64| -> Vec<(f64, f64)> {
        sides
            .iter()
            .filter_map(|(b, c)| {
                let (b, c) = (b.as_ref()?, c.as_ref()?);
                let multi: Vec<&SideStats> = [b, c]
                    .into_iter()
                    .filter(|s| s.run_requests.len() >= 2)
                    .collect();
                let enough = [b, c]
                    .iter()
                    .all(|s| s.run_requests.iter().all(|n| *n >= min));
                if multi.is_empty() || !enough {
                    return None;
                }
                Some((endpoint_spread(&[b, c])?, ratio(c.p50_ms, b.p50_ms)? - 1.0))
            })
            .collect()
    };
    let mut spreads = spreads_over(DRIFT_MIN_REQUESTS.max(o.min_requests));
    if spreads.is_empty() {
        spreads = spreads_over(o.min_requests);
    }
    let noise = if base.len() >= 2 || cand.len() >= 2 {
        let drift: Vec<f64> = spreads.iter().map(|s| s.0).collect();
        let changes: Vec<f64> = spreads.iter().map(|s| s.1).collect();
        quantile(&drift, DRIFT_QUANTILE).map(|drift| RunNoise {
            drift,
            // A lone run's machine-wide offset is not in any spread: the
            // median change over endpoints measures it.
            shift: if base.len() == 1 || cand.len() == 1 {
                quantile(&changes, 0.5).map_or(0.0, f64::abs)
            } else {
                0.0
            },
        })
    } else {
        None
    };
    let drift = noise.map(|n| n.drift);
    let shift = noise
        .map(|n| n.shift)
        .filter(|_| base.len() == 1 || cand.len() == 1);
    let endpoints: Vec<EndpointComparison> = names
        .iter()
        .zip(sides)
        .map(|(n, (b, c))| compare_endpoint(n, b, c, noise, alpha, o))
        .collect();

    let mut geo = Geomean::default();
    let (mut l50, mut l95, mut lmean) = (0.0, 0.0, 0.0);
    for e in endpoints.iter().filter(|e| e.verdict != Verdict::Unknown) {
        let (Some(b), Some(c)) = (&e.base, &e.candidate) else {
            continue;
        };
        if b.p50_ms <= 0.0 || b.p95_ms <= 0.0 || b.mean_ms <= 0.0 || c.p50_ms <= 0.0 {
            continue;
        }
        geo.endpoints += 1;
        l50 += (c.p50_ms / b.p50_ms).ln();
        l95 += (c.p95_ms / b.p95_ms).ln();
        lmean += (c.mean_ms / b.mean_ms).ln();
    }
    if geo.endpoints > 0 {
        let n = geo.endpoints as f64;
        geo.p50 = Some((l50 / n).exp() - 1.0);
        geo.p95 = Some((l95 / n).exp() - 1.0);
        geo.mean = Some((lmean / n).exp() - 1.0);
    }

    let count_failures = |runs: &[RunReport]| {
        let mut m: BTreeMap<(String, String), u64> = BTreeMap::new();
        for r in runs {
            for f in &r.failures {
                *m.entry((f.endpoint.clone(), f.error.clone())).or_default() += f.count;
            }
        }
        m
    };
    let (fb, fc) = (count_failures(base), count_failures(cand));
    let keys: BTreeSet<&(String, String)> = fb.keys().chain(fc.keys()).collect();
    let mut errors: Vec<FailureChange> = keys
        .into_iter()
        .map(|k| FailureChange {
            endpoint: k.0.clone(),
            error: k.1.clone(),
            base: fb.get(k).copied().unwrap_or(0),
            candidate: fc.get(k).copied().unwrap_or(0),
        })
        .filter(|f| f.base != f.candidate)
        .collect();
    errors.sort_by(|a, b| {
        (b.candidate as i64 - b.base as i64).cmp(&(a.candidate as i64 - a.base as i64))
    });

    let info = |runs: &[RunReport]| SideInfo {
        labels: runs.iter().map(|r| r.label.clone()).collect(),
        targets: runs.iter().map(|r| r.target.clone()).collect(),
        requests: runs.iter().map(|r| r.total_requests()).sum(),
        timelines: runs.iter().map(|r| r.timeline.clone()).collect(),
    };
    let test = format!(
        "a change must be significant (Mann–Whitney p < {:.2e} = {} / {} endpoints) and exceed the floor in both median and mean",
        alpha, o.alpha, judged
    );
    let single = o.noise.max(o.single_run_drift);
    let floor_rule = match noise {
        Some(RunNoise { drift, shift }) => {
            let sides = [("base", base.len()), ("candidate", cand.len())]
                .into_iter()
                .filter(|(_, k)| *k >= 2)
                .map(|(side, k)| format!("{k} {side} runs"))
                .collect::<Vec<_>>()
                .join(" and ");
            let t_test = if base.len() >= 3 && cand.len() >= 3 {
                ", or the t-test on the runs' medians and means at the same level when lower"
            } else {
                ""
            };
            let lone = if base.len() == 1 || cand.len() == 1 {
                format!(", lone run offset {:.1}%", shift * 100.0)
            } else {
                String::new()
            };
            let lone_rule = if lone.is_empty() {
                ""
            } else {
                ", plus the lone run's machine-wide offset (the median p50 change over endpoints)"
            };
            format!(
                "noise floor from {sides}: drift {:.1}%{lone} → floor {:.1}% ({test}; floor = larger of --noise {:.0}% and {} × the larger of the endpoint's own spread and the drift (the {:.0}th percentile of the endpoints' run-to-run spreads){lone_rule}, at most the one-run {:.0}% unless the runs themselves differ by more{t_test})",
                drift * 100.0,
                (o.noise.max(o.drift_multiplier * drift) + shift).min(single.max(drift)) * 100.0,
                o.noise * 100.0,
                o.drift_multiplier,
                DRIFT_QUANTILE * 100.0,
                single * 100.0,
            )
        }
        None if base.len() >= 2 || cand.len() >= 2 => format!(
            "no endpoint has {} requests in every run, so run-to-run drift cannot be measured: {test}; floor {:.0}% (the larger of --noise {:.0}% and the {:.0}% drift two runs of one build can show)",
            o.min_requests,
            single * 100.0,
            o.noise * 100.0,
            o.single_run_drift * 100.0
        ),
        None => format!(
            "one run on a side: {test}; floor {:.0}% (the larger of --noise {:.0}% and the {:.0}% drift two runs of one build can show)",
            single * 100.0,
            o.noise * 100.0,
            o.single_run_drift * 100.0
        ),
    };
    let control = (base.len() >= 2).then(|| {
        let c = compare(&base[..1], &base[1..2], o);
        let judged = c.endpoints.iter().filter(|e| e.verdict != Verdict::Unknown);
        let (max_p50_drift, max_p50_drift_endpoint) = judged
            .filter_map(|e| e.change.p50.map(|d| (d.abs(), e.name.clone())))
            .fold((0.0, String::new()), |m, x| if x.0 > m.0 { x } else { m });
        Control {
            runs: [base[0].label.clone(), base[1].label.clone()],
            flagged: c
                .endpoints
                .iter()
                .filter(|e| {
                    matches!(e.verdict, Verdict::Slower | Verdict::Faster)
                        || matches!(e.errors, ErrorVerdict::Up | ErrorVerdict::Down)
                })
                .map(|e| e.name.clone())
                .collect(),
            max_p50_drift,
            max_p50_drift_endpoint,
        }
    });
    Comparison {
        format: COMPARE_FORMAT,
        version: COMPARE_VERSION,
        base: info(base),
        candidate: info(cand),
        noise: o.noise,
        floor_rule,
        drift,
        shift,
        endpoints,
        errors,
        geomean: geo,
        warnings: if base.is_empty() || cand.is_empty() {
            vec!["a side has no runs".to_string()]
        } else {
            warnings(base, cand)
        },
        control,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::JournalRef;

    #[test]
    fn target_shape_ignores_host_and_port_only() {
        assert_eq!(
            target_shape("http://127.0.0.1:8000"),
            target_shape("http://10.0.0.5:9000")
        );
        assert_ne!(
            target_shape("http://127.0.0.1:8000"),
            target_shape("https://127.0.0.1:8000")
        );
        assert_ne!(
            target_shape("http://a:1/api"),
            target_shape("http://a:1/v2/api")
        );
        assert_ne!(
            target_shape("https://api.x=http://127.0.0.1:1"),
            target_shape("http://127.0.0.1:1")
        );
    }

    #[test]
    fn warns_about_journals_and_target_shape() {
        let t = chrono::Utc::now();
        let a = RunReport::new("a", "http://127.0.0.1:1", t);
        let mut b = RunReport::new("b", "https://127.0.0.1:2", t);
        b.journals.push(JournalRef {
            path: "x.jsonl.zst".into(),
            sha256: "00".into(),
        });
        b.partial = true;
        let w = warnings(&[a], &[b]);
        for want in [
            "JOURNALS DIFFER",
            "TARGET SHAPE DIFFERS",
            "partial",
            "one run on a side",
        ] {
            assert!(w.iter().any(|x| x.contains(want)), "{want}: {w:#?}");
        }
    }
}
