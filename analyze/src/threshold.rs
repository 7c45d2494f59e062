//! Pass/fail thresholds on a run: `Social Feed:p95<200ms`,
//! `Login:error_rate<1%`, `rps>100`, and k6's aggregation forms
//! (`p(95)<200`, `avg<100`, `med<50`, `max<2000`, `rate<0.01`).
//!
//! Without `NAME:` a threshold applies to all endpoints aggregated
//! (histograms added, counters summed). Latencies without a unit are
//! milliseconds, as in k6.

use hdrhistogram::Histogram;
use tapedeck_sessions::profile::Profile;

use crate::report::{new_histogram, RunReport, ThresholdResult};

/// What a threshold measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// A latency percentile, 0–100 (`p95`, `p(99.9)`, `med` is 50).
    Percentile(f64),
    /// Mean latency (`avg`, `mean`).
    Mean,
    /// Largest latency (`max`).
    Max,
    /// Smallest latency (`min`).
    Min,
    /// Failures / requests (`error_rate`, `rate`).
    ErrorRate,
    /// Requests per second over the run (`rps`).
    Rps,
}

/// The comparison of a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Op {
    fn holds(self, observed: f64, limit: f64) -> bool {
        match self {
            Op::Lt => observed < limit,
            Op::Le => observed <= limit,
            Op::Gt => observed > limit,
            Op::Ge => observed >= limit,
        }
    }
}

/// One parsed threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The expression as written.
    pub expr: String,
    /// The endpoint it applies to; `None` means all endpoints aggregated.
    pub endpoint: Option<String>,
    /// What is measured.
    pub metric: Metric,
    /// How observed and limit compare.
    pub op: Op,
    /// The limit: milliseconds for latencies, a fraction (0.01 = 1 %) for
    /// error rates, requests per second for `rps`.
    pub limit: f64,
    /// When true, an endpoint absent from the run passes (profile targets
    /// name endpoints a given recording may never call); when false it fails.
    pub optional: bool,
}

/// Parses one threshold expression. The error says what is wrong with it.
pub fn parse_threshold(s: &str) -> Result<Threshold, String> {
    let expr = s.trim();
    // Escaped so the message stays on one line whatever the input holds.
    let bad = |why: &str| format!("threshold '{}': {why}", s.escape_debug());
    if expr.is_empty() {
        return Err(bad("empty expression"));
    }
    let op_at = expr
        .find(['<', '>'])
        .ok_or_else(|| bad("no comparison (expected < <= > or >=)"))?;
    let (lhs, rest) = expr.split_at(op_at);
    let (op, rhs) = if let Some(r) = rest.strip_prefix("<=") {
        (Op::Le, r)
    } else if let Some(r) = rest.strip_prefix(">=") {
        (Op::Ge, r)
    } else if let Some(r) = rest.strip_prefix('<') {
        (Op::Lt, r)
    } else {
        (Op::Gt, &rest[1..])
    };
    let (endpoint, metric_text) = match lhs.rfind(':') {
        Some(i) => {
            let name = lhs[..i].trim();
            if name.is_empty() {
                return Err(bad("empty endpoint name before ':'"));
            }
            (Some(name.to_string()), lhs[i + 1..].trim())
        }
        None => (None, lhs.trim()),
    };
    let metric = parse_metric(metric_text).ok_or_else(|| {
        bad(&format!(
            "unknown metric '{metric_text}' (expected p95, p(99), med, avg, min, max, error_rate, rate or rps)"
        ))
    })?;
    let limit = parse_limit(metric, rhs.trim()).map_err(|why| bad(&why))?;
    Ok(Threshold {
        expr: expr.to_string(),
        endpoint,
        metric,
        op,
        limit,
        optional: false,
    })
}

fn parse_metric(m: &str) -> Option<Metric> {
    let m = m.to_ascii_lowercase();
    Some(match m.as_str() {
        "avg" | "mean" => Metric::Mean,
        "med" | "median" => Metric::Percentile(50.0),
        "max" => Metric::Max,
        "min" => Metric::Min,
        "error_rate" | "rate" | "errors" | "http_req_failed" => Metric::ErrorRate,
        "rps" | "throughput" | "req/s" => Metric::Rps,
        _ => {
            let inner = m
                .strip_prefix("p(")
                .and_then(|r| r.strip_suffix(')'))
                .or_else(|| m.strip_prefix('p'))?;
            let p: f64 = inner.parse().ok()?;
            if !(0.0..=100.0).contains(&p) {
                return None;
            }
            Metric::Percentile(p)
        }
    })
}

fn parse_limit(metric: Metric, v: &str) -> Result<f64, String> {
    let number = |t: &str| -> Result<f64, String> {
        t.trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && *x >= 0.0)
            .ok_or_else(|| format!("'{v}' is not a non-negative number"))
    };
    match metric {
        Metric::ErrorRate => match v.strip_suffix('%') {
            Some(pct) => Ok(number(pct)? / 100.0),
            None => number(v),
        },
        Metric::Rps => number(v.strip_suffix("/s").unwrap_or(v)),
        _ => {
            // Longest suffixes first: "ms" before "s".
            for (unit, scale) in [("ms", 1.0), ("us", 0.001), ("µs", 0.001), ("s", 1000.0)] {
                if let Some(n) = v.strip_suffix(unit) {
                    return Ok(number(n)? * scale);
                }
            }
            if v.ends_with('m') || v.ends_with('h') {
                return Err(format!("'{v}': latency units are us, ms or s"));
            }
            number(v)
        }
    }
}

/// What a run measured for one threshold: `None` when the endpoint is absent.
fn observe(report: &RunReport, t: &Threshold) -> Option<f64> {
    let (hist, requests, failures) = match &t.endpoint {
        Some(name) => {
            let ep = report.endpoints.iter().find(|e| &e.name == name)?;
            (ep.histogram.clone(), ep.requests, ep.failures)
        }
        None => (
            aggregate_histogram(report),
            report.total_requests(),
            report.total_failures(),
        ),
    };
    let ms = |us: u64| us as f64 / 1000.0;
    Some(match t.metric {
        Metric::ErrorRate => {
            if requests == 0 {
                0.0
            } else {
                failures as f64 / requests as f64
            }
        }
        Metric::Rps => requests as f64 / report.duration_s(),
        _ if hist.is_empty() => 0.0,
        Metric::Percentile(p) => ms(hist.value_at_quantile(p / 100.0)),
        Metric::Mean => hist.mean() / 1000.0,
        Metric::Max => ms(hist.max()),
        Metric::Min => ms(hist.min()),
    })
}

/// All endpoint histograms of a run added together.
pub fn aggregate_histogram(report: &RunReport) -> Histogram<u64> {
    let mut all = new_histogram();
    for ep in &report.endpoints {
        // Histograms of one report share bounds; a foreign one that does not
        // fit is skipped rather than failing a threshold evaluation.
        let _ = all.add(&ep.histogram);
    }
    all
}

fn format_observed(metric: Metric, v: f64) -> String {
    match metric {
        Metric::ErrorRate => format!("{:.2}%", v * 100.0),
        Metric::Rps => format!("{v:.1}/s"),
        _ => format!("{v:.1}ms"),
    }
}

/// Evaluates thresholds against a run, in order.
pub fn evaluate(report: &RunReport, thresholds: &[Threshold]) -> Vec<ThresholdResult> {
    thresholds
        .iter()
        .map(|t| match observe(report, t) {
            Some(v) => ThresholdResult {
                expr: t.expr.clone(),
                ok: t.op.holds(v, t.limit),
                observed: format_observed(t.metric, v),
            },
            None => ThresholdResult {
                expr: t.expr.clone(),
                ok: t.optional,
                observed: "no requests".to_string(),
            },
        })
        .collect()
}

/// The gate a profile implies: every endpoint's p95 under its *critical*
/// level, and the aggregated error rate under its critical level. Throughput
/// is not gated here: it depends on the load the replay applied, which a
/// small replay deliberately keeps low (`analyze check` reports it).
/// Endpoints the run never called pass.
pub fn profile_thresholds(p: &Profile) -> Vec<Threshold> {
    let mut out: Vec<Threshold> = p
        .targets
        .p95_ms
        .iter()
        .map(|(name, levels)| Threshold {
            expr: format!("{name}:p95<{}ms", levels.critical),
            endpoint: Some(name.clone()),
            metric: Metric::Percentile(95.0),
            op: Op::Lt,
            limit: levels.critical,
            optional: true,
        })
        .collect();
    if let Some(levels) = p.targets.error_rate {
        out.push(Threshold {
            expr: format!("error_rate<{}%", levels.critical * 100.0),
            endpoint: None,
            metric: Metric::ErrorRate,
            op: Op::Lt,
            limit: levels.critical,
            optional: true,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::EndpointReport;
    use chrono::{Duration, Utc};

    fn run() -> RunReport {
        let mut r = RunReport::new("a", "http://127.0.0.1:1", Utc::now());
        r.ended = r.started + Duration::seconds(10);
        for (name, base_us, failures) in [("Social Feed", 100_000u64, 0u64), ("Login", 300_000, 5)]
        {
            let mut h = new_histogram();
            for i in 0..100 {
                h.record(base_us + i * 1000).unwrap();
            }
            let mut ep = EndpointReport::new(name, "GET", h.clone(), h);
            ep.requests = 100;
            ep.failures = failures;
            r.endpoints.push(ep);
        }
        r
    }

    #[test]
    fn parses_named_and_k6_forms() {
        let t = parse_threshold("Social Feed:p95<200ms").unwrap();
        assert_eq!(t.endpoint.as_deref(), Some("Social Feed"));
        assert_eq!(t.metric, Metric::Percentile(95.0));
        assert_eq!((t.op, t.limit), (Op::Lt, 200.0));
        let t = parse_threshold("Login:error_rate<1%").unwrap();
        assert_eq!((t.metric, t.limit), (Metric::ErrorRate, 0.01));
        let t = parse_threshold("rps>100").unwrap();
        assert_eq!((t.endpoint, t.metric, t.op), (None, Metric::Rps, Op::Gt));
        assert_eq!(
            parse_threshold("p(99.9)<=2s").unwrap().metric,
            Metric::Percentile(99.9)
        );
        assert_eq!(parse_threshold("p(99.9)<=2s").unwrap().limit, 2000.0);
        assert_eq!(parse_threshold("avg<100").unwrap().metric, Metric::Mean);
        assert_eq!(
            parse_threshold("med<50").unwrap().metric,
            Metric::Percentile(50.0)
        );
        assert_eq!(parse_threshold("max<2000").unwrap().limit, 2000.0);
        assert_eq!(parse_threshold("rate<0.01").unwrap().limit, 0.01);
    }

    #[test]
    fn rejects_bad_expressions_with_reason() {
        for (bad, why) in [
            ("p95", "no comparison"),
            ("p95<fast", "not a non-negative number"),
            ("speed<3", "unknown metric"),
            (":p95<3", "empty endpoint"),
            ("p95<5m", "latency units"),
            ("p(120)<5", "unknown metric"),
        ] {
            let e = parse_threshold(bad).unwrap_err();
            assert!(e.contains(why) && e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn evaluates_against_run() {
        let r = run();
        let ts: Vec<_> = [
            "Social Feed:p95<200ms",
            "Social Feed:p95<150ms",
            "Login:error_rate<1%",
            "error_rate<5%",
            "rps>10",
            "rps>30",
            "Nope:p95<1s",
            "max<1000",
        ]
        .iter()
        .map(|s| parse_threshold(s).unwrap())
        .collect();
        let res = evaluate(&r, &ts);
        let oks: Vec<bool> = res.iter().map(|r| r.ok).collect();
        assert_eq!(
            oks,
            vec![true, false, false, true, true, false, false, true],
            "{res:?}"
        );
        assert_eq!(res[2].observed, "5.00%");
        assert_eq!(res[4].observed, "20.0/s");
        assert_eq!(res[6].observed, "no requests");
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_errs_without_panicking(s in "\\PC{0,40}") {
            if let Ok(t) = parse_threshold(&s) {
                proptest::prop_assert!(t.limit.is_finite() && t.limit >= 0.0);
            }
        }

        #[test]
        fn written_forms_round_trip(ms in 0u32..100_000, pct in 0u32..100) {
            let t = parse_threshold(&format!("Feed:p(99)<={ms}ms")).unwrap();
            proptest::prop_assert_eq!(t.limit, ms as f64);
            let t = parse_threshold(&format!("error_rate<{pct}%")).unwrap();
            proptest::prop_assert!((t.limit - pct as f64 / 100.0).abs() < 1e-12);
        }
    }

    #[test]
    fn profile_gate_uses_critical_levels() {
        let ts = profile_thresholds(&Profile::builtin());
        let feed = ts
            .iter()
            .find(|t| t.endpoint.as_deref() == Some("Social Feed"))
            .unwrap();
        assert_eq!(feed.limit, 1000.0);
        assert!(ts.iter().any(|t| t.metric == Metric::ErrorRate));
        let res = evaluate(&run(), &ts);
        // Login's p95 (~395 ms) is under its 2 s critical level; Register is
        // absent and passes; the aggregated error rate is 2.5 % < 5 %.
        assert!(res.iter().all(|r| r.ok), "{res:?}");
    }
}
