//! Renderers: terminal text, Markdown, JSON and self-contained HTML, for one
//! run ([`text_run`], [`html_run`]), a comparison and an SLO check.

use std::fmt::Write as _;

use crate::report::{EndpointReport, RunReport};
use crate::threshold::aggregate_histogram;

mod html;
mod table;

pub use html::{html_compare, html_run};
pub use table::{md_check, md_compare, md_run, text_check, text_compare};

/// Milliseconds for a table cell: 3 significant figures, no exponent.
pub fn fmt_ms(ms: f64) -> String {
    if ms == 0.0 {
        "0".to_string()
    } else if ms < 10.0 {
        format!("{ms:.2}")
    } else if ms < 100.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

/// A relative change as a signed percentage, e.g. `+12.3%`; `n/a` when the
/// base is zero.
pub fn fmt_change(rel: Option<f64>) -> String {
    match rel {
        Some(r) if r.is_finite() => format!("{:+.1}%", r * 100.0),
        _ => "n/a".to_string(),
    }
}

/// A p-value for a table: 3 significant digits, `<1e-99` below that.
pub fn fmt_p(p: f64) -> String {
    if p < 1e-99 {
        "<1e-99".to_string()
    } else if p < 0.001 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

/// One row of the end-of-run table.
pub(crate) struct RunRow {
    pub name: String,
    pub requests: u64,
    pub failures: u64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub mean: f64,
    pub max: f64,
    pub rps: f64,
}

/// The endpoint rows of a run plus the `Aggregated` row (last).
pub(crate) fn run_rows(r: &RunReport) -> Vec<RunRow> {
    let secs = r.duration_s();
    let row = |e: &EndpointReport| RunRow {
        name: e.name.clone(),
        requests: e.requests,
        failures: e.failures,
        p50: e.p50_ms,
        p95: e.p95_ms,
        p99: e.p99_ms,
        mean: e.mean_ms,
        max: e.max_ms,
        rps: e.requests as f64 / secs,
    };
    let mut rows: Vec<RunRow> = r.endpoints.iter().map(row).collect();
    let mut all = EndpointReport::new(
        "Aggregated",
        "",
        aggregate_histogram(r),
        crate::report::new_histogram(),
    );
    all.requests = r.total_requests();
    all.failures = r.total_failures();
    rows.push(row(&all));
    rows
}

/// The end-of-run table (the shape of the CoreVia load-test plan and of
/// Locust's console summary): Name, # reqs, # fails, Median, 95%ile,
/// 99%ile, Avg, Max (ms) and req/s per endpoint, then an `Aggregated` row,
/// failures, thresholds and slow requests.
pub fn text_run(r: &RunReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Run '{}' against {}: {:.1} s, {} requests, {} failures{}",
        r.label,
        r.target,
        r.duration_s(),
        r.total_requests(),
        r.total_failures(),
        if r.partial {
            " (PARTIAL: interrupted before its end)"
        } else {
            ""
        }
    );
    let rows = run_rows(r);
    let width = rows
        .iter()
        .map(|x| x.name.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let header = format!(
        "{:<width$} {:>8} {:>16} | {:>8} {:>8} {:>8} {:>8} {:>8} | {:>8}",
        "Name", "# reqs", "# fails", "Median", "95%ile", "99%ile", "Avg", "Max", "req/s"
    );
    let _ = writeln!(out, "{header}");
    let rule = "-".repeat(header.chars().count());
    let _ = writeln!(out, "{rule}");
    let n = rows.len();
    for (i, x) in rows.iter().enumerate() {
        if i + 1 == n {
            let _ = writeln!(out, "{rule}");
        }
        let fails = format!(
            "{}({:.2}%)",
            x.failures,
            if x.requests == 0 {
                0.0
            } else {
                x.failures as f64 * 100.0 / x.requests as f64
            }
        );
        let _ = writeln!(
            out,
            "{:<width$} {:>8} {:>16} | {:>8} {:>8} {:>8} {:>8} {:>8} | {:>8.2}",
            x.name,
            x.requests,
            fails,
            fmt_ms(x.p50),
            fmt_ms(x.p95),
            fmt_ms(x.p99),
            fmt_ms(x.mean),
            fmt_ms(x.max),
            x.rps
        );
    }
    let _ = writeln!(out, "(latencies in ms, from the intended send time)");
    if !r.failures.is_empty() {
        let _ = writeln!(out, "\nFailures:");
        for f in &r.failures {
            let _ = writeln!(out, "  {:>7}  {}: {}", f.count, f.endpoint, f.error);
        }
    }
    if !r.thresholds.is_empty() {
        let _ = writeln!(out, "\nThresholds:");
        for t in &r.thresholds {
            let mark = if t.ok { "ok    " } else { "FAILED" };
            let _ = writeln!(out, "  {mark} {}  (observed {})", t.expr, t.observed);
        }
    }
    if !r.slow_requests.is_empty() {
        let slowest = r
            .slow_requests
            .iter()
            .map(|s| s.latency_ms)
            .fold(0.0f64, f64::max);
        let _ = writeln!(
            out,
            "\nSlow requests: {} listed, slowest {} ms",
            r.slow_requests.len(),
            fmt_ms(slowest)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{new_histogram, ThresholdResult};
    use chrono::{Duration, Utc};

    pub(crate) fn sample_run() -> RunReport {
        let mut r = RunReport::new("release-a", "http://127.0.0.1:8000", Utc::now());
        r.ended = r.started + Duration::seconds(20);
        for (name, us) in [("Social Feed", 20_000u64), ("Analytics Dashboard", 80_000)] {
            let mut h = new_histogram();
            for i in 0..200 {
                h.record(us + i * 100).unwrap();
            }
            let mut ep = EndpointReport::new(name, "GET", h.clone(), h);
            ep.requests = 200;
            ep.failures = 2;
            r.endpoints.push(ep);
        }
        r.thresholds.push(ThresholdResult {
            expr: "Social Feed:p95<10ms".into(),
            ok: false,
            observed: "39.0ms".into(),
        });
        r
    }

    #[test]
    fn run_table_has_rows_and_aggregate() {
        let t = text_run(&sample_run());
        for want in [
            "Name",
            "# reqs",
            "# fails",
            "Median",
            "95%ile",
            "99%ile",
            "Avg",
            "Max",
            "req/s",
            "Social Feed",
            "Analytics Dashboard",
            "Aggregated",
            "FAILED",
            "2(1.00%)",
            "4(1.00%)",
            "20.00",
        ] {
            assert!(t.contains(want), "missing {want:?} in\n{t}");
        }
        // Aligned: every table row has the same width.
        let widths: Vec<usize> = t
            .lines()
            .filter(|l| l.contains(" | "))
            .map(|l| l.chars().count())
            .collect();
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "{t}");
    }

    #[test]
    fn number_formats() {
        assert_eq!(fmt_ms(1.234), "1.23");
        assert_eq!(fmt_ms(12.34), "12.3");
        assert_eq!(fmt_ms(1234.4), "1234");
        assert_eq!(fmt_change(Some(0.1234)), "+12.3%");
        assert_eq!(fmt_change(None), "n/a");
        assert_eq!(fmt_p(0.5), "0.500");
        assert_eq!(fmt_p(1e-5), "1.0e-5");
    }
}
