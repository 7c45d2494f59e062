//! `--csv PREFIX`: Locust-compatible `PREFIX_stats.csv`,
//! `PREFIX_stats_history.csv`, `PREFIX_failures.csv` and
//! `PREFIX_exceptions.csv`, with Locust's column headers and row
//! conventions (an `Aggregated` row with an empty type, `N/A` percentiles
//! for endpoints without requests, CRLF line ends as Python's csv writes),
//! so dashboards built on Locust's files keep working.
//!
//! Times are milliseconds of the corrected latency (from the intended send time).

use std::fmt::Write as _;
use std::path::PathBuf;

use hdrhistogram::Histogram;
use tapedeck_analyze::report::{new_histogram, write_private, EndpointReport, RunReport};

use crate::collector::{HistoryRow, LOCUST_PERCENTILES};
use crate::Error;

/// Header of `_stats.csv`.
pub const STATS_HEADER: &str = "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%";
/// Header of `_stats_history.csv`.
pub const HISTORY_HEADER: &str = "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,Total Request Count,Total Failure Count,Total Median Response Time,Total Average Response Time,Total Min Response Time,Total Max Response Time,Total Average Content Size";
/// Header of `_failures.csv`.
pub const FAILURES_HEADER: &str = "Method,Name,Error,Occurrences";
/// Header of `_exceptions.csv`.
pub const EXCEPTIONS_HEADER: &str = "Count,Message,Traceback,Nodes";

/// Writes the four files; returns their paths.
pub fn write(
    prefix: &str,
    report: &RunReport,
    history: &[HistoryRow],
) -> Result<Vec<PathBuf>, Error> {
    let files = [
        (format!("{prefix}_stats.csv"), stats(report)),
        (
            format!("{prefix}_stats_history.csv"),
            stats_history(history),
        ),
        (format!("{prefix}_failures.csv"), failures(report)),
        (
            format!("{prefix}_exceptions.csv"),
            format!("{EXCEPTIONS_HEADER}\r\n"),
        ),
    ];
    let mut out = Vec::new();
    for (path, text) in files {
        let p = PathBuf::from(path);
        write_private(&p, text.as_bytes()).map_err(|source| Error::Io {
            path: p.clone(),
            source,
        })?;
        out.push(p);
    }
    Ok(out)
}

/// One CSV field as Python's csv module (minimal quoting) writes it.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// A float as Python prints it for these columns (up to 3 decimals, no trailing zeros).
fn num(v: f64) -> String {
    let r = (v * 1000.0).round() / 1000.0;
    if r.fract() == 0.0 {
        format!("{r:.1}")
    } else {
        format!("{r}")
    }
}

fn percentile_cells(h: &Histogram<u64>, requests: u64) -> String {
    if requests == 0 || h.is_empty() {
        return vec!["N/A"; LOCUST_PERCENTILES.len()].join(",");
    }
    LOCUST_PERCENTILES
        .iter()
        .map(|q| format!("{}", ms(h.value_at_quantile(*q)).round() as u64))
        .collect::<Vec<_>>()
        .join(",")
}

/// Counters of one `_stats.csv` row.
struct RowCounts {
    requests: u64,
    failures: u64,
    bytes: u64,
}

fn stats_row(
    out: &mut String,
    method: &str,
    name: &str,
    h: &Histogram<u64>,
    c: RowCounts,
    secs: f64,
) {
    let RowCounts {
        requests,
        failures,
        bytes,
    } = c;
    let empty = h.is_empty();
    let median = if empty {
        0
    } else {
        ms(h.value_at_quantile(0.5)).round() as u64
    };
    let _ = write!(
        out,
        "{},{},{requests},{failures},{median},{},{},{},{},{},{},",
        field(method),
        field(name),
        num(if empty { 0.0 } else { h.mean() / 1000.0 }),
        num(if empty { 0.0 } else { ms(h.min()) }),
        num(if empty { 0.0 } else { ms(h.max()) }),
        num(if requests == 0 {
            0.0
        } else {
            bytes as f64 / requests as f64
        }),
        num(requests as f64 / secs),
        num(failures as f64 / secs),
    );
    out.push_str(&percentile_cells(h, requests));
    out.push_str("\r\n");
}

fn stats(report: &RunReport) -> String {
    let secs = report.duration_s();
    let mut out = format!("{STATS_HEADER}\r\n");
    let mut endpoints: Vec<&EndpointReport> = report.endpoints.iter().collect();
    endpoints.sort_by(|a, b| (&a.name, &a.method).cmp(&(&b.name, &b.method)));
    let mut total = new_histogram();
    let (mut requests, mut failures, mut bytes) = (0, 0, 0);
    for e in endpoints {
        stats_row(
            &mut out,
            &e.method,
            &e.name,
            &e.histogram,
            RowCounts {
                requests: e.requests,
                failures: e.failures,
                bytes: e.bytes,
            },
            secs,
        );
        let _ = total.add(&e.histogram);
        requests += e.requests;
        failures += e.failures;
        bytes += e.bytes;
    }
    stats_row(
        &mut out,
        "",
        "Aggregated",
        &total,
        RowCounts {
            requests,
            failures,
            bytes,
        },
        secs,
    );
    out
}

fn stats_history(rows: &[HistoryRow]) -> String {
    let mut out = format!("{HISTORY_HEADER}\r\n");
    for r in rows {
        let percentiles = match &r.percentiles {
            Some(p) => p
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(","),
            None => vec!["N/A"; LOCUST_PERCENTILES.len()].join(","),
        };
        let _ = write!(
            out,
            "{},{},,Aggregated,{:.6},{:.6},{percentiles},{},{},{},{},{},{},{}\r\n",
            r.timestamp,
            r.users,
            r.rps,
            r.fps,
            r.total_requests,
            r.total_failures,
            r.median_ms,
            num(r.mean_ms),
            r.min_ms,
            r.max_ms,
            num(r.mean_bytes),
        );
    }
    out
}

fn failures(report: &RunReport) -> String {
    let mut out = format!("{FAILURES_HEADER}\r\n");
    for f in &report.failures {
        let method = report
            .endpoints
            .iter()
            .find(|e| e.name == f.endpoint)
            .map_or("", |e| e.method.as_str());
        let _ = write!(
            out,
            "{},{},{},{}\r\n",
            field(method),
            field(&f.endpoint),
            field(&f.error),
            f.count
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapedeck_analyze::report::{EndpointReport, FailureGroup};

    #[test]
    fn stats_have_aggregated_row_and_na_cells() {
        let mut h = new_histogram();
        h.record(12_000).unwrap();
        h.record(30_000).unwrap();
        let mut ep = EndpointReport::new("Social Feed", "GET", h.clone(), h);
        ep.requests = 2;
        ep.failures = 1;
        ep.bytes = 200;
        let mut r = RunReport::new("a", "http://x", chrono::Utc::now());
        r.ended = r.started + chrono::Duration::seconds(2);
        r.endpoints.push(ep);
        r.failures.push(FailureGroup {
            endpoint: "Social Feed".into(),
            error: "HTTP 500, \"boom\"".into(),
            count: 1,
        });
        let s = stats(&r);
        let lines: Vec<&str> = s.split("\r\n").collect();
        assert_eq!(lines[0], STATS_HEADER);
        assert!(
            lines[1].starts_with("GET,Social Feed,2,1,12,21.0"),
            "{}",
            lines[1]
        );
        assert!(lines[2].starts_with(",Aggregated,2,1,"), "{}", lines[2]);
        let empty = RunReport::new("a", "http://x", chrono::Utc::now());
        assert!(stats(&empty).contains(",Aggregated,0,0,0,0.0,0.0,0.0,0.0,0.0,0.0,N/A,N/A"));
        let f = failures(&r);
        assert_eq!(
            f,
            format!("{FAILURES_HEADER}\r\nGET,Social Feed,\"HTTP 500, \"\"boom\"\"\",1\r\n")
        );
    }
}
