//! Forward-proxy mode, the way Charles, Proxyman and mitmproxy record a
//! phone: the device's Wi-Fi proxy points here. Absolute-form `http://`
//! requests are forwarded and recorded; `CONNECT` to a host matching
//! `--intercept` is terminated with a certificate minted by tapedeck's CA
//! and the inner HTTP/1.1 or h2 traffic is forwarded over TLS to the real
//! host and recorded; `CONNECT` to any other host is tunnelled blind and
//! not recorded, so the rest of the phone keeps working.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use http::{Method, Request, Response, StatusCode, Uri};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::ca::{self, Ca};
use crate::config::CaptureConfig;
use crate::proxy::{self, json_error, ConnInfo, Shared, Target};
use crate::tap::ProxyBody;
use crate::Error;

/// Forward-mode settings: which hosts to intercept, with which CA.
pub(crate) struct Forward {
    intercept: Vec<String>,
    ca: Option<Ca>,
    resolve: HashMap<String, SocketAddr>,
}

impl Forward {
    pub(crate) fn new(config: &CaptureConfig) -> Result<Forward, Error> {
        let mut intercept = Vec::new();
        for pattern in &config.intercept {
            let p = pattern.trim().to_ascii_lowercase();
            if p.is_empty() || p.contains(|c: char| c.is_whitespace() || c == '/' || c == ':') {
                return Err(Error::Usage(format!(
                    "--intercept {pattern:?}: expected a host name or glob like *.corevia.app"
                )));
            }
            intercept.push(p);
        }
        let ca = if intercept.is_empty() {
            None
        } else {
            let dir = config.ca_dir.clone().unwrap_or_else(ca::default_dir);
            Some(Ca::load(&dir)?)
        };
        Ok(Forward {
            intercept,
            ca,
            resolve: config.resolve.iter().cloned().collect(),
        })
    }

    fn intercepts(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.intercept.iter().any(|p| glob_match(p, &host))
    }

    fn address(&self, host: &str, port: u16) -> String {
        match self.resolve.get(&host.to_ascii_lowercase()) {
            Some(addr) => addr.to_string(),
            None => format!("{host}:{port}"),
        }
    }
}

/// `*` matches any run of characters (including dots); everything else
/// matches itself. `*.corevia.app` matches `api.corevia.app`, not `corevia.app`.
fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

/// One request on a forward-proxy client connection.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    conn: ConnInfo,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    if req.method() == Method::CONNECT {
        return connect(shared, conn, req).await;
    }
    let uri = req.uri().clone();
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "",
            "this is a forward proxy: send absolute-form requests (http://host/path) or CONNECT",
        );
    };
    let label = format!("{scheme}://{authority}");
    let target = Target {
        uri: uri.clone(),
        recorded_uri: uri.to_string(),
        label,
        per_exchange: true,
    };
    proxy::forward(&shared, &conn, req, target).await
}

async fn connect(
    shared: Arc<Shared>,
    conn: ConnInfo,
    mut req: Request<Incoming>,
) -> Response<ProxyBody> {
    let Some(forward) = shared.forward.as_ref() else {
        return json_error(StatusCode::INTERNAL_SERVER_ERROR, "", "forward mode is off");
    };
    let Some(authority) = req.uri().authority().cloned() else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "",
            "malformed CONNECT target (expected host:port)",
        );
    };
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let Some(port) = authority.port_u16() else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "",
            &format!("CONNECT {authority}: the target needs a port"),
        );
    };
    let address = forward.address(&host, port);
    let label = if port == 443 {
        format!("https://{host}")
    } else {
        format!("https://{host}:{port}")
    };
    let reached = tokio::time::timeout(shared.upstream_timeout, TcpStream::connect(&address)).await;
    let intercept = forward.intercepts(&host);
    let tcp = match reached {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            let why = format!("upstream {label} is unreachable: {e}");
            if intercept {
                proxy::record_error(
                    &shared,
                    &conn,
                    &req,
                    authority.to_string(),
                    label.clone(),
                    why.clone(),
                );
            }
            return json_error(StatusCode::BAD_GATEWAY, &label, &why);
        }
        Err(_) => {
            let why = format!("upstream {label} did not accept a connection in time");
            if intercept {
                proxy::record_error(
                    &shared,
                    &conn,
                    &req,
                    authority.to_string(),
                    label.clone(),
                    why.clone(),
                );
            }
            return json_error(StatusCode::GATEWAY_TIMEOUT, &label, &why);
        }
    };
    let on_upgrade = hyper::upgrade::on(&mut req);

    if !intercept {
        shared.counters.tunnels.fetch_add(1, Relaxed);
        tokio::spawn(async move {
            if let Ok(upgraded) = on_upgrade.await {
                let mut tcp = tcp;
                let _ = tokio::io::copy_bidirectional(&mut TokioIo::new(upgraded), &mut tcp).await;
            }
        });
        return Response::new(ProxyBody::empty());
    }

    // Intercepted: the pooled client opens its own TLS connection to the
    // real host; this one only proved it is reachable.
    drop(tcp);
    let Some(ca) = forward.ca.as_ref() else {
        return json_error(StatusCode::INTERNAL_SERVER_ERROR, &label, "no CA loaded");
    };
    let tls_config = match ca.server_config(&host) {
        Ok(c) => c,
        Err(e) => return json_error(StatusCode::BAD_GATEWAY, &label, &e.to_string()),
    };
    let origin = Arc::new(Origin {
        authority: format!("{host}:{port}"),
        label,
    });
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls_config);
        let handshake = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            acceptor.accept(TokioIo::new(upgraded)),
        )
        .await;
        let tls = match handshake {
            Ok(Ok(tls)) => tls,
            // Typically a device that does not trust tapedeck's CA (or a
            // pinned app): counted, and the proxy keeps serving others.
            _ => {
                shared.counters.client_errors.fetch_add(1, Relaxed);
                return;
            }
        };
        let inner_conn = ConnInfo {
            scheme: "https",
            ..conn
        };
        let builder = shared.builder.clone();
        let svc_shared = shared.clone();
        let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
            let shared = svc_shared.clone();
            let conn = inner_conn.clone();
            let origin = origin.clone();
            async move { Ok::<_, Infallible>(intercepted(shared, conn, &origin, req).await) }
        });
        if builder
            .serve_connection_with_upgrades(TokioIo::new(tls), svc)
            .await
            .is_err()
        {
            shared.counters.client_errors.fetch_add(1, Relaxed);
        }
    });
    Response::new(ProxyBody::empty())
}

/// The real origin behind an intercepted CONNECT.
struct Origin {
    /// `host:port` to connect to.
    authority: String,
    /// `https://host[:port]`, recorded per exchange.
    label: String,
}

async fn intercepted(
    shared: Arc<Shared>,
    conn: ConnInfo,
    origin: &Origin,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let pq = req
        .uri()
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_string();
    let uri = match format!("https://{}{pq}", origin.authority).parse::<Uri>() {
        Ok(uri) => uri,
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                &origin.label,
                &format!("request target {pq:?} is not usable: {e}"),
            )
        }
    };
    let target = Target {
        uri,
        recorded_uri: pq,
        label: origin.label.clone(),
        per_exchange: true,
    };
    proxy::forward(&shared, &conn, req, target).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("api.corevia.app", "api.corevia.app"));
        assert!(!glob_match("api.corevia.app", "x.api.corevia.app"));
        assert!(glob_match("*.corevia.app", "api.corevia.app"));
        assert!(glob_match("*.corevia.app", "a.b.corevia.app"));
        assert!(!glob_match("*.corevia.app", "corevia.app"));
        assert!(!glob_match("*.corevia.app", "evilcorevia.app"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("api-*.example.*", "api-eu.example.com"));
        assert!(!glob_match("api-*.example.*", "web-eu.example.com"));
    }
}
