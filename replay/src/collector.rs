//! Aggregation of results: VUs send one small [`Sample`] per request over a
//! channel; the collector records them into per-endpoint HdrHistograms,
//! closes a timeline point every second, and streams interval histograms
//! to the hlog and the metrics endpoint. No per-request data is kept.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tapedeck_analyze::report::{
    new_histogram, EndpointReport, FailureGroup, SlowRequest, TimelinePoint,
};
use tokio::sync::mpsc;

use crate::hlog::HlogWriter;
use crate::metrics::MetricsText;
use crate::progress::Progress;

/// The largest value recorded (an hour, in µs); longer values are clamped.
const MAX_US: u64 = 3_600_000_000;
/// At most this many slow requests are listed (the count is in the histograms).
const MAX_SLOW: usize = 1000;

/// The result of one request, as a VU reports it.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Index into the endpoint table.
    pub endpoint: u32,
    /// When the request was due, µs since the start of the run.
    pub due_us: u64,
    /// From the intended send time to the end of the response, µs.
    pub latency_us: u64,
    /// From the actual send to the end of the response, µs.
    pub service_us: u64,
    /// How late the VU left compared with its schedule, when it was on
    /// schedule before sleeping (pure scheduling delay), µs.
    pub lateness_us: Option<u64>,
    /// Live status; 0 when no response came.
    pub status: u16,
    /// Response body bytes.
    pub bytes: u64,
    /// Why this request counts as failed.
    pub failure: Option<String>,
    /// Values substituted by correlation.
    pub substituted: u32,
    /// Recorded values sent without a live value.
    pub uncorrelated: u32,
}

/// Samples per batch sent by a VU (fewer channel sends and collector wake-ups).
const BATCH: usize = 32;
/// A buffered sample waits at most this long before its batch is sent.
const BATCH_AGE: Duration = Duration::from_millis(200);

/// A VU's outbox: samples leave in batches, sent when full, when the oldest
/// is 200 ms old, before the VU sleeps ([`Outbox::flush`]) and when
/// the outbox is dropped, so no sample is lost and none waits long.
pub struct Outbox {
    tx: mpsc::UnboundedSender<Vec<Sample>>,
    buf: Vec<Sample>,
    oldest: Option<Instant>,
}

impl Outbox {
    /// An empty outbox sending to the collector.
    pub fn new(tx: mpsc::UnboundedSender<Vec<Sample>>) -> Self {
        // Buffers grow on demand: 10,000 mostly sleeping VUs must not each
        // hold a full batch of capacity.
        Outbox {
            tx,
            buf: Vec::new(),
            oldest: None,
        }
    }

    /// Adds a sample; false when the collector is gone.
    pub fn push(&mut self, s: Sample) -> bool {
        let now = Instant::now();
        let oldest = *self.oldest.get_or_insert(now);
        self.buf.push(s);
        if self.buf.len() >= BATCH || now.duration_since(oldest) >= BATCH_AGE {
            return self.flush();
        }
        true
    }

    /// Sends what is buffered; false when the collector is gone.
    pub fn flush(&mut self) -> bool {
        self.oldest = None;
        if self.buf.is_empty() {
            return true;
        }
        let batch = std::mem::take(&mut self.buf);
        self.tx.send(batch).is_ok()
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Per-endpoint accumulators.
struct EndpointStats {
    name: String,
    method: String,
    histogram: Histogram<u64>,
    service: Histogram<u64>,
    interval: Histogram<u64>,
    requests: u64,
    failures: u64,
    bytes: u64,
    classes: [u64; 5],
    substituted: u64,
    uncorrelated: u64,
}

const CLASS_NAMES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// One row of Locust's `_stats_history.csv` (the Aggregated row of a second).
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    /// Unix time, seconds.
    pub timestamp: i64,
    /// Active users.
    pub users: u64,
    /// Requests in this second.
    pub rps: f64,
    /// Failures in this second.
    pub fps: f64,
    /// Cumulative percentiles (ms) at the Locust levels, `None` before any request.
    pub percentiles: Option<Vec<u64>>,
    /// Cumulative requests.
    pub total_requests: u64,
    /// Cumulative failures.
    pub total_failures: u64,
    /// Cumulative median, ms.
    pub median_ms: u64,
    /// Cumulative mean, ms.
    pub mean_ms: f64,
    /// Cumulative min, ms.
    pub min_ms: u64,
    /// Cumulative max, ms.
    pub max_ms: u64,
    /// Cumulative mean response size, bytes.
    pub mean_bytes: f64,
}

/// The percentiles Locust reports, as fractions.
pub const LOCUST_PERCENTILES: [f64; 11] = [
    0.50, 0.66, 0.75, 0.80, 0.90, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0,
];

/// Everything measured, ready to become a report.
pub struct Measured {
    /// Per endpoint, in endpoint-table order, only those with requests.
    pub endpoints: Vec<EndpointReport>,
    /// One point per second.
    pub timeline: Vec<TimelinePoint>,
    /// Failures by endpoint and error, most frequent first.
    pub failures: Vec<FailureGroup>,
    /// Slow requests (capped list).
    pub slow_requests: Vec<SlowRequest>,
    /// Rows for Locust's stats history.
    pub history: Vec<HistoryRow>,
    /// Scheduling lateness, µs.
    pub lateness: Histogram<u64>,
    /// Errors writing the hlog, if any (the run itself went on).
    pub hlog_error: Option<String>,
}

/// Live figures shared with the progress line and metrics endpoint.
#[derive(Debug, Default)]
pub struct Live {
    /// VUs running now.
    pub active_users: AtomicU64,
}

/// What the collector needs besides the samples.
pub struct CollectorSetup {
    /// `(name, method)` per endpoint index.
    pub endpoints: Vec<(String, String)>,
    /// When the run started.
    pub start: Instant,
    /// Wall-clock start (for hlog and CSV timestamps).
    pub start_wall: chrono::DateTime<chrono::Utc>,
    /// Slow-request threshold.
    pub slow: Duration,
    /// Live counters.
    pub live: Arc<Live>,
    /// Interval log, if asked for.
    pub hlog: Option<HlogWriter>,
    /// Prometheus text, if asked for.
    pub metrics: Option<Arc<Mutex<MetricsText>>>,
    /// Progress line, if shown.
    pub progress: Option<Progress>,
}

/// Receives samples until every sender is gone, then returns the totals.
pub async fn collect(
    mut rx: mpsc::UnboundedReceiver<Vec<Sample>>,
    setup: CollectorSetup,
) -> Measured {
    let mut c = Collector::new(setup);
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::from_std(c.start) + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            batch = rx.recv() => match batch {
                Some(batch) => batch.into_iter().for_each(|s| c.record(s)),
                None => break,
            },
            _ = tick.tick() => c.close_second(),
        }
    }
    c.close_second();
    c.finish()
}

struct Collector {
    endpoints: Vec<EndpointStats>,
    start: Instant,
    start_wall: chrono::DateTime<chrono::Utc>,
    slow_us: u64,
    live: Arc<Live>,
    hlog: Option<HlogWriter>,
    hlog_error: Option<String>,
    metrics: Option<Arc<Mutex<MetricsText>>>,
    progress: Option<Progress>,
    second: Histogram<u64>,
    second_requests: u64,
    second_failures: u64,
    second_index: u64,
    last_close: Instant,
    total: Histogram<u64>,
    total_requests: u64,
    total_failures: u64,
    total_bytes: u64,
    timeline: Vec<TimelinePoint>,
    history: Vec<HistoryRow>,
    failures: HashMap<(u32, String), u64>,
    slow: Vec<SlowRequest>,
    lateness: Histogram<u64>,
}

impl Collector {
    fn new(setup: CollectorSetup) -> Self {
        Collector {
            endpoints: setup
                .endpoints
                .into_iter()
                .map(|(name, method)| EndpointStats {
                    name,
                    method,
                    histogram: new_histogram(),
                    service: new_histogram(),
                    interval: new_histogram(),
                    requests: 0,
                    failures: 0,
                    bytes: 0,
                    classes: [0; 5],
                    substituted: 0,
                    uncorrelated: 0,
                })
                .collect(),
            start: setup.start,
            start_wall: setup.start_wall,
            slow_us: setup.slow.as_micros() as u64,
            live: setup.live,
            hlog: setup.hlog,
            hlog_error: None,
            metrics: setup.metrics,
            progress: setup.progress,
            second: new_histogram(),
            second_requests: 0,
            second_failures: 0,
            second_index: 0,
            last_close: setup.start,
            total: new_histogram(),
            total_requests: 0,
            total_failures: 0,
            total_bytes: 0,
            timeline: Vec::new(),
            history: Vec::new(),
            failures: HashMap::new(),
            slow: Vec::new(),
            lateness: new_histogram(),
        }
    }

    fn record(&mut self, s: Sample) {
        let latency = s.latency_us.clamp(1, MAX_US);
        let service = s.service_us.clamp(1, MAX_US);
        let Some(ep) = self.endpoints.get_mut(s.endpoint as usize) else {
            return;
        };
        ep.histogram.saturating_record(latency);
        ep.service.saturating_record(service);
        ep.interval.saturating_record(latency);
        ep.requests += 1;
        ep.bytes += s.bytes;
        ep.substituted += u64::from(s.substituted);
        ep.uncorrelated += u64::from(s.uncorrelated);
        if (100..=599).contains(&s.status) {
            ep.classes[usize::from(s.status / 100 - 1)] += 1;
        }
        self.second.saturating_record(latency);
        self.total.saturating_record(latency);
        self.second_requests += 1;
        self.total_requests += 1;
        self.total_bytes += s.bytes;
        if let Some(l) = s.lateness_us {
            self.lateness.saturating_record(l.clamp(1, MAX_US));
        }
        if let Some(error) = s.failure {
            ep.failures += 1;
            self.second_failures += 1;
            self.total_failures += 1;
            *self.failures.entry((s.endpoint, error)).or_insert(0) += 1;
        }
        if latency > self.slow_us && self.slow.len() < MAX_SLOW {
            self.slow.push(SlowRequest {
                endpoint: ep.name.clone(),
                t: s.due_us as f64 / 1e6,
                latency_ms: latency as f64 / 1000.0,
                status: (s.status != 0).then_some(s.status),
            });
        }
    }

    /// Ends the current second: a timeline point, a history row, interval
    /// histograms to the hlog, fresh metrics and progress.
    fn close_second(&mut self) {
        let now = Instant::now();
        let span = now.duration_since(self.last_close);
        if span < Duration::from_millis(1) && self.second_requests == 0 {
            return;
        }
        let users = self.live.active_users.load(Ordering::Relaxed);
        let ms = |us: u64| us as f64 / 1000.0;
        let (p50, p95) = if self.second.is_empty() {
            (0.0, 0.0)
        } else {
            (
                ms(self.second.value_at_quantile(0.5)),
                ms(self.second.value_at_quantile(0.95)),
            )
        };
        self.timeline.push(TimelinePoint {
            t: self.second_index,
            requests: self.second_requests,
            failures: self.second_failures,
            users,
            p50_ms: p50,
            p95_ms: p95,
        });
        let secs = span.as_secs_f64().max(0.001);
        let wall = self.start_wall
            + chrono::Duration::from_std(now.duration_since(self.start)).unwrap_or_default();
        self.history
            .push(self.history_row(wall.timestamp(), users, secs));
        if let Some(h) = self.hlog.as_mut() {
            let interval_start = self.last_close.duration_since(self.start);
            for ep in &mut self.endpoints {
                if ep.interval.is_empty() {
                    continue;
                }
                if let Err(e) = h.write(&ep.name, &ep.interval, interval_start, span) {
                    self.hlog_error.get_or_insert(e);
                }
            }
            if let Err(e) = h.flush() {
                self.hlog_error.get_or_insert(e);
            }
        }
        for ep in &mut self.endpoints {
            ep.interval.reset();
        }
        if let Some(m) = &self.metrics {
            let text = self.metrics_text(users);
            *m.lock().expect("metrics lock is never poisoned") = text;
        }
        if let Some(p) = self.progress.as_mut() {
            p.update(
                now.duration_since(self.start),
                users,
                self.second_requests as f64 / secs,
                p95,
                self.total_requests,
                self.total_failures,
            );
        }
        self.second.reset();
        self.second_requests = 0;
        self.second_failures = 0;
        self.second_index += 1;
        self.last_close = now;
    }

    fn history_row(&self, timestamp: i64, users: u64, secs: f64) -> HistoryRow {
        let t = &self.total;
        let ms = |us: u64| (us as f64 / 1000.0).round() as u64;
        let empty = t.is_empty();
        HistoryRow {
            timestamp,
            users,
            rps: self.second_requests as f64 / secs,
            fps: self.second_failures as f64 / secs,
            percentiles: (!empty).then(|| {
                LOCUST_PERCENTILES
                    .iter()
                    .map(|q| ms(t.value_at_quantile(*q)))
                    .collect()
            }),
            total_requests: self.total_requests,
            total_failures: self.total_failures,
            median_ms: if empty {
                0
            } else {
                ms(t.value_at_quantile(0.5))
            },
            mean_ms: if empty { 0.0 } else { t.mean() / 1000.0 },
            min_ms: if empty { 0 } else { ms(t.min()) },
            max_ms: if empty { 0 } else { ms(t.max()) },
            mean_bytes: if self.total_requests == 0 {
                0.0
            } else {
                self.total_bytes as f64 / self.total_requests as f64
            },
        }
    }

    fn metrics_text(&self, users: u64) -> MetricsText {
        MetricsText {
            users,
            endpoints: self
                .endpoints
                .iter()
                .filter(|e| e.requests > 0)
                .map(|e| crate::metrics::EndpointMetrics {
                    name: e.name.clone(),
                    requests: e.requests,
                    failures: e.failures,
                    quantiles_us: [0.5, 0.95, 0.99].map(|q| (q, e.histogram.value_at_quantile(q))),
                    sum_us: (e.histogram.mean() * e.histogram.len() as f64) as u64,
                })
                .collect(),
        }
    }

    fn finish(self) -> Measured {
        if let Some(p) = &self.progress {
            p.finish();
        }
        let mut failures: Vec<FailureGroup> = self
            .failures
            .into_iter()
            .map(|((ep, error), count)| FailureGroup {
                endpoint: self.endpoints[ep as usize].name.clone(),
                error,
                count,
            })
            .collect();
        failures.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| (&a.endpoint, &a.error).cmp(&(&b.endpoint, &b.error)))
        });
        let endpoints = merge_by_name(self.endpoints);
        Measured {
            endpoints,
            timeline: self.timeline,
            failures,
            slow_requests: self.slow,
            history: self.history,
            lateness: self.lateness,
            hlog_error: self.hlog_error,
        }
    }
}

/// Endpoint reports, one per name (several `METHOD path` may share a
/// profile name), in first-seen order, only endpoints that saw requests.
fn merge_by_name(stats: Vec<EndpointStats>) -> Vec<EndpointReport> {
    let mut out: Vec<EndpointReport> = Vec::new();
    for s in stats.into_iter().filter(|s| s.requests > 0) {
        let idx = match out.iter().position(|r| r.name == s.name) {
            Some(i) => i,
            None => {
                out.push(EndpointReport::new(
                    s.name.clone(),
                    s.method.clone(),
                    new_histogram(),
                    new_histogram(),
                ));
                out.len() - 1
            }
        };
        let r = &mut out[idx];
        r.histogram
            .add(&s.histogram)
            .expect("histograms with equal bounds add");
        r.service_histogram
            .add(&s.service)
            .expect("histograms with equal bounds add");
        r.requests += s.requests;
        r.failures += s.failures;
        r.bytes += s.bytes;
        r.substituted += s.substituted;
        r.uncorrelated += s.uncorrelated;
        for (i, n) in s.classes.iter().enumerate() {
            if *n > 0 {
                *r.status_classes
                    .entry(CLASS_NAMES[i].to_string())
                    .or_insert(0) += n;
            }
        }
        let errors = s.requests - s.classes.iter().sum::<u64>();
        if errors > 0 {
            *r.status_classes.entry("error".to_string()).or_insert(0) += errors;
        }
    }
    for r in &mut out {
        r.refresh_summary();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(endpoint: u32, latency_us: u64, status: u16, failure: Option<&str>) -> Sample {
        Sample {
            endpoint,
            due_us: 0,
            latency_us,
            service_us: latency_us / 2,
            lateness_us: Some(100),
            status,
            bytes: 10,
            failure: failure.map(str::to_string),
            substituted: 1,
            uncorrelated: 0,
        }
    }

    #[tokio::test]
    async fn collects_per_endpoint_and_merges_shared_names() {
        let (tx, rx) = mpsc::unbounded_channel();
        let setup = CollectorSetup {
            endpoints: vec![
                ("Like Post".into(), "POST".into()),
                ("Like Post".into(), "DELETE".into()),
                ("Social Feed".into(), "GET".into()),
                ("Unused".into(), "GET".into()),
            ],
            start: Instant::now(),
            start_wall: chrono::Utc::now(),
            slow: Duration::from_millis(2000),
            live: Arc::new(Live::default()),
            hlog: None,
            metrics: None,
            progress: None,
        };
        let mut outbox = Outbox::new(tx);
        outbox.push(sample(0, 1_000, 200, None));
        outbox.push(sample(1, 3_000, 500, Some("HTTP 500")));
        outbox.flush();
        outbox.push(sample(2, 2_500_000, 200, None));
        outbox.push(sample(2, 5_000, 0, Some("connection refused")));
        // Dropping the outbox sends the rest and closes the channel.
        drop(outbox);
        let m = collect(rx, setup).await;
        assert_eq!(m.endpoints.len(), 2);
        let like = &m.endpoints[0];
        assert_eq!(
            (like.name.as_str(), like.method.as_str()),
            ("Like Post", "POST")
        );
        assert_eq!((like.requests, like.failures, like.substituted), (2, 1, 2));
        assert_eq!(like.status_classes["2xx"], 1);
        assert_eq!(like.status_classes["5xx"], 1);
        let feed = &m.endpoints[1];
        assert_eq!(feed.status_classes["error"], 1);
        assert_eq!(m.slow_requests.len(), 1);
        assert_eq!(m.failures.len(), 2);
        assert_eq!(m.lateness.len(), 4);
        let timeline_requests: u64 = m.timeline.iter().map(|p| p.requests).sum();
        assert_eq!(timeline_requests, 4);
    }
}
