//! The HTTP client of one virtual user: its own connection per target
//! (`hyper::client::conn` handshake, TCP_NODELAY, keep-alive, reconnect
//! when the server closed it), HTTP/1.1 or HTTP/2, cleartext or TLS.
//!
//! No pool and no retries: what the VU sends is what the server sees, and
//! connect time counts against the request that needed the connection.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use crate::config::Target;
use crate::correlation::Outgoing;
use crate::Error;

/// Timeouts, protocol and TLS settings, shared by all VUs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// TCP connect (and HTTP handshake) timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout: send, response head and body.
    pub timeout: Duration,
    /// HTTP/2 instead of HTTP/1.1 (h2c with prior knowledge, or ALPN `h2` over TLS).
    pub h2: bool,
    /// TLS settings for https targets (`None` when every target is http).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// TLS client settings: the system's trusted roots (`SSL_CERT_FILE` /
/// `SSL_CERT_DIR` honoured) plus `extra_ca` (PEM), ALPN for the protocol.
pub fn tls_config(extra_ca: Option<&Path>, h2: bool) -> Result<rustls::ClientConfig, Error> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    let mut extra = 0;
    if let Some(path) = extra_ca {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let pem = std::fs::read(path).map_err(io)?;
        for cert in rustls_pemfile::certs(&mut &pem[..]) {
            let cert = cert.map_err(io)?;
            roots.add(cert).map_err(|e| {
                Error::Usage(format!(
                    "--ca-cert {}: not a usable CA certificate: {e}",
                    path.display()
                ))
            })?;
            extra += 1;
        }
        if extra == 0 {
            return Err(Error::Usage(format!(
                "--ca-cert {}: no PEM certificate in the file",
                path.display()
            )));
        }
    }
    if added + extra == 0 {
        return Err(Error::Usage(
            "https target: no trusted CA certificates found (set SSL_CERT_FILE or pass --ca-cert)"
                .into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Usage(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = if h2 {
        vec![b"h2".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(cfg)
}

/// A live response, body read whole.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header fields in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

/// One VU's connection to one target; connects lazily.
#[derive(Default)]
pub struct Connection {
    sender: Option<Sender>,
    /// Connections opened so far (1 for a VU whose keep-alive held).
    pub opened: u64,
}

/// Headers the engine sets itself or that only make sense hop by hop.
fn is_skipped_header(name: &str) -> bool {
    const SKIP: [&str; 10] = [
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
        "te",
        "trailer",
        "proxy-authorization",
    ];
    SKIP.iter().any(|s| name.eq_ignore_ascii_case(s)) || name.starts_with(':')
}

impl Connection {
    /// Sends `out` to `target` and reads the whole response, within the
    /// configured timeouts (response headers are copied only when
    /// `keep_headers`). The error is a short description that becomes
    /// the failure group (`connection refused`, `timeout`, ...).
    pub async fn send(
        &mut self,
        cfg: &ClientConfig,
        target: &Target,
        out: &Outgoing,
        keep_headers: bool,
    ) -> Result<Response, String> {
        match tokio::time::timeout(cfg.timeout, self.send_inner(cfg, target, out, keep_headers))
            .await
        {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                self.sender = None;
                Err(e)
            }
            Err(_) => {
                // The connection may still carry the late response: drop it.
                self.sender = None;
                Err("timeout".to_string())
            }
        }
    }

    async fn send_inner(
        &mut self,
        cfg: &ClientConfig,
        target: &Target,
        out: &Outgoing,
        keep_headers: bool,
    ) -> Result<Response, String> {
        let reusable = match self.sender.as_mut() {
            Some(Sender::H1(s)) => !s.is_closed() && s.ready().await.is_ok(),
            Some(Sender::H2(s)) => !s.is_closed() && s.ready().await.is_ok(),
            None => false,
        };
        if !reusable {
            self.sender = Some(connect(cfg, target).await?);
            self.opened += 1;
        }
        let request = build_request(cfg.h2, target, out)?;
        let response = match self.sender.as_mut().expect("connected above") {
            Sender::H1(s) => s.send_request(request).await,
            Sender::H2(s) => s.send_request(request).await,
        }
        .map_err(|e| describe_hyper(&e))?;
        let status = response.status().as_u16();
        let headers = if !keep_headers {
            Vec::new()
        } else {
            response
                .headers()
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect()
        };
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| describe_hyper(&e))?
            .to_bytes();
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

async fn connect(cfg: &ClientConfig, target: &Target) -> Result<Sender, String> {
    let addr = target.host_port();
    let fut = async {
        let stream = TcpStream::connect(&addr)
            .await
            .map_err(|e| describe_io("connect", &e))?;
        stream
            .set_nodelay(true)
            .map_err(|e| describe_io("connect", &e))?;
        if target.is_tls() {
            let tls = cfg
                .tls
                .clone()
                .ok_or_else(|| "TLS is not configured".to_string())?;
            let name = rustls::pki_types::ServerName::try_from(target.host.clone())
                .map_err(|e| format!("TLS: bad server name {}: {e}", target.host))?;
            let stream = tokio_rustls::TlsConnector::from(tls)
                .connect(name, stream)
                .await
                .map_err(|e| format!("TLS handshake: {e}"))?;
            handshake(cfg.h2, TokioIo::new(stream)).await
        } else {
            handshake(cfg.h2, TokioIo::new(stream)).await
        }
    };
    tokio::time::timeout(cfg.connect_timeout, fut)
        .await
        .map_err(|_| "connect timeout".to_string())?
}

/// HTTP handshake on a connected stream; the connection is driven by its own task.
async fn handshake<T>(h2: bool, io: T) -> Result<Sender, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    if h2 {
        let (sender, conn) = http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| format!("h2 handshake: {}", describe_hyper(&e)))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Sender::H2(sender))
    } else {
        let (sender, conn) = http1::handshake(io).await.map_err(|e| describe_hyper(&e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Sender::H1(sender))
    }
}

fn build_request(
    h2: bool,
    target: &Target,
    out: &Outgoing,
) -> Result<http::Request<Full<Bytes>>, String> {
    let path = if out.uri.starts_with('/') {
        format!("{}{}", target.base_path, out.uri)
    } else {
        format!("{}/{}", target.base_path, out.uri)
    };
    let uri = if h2 {
        format!("{}://{}{}", target.scheme, target.authority(), path)
    } else {
        path
    };
    let method = http::Method::from_bytes(out.method.as_bytes())
        .map_err(|_| format!("recorded method {:?} is not valid", out.method))?;
    let mut builder = http::Request::builder().method(method).uri(uri.as_str());
    if !h2 {
        builder = builder.header(http::header::HOST, target.authority());
    }
    let headers = builder.headers_mut().expect("builder is valid so far");
    for (name, value) in &out.headers {
        if is_skipped_header(name) {
            continue;
        }
        // A header the journal kept but HTTP cannot carry is dropped rather
        // than failing the request.
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(n, v);
        }
    }
    let needs_length =
        !out.body.is_empty() || matches!(out.method.as_str(), "POST" | "PUT" | "PATCH");
    if needs_length {
        headers.insert(
            http::header::CONTENT_LENGTH,
            HeaderValue::from(out.body.len()),
        );
    }
    builder
        .body(Full::new(out.body.clone()))
        .map_err(|e| format!("recorded request {} {uri} is not valid: {e}", out.method))
}

fn describe_io(what: &str, e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused".to_string(),
        ConnectionReset => "connection reset".to_string(),
        ConnectionAborted => "connection aborted".to_string(),
        TimedOut => format!("{what} timeout"),
        _ => format!("{what} error: {e}"),
    }
}

fn describe_hyper(e: &(dyn std::error::Error + 'static)) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return describe_io("io", io);
        }
        source = s.source();
    }
    if let Some(h) = e.downcast_ref::<hyper::Error>() {
        if h.is_incomplete_message() {
            return "connection closed before the response".to_string();
        }
        if h.is_parse() {
            return "invalid HTTP response".to_string();
        }
        if h.is_canceled() || h.is_closed() {
            return "connection closed".to_string();
        }
    }
    e.to_string()
}
