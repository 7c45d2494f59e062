//! One exchange through the proxy: rewrite the request for the upstream
//! (hop-by-hop headers, `Host`, `X-Forwarded-*`), forward it through the
//! pooled client with the body tap on both sides, and answer 502/504 in
//! JSON when the upstream is down or slow. Every path ends in exactly one
//! record handed to the journal writer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tapedeck_sessions::{Body, RecordedRequest};

use crate::recorder::Recorder;
use crate::stats::Counters;
use crate::tap::{
    micros, recorded_headers, Capture, Pending, ProxyBody, RequestTap, ResponseParts, ResponseTap,
};
use crate::upstream::UpstreamClient;

/// State shared by every connection of one capture run.
pub(crate) struct Shared {
    pub(crate) client: UpstreamClient,
    pub(crate) recorder: Recorder,
    pub(crate) counters: Arc<Counters>,
    pub(crate) next_id: AtomicU64,
    pub(crate) max_body: u64,
    pub(crate) upstream_timeout: Duration,
    /// Reverse mode: where everything goes.
    pub(crate) upstream: Option<ReverseTarget>,
    /// Forward mode: interception settings.
    pub(crate) forward: Option<crate::forward::Forward>,
    /// Serves client connections (also the inner ones of intercepted CONNECTs).
    pub(crate) builder: Arc<hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>>,
}

/// The reverse-proxy upstream, split for fast URI building.
pub(crate) struct ReverseTarget {
    /// `scheme://authority`.
    pub(crate) origin: String,
    /// The path prefix of `--upstream`, without a trailing slash.
    pub(crate) prefix: String,
    /// `--upstream` as given, for messages and the journal header.
    pub(crate) display: String,
}

impl ReverseTarget {
    pub(crate) fn new(url: &url::Url) -> Self {
        let authority = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        ReverseTarget {
            origin: format!("{}://{authority}", url.scheme()),
            prefix: url.path().trim_end_matches('/').to_string(),
            display: url.as_str().trim_end_matches('/').to_string(),
        }
    }
}

/// Who is on the other end of a client connection.
#[derive(Debug, Clone)]
pub(crate) struct ConnInfo {
    pub(crate) id: u64,
    pub(crate) client: SocketAddr,
    /// `http` or `https`: what the client used to reach the proxy.
    pub(crate) scheme: &'static str,
}

/// Where one request goes.
pub(crate) struct Target {
    /// Absolute URI for the pooled client.
    pub(crate) uri: Uri,
    /// The request target as it goes into the record.
    pub(crate) recorded_uri: String,
    /// The origin named in messages; also recorded per exchange when set
    /// in `per_exchange` (forward mode).
    pub(crate) label: String,
    pub(crate) per_exchange: bool,
}

/// Reverse mode: every request goes to `--upstream`.
pub(crate) async fn handle_reverse(
    shared: Arc<Shared>,
    conn: ConnInfo,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let Some(up) = shared.upstream.as_ref() else {
        return json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "",
            "no upstream configured",
        );
    };
    if req.method() == Method::CONNECT {
        return json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            &up.display,
            "CONNECT needs --mode forward",
        );
    }
    let pq = req
        .uri()
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_string();
    let uri = match format!("{}{}{}", up.origin, up.prefix, pq).parse::<Uri>() {
        Ok(uri) => uri,
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                &up.display,
                &format!("request target {pq:?} is not usable: {e}"),
            )
        }
    };
    let target = Target {
        uri,
        recorded_uri: pq,
        label: up.display.clone(),
        per_exchange: false,
    };
    forward(&shared, &conn, req, target).await
}

/// Sends `req` to `target` and records the exchange.
pub(crate) async fn forward(
    shared: &Shared,
    conn: &ConnInfo,
    mut req: Request<Incoming>,
    target: Target,
) -> Response<ProxyBody> {
    let start = Instant::now();
    let started = chrono::Utc::now();
    let id = shared.next_id.fetch_add(1, Relaxed) + 1;
    let in_flight = shared.recorder.begin();

    let request = RecordedRequest {
        method: req.method().as_str().to_string(),
        uri: target.recorded_uri,
        version: version_name(req.version()).to_string(),
        headers: recorded_headers(req.headers()),
        body: Body::default(),
    };
    let mut pending = Pending {
        recorder: shared.recorder.clone(),
        id,
        conn: conn.id,
        started,
        start,
        client: Some(conn.client.to_string()),
        upstream: target.per_exchange.then(|| target.label.clone()),
        request,
        request_body: None,
        in_flight,
    };

    let upgrade = is_upgrade(&req);
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();
    let mut headers = parts.headers;
    rewrite_request_headers(&mut headers, conn, &parts.uri, upgrade);
    let (tap, capture) = RequestTap::new(body, shared.max_body);
    pending.request_body = Some(capture);
    let mut up_req = Request::new(tap);
    *up_req.method_mut() = parts.method;
    *up_req.uri_mut() = target.uri;
    // The client may have spoken h2; the pooled client picks the upstream's
    // version itself (ALPN for https, HTTP/1.1 otherwise).
    *up_req.version_mut() = Version::HTTP_11;
    *up_req.headers_mut() = headers;

    let sent = tokio::time::timeout(shared.upstream_timeout, shared.client.request(up_req)).await;
    let ttfb_us = micros(start);
    let mut resp = match sent {
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) => {
            let why = if e.is_connect() {
                format!(
                    "upstream {} is unreachable: {}",
                    target.label,
                    error_chain(&e)
                )
            } else {
                format!("upstream {} failed: {}", target.label, error_chain(&e))
            };
            pending.finish(None, Some(why.clone()), ttfb_us);
            return json_error(StatusCode::BAD_GATEWAY, &target.label, &why);
        }
        Err(_) => {
            let why = format!(
                "upstream {} did not answer within {}",
                target.label,
                crate::cli::format_duration(shared.upstream_timeout)
            );
            pending.finish(None, Some(why.clone()), ttfb_us);
            return json_error(StatusCode::GATEWAY_TIMEOUT, &target.label, &why);
        }
    };

    let status = resp.status();
    let recorded = recorded_headers(resp.headers());
    if status == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client_upgrade) = client_upgrade {
            let upstream_upgrade = hyper::upgrade::on(&mut resp);
            tokio::spawn(async move {
                if let (Ok(c), Ok(u)) = tokio::join!(client_upgrade, upstream_upgrade) {
                    let _ =
                        tokio::io::copy_bidirectional(&mut TokioIo::new(c), &mut TokioIo::new(u))
                            .await;
                }
            });
            // Only the handshake is recorded; the tunnelled bytes are not.
            let response = ResponseParts {
                status: status.as_u16(),
                headers: recorded,
                body: Capture::default(),
            };
            pending.finish(Some(response), None, ttfb_us);
            let (parts, _) = resp.into_parts();
            return Response::from_parts(parts, ProxyBody::empty());
        }
    }

    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers, false);
    let tap = ResponseTap::new(
        body,
        shared.max_body,
        pending,
        status.as_u16(),
        recorded,
        ttfb_us,
    );
    Response::from_parts(parts, ProxyBody::Tapped(tap))
}

/// Records an exchange that failed before anything was forwarded (forward
/// mode: an intercepted CONNECT whose host is unreachable).
pub(crate) fn record_error(
    shared: &Shared,
    conn: &ConnInfo,
    req: &Request<Incoming>,
    recorded_uri: String,
    label: String,
    why: String,
) {
    let pending = Pending {
        recorder: shared.recorder.clone(),
        id: shared.next_id.fetch_add(1, Relaxed) + 1,
        conn: conn.id,
        started: chrono::Utc::now(),
        start: Instant::now(),
        client: Some(conn.client.to_string()),
        upstream: Some(label),
        request: RecordedRequest {
            method: req.method().as_str().to_string(),
            uri: recorded_uri,
            version: version_name(req.version()).to_string(),
            headers: recorded_headers(req.headers()),
            body: Body::default(),
        },
        request_body: None,
        in_flight: shared.recorder.begin(),
    };
    pending.finish(None, Some(why), 0);
}

fn is_upgrade<B>(req: &Request<B>) -> bool {
    req.version() == Version::HTTP_11
        && req.headers().contains_key(header::UPGRADE)
        && connection_tokens(req.headers()).any(|t| t.eq_ignore_ascii_case("upgrade"))
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Removes the hop-by-hop fields of RFC 9110 §7.6.1: those named in
/// `Connection` and the fixed list. With `keep_upgrade`, `Connection:
/// upgrade` and `Upgrade` survive so a WebSocket handshake can pass.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let listed: Vec<HeaderName> = connection_tokens(headers)
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect();
    for name in listed {
        if keep_upgrade && name == header::UPGRADE {
            continue;
        }
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        if keep_upgrade && (name == header::UPGRADE || name == header::CONNECTION) {
            continue;
        }
        headers.remove(name);
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

fn rewrite_request_headers(headers: &mut HeaderMap, conn: &ConnInfo, uri: &Uri, upgrade: bool) {
    strip_hop_by_hop(headers, upgrade);
    // The pooled client sets Host from the upstream URI.
    let original_host = headers.remove(header::HOST).or_else(|| {
        uri.authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    let ip = conn.client.ip().to_string();
    let xff = {
        let previous: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if previous.is_empty() {
            ip
        } else {
            format!("{}, {ip}", previous.join(", "))
        }
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        headers.insert("x-forwarded-for", v);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static(conn.scheme));
    if let Some(host) = original_host {
        if !headers.contains_key("x-forwarded-host") {
            headers.insert("x-forwarded-host", host);
        }
    }
}

/// `HTTP/1.1`, `HTTP/2`, ... as recorded.
pub(crate) fn version_name(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

/// An error and its causes on one line: `client error (Connect): tcp connect error: Connection refused`.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    // Error chains are short; the bound guards against a cycle.
    for _ in 0..8 {
        let Some(s) = source else { break };
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// A FastAPI-style JSON error made by the proxy itself.
pub(crate) fn json_error(status: StatusCode, upstream: &str, why: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({
        "detail": format!("tapedeck capture: {why}"),
        "upstream": upstream,
    });
    let mut resp = Response::new(ProxyBody::full(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_fields_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-private"),
        );
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("te", HeaderValue::from_static("trailers"));
        h.insert("authorization", HeaderValue::from_static("Bearer t"));
        strip_hop_by_hop(&mut h, false);
        let names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["authorization"]);
    }

    #[test]
    fn upgrade_survives_when_asked() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("Upgrade"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h.get("upgrade").unwrap(), "websocket");
        assert_eq!(h.get("connection").unwrap(), "upgrade");
    }

    #[test]
    fn forwarded_headers_are_set() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("proxy:8080"));
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        let conn = ConnInfo {
            id: 1,
            client: "127.0.0.7:5555".parse().unwrap(),
            scheme: "https",
        };
        rewrite_request_headers(&mut h, &conn, &Uri::from_static("/"), false);
        assert!(h.get("host").is_none());
        assert_eq!(h.get("x-forwarded-for").unwrap(), "10.0.0.1, 127.0.0.7");
        assert_eq!(h.get("x-forwarded-proto").unwrap(), "https");
        assert_eq!(h.get("x-forwarded-host").unwrap(), "proxy:8080");
    }

    #[test]
    fn reverse_target_keeps_prefix() {
        let t = ReverseTarget::new(&url::Url::parse("https://api.example:8443/v1/").unwrap());
        assert_eq!(t.origin, "https://api.example:8443");
        assert_eq!(t.prefix, "/v1");
        let t = ReverseTarget::new(&url::Url::parse("http://127.0.0.1:8000").unwrap());
        assert_eq!(t.origin, "http://127.0.0.1:8000");
        assert_eq!(t.prefix, "");
    }
}
