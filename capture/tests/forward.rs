//! Forward-proxy mode: plain absolute-form requests, intercepted CONNECT
//! (certificate minted by tapedeck's CA), blind tunnels for other hosts.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tapedeck_capture::ca::Ca;
use tapedeck_capture::{CaptureConfig, Mode, RunningCapture};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{echo, full, journal, test_cert_for, upstream, Body};

struct Setup {
    _tmp: tempfile::TempDir,
    journals: std::path::PathBuf,
    capture: RunningCapture,
    /// Trusts tapedeck's CA, like a phone with the CA installed.
    device_tls: rustls::ClientConfig,
    plain_upstream: std::net::SocketAddr,
}

async fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let ca_dir = tmp.path().join("ca");
    let ca = Ca::init(&ca_dir, false).unwrap();
    // The "real" api.corevia.app: TLS with its own certificate.
    let api_cert = test_cert_for(tmp.path(), "api", &["api.corevia.app"]);
    let api = upstream(Some(api_cert.acceptor.clone()), echo).await;
    let plain = upstream(None, echo).await;
    let journals = tmp.path().join("journals");
    let config = CaptureConfig {
        mode: Mode::Forward,
        upstream: None,
        listen: "127.0.0.1:0".parse().unwrap(),
        out: journals.clone(),
        flush_every: Duration::from_millis(50),
        intercept: vec!["*.corevia.app".into()],
        resolve: vec![
            ("api.corevia.app".into(), api),
            ("plain.example".into(), plain),
            ("tunnel.example".into(), plain),
        ],
        ca_dir: Some(ca_dir),
        upstream_ca: Some(api_cert.cert_path.clone()),
        ..CaptureConfig::default()
    };
    let capture = tapedeck_capture::start(config).await.unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(
            ca.cert_der().to_vec(),
        ))
        .unwrap();
    let device_tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    Setup {
        _tmp: tmp,
        journals,
        capture,
        device_tls,
        plain_upstream: plain,
    }
}

/// Sends `CONNECT target` and returns the stream after the proxy's answer
/// head, with the status code.
async fn connect(proxy: std::net::SocketAddr, target: &str) -> (TcpStream, u16) {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(format!("CONNECT {target} HTTP/1.1\r\nhost: {target}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 65536 {
        if s.read(&mut byte).await.unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (s, status)
}

async fn tls_over(
    stream: TcpStream,
    mut config: rustls::ClientConfig,
    alpn: &[u8],
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    config.alpn_protocols = vec![alpn.to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("api.corevia.app").unwrap(), stream)
        .await
}

#[tokio::test]
async fn intercepted_https_is_recorded_with_its_origin() {
    let s = setup().await;
    let proxy = s.capture.addr();

    // HTTP/1.1 inside the intercepted tunnel.
    let (stream, status) = connect(proxy, "api.corevia.app:443").await;
    assert_eq!(status, 200);
    let tls = tls_over(stream, s.device_tls.clone(), b"http/1.1")
        .await
        .unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake::<_, Body>(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::post("/api/v1/auth/login")
        .header("host", "api.corevia.app")
        .header("content-type", "application/json")
        .body(full(r#"{"username":"ana","password":"phone-secret"}"#))
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["path"], "/api/v1/auth/login");
    assert_eq!(json["xfp"], "https");

    // h2 inside another intercepted tunnel.
    let (stream, status) = connect(proxy, "api.corevia.app:443").await;
    assert_eq!(status, 200);
    let tls = tls_over(stream, s.device_tls.clone(), b"h2").await.unwrap();
    let (mut send2, conn) = hyper::client::conn::http2::handshake::<_, _, Body>(
        TokioExecutor::new(),
        TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let resp = send2
        .send_request(
            Request::get("https://api.corevia.app/api/v1/social/feed?limit=2")
                .body(full(""))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["path"], "/api/v1/social/feed?limit=2");

    drop((send, send2));
    let summary = s.capture.shutdown().await.unwrap();
    assert_eq!(summary.exchanges, 2);
    let exchanges = journal(&s.journals);
    assert_eq!(exchanges.len(), 2);
    for ex in &exchanges {
        assert_eq!(ex.upstream.as_deref(), Some("https://api.corevia.app"));
        assert_eq!(ex.status(), Some(200));
    }
    assert_eq!(exchanges[0].request.uri, "/api/v1/auth/login");
    assert_eq!(exchanges[1].request.version, "HTTP/2");
    let line = serde_json::to_string(&exchanges).unwrap();
    assert!(
        !line.contains("phone-secret"),
        "password redacted in forward mode too"
    );
}

#[tokio::test]
async fn plain_http_is_recorded_and_other_hosts_are_tunnelled_unrecorded() {
    let s = setup().await;
    let proxy = s.capture.addr();

    // Absolute-form plain HTTP, as a phone sends through its HTTP proxy.
    let stream = TcpStream::connect(proxy).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake::<_, Body>(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let port = s.plain_upstream.port();
    let resp = send
        .send_request(
            Request::get(format!("http://plain.example:{port}/status?x=1"))
                .header("host", format!("plain.example:{port}"))
                .body(full(""))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["path"], "/status?x=1");

    // A host outside --intercept: a blind tunnel (plain HTTP inside here).
    let (mut tunnel, status) = connect(proxy, "tunnel.example:80").await;
    assert_eq!(status, 200);
    tunnel
        .write_all(b"GET /through-the-tunnel HTTP/1.1\r\nhost: tunnel.example\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    tunnel.read_to_end(&mut reply).await.unwrap();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("/through-the-tunnel"), "{reply}");

    // An intercepted host on a closed port: 502, recorded as an error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (_, status) = connect(proxy, &format!("www.corevia.app:{closed}")).await;
    assert_eq!(status, 502);
    // A non-intercepted host on a closed port: 502, not recorded.
    let (_, status) = connect(proxy, &format!("127.0.0.1:{closed}")).await;
    assert_eq!(status, 502);
    // Malformed CONNECT target.
    let (_, status) = connect(proxy, "no-port-here").await;
    assert!(status == 400, "{status}");

    drop(send);
    let stats = s.capture.stats();
    assert_eq!(stats.tunnels, 1);
    s.capture.shutdown().await.unwrap();
    let exchanges = journal(&s.journals);
    assert_eq!(exchanges.len(), 2, "{exchanges:#?}");
    assert_eq!(
        exchanges[0].request.uri,
        format!("http://plain.example:{port}/status?x=1")
    );
    assert_eq!(
        exchanges[0].upstream.as_deref(),
        Some(format!("http://plain.example:{port}").as_str())
    );
    assert_eq!(exchanges[1].request.method, "CONNECT");
    assert!(exchanges[1]
        .error
        .as_deref()
        .unwrap()
        .contains("unreachable"));
    assert!(exchanges
        .iter()
        .all(|e| !e.request.uri.contains("through-the-tunnel")));
}

#[tokio::test]
async fn a_device_without_the_ca_fails_cleanly_and_others_keep_working() {
    let s = setup().await;
    let proxy = s.capture.addr();
    let (stream, status) = connect(proxy, "api.corevia.app:443").await;
    assert_eq!(status, 200);
    // Trusts only the system roots, not tapedeck's CA.
    let untrusting = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let err = tls_over(stream, untrusting, b"http/1.1").await.unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");

    let (stream, status) = connect(proxy, "api.corevia.app:443").await;
    assert_eq!(status, 200);
    let tls = tls_over(stream, s.device_tls.clone(), b"http/1.1")
        .await
        .unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake::<_, Body>(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let resp = send
        .send_request(
            Request::get("/ok")
                .header("host", "api.corevia.app")
                .body(full(""))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    drop(send);
    for _ in 0..100 {
        if s.capture.stats().client_errors >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(s.capture.stats().client_errors >= 1);
    let summary = s.capture.shutdown().await.unwrap();
    assert_eq!(summary.exchanges, 1);
}

#[tokio::test]
async fn forward_mode_without_a_ca_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let config = CaptureConfig {
        mode: Mode::Forward,
        listen: "127.0.0.1:0".parse().unwrap(),
        out: tmp.path().join("j"),
        intercept: vec!["api.corevia.app".into()],
        ca_dir: Some(tmp.path().join("no-ca")),
        ..CaptureConfig::default()
    };
    let err = tapedeck_capture::start(config)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ca.pem") && err.contains("tapedeck ca init"),
        "{err}"
    );
}
