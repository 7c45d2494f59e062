//! The side facing the real API: one pooled hyper client whose connector
//! speaks plain TCP or rustls (system roots plus `--upstream-ca`), with
//! optional per-host address overrides (`--resolve`).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::tap::RequestTap;
use crate::Error;

/// The pooled client every exchange goes through.
pub(crate) type UpstreamClient = Client<UpstreamConnector, RequestTap>;

/// Builds the shared client. `extra_ca` adds PEM certificates to the system roots.
pub(crate) fn client(
    extra_ca: Option<&Path>,
    resolve: &[(String, SocketAddr)],
) -> Result<UpstreamClient, Error> {
    let connector = UpstreamConnector {
        tls: TlsConnector::from(Arc::new(client_tls_config(extra_ca)?)),
        resolve: Arc::new(resolve.iter().cloned().collect()),
    };
    Ok(Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        // hyper retries only a request it never wrote (the pooled
        // connection closed first), so the API still sees each recorded
        // request exactly once.
        .retry_canceled_requests(true)
        .build(connector))
}

/// The rustls provider used everywhere in this crate (ring).
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_tls_config(extra_ca: Option<&Path>) -> Result<rustls::ClientConfig, Error> {
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system certificates are skipped: the extra CA may be all
    // that is needed, and a missing root shows up as a clear handshake error.
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = extra_ca {
        let certs = load_certs(path, "--upstream-ca")?;
        for cert in certs {
            roots.add(cert).map_err(|e| Error::Input {
                what: format!("--upstream-ca {}", path.display()),
                why: format!("not a usable CA certificate: {e}"),
            })?;
        }
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Reads every PEM certificate in `path`; `flag` names it in errors.
pub(crate) fn load_certs(path: &Path, flag: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let pem = std::fs::read(path).map_err(|e| Error::Input {
        what: format!("{flag} {}", path.display()),
        why: e.to_string(),
    })?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Input {
            what: format!("{flag} {}", path.display()),
            why: format!("not PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(Error::Input {
            what: format!("{flag} {}", path.display()),
            why: "no PEM certificate in the file".into(),
        });
    }
    Ok(certs)
}

/// Reads the first PEM private key in `path`.
pub(crate) fn load_key(path: &Path, flag: &str) -> Result<PrivateKeyDer<'static>, Error> {
    let pem = std::fs::read(path).map_err(|e| Error::Input {
        what: format!("{flag} {}", path.display()),
        why: e.to_string(),
    })?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| Error::Input {
            what: format!("{flag} {}", path.display()),
            why: format!("not PEM: {e}"),
        })?
        .ok_or_else(|| Error::Input {
            what: format!("{flag} {}", path.display()),
            why: "no PEM private key in the file".into(),
        })
}

// === impl UpstreamConnector ===

/// Connects to `http://` and `https://` origins for the pooled client.
#[derive(Clone)]
pub(crate) struct UpstreamConnector {
    tls: TlsConnector,
    resolve: Arc<HashMap<String, SocketAddr>>,
}

impl UpstreamConnector {
    async fn connect(self, uri: Uri) -> io::Result<TokioIo<UpstreamStream>> {
        let host = uri
            .host()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "URI has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") | None => false,
            Some(other) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("unsupported scheme {other}"),
                ))
            }
        };
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let tcp = match self.resolve.get(&host) {
            Some(addr) => TcpStream::connect(*addr).await?,
            None => TcpStream::connect((host.as_str(), port)).await?,
        };
        tcp.set_nodelay(true)?;
        if !tls {
            return Ok(TokioIo::new(UpstreamStream::Plain(tcp)));
        }
        let name = ServerName::try_from(host.clone())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let stream = self.tls.connect(name, tcp).await?;
        Ok(TokioIo::new(UpstreamStream::Tls(Box::new(stream))))
    }
}

impl tower_service::Service<Uri> for UpstreamConnector {
    type Response = TokioIo<UpstreamStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(self.clone().connect(uri))
    }
}

// === impl UpstreamStream ===

/// A connection to an upstream, plain or TLS.
pub(crate) enum UpstreamStream {
    Plain(TcpStream),
    // Boxed: the TLS state is large and most upstreams in tests are plain.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Connection for UpstreamStream {
    fn connected(&self) -> Connected {
        match self {
            UpstreamStream::Plain(s) => s.connected(),
            UpstreamStream::Tls(s) => {
                let (tcp, session) = s.get_ref();
                let connected = tcp.connected();
                if session.alpn_protocol() == Some(b"h2") {
                    connected.negotiated_h2()
                } else {
                    connected
                }
            }
        }
    }
}

impl AsyncRead for UpstreamStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_flush(cx),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            UpstreamStream::Plain(s) => s.is_write_vectored(),
            UpstreamStream::Tls(s) => s.is_write_vectored(),
        }
    }
}
