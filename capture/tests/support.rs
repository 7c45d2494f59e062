//! Real servers and clients on 127.0.0.1 for the capture tests.

#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tapedeck_sessions::Exchange;
use tokio::net::{TcpListener, TcpStream};

pub type Body = BoxBody<Bytes, Infallible>;

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

/// Starts an HTTP/1.1 + h2c upstream on a free port; `tls` serves HTTPS.
pub async fn upstream<F, Fut>(tls: Option<tokio_rustls::TlsAcceptor>, handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handler = handler.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let h = handler.clone();
                    async move { Ok::<_, Infallible>(h(req).await) }
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                match tls {
                    None => {
                        let _ = builder
                            .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                            .await;
                    }
                    Some(acceptor) => {
                        if let Ok(s) = acceptor.accept(stream).await {
                            let _ = builder
                                .serve_connection_with_upgrades(TokioIo::new(s), svc)
                                .await;
                        }
                    }
                }
            });
        }
    });
    addr
}

/// Echoes the request as JSON: method, path, body, and the forwarding headers.
pub async fn echo(req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let h = |n: &str| {
        parts
            .headers
            .get(n)
            .map(|v| v.to_str().unwrap_or("").to_string())
    };
    let json = serde_json::json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path_and_query().map(|p| p.as_str()),
        "body": String::from_utf8_lossy(&body),
        "host": h("host"),
        "xff": h("x-forwarded-for"),
        "xfp": h("x-forwarded-proto"),
        "xfh": h("x-forwarded-host"),
        "connection": h("connection"),
        "keep_alive": h("keep-alive"),
        "x_private": h("x-private"),
    });
    Response::builder()
        .header("content-type", "application/json")
        .header("x-echo", "1")
        .body(full(json.to_string()))
        .unwrap()
}

/// One client connection (HTTP/1.1, keep-alive) for ordered requests.
pub struct Conn {
    send: hyper::client::conn::http1::SendRequest<Body>,
    pub addr: SocketAddr,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        Conn { send, addr }
    }

    pub async fn send(&mut self, method: &str, path: &str, body: &str) -> (u16, Bytes) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string())
            .header("content-type", "application/json")
            .body(full(body.to_string()))
            .unwrap();
        self.request(req).await
    }

    pub async fn request(&mut self, req: Request<Body>) -> (u16, Bytes) {
        self.send.ready().await.unwrap();
        let resp = self.send.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, body)
    }
}

/// Every exchange in the journals under `dir`, in id order.
pub fn journal(dir: &Path) -> Vec<Exchange> {
    let files = tapedeck_sessions::journal::expand_paths(&[dir.to_path_buf()]).unwrap();
    assert!(!files.is_empty(), "no journal in {}", dir.display());
    let mut all = tapedeck_sessions::journal::read_all(&files).unwrap();
    for f in &all.files {
        assert!(f.report.is_clean(), "{}", f.report.describe(&f.path));
    }
    all.exchanges.sort_by_key(|e| e.id);
    all.exchanges
}

/// A self-signed certificate for `localhost` and 127.0.0.1, as PEM files in
/// `dir`, with an acceptor and a client config that trusts it.
pub struct TestCert {
    pub cert_path: std::path::PathBuf,
    pub key_path: std::path::PathBuf,
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub client: Arc<rustls::ClientConfig>,
}

pub fn test_cert(dir: &Path, name: &str) -> TestCert {
    test_cert_for(dir, name, &["localhost", "127.0.0.1"])
}

/// Like [`test_cert`], for the given host names.
pub fn test_cert_for(dir: &Path, name: &str, hosts: &[&str]) -> TestCert {
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>())
            .unwrap();
    let cert = params.self_signed(&key).unwrap();
    let cert_path = dir.join(format!("{name}.pem"));
    let key_path = dir.join(format!("{name}.key"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let der = cert.der().clone();
    let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], key_der)
        .unwrap();
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der).unwrap();
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    TestCert {
        cert_path,
        key_path,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
        client: Arc::new(client),
    }
}
