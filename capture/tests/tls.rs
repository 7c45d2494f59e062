//! TLS toward clients (`--tls-cert/--tls-key`, ALPN h2 and http/1.1) and
//! toward an HTTPS upstream trusted through `--upstream-ca`.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tapedeck_capture::CaptureConfig;
use tokio::net::TcpStream;

use crate::support::{echo, full, journal, test_cert, upstream, Body};

async fn tls_connect(
    addr: std::net::SocketAddr,
    client: Arc<rustls::ClientConfig>,
    alpn: &[u8],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut config = (*client).clone();
    config.alpn_protocols = vec![alpn.to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let stream = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(alpn));
    stream
}

#[tokio::test]
async fn tls_on_both_sides_with_h2_and_http1_clients() {
    let dir = tempfile::tempdir().unwrap();
    let up_cert = test_cert(dir.path(), "upstream");
    let proxy_cert = test_cert(dir.path(), "proxy");
    let up = upstream(Some(up_cert.acceptor.clone()), echo).await;
    let journals = dir.path().join("journals");
    let mut config =
        CaptureConfig::reverse(&format!("https://localhost:{}", up.port()), &journals).unwrap();
    config.flush_every = Duration::from_millis(50);
    config.tls_cert = Some(proxy_cert.cert_path.clone());
    config.tls_key = Some(proxy_cert.key_path.clone());
    config.upstream_ca = Some(up_cert.cert_path.clone());
    let capture = tapedeck_capture::start(config).await.unwrap();

    // h2 over TLS.
    let tls = tls_connect(capture.addr(), proxy_cert.client.clone(), b"h2").await;
    let (mut send, conn) = hyper::client::conn::http2::handshake::<_, _, Body>(
        TokioExecutor::new(),
        TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = Request::post(format!(
        "https://localhost:{}/over/h2",
        capture.addr().port()
    ))
    .body(full("h2-body"))
    .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["path"], "/over/h2");
    assert_eq!(json["body"], "h2-body");
    assert_eq!(json["xfp"], "https");

    // HTTP/1.1 over TLS.
    let tls = tls_connect(capture.addr(), proxy_cert.client.clone(), b"http/1.1").await;
    let (mut send1, conn) = hyper::client::conn::http1::handshake::<_, Body>(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::get("/over/http1")
        .header("host", "localhost")
        .body(full(""))
        .unwrap();
    let resp = send1.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["path"], "/over/http1");

    drop((send, send1));
    let summary = capture.shutdown().await.unwrap();
    assert_eq!(summary.exchanges, 2);
    let exchanges = journal(&journals);
    assert_eq!(exchanges[0].request.version, "HTTP/2");
    assert_eq!(exchanges[1].request.version, "HTTP/1.1");
    assert!(exchanges
        .iter()
        .all(|e| e.error.is_none() && e.status() == Some(200)));
}

#[tokio::test]
async fn an_untrusted_upstream_certificate_is_a_502_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let up_cert = test_cert(dir.path(), "upstream");
    let up = upstream(Some(up_cert.acceptor.clone()), echo).await;
    // No --upstream-ca: the self-signed upstream is not trusted.
    let mut config = CaptureConfig::reverse(
        &format!("https://localhost:{}", up.port()),
        dir.path().join("j"),
    )
    .unwrap();
    config.flush_every = Duration::from_millis(50);
    let capture = tapedeck_capture::start(config).await.unwrap();
    let mut conn = crate::support::Conn::open(capture.addr()).await;
    let (status, body) = conn.send("GET", "/x", "").await;
    assert_eq!(status, 502);
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("certificate"), "{text}");
    drop(conn);
    capture.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_tls_files_are_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let mut config = CaptureConfig::reverse("http://127.0.0.1:9", dir.path().join("j")).unwrap();
    config.tls_cert = Some(garbage.clone());
    config.tls_key = Some(garbage.clone());
    let err = tapedeck_capture::start(config)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--tls-cert") && err.contains("garbage.pem"),
        "{err}"
    );
    let mut config = CaptureConfig::reverse("http://127.0.0.1:9", dir.path().join("j")).unwrap();
    config.upstream_ca = Some(dir.path().join("missing.pem"));
    let err = tapedeck_capture::start(config)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--upstream-ca") && err.contains("missing.pem"),
        "{err}"
    );
}
