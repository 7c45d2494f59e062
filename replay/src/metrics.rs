//! `--metrics-listen ADDR`: Prometheus text exposition of the live run
//! (requests and failures per endpoint, active users, latency quantiles),
//! refreshed every second by the collector.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::Error;

/// Figures of one endpoint.
#[derive(Debug, Clone, Default)]
pub struct EndpointMetrics {
    /// Endpoint name.
    pub name: String,
    /// Requests so far.
    pub requests: u64,
    /// Failures so far.
    pub failures: u64,
    /// `(quantile, µs)` of the corrected latency.
    pub quantiles_us: [(f64, u64); 3],
    /// Sum of latencies, µs (approximate, from the histogram mean).
    pub sum_us: u64,
}

/// A snapshot of the run for the metrics endpoint.
#[derive(Debug, Clone, Default)]
pub struct MetricsText {
    /// Active VUs.
    pub users: u64,
    /// Per endpoint.
    pub endpoints: Vec<EndpointMetrics>,
}

impl MetricsText {
    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let label = |n: &str| n.replace('\\', "\\\\").replace('"', "\\\"");
        s.push_str("# HELP tapedeck_active_users Virtual users running.\n");
        s.push_str("# TYPE tapedeck_active_users gauge\n");
        let _ = writeln!(s, "tapedeck_active_users {}", self.users);
        s.push_str("# HELP tapedeck_requests_total Requests completed.\n");
        s.push_str("# TYPE tapedeck_requests_total counter\n");
        for e in &self.endpoints {
            let _ = writeln!(
                s,
                "tapedeck_requests_total{{endpoint=\"{}\"}} {}",
                label(&e.name),
                e.requests
            );
        }
        s.push_str("# HELP tapedeck_failures_total Requests that failed.\n");
        s.push_str("# TYPE tapedeck_failures_total counter\n");
        for e in &self.endpoints {
            let _ = writeln!(
                s,
                "tapedeck_failures_total{{endpoint=\"{}\"}} {}",
                label(&e.name),
                e.failures
            );
        }
        s.push_str("# HELP tapedeck_latency_seconds Latency from the intended send time.\n");
        s.push_str("# TYPE tapedeck_latency_seconds summary\n");
        for e in &self.endpoints {
            let name = label(&e.name);
            for (q, us) in e.quantiles_us {
                let _ = writeln!(
                    s,
                    "tapedeck_latency_seconds{{endpoint=\"{name}\",quantile=\"{q}\"}} {}",
                    us as f64 / 1e6
                );
            }
            let _ = writeln!(
                s,
                "tapedeck_latency_seconds_sum{{endpoint=\"{name}\"}} {}",
                e.sum_us as f64 / 1e6
            );
            let _ = writeln!(
                s,
                "tapedeck_latency_seconds_count{{endpoint=\"{name}\"}} {}",
                e.requests
            );
        }
        s
    }
}

/// Binds `addr` and serves the snapshot on every path until the task is dropped.
pub async fn serve(
    addr: SocketAddr,
    text: Arc<Mutex<MetricsText>>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), Error> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Usage(format!("--metrics-listen {addr}: cannot listen: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::Usage(format!("--metrics-listen {addr}: {e}")))?;
    let task = tokio::spawn(async move {
        // Bounded by the run: the engine aborts this task when it ends.
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let text = text.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |_req| {
                    let body = text
                        .lock()
                        .expect("metrics lock is never poisoned")
                        .render();
                    async move {
                        Ok::<_, Infallible>(
                            hyper::Response::builder()
                                .header("content-type", "text/plain; version=0.0.4")
                                .body(Full::new(Bytes::from(body)))
                                .expect("static response parts are valid"),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok((local, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_quantiles() {
        let m = MetricsText {
            users: 7,
            endpoints: vec![EndpointMetrics {
                name: "Social \"Feed\"".into(),
                requests: 10,
                failures: 1,
                quantiles_us: [(0.5, 1000), (0.95, 2000), (0.99, 3000)],
                sum_us: 15_000,
            }],
        };
        let t = m.render();
        assert!(t.contains("tapedeck_active_users 7\n"), "{t}");
        assert!(
            t.contains("tapedeck_requests_total{endpoint=\"Social \\\"Feed\\\"\"} 10\n"),
            "{t}"
        );
        assert!(t.contains("tapedeck_latency_seconds{endpoint=\"Social \\\"Feed\\\"\",quantile=\"0.95\"} 0.002\n"), "{t}");
    }
}
