//! Reverse-proxy behaviour: what clients see, and what the journal holds.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tapedeck_capture::{CaptureConfig, RunningCapture};
use tokio::net::TcpStream;

use crate::support::{echo, full, journal, upstream, Body, Conn};

async fn proxy(
    upstream: &str,
    dir: &std::path::Path,
    tune: impl FnOnce(&mut CaptureConfig),
) -> RunningCapture {
    let mut config = CaptureConfig::reverse(upstream, dir).unwrap();
    config.flush_every = Duration::from_millis(50);
    tune(&mut config);
    tapedeck_capture::start(config).await.unwrap()
}

#[tokio::test]
async fn journal_holds_exactly_what_clients_saw() {
    let dir = tempfile::tempdir().unwrap();
    let up = upstream(None, echo).await;
    let capture = proxy(&format!("http://{up}"), dir.path(), |_| {}).await;
    let addr = capture.addr();

    // Three keep-alive connections, 15 requests each, interleaved in time.
    let mut tasks = Vec::new();
    for c in 0..3 {
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await;
            let mut seen = Vec::new();
            for i in 0..15 {
                let body = format!("{{\"conn\":{c},\"seq\":{i}}}");
                let (status, resp) = conn
                    .send("POST", &format!("/items/{c}?seq={i}"), &body)
                    .await;
                assert_eq!(status, 200);
                seen.push((body, resp));
            }
            seen
        }));
    }
    let mut client_views = Vec::new();
    for t in tasks {
        client_views.push(t.await.unwrap());
    }
    let summary = capture.shutdown().await.unwrap();
    assert_eq!(summary.exchanges, 45);
    assert_eq!(summary.dropped, 0);

    let exchanges = journal(dir.path());
    assert_eq!(exchanges.len(), 45);
    let mut by_conn: BTreeMap<u64, Vec<_>> = BTreeMap::new();
    for ex in &exchanges {
        by_conn.entry(ex.conn).or_default().push(ex);
    }
    assert_eq!(by_conn.len(), 3, "one conn id per client connection");
    for recorded in by_conn.values() {
        // Which client connection is this? The first body names it.
        let first: serde_json::Value = recorded[0].request.body.json().unwrap();
        let c = first["conn"].as_u64().unwrap() as usize;
        let view = &client_views[c];
        assert_eq!(recorded.len(), view.len());
        for (i, (ex, (sent, received))) in recorded.iter().zip(view).enumerate() {
            assert_eq!(
                ex.request.uri,
                format!("/items/{c}?seq={i}"),
                "order on conn {c}"
            );
            assert_eq!(ex.request.method, "POST");
            assert_eq!(ex.request.body.data, sent.as_bytes());
            let resp = ex.response.as_ref().unwrap();
            assert_eq!(resp.status, 200);
            assert_eq!(resp.body.data, received.as_ref());
            assert!(!resp.body.truncated);
            assert!(ex.error.is_none());
            assert!(ex.duration_us >= ex.ttfb_us);
        }
    }
    let ids: Vec<u64> = exchanges.iter().map(|e| e.id).collect();
    let mut dedup = ids.clone();
    dedup.dedup();
    assert_eq!(ids, dedup, "ids are unique");
}

#[tokio::test]
async fn forwarding_headers_and_hop_by_hop() {
    let dir = tempfile::tempdir().unwrap();
    let up = upstream(None, echo).await;
    let capture = proxy(&format!("http://{up}/base/"), dir.path(), |_| {}).await;
    let mut conn = Conn::open(capture.addr()).await;
    let req = Request::builder()
        .method("GET")
        .uri("/ping?x=1")
        .header("host", "app.example")
        .header("connection", "keep-alive, x-private")
        .header("keep-alive", "timeout=5")
        .header("x-private", "secret-hop")
        .header("x-forwarded-for", "10.1.2.3")
        .body(full(""))
        .unwrap();
    let (status, body) = conn.request(req).await;
    assert_eq!(status, 200);
    let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(seen["path"], "/base/ping?x=1");
    assert_eq!(seen["host"], up.to_string());
    assert_eq!(seen["xff"], "10.1.2.3, 127.0.0.1");
    assert_eq!(seen["xfp"], "http");
    assert_eq!(seen["xfh"], "app.example");
    assert_eq!(seen["keep_alive"], serde_json::Value::Null);
    assert_eq!(seen["x_private"], serde_json::Value::Null);
    drop(conn);
    capture.shutdown().await.unwrap();
    let ex = &journal(dir.path())[0];
    // The record keeps the request as the client sent it.
    assert_eq!(ex.request.uri, "/ping?x=1");
    assert_eq!(
        tapedeck_sessions::model::header(&ex.request.headers, "host"),
        Some("app.example")
    );
    assert_eq!(
        ex.client.as_deref().map(|c| c.starts_with("127.0.0.1:")),
        Some(true)
    );
}

#[tokio::test]
async fn streamed_chunked_response_arrives_intact_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let up = upstream(None, |_req| async {
        Response::new(streamed(
            40,
            |i| Bytes::from(format!("chunk-{i:03};")),
            Duration::from_millis(2),
        ))
    })
    .await;
    let capture = proxy(&format!("http://{up}"), dir.path(), |_| {}).await;
    let mut conn = Conn::open(capture.addr()).await;
    let (status, body) = conn.send("GET", "/stream", "").await;
    assert_eq!(status, 200);
    let expected: String = (0..40).map(|i| format!("chunk-{i:03};")).collect();
    assert_eq!(body, expected.as_bytes());
    drop(conn);
    capture.shutdown().await.unwrap();
    let ex = &journal(dir.path())[0];
    let resp = ex.response.as_ref().unwrap();
    assert_eq!(resp.body.data, expected.as_bytes());
    assert_eq!(resp.body.len, expected.len() as u64);
    assert_eq!(
        tapedeck_sessions::model::header(&resp.headers, "transfer-encoding"),
        Some("chunked")
    );
}

#[tokio::test]
async fn large_bodies_are_truncated_in_the_record_but_not_on_the_wire() {
    let dir = tempfile::tempdir().unwrap();
    // 4 MiB in 64 KiB chunks: far over the 1 KiB record cap.
    let up = upstream(None, |req: Request<hyper::body::Incoming>| async move {
        let uploaded = req.into_body().collect().await.unwrap().to_bytes().len();
        let mut resp = Response::new(streamed(
            64,
            |i| Bytes::from(vec![b'a' + (i % 26) as u8; 64 * 1024]),
            Duration::ZERO,
        ));
        resp.headers_mut()
            .insert("x-uploaded", uploaded.to_string().parse().unwrap());
        resp
    })
    .await;
    let capture = proxy(&format!("http://{up}"), dir.path(), |c| c.max_body = 1024).await;
    let mut conn = Conn::open(capture.addr()).await;
    let upload = "x".repeat(300_000);
    let (status, body) = conn.send("POST", "/big", &upload).await;
    assert_eq!(status, 200);
    assert_eq!(body.len(), 64 * 64 * 1024, "the client gets every byte");
    assert!(body
        .chunks(64 * 1024)
        .enumerate()
        .all(|(i, c)| c.iter().all(|&b| b == b'a' + (i % 26) as u8)));
    drop(conn);
    capture.shutdown().await.unwrap();
    let ex = &journal(dir.path())[0];
    assert_eq!(ex.request.body.len, 300_000);
    assert!(ex.request.body.truncated);
    assert_eq!(ex.request.body.data, "x".repeat(1024).as_bytes());
    let resp = ex.response.as_ref().unwrap();
    assert_eq!(
        tapedeck_sessions::model::header(&resp.headers, "x-uploaded"),
        Some("300000")
    );
    assert_eq!(resp.body.len, 64 * 64 * 1024);
    assert!(resp.body.truncated);
    assert_eq!(resp.body.data, vec![b'a'; 1024]);
}

#[tokio::test]
async fn upstream_down_is_a_502_naming_it_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    // A port that was free a moment ago: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let upstream_url = format!("http://{closed}");
    let capture = proxy(&upstream_url, dir.path(), |_| {}).await;
    let mut conn = Conn::open(capture.addr()).await;
    let (status, body) = conn.send("GET", "/api/v1/feed", "").await;
    assert_eq!(status, 502);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["upstream"], upstream_url);
    assert!(
        json["detail"].as_str().unwrap().contains(&upstream_url),
        "{json}"
    );
    // The proxy keeps serving on the same connection.
    let (status, _) = conn.send("GET", "/again", "").await;
    assert_eq!(status, 502);
    drop(conn);
    let stats = capture.stats();
    assert_eq!(stats.errors, 2);
    capture.shutdown().await.unwrap();
    let exchanges = journal(dir.path());
    assert_eq!(exchanges.len(), 2);
    assert!(exchanges[0].response.is_none());
    let err = exchanges[0].error.as_deref().unwrap();
    assert!(err.contains("unreachable"), "{err}");
}

#[tokio::test]
async fn upstream_timeout_is_a_504_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let up = upstream(None, |_req| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Response::new(full("late"))
    })
    .await;
    let capture = proxy(&format!("http://{up}"), dir.path(), |c| {
        c.upstream_timeout = Duration::from_millis(200)
    })
    .await;
    let mut conn = Conn::open(capture.addr()).await;
    let (status, body) = conn.send("GET", "/slow", "").await;
    assert_eq!(status, 504);
    assert!(String::from_utf8_lossy(&body).contains("did not answer within 200ms"));
    drop(conn);
    capture.shutdown().await.unwrap();
    let ex = &journal(dir.path())[0];
    assert!(ex.response.is_none());
    assert!(ex.error.as_deref().unwrap().contains("did not answer"));
}

#[tokio::test]
async fn upstream_reset_mid_response_is_recorded_as_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // A raw upstream that promises 1000 bytes, sends 10 and hangs up.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n0123456789")
                .await;
        }
    });
    let capture = proxy(&format!("http://{up}"), dir.path(), |_| {}).await;
    let stream = TcpStream::connect(capture.addr()).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake::<_, Body>(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let resp = send
        .send_request(
            Request::get("/cut")
                .header("host", "x")
                .body(full(""))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.into_body().collect().await.is_err(),
        "the client sees the cut"
    );
    let summary = capture.shutdown().await.unwrap();
    assert_eq!(summary.errors, 1);
    let ex = &journal(dir.path())[0];
    let resp = ex.response.as_ref().unwrap();
    assert_eq!(resp.body.data, b"0123456789");
    assert!(
        ex.error
            .as_deref()
            .unwrap()
            .contains("upstream response body"),
        "{:?}",
        ex.error
    );
}

#[tokio::test]
async fn h2c_clients_are_served_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let up = upstream(None, echo).await;
    let capture = proxy(&format!("http://{up}"), dir.path(), |_| {}).await;
    let stream = TcpStream::connect(capture.addr()).await.unwrap();
    let (send, conn) = hyper::client::conn::http2::handshake::<_, _, Body>(
        TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    // 20 concurrent streams on one connection.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let mut send = send.clone();
        let addr = capture.addr();
        tasks.push(tokio::spawn(async move {
            let req = Request::post(format!("http://{addr}/h2/{i}"))
                .body(full(format!("body-{i}")))
                .unwrap();
            let resp = send.send_request(req).await.unwrap();
            assert_eq!(resp.version(), hyper::Version::HTTP_2);
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(json["path"], format!("/h2/{i}"));
            assert_eq!(json["body"], format!("body-{i}"));
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    drop(send);
    capture.shutdown().await.unwrap();
    let exchanges = journal(dir.path());
    assert_eq!(exchanges.len(), 20);
    assert!(exchanges.iter().all(|e| e.request.version == "HTTP/2"));
    assert_eq!(
        exchanges
            .iter()
            .map(|e| e.conn)
            .collect::<std::collections::HashSet<_>>()
            .len(),
        1
    );
    let mut bodies: Vec<String> = exchanges
        .iter()
        .map(|e| e.request.body.text().unwrap().to_string())
        .collect();
    bodies.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("body-{i}")).collect();
    expected.sort();
    assert_eq!(bodies, expected);
}

#[tokio::test]
async fn passwords_are_redacted_and_status_endpoint_counts() {
    let dir = tempfile::tempdir().unwrap();
    let up = upstream(None, echo).await;
    let capture = proxy(&format!("http://{up}"), dir.path(), |c| {
        c.redact_header = vec!["cookie".into()];
        c.status_listen = Some("127.0.0.1:0".parse().unwrap());
        c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let mut conn = Conn::open(capture.addr()).await;
    for _ in 0..2 {
        let req = Request::post("/api/v1/auth/login")
            .header("host", "x")
            .header("content-type", "application/json")
            .header("cookie", "sid=cookie-plaintext")
            .body(full(r#"{"username":"ana","password":"PlainHunter2"}"#))
            .unwrap();
        let (status, body) = conn.request(req).await;
        assert_eq!(status, 200);
        // The upstream got the real password: redaction is for the record only.
        assert!(String::from_utf8_lossy(&body).contains("PlainHunter2"));
    }
    let status_addr = capture.status_addr().unwrap();
    let mut status_conn = Conn::open(status_addr).await;
    let (code, body) = status_conn.send("GET", "/", "").await;
    assert_eq!(code, 200);
    let stats: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(stats["exchanges"], 2);
    assert_eq!(stats["dropped"], 0);
    let mut metrics_conn = Conn::open(capture.metrics_addr().unwrap()).await;
    let (code, body) = metrics_conn.send("GET", "/metrics", "").await;
    assert_eq!(code, 200);
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("\ntapedeck_capture_exchanges_total 2\n"),
        "{text}"
    );
    assert!(
        text.contains("\ntapedeck_capture_dropped_total 0\n"),
        "{text}"
    );
    drop(conn);
    capture.shutdown().await.unwrap();

    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let raw = zstd::decode_all(std::fs::File::open(&path).unwrap()).unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(
            !text.contains("PlainHunter2"),
            "{} leaks the password",
            path.display()
        );
        assert!(
            !text.contains("cookie-plaintext"),
            "{} leaks the cookie",
            path.display()
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let exchanges = journal(dir.path());
    let pw = |i: usize| {
        exchanges[i].request.body.json().unwrap()["password"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(pw(0).starts_with("<redacted:"));
    assert_eq!(pw(0), pw(1), "equal secrets still correlate");
}

#[tokio::test]
async fn websocket_style_upgrades_pass_through_and_only_the_handshake_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    // An upstream that accepts `Upgrade: echo` and then echoes raw bytes.
    let up = upstream(None, |mut req: Request<hyper::body::Incoming>| async move {
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            if let Ok(upgraded) = on_upgrade.await {
                let mut io = TokioIo::new(upgraded);
                let mut buf = [0u8; 1024];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        Response::builder()
            .status(101)
            .header("connection", "upgrade")
            .header("upgrade", "echo")
            .body(full(""))
            .unwrap()
    })
    .await;
    let capture = proxy(&format!("http://{up}"), dir.path(), |_| {}).await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(capture.addr()).await.unwrap();
    s.write_all(b"GET /ws HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
        assert_eq!(
            s.read(&mut byte).await.unwrap(),
            1,
            "{}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: echo"), "{head}");
    for msg in ["ping", "pong-and-more"] {
        s.write_all(msg.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; msg.len()];
        tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(buf, msg.as_bytes());
    }
    drop(s);
    let summary = capture.shutdown().await.unwrap();
    assert_eq!(summary.exchanges, 1);
    let ex = &journal(dir.path())[0];
    assert_eq!(ex.status(), Some(101));
    assert!(ex.response.as_ref().unwrap().body.data.is_empty());
}

#[tokio::test]
async fn pipelined_requests_are_answered_and_recorded_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let up = upstream(None, echo).await;
    let capture = proxy(&format!("http://{up}"), dir.path(), |_| {}).await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(capture.addr()).await.unwrap();
    // Three requests in one write, the last one closing the connection.
    s.write_all(
        b"GET /p/1 HTTP/1.1\r\nhost: x\r\n\r\n\
          POST /p/2 HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc\
          GET /p/3 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&raw);
    let p1 = text.find("\"/p/1\"").unwrap();
    let p2 = text.find("\"/p/2\"").unwrap();
    let p3 = text.find("\"/p/3\"").unwrap();
    assert!(p1 < p2 && p2 < p3, "{text}");
    assert_eq!(text.matches("HTTP/1.1 200").count(), 3);
    capture.shutdown().await.unwrap();
    let exchanges = journal(dir.path());
    let uris: Vec<&str> = exchanges.iter().map(|e| e.request.uri.as_str()).collect();
    assert_eq!(uris, ["/p/1", "/p/2", "/p/3"]);
    assert_eq!(exchanges[1].request.body.data, b"abc");
    assert!(exchanges.iter().all(|e| e.conn == exchanges[0].conn));
}

/// A response body fed by a channel: each message is one data frame, sent
/// as it arrives (chunked on the wire).
pub struct ChannelBody(pub tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|m| m.map(|b| Ok(Frame::data(b))))
    }
}

/// Streams `chunks` chunks of `chunk` bytes with a pause between them.
pub fn streamed(
    chunks: usize,
    chunk: impl Fn(usize) -> Bytes + Send + 'static,
    pause: Duration,
) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    tokio::spawn(async move {
        for i in 0..chunks {
            if tx.send(chunk(i)).await.is_err() {
                return;
            }
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
    });
    BodyExt::boxed(ChannelBody(rx))
}
