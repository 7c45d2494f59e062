//! The body tap: pass every frame through untouched, keep a copy of the
//! first `--max-body` bytes for the record, and hand the finished exchange
//! to the recorder when the response body ends, fails or is dropped.
//!
//! Nothing here awaits or blocks: copying a data frame is a `Bytes` clone
//! (a reference-count bump), and handing over the record is a `try_send`.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::HeaderMap;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use tapedeck_sessions::{Body, Exchange, RecordedRequest, RecordedResponse};

use crate::recorder::{InFlight, Recorder};

// === impl Capture ===

/// The kept prefix of one body plus its full length on the wire.
#[derive(Debug, Default)]
pub(crate) struct Capture {
    chunks: Vec<Bytes>,
    kept: u64,
    len: u64,
    truncated: bool,
    error: Option<String>,
}

impl Capture {
    fn push(&mut self, chunk: &Bytes, cap: u64) {
        let n = chunk.len() as u64;
        self.len += n;
        let room = cap.saturating_sub(self.kept);
        if n <= room {
            if n > 0 {
                self.chunks.push(chunk.clone());
            }
            self.kept += n;
        } else {
            if room > 0 {
                // `room < n <= usize::MAX`, so the cast is lossless.
                self.chunks.push(chunk.slice(..room as usize));
                self.kept += room;
            }
            self.truncated = true;
        }
    }

    /// The recorded body. Concatenation happens here, on the writer thread
    /// (see [`Finished::assemble`]), not while frames are flowing.
    pub(crate) fn into_body(self) -> Body {
        let mut data = Vec::with_capacity(self.kept as usize);
        for c in &self.chunks {
            data.extend_from_slice(c);
        }
        Body {
            data,
            len: self.len,
            truncated: self.truncated,
        }
    }
}

// === impl RequestTap ===

/// The client's request body on its way to the upstream.
pub(crate) struct RequestTap {
    inner: Incoming,
    cap: u64,
    capture: Arc<Mutex<Capture>>,
}

impl RequestTap {
    pub(crate) fn new(inner: Incoming, cap: u64) -> (RequestTap, Arc<Mutex<Capture>>) {
        let capture = Arc::new(Mutex::new(Capture::default()));
        (
            RequestTap {
                inner,
                cap,
                capture: capture.clone(),
            },
            capture,
        )
    }
}

impl HttpBody for RequestTap {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    // Only this body and the final assembly touch the lock,
                    // never at the same time in practice.
                    if let Ok(mut c) = this.capture.lock() {
                        c.push(data, this.cap);
                    }
                }
            }
            Poll::Ready(Some(Err(e))) => {
                if let Ok(mut c) = this.capture.lock() {
                    c.error = Some(format!("client request body: {e}"));
                }
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

// === impl Pending ===

/// An exchange whose request is known and whose response is not finished.
pub(crate) struct Pending {
    pub(crate) recorder: Recorder,
    pub(crate) id: u64,
    pub(crate) conn: u64,
    pub(crate) started: DateTime<Utc>,
    pub(crate) start: Instant,
    pub(crate) client: Option<String>,
    pub(crate) upstream: Option<String>,
    pub(crate) request: RecordedRequest,
    pub(crate) request_body: Option<Arc<Mutex<Capture>>>,
    pub(crate) in_flight: InFlight,
}

/// A recorded response whose body is still a list of chunks.
pub(crate) struct ResponseParts {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Capture,
}

/// A finished exchange on its way to the writer thread. Bodies stay as
/// chunk lists until [`Finished::assemble`] runs there, so the request path
/// never copies body bytes.
pub(crate) struct Finished {
    exchange: Exchange,
    request_body: Capture,
    response: Option<ResponseParts>,
}

impl Finished {
    /// The complete exchange, bodies concatenated.
    pub(crate) fn assemble(self) -> Exchange {
        let mut ex = self.exchange;
        ex.request.body = self.request_body.into_body();
        ex.response = self.response.map(|r| RecordedResponse {
            status: r.status,
            headers: r.headers,
            body: r.body.into_body(),
        });
        ex
    }
}

impl Pending {
    /// Sends the exchange to the journal writer. `response` is `None` when
    /// the upstream never answered.
    pub(crate) fn finish(
        self,
        response: Option<ResponseParts>,
        mut error: Option<String>,
        ttfb_us: u64,
    ) {
        let duration_us = micros(self.start);
        let request_body = match self.request_body {
            None => Capture::default(),
            Some(shared) => match Arc::try_unwrap(shared) {
                Ok(m) => m.into_inner().unwrap_or_default(),
                // The upstream answered before reading the whole request
                // body; keep what arrived so far.
                Err(shared) => match shared.lock() {
                    Ok(mut c) => std::mem::take(&mut *c),
                    Err(_) => Capture::default(),
                },
            },
        };
        if error.is_none() {
            error = request_body.error.clone();
        }
        let failed = error.is_some();
        let bytes = request_body.len + response.as_ref().map_or(0, |r| r.body.len);
        let exchange = Exchange {
            id: self.id,
            session: String::new(),
            conn: self.conn,
            started: self.started,
            upstream: self.upstream,
            client: self.client,
            request: self.request,
            response: None,
            error,
            ttfb_us,
            duration_us,
        };
        let finished = Finished {
            exchange,
            request_body,
            response,
        };
        self.recorder.record(finished, bytes, failed);
        drop(self.in_flight);
    }
}

/// Microseconds since `start`, saturating.
pub(crate) fn micros(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Header fields as recorded: name, value (lossy UTF-8), in map order.
pub(crate) fn recorded_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

// === impl ResponseTap ===

/// The upstream's response body on its way to the client.
pub(crate) struct ResponseTap {
    inner: Incoming,
    cap: u64,
    capture: Capture,
    // Boxed: keeps the body small while frames flow; taken once at the end.
    head: Option<Box<ResponseHead>>,
}

/// What is known about an exchange when its response head has arrived.
struct ResponseHead {
    pending: Pending,
    status: u16,
    headers: Vec<(String, String)>,
    ttfb_us: u64,
}

impl ResponseTap {
    pub(crate) fn new(
        inner: Incoming,
        cap: u64,
        pending: Pending,
        status: u16,
        headers: Vec<(String, String)>,
        ttfb_us: u64,
    ) -> Self {
        ResponseTap {
            inner,
            cap,
            capture: Capture::default(),
            head: Some(Box::new(ResponseHead {
                pending,
                status,
                headers,
                ttfb_us,
            })),
        }
    }

    fn complete(&mut self, error: Option<String>) {
        if let Some(head) = self.head.take() {
            let head = *head;
            let response = ResponseParts {
                status: head.status,
                headers: head.headers,
                body: std::mem::take(&mut self.capture),
            };
            head.pending.finish(Some(response), error, head.ttfb_us);
        }
    }
}

impl HttpBody for ResponseTap {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.capture.push(data, this.cap);
                }
                if this.inner.is_end_stream() {
                    this.complete(None);
                }
            }
            Poll::Ready(Some(Err(e))) => {
                let why = format!("upstream response body: {e}");
                this.complete(Some(why));
            }
            Poll::Ready(None) => this.complete(None),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ResponseTap {
    fn drop(&mut self) {
        if self.head.is_some() {
            if self.inner.is_end_stream() {
                self.complete(None);
            } else {
                self.complete(Some(
                    "client went away before the response body ended".into(),
                ));
            }
        }
    }
}

// === impl ProxyBody ===

/// What the proxy sends back to a client: a tapped upstream body, or a
/// small body the proxy made itself (502/504 JSON, status pages).
pub(crate) enum ProxyBody {
    Tapped(ResponseTap),
    Full(Option<Bytes>),
}

impl ProxyBody {
    pub(crate) fn full(b: impl Into<Bytes>) -> Self {
        ProxyBody::Full(Some(b.into()))
    }

    pub(crate) fn empty() -> Self {
        ProxyBody::Full(None)
    }
}

impl HttpBody for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ProxyBody::Tapped(t) => Pin::new(t).poll_frame(cx),
            ProxyBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Tapped(t) => t.is_end_stream(),
            ProxyBody::Full(b) => b.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Tapped(t) => t.size_hint(),
            ProxyBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            ProxyBody::Full(None) => SizeHint::with_exact(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_keeps_a_prefix_and_counts_everything() {
        let mut c = Capture::default();
        c.push(&Bytes::from_static(b"hello "), 8);
        c.push(&Bytes::from_static(b"world"), 8);
        c.push(&Bytes::from_static(b"!!"), 8);
        let b = c.into_body();
        assert_eq!(b.data, b"hello wo");
        assert_eq!(b.len, 13);
        assert!(b.truncated);
    }

    #[test]
    fn capture_at_exact_cap_is_not_truncated() {
        let mut c = Capture::default();
        c.push(&Bytes::from_static(b"abcd"), 4);
        let b = c.into_body();
        assert_eq!(b.data, b"abcd");
        assert!(!b.truncated);
    }
}
