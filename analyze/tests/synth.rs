//! Synthetic run reports: latency drawn from log-normal distributions into
//! real histograms, with run-to-run drift like two replays of one build on a
//! busy machine.

#![allow(dead_code)]

use chrono::{DateTime, Duration, Utc};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tapedeck_analyze::report::{new_histogram, EndpointReport, FailureGroup, RunReport};

/// One endpoint of a synthetic application.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: &'static str,
    /// Median latency, ms.
    pub median_ms: f64,
    /// Log-normal shape (0.3 = moderately skewed).
    pub sigma: f64,
    /// Requests per run.
    pub requests: u64,
    /// Failure probability per request.
    pub error_rate: f64,
}

/// A CoreVia-shaped mix: busy endpoints, quiet ones, and a few with too
/// few requests to judge.
pub fn corevia() -> Vec<Spec> {
    let s = |name, median_ms, sigma, requests| Spec {
        name,
        median_ms,
        sigma,
        requests,
        error_rate: 0.001,
    };
    vec![
        s("Social Feed", 40.0, 0.45, 3000),
        s("Like Post", 15.0, 0.35, 1500),
        s("Analytics Dashboard", 80.0, 0.5, 1200),
        s("Create Post", 30.0, 0.4, 900),
        s("Marketplace Browse", 35.0, 0.45, 2100),
        s("Product Detail", 18.0, 0.35, 900),
        s("Create Workout", 20.0, 0.3, 600),
        s("Log Food", 20.0, 0.3, 600),
        s("Add Comment", 25.0, 0.35, 600),
        s("User Profile", 10.0, 0.3, 300),
        s("Login", 60.0, 0.5, 60),
        s("Register", 90.0, 0.5, 45),
        s("Create Product", 30.0, 0.4, 40),
        s("Trainer Content", 25.0, 0.4, 20),
    ]
}

/// Run-to-run drift: each run draws one machine factor shared by all its
/// endpoints, and each endpoint of the run a further factor of its own,
/// both uniform within ± these fractions.
#[derive(Debug, Clone, Copy)]
pub struct Drift {
    pub machine: f64,
    pub endpoint: f64,
}

/// Two replays of one build on a busy 2-core machine, endpoint-heavy: up to
/// ±4 % for the machine and ±6 % per endpoint, so two runs differ by up to
/// ~20 % at p50.
pub const BUSY: Drift = Drift {
    machine: 0.04,
    endpoint: 0.06,
};

/// The usual shape of drift (measured A-vs-A on the demo: every endpoint of
/// a run moves together, a little jitter on top): ±4 % for the machine and
/// ±2 % per endpoint, so two runs differ by up to ~12 %, typically 4–5 %.
pub const MACHINE: Drift = Drift {
    machine: 0.04,
    endpoint: 0.02,
};

/// A noisy machine: ±8 % for the machine and ±3 % per endpoint, so two runs
/// differ by up to ~22 %, typically 8–10 %.
pub const NOISY: Drift = Drift {
    machine: 0.08,
    endpoint: 0.03,
};

/// A quiet CI runner: ±1 % machine, ±1.5 % per endpoint.
pub const QUIET: Drift = Drift {
    machine: 0.01,
    endpoint: 0.015,
};

pub fn rng(seed: u64) -> SmallRng {
    SmallRng::seed_from_u64(seed)
}

fn normal(rng: &mut SmallRng) -> f64 {
    // Box–Muller.
    let u1: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn factor(rng: &mut SmallRng, spread: f64) -> f64 {
    if spread == 0.0 {
        1.0
    } else {
        1.0 + rng.gen_range(-spread..spread)
    }
}

/// One run of `specs`; `scale` multiplies an endpoint's latency (a
/// regression), `extra_errors` adds to its error rate.
pub fn run(
    rng: &mut SmallRng,
    label: &str,
    specs: &[Spec],
    drift: Drift,
    scale: &dyn Fn(&str) -> f64,
    extra_errors: &dyn Fn(&str) -> f64,
) -> RunReport {
    let start: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-26T12:00:00Z")
        .expect("valid time")
        .with_timezone(&Utc);
    let mut r = RunReport::new(label, "http://127.0.0.1:8000", start);
    r.ended = start + Duration::seconds(60);
    r.options.insert("users".into(), 50.into());
    r.options.insert("speed".into(), 10.into());
    let machine = factor(rng, drift.machine);
    for s in specs {
        let median_us =
            s.median_ms * 1000.0 * machine * factor(rng, drift.endpoint) * scale(s.name);
        let mut h = new_histogram();
        let mut failures = 0;
        let p_fail = s.error_rate + extra_errors(s.name);
        for _ in 0..s.requests {
            let v = (median_us * (s.sigma * normal(rng)).exp()).max(1.0);
            h.record(v as u64).expect("value within histogram bounds");
            if rng.gen::<f64>() < p_fail {
                failures += 1;
            }
        }
        let mut ep = EndpointReport::new(s.name, "GET", h.clone(), h);
        ep.requests = s.requests;
        ep.failures = failures;
        if failures > 0 {
            r.failures.push(FailureGroup {
                endpoint: s.name.to_string(),
                error: "HTTP 500".to_string(),
                count: failures,
            });
        }
        r.endpoints.push(ep);
    }
    r
}

/// `n` runs of one build.
pub fn runs(
    rng: &mut SmallRng,
    label: &str,
    n: usize,
    specs: &[Spec],
    drift: Drift,
    scale: &dyn Fn(&str) -> f64,
    extra_errors: &dyn Fn(&str) -> f64,
) -> Vec<RunReport> {
    (0..n)
        .map(|i| {
            run(
                rng,
                &format!("{label}-{}", i + 1),
                specs,
                drift,
                scale,
                extra_errors,
            )
        })
        .collect()
}

pub fn same(_: &str) -> f64 {
    1.0
}

pub fn none(_: &str) -> f64 {
    0.0
}

/// Same-build comparisons of `base_runs` against `cand_runs` runs: how many
/// of `pairs` come out with nothing flagged, and what the others flagged.
pub fn same_build_pairs(
    seed: u64,
    pairs: usize,
    base_runs: usize,
    cand_runs: usize,
    drift: Drift,
    multiplier: f64,
) -> (usize, Vec<String>, Vec<f64>) {
    use tapedeck_analyze::compare::{compare, CompareOptions};
    let specs = corevia();
    let mut rng = rng(seed);
    let mut clean = 0;
    let mut alarms = Vec::new();
    let mut floors = Vec::new();
    for pair in 0..pairs {
        let a = runs(&mut rng, "a", base_runs, &specs, drift, &same, &none);
        let b = runs(&mut rng, "a-again", cand_runs, &specs, drift, &same, &none);
        let o = CompareOptions {
            drift_multiplier: multiplier,
            ..CompareOptions::default()
        };
        let c = compare(&a, &b, &o);
        let feed = c
            .endpoints
            .iter()
            .find(|e| e.name == "Social Feed")
            .expect("Social Feed is in the mix");
        floors.push(feed.floor);
        let f = flagged(&c);
        if f.is_empty() {
            clean += 1;
        } else {
            alarms.push(format!("pair {pair}: {}", f.join("; ")));
        }
    }
    (clean, alarms, floors)
}

/// Endpoints with a latency or error verdict, described.
pub fn flagged(c: &tapedeck_analyze::compare::Comparison) -> Vec<String> {
    use tapedeck_analyze::compare::{ErrorVerdict, Verdict};
    c.endpoints
        .iter()
        .filter(|e| {
            e.verdict != Verdict::Same && e.verdict != Verdict::Unknown
                || e.errors == ErrorVerdict::Up
                || e.errors == ErrorVerdict::Down
        })
        .map(|e| {
            format!(
                "{} {} errors {} Δp50 {:?} Δmean {:?} floor {:.3} p {:.2e}",
                e.name,
                e.verdict.as_str(),
                e.errors.as_str(),
                e.change.p50,
                e.change.mean,
                e.floor,
                e.p_value
            )
        })
        .collect()
}
