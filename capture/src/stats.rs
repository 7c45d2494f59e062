//! Live counters of a capture run, and the loopback endpoints that expose
//! them (`--status-listen` as JSON, `--metrics-listen` as Prometheus text).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::tap::ProxyBody;
use crate::Error;

/// The counters, shared by every connection and the writer thread.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connections: AtomicU64,
    pub(crate) exchanges: AtomicU64,
    pub(crate) recorded: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) client_errors: AtomicU64,
    pub(crate) write_errors: AtomicU64,
    pub(crate) in_flight: AtomicU64,
    pub(crate) tunnels: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> CaptureStats {
        CaptureStats {
            connections: self.connections.load(Relaxed),
            exchanges: self.exchanges.load(Relaxed),
            recorded: self.recorded.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            errors: self.errors.load(Relaxed),
            client_errors: self.client_errors.load(Relaxed),
            write_errors: self.write_errors.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
            tunnels: self.tunnels.load(Relaxed),
        }
    }
}

/// A snapshot of the counters of a running capture.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CaptureStats {
    /// Client connections accepted.
    pub connections: u64,
    /// Exchanges completed (forwarded or answered with an error).
    pub exchanges: u64,
    /// Exchanges written to the journal.
    pub recorded: u64,
    /// Body bytes seen on the wire, requests plus responses.
    pub bytes: u64,
    /// Records dropped because the journal writer fell behind or failed.
    pub dropped: u64,
    /// Exchanges that ended with an error (upstream down, timeout, reset...).
    pub errors: u64,
    /// Client connections that ended with a protocol error (malformed
    /// request, header timeout, reset).
    pub client_errors: u64,
    /// Journal write failures.
    pub write_errors: u64,
    /// Exchanges started and not yet finished.
    pub in_flight: u64,
    /// Forward mode: CONNECT tunnels passed through blind.
    pub tunnels: u64,
}

impl CaptureStats {
    /// The Prometheus text exposition of these counters.
    pub fn prometheus(&self) -> String {
        let rows: [(&str, &str, &str, u64); 10] = [
            (
                "connections_total",
                "counter",
                "Client connections accepted.",
                self.connections,
            ),
            (
                "exchanges_total",
                "counter",
                "Exchanges completed.",
                self.exchanges,
            ),
            (
                "recorded_total",
                "counter",
                "Exchanges written to the journal.",
                self.recorded,
            ),
            (
                "bytes_total",
                "counter",
                "Body bytes seen, requests plus responses.",
                self.bytes,
            ),
            (
                "dropped_total",
                "counter",
                "Records dropped (writer behind or failed).",
                self.dropped,
            ),
            (
                "errors_total",
                "counter",
                "Exchanges that ended with an error.",
                self.errors,
            ),
            (
                "client_errors_total",
                "counter",
                "Client connections ended by a protocol error.",
                self.client_errors,
            ),
            (
                "write_errors_total",
                "counter",
                "Journal write failures.",
                self.write_errors,
            ),
            (
                "tunnels_total",
                "counter",
                "CONNECT tunnels passed through unrecorded.",
                self.tunnels,
            ),
            (
                "in_flight",
                "gauge",
                "Exchanges in progress.",
                self.in_flight,
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in rows {
            out.push_str(&format!(
                "# HELP tapedeck_capture_{name} {help}\n# TYPE tapedeck_capture_{name} {kind}\ntapedeck_capture_{name} {value}\n"
            ));
        }
        out
    }
}

/// How an endpoint renders the counters.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Exposition {
    Json,
    Prometheus,
}

/// Binds `addr` and serves the counters until `stop` turns true.
pub(crate) async fn serve(
    addr: SocketAddr,
    kind: Exposition,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) -> Result<SocketAddr, Error> {
    let flag = match kind {
        Exposition::Json => "--status-listen",
        Exposition::Prometheus => "--metrics-listen",
    };
    let listener = TcpListener::bind(addr).await.map_err(|e| Error::Input {
        what: format!("{flag} {addr}"),
        why: format!("cannot listen: {e}"),
    })?;
    let bound = listener.local_addr().map_err(|e| Error::Input {
        what: format!("{flag} {addr}"),
        why: e.to_string(),
    })?;
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((s, _)) => s,
                    Err(_) => {
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = stop.changed() => break,
            };
            let counters = counters.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req: Request<Incoming>| {
                    let stats = counters.snapshot();
                    async move { Ok::<_, Infallible>(render(kind, &stats)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(bound)
}

fn render(kind: Exposition, stats: &CaptureStats) -> Response<ProxyBody> {
    let (body, content_type) = match kind {
        Exposition::Json => (
            serde_json::to_string(stats).unwrap_or_default() + "\n",
            "application/json",
        ),
        Exposition::Prometheus => (stats.prometheus(), "text/plain; version=0.0.4"),
    };
    let mut resp = Response::new(ProxyBody::full(Bytes::from(body)));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_names_every_counter() {
        let stats = CaptureStats {
            exchanges: 3,
            dropped: 1,
            in_flight: 2,
            ..CaptureStats::default()
        };
        let text = stats.prometheus();
        assert!(text.contains("tapedeck_capture_exchanges_total 3\n"));
        assert!(text.contains("tapedeck_capture_dropped_total 1\n"));
        assert!(text
            .contains("# TYPE tapedeck_capture_in_flight gauge\ntapedeck_capture_in_flight 2\n"));
    }
}
