//! The run report (`run.json`): what one replay measured.
//!
//! Summary numbers are derived from the histograms, and histograms are
//! stored whole (HdrHistogram V2 + deflate, base64), so merging shard
//! reports by adding histograms is exact.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use chrono::{DateTime, Utc};
use hdrhistogram::serialization::{
    Deserializer as HistDeserializer, Serializer as _, V2DeflateSerializer,
};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The report format name.
pub const REPORT_FORMAT: &str = "tapedeck-run";
/// The report format version written by this crate.
pub const REPORT_VERSION: u32 = 1;

/// Histograms record microseconds from 1 µs to 1 hour, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static histogram bounds are valid")
}

/// Errors reading or writing a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Could not read or write the file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid run report.
    #[error("{}: {what}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
}

/// A whole run report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    /// Always [`REPORT_FORMAT`].
    pub format: String,
    /// Always [`REPORT_VERSION`].
    pub version: u32,
    /// Free-form name of the run (`--label`), e.g. `release-a`.
    pub label: String,
    /// Wall-clock start of the measured run.
    pub started: DateTime<Utc>,
    /// Wall-clock end of the measured run.
    pub ended: DateTime<Utc>,
    /// The target URL (or `ORIGIN=URL` mappings joined by `,`).
    pub target: String,
    /// The journals replayed.
    pub journals: Vec<JournalRef>,
    /// The replay options that shape the load (users, speed, mix, ...).
    /// `analyze compare` warns when the two sides differ here.
    pub options: BTreeMap<String, serde_json::Value>,
    /// Which shard of a sharded run this is, if any.
    pub shard: Option<Shard>,
    /// True when the run was interrupted (Ctrl-C, SIGTERM) before its end.
    #[serde(default)]
    pub partial: bool,
    /// Per-endpoint results, in a stable order.
    pub endpoints: Vec<EndpointReport>,
    /// One point per second of the run.
    pub timeline: Vec<TimelinePoint>,
    /// Failures grouped by endpoint and error.
    pub failures: Vec<FailureGroup>,
    /// Threshold results.
    pub thresholds: Vec<ThresholdResult>,
    /// Requests slower than the slow-request threshold (capped list).
    #[serde(default)]
    pub slow_requests: Vec<SlowRequest>,
    /// How late requests left the replayer compared with their intended
    /// send time: the replayer's own accuracy. Absent in merged reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lateness: Option<Lateness>,
}

/// Scheduling lateness of a run: how late requests were sent compared with
/// their intended send time (recorded offset ÷ speed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lateness {
    /// Scheduled sends measured.
    pub sends: u64,
    /// Median lateness, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Maximum, ms.
    pub max_ms: f64,
}

impl Lateness {
    /// Summarizes a lateness histogram (µs); `None` when it is empty.
    pub fn from_histogram(h: &Histogram<u64>) -> Option<Lateness> {
        if h.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Lateness {
            sends: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        })
    }
}

/// A replayed journal and its checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalRef {
    /// Path as given on the command line.
    pub path: String,
    /// SHA-256 of the file, hex.
    pub sha256: String,
}

/// Shard position of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// 1-based shard index (as in `--shard I/N`).
    pub index: u32,
    /// Number of shards.
    pub count: u32,
}

/// Results of one endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointReport {
    /// Endpoint name (profile name or `METHOD /templated/path`).
    pub name: String,
    /// HTTP method (several methods may share a profile name; then the first).
    pub method: String,
    /// Requests sent.
    pub requests: u64,
    /// Requests that failed.
    pub failures: u64,
    /// Response bytes received.
    pub bytes: u64,
    /// Latency from the intended send time, µs (coordinated omission corrected).
    #[serde(with = "histogram_base64")]
    pub histogram: Histogram<u64>,
    /// Service time (from the actual send), µs. Empty when absent (and in
    /// reports read with [`RunReport::read_latencies`]).
    #[serde(with = "histogram_base64", default = "new_histogram")]
    pub service_histogram: Histogram<u64>,
    /// Responses per status class (`2xx`, `4xx`, `5xx`, `error`).
    #[serde(default)]
    pub status_classes: BTreeMap<String, u64>,
    /// Recorded values replaced by live ones (correlation).
    #[serde(default)]
    pub substituted: u64,
    /// Requests sent with a recorded value that had no live value yet.
    #[serde(default)]
    pub uncorrelated: u64,
    /// Median latency, ms (derived from `histogram`).
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Maximum, ms.
    pub max_ms: f64,
    /// Mean, ms.
    pub mean_ms: f64,
}

impl EndpointReport {
    /// A report for one endpoint with its summary numbers derived from the
    /// histograms. Counters start at zero.
    pub fn new(
        name: impl Into<String>,
        method: impl Into<String>,
        histogram: Histogram<u64>,
        service_histogram: Histogram<u64>,
    ) -> Self {
        let mut r = EndpointReport {
            name: name.into(),
            method: method.into(),
            requests: 0,
            failures: 0,
            bytes: 0,
            histogram,
            service_histogram,
            status_classes: BTreeMap::new(),
            substituted: 0,
            uncorrelated: 0,
            p50_ms: 0.0,
            p95_ms: 0.0,
            p99_ms: 0.0,
            max_ms: 0.0,
            mean_ms: 0.0,
        };
        r.refresh_summary();
        r
    }

    /// Recomputes p50/p95/p99/max/mean from `histogram`.
    pub fn refresh_summary(&mut self) {
        let h = &self.histogram;
        let ms = |us: u64| us as f64 / 1000.0;
        if h.is_empty() {
            (
                self.p50_ms,
                self.p95_ms,
                self.p99_ms,
                self.max_ms,
                self.mean_ms,
            ) = (0.0, 0.0, 0.0, 0.0, 0.0);
            return;
        }
        self.p50_ms = ms(h.value_at_quantile(0.50));
        self.p95_ms = ms(h.value_at_quantile(0.95));
        self.p99_ms = ms(h.value_at_quantile(0.99));
        self.max_ms = ms(h.max());
        self.mean_ms = h.mean() / 1000.0;
    }

    /// Failures / requests (0 when there were none).
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.failures as f64 / self.requests as f64
        }
    }
}

/// One second of the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimelinePoint {
    /// Seconds since the start of the run.
    pub t: u64,
    /// Requests completed in this second.
    pub requests: u64,
    /// Failures in this second.
    pub failures: u64,
    /// Active virtual users at the end of this second.
    pub users: u64,
    /// Median latency of this second, ms.
    pub p50_ms: f64,
    /// 95th percentile of this second, ms.
    pub p95_ms: f64,
}

/// Failures of one kind on one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureGroup {
    /// Endpoint name.
    pub endpoint: String,
    /// Error text, e.g. `HTTP 500` or `connection refused`.
    pub error: String,
    /// How many.
    pub count: u64,
}

/// The result of one threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdResult {
    /// The expression as written, e.g. `Social Feed:p95<200ms`.
    pub expr: String,
    /// Whether it held.
    pub ok: bool,
    /// The observed value, with unit, e.g. `183.2ms`.
    pub observed: String,
}

/// A request slower than the slow-request threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlowRequest {
    /// Endpoint name.
    pub endpoint: String,
    /// Seconds since the start of the run when it was due.
    pub t: f64,
    /// Latency, ms.
    pub latency_ms: f64,
    /// Status, if a response came.
    pub status: Option<u16>,
}

impl RunReport {
    /// An empty report with the format fields set.
    pub fn new(
        label: impl Into<String>,
        target: impl Into<String>,
        started: DateTime<Utc>,
    ) -> Self {
        RunReport {
            format: REPORT_FORMAT.to_string(),
            version: REPORT_VERSION,
            label: label.into(),
            started,
            ended: started,
            target: target.into(),
            journals: Vec::new(),
            options: BTreeMap::new(),
            shard: None,
            partial: false,
            endpoints: Vec::new(),
            timeline: Vec::new(),
            failures: Vec::new(),
            thresholds: Vec::new(),
            slow_requests: Vec::new(),
            lateness: None,
        }
    }

    /// Reads and validates a report file.
    pub fn read(path: &Path) -> Result<RunReport, ReportError> {
        Self::read_impl(path, false)
    }

    /// Like [`RunReport::read`], but leaves the service-time histograms
    /// empty: decoding histograms is most of the cost of reading a report,
    /// and comparing runs only needs the latency histograms.
    pub fn read_latencies(path: &Path) -> Result<RunReport, ReportError> {
        Self::read_impl(path, true)
    }

    fn read_impl(path: &Path, skip_service: bool) -> Result<RunReport, ReportError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReportError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |what: String| ReportError::Invalid {
            path: path.to_path_buf(),
            what,
        };
        let mut value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| invalid(format!("not JSON: {e}")))?;
        if skip_service {
            if let Some(eps) = value.get_mut("endpoints").and_then(|e| e.as_array_mut()) {
                for ep in eps.iter_mut().filter_map(|e| e.as_object_mut()) {
                    ep.remove("service_histogram");
                }
            }
        }
        if value.get("format").and_then(|f| f.as_str()) != Some(REPORT_FORMAT) {
            return Err(invalid(format!(
                "not a tapedeck run report (no \"format\":\"{REPORT_FORMAT}\")"
            )));
        }
        serde_json::from_value(value).map_err(|e| invalid(format!("damaged run report: {e}")))
    }

    /// Writes the report (pretty JSON), creating the file with mode 0600.
    pub fn write(&self, path: &Path) -> Result<(), ReportError> {
        let io = |source| ReportError::Io {
            path: path.to_path_buf(),
            source,
        };
        let json = serde_json::to_vec_pretty(self).expect("a report always serializes");
        write_private(path, &json).map_err(io)
    }

    /// Total requests over all endpoints.
    pub fn total_requests(&self) -> u64 {
        self.endpoints.iter().map(|e| e.requests).sum()
    }

    /// Total failures over all endpoints.
    pub fn total_failures(&self) -> u64 {
        self.endpoints.iter().map(|e| e.failures).sum()
    }

    /// Length of the run in seconds (at least a millisecond).
    pub fn duration_s(&self) -> f64 {
        let d = (self.ended - self.started).num_milliseconds().max(1);
        d as f64 / 1000.0
    }
}

/// Writes `data` to `path`, creating or truncating it with mode 0600 on Unix.
pub fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(data)?;
    f.flush()
}

/// Encodes a histogram as base64 of its V2+deflate serialization.
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut buf)
        .expect("serializing into a Vec cannot fail");
    base64::engine::general_purpose::STANDARD.encode(buf)
}

/// Decodes [`encode_histogram`]'s output.
pub fn decode_histogram(s: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.as_bytes())
        .map_err(|e| format!("histogram is not base64: {e}"))?;
    HistDeserializer::new()
        .deserialize(&mut &bytes[..])
        .map_err(|e| format!("histogram is damaged: {e:?}"))
}

/// Serde adapter for histogram fields.
pub mod histogram_base64 {
    use hdrhistogram::Histogram;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes a histogram as a base64 string.
    pub fn serialize<S: Serializer>(h: &Histogram<u64>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::encode_histogram(h))
    }

    /// Deserializes a histogram from a base64 string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Histogram<u64>, D::Error> {
        let s = String::deserialize(d)?;
        super::decode_histogram(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_round_trips_with_histograms() {
        let mut h = new_histogram();
        for v in [100, 200, 300, 5_000, 20_000] {
            h.record(v).unwrap();
        }
        let mut ep = EndpointReport::new("Social Feed", "GET", h.clone(), h);
        ep.requests = 5;
        let mut r = RunReport::new("a", "http://127.0.0.1:8000", Utc::now());
        r.endpoints.push(ep);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("run.json");
        r.write(&p).unwrap();
        let back = RunReport::read(&p).unwrap();
        assert_eq!(back.endpoints[0].histogram.len(), 5);
        assert_eq!(back.endpoints[0].p50_ms, r.endpoints[0].p50_ms);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn non_report_is_rejected_with_file_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        std::fs::write(&p, "{\"a\":1}").unwrap();
        let e = RunReport::read(&p).unwrap_err().to_string();
        assert!(
            e.contains("x.json") && e.contains("not a tapedeck run report"),
            "{e}"
        );
    }
}
