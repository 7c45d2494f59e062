//! Faults on both sides: garbage and stalls from the upstream, clients that
//! vanish, slowloris, malformed and oversized requests, a journal that
//! becomes unwritable. Traffic keeps flowing and every failure is counted.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tapedeck_capture::{CaptureConfig, RunningCapture};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::reverse::streamed;
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

/// Reads until EOF or `limit`; returns what arrived.
async fn read_reply(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn garbage_from_the_upstream_is_a_502() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"SSH-2.0-OpenSSH_9.6\r\nnot http at all\r\n\r\n")
                .await;
        }
    });
    let capture = proxy(&format!("http://{up}"), dir.path(), |_| {}).await;
    let mut conn = Conn::open(capture.addr()).await;
    let (status, body) = conn.send("GET", "/x", "").await;
    assert_eq!(status, 502, "{}", String::from_utf8_lossy(&body));
    drop(conn);
    capture.shutdown().await.unwrap();
    let ex = &journal(dir.path())[0];
    assert!(ex.response.is_none());
    assert!(
        ex.error.as_deref().unwrap().contains("failed"),
        "{:?}",
        ex.error
    );
}

#[tokio::test]
async fn client_vanishing_mid_response_is_recorded_and_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let up = upstream(None, |req: Request<hyper::body::Incoming>| async move {
        if req.uri().path() == "/big" {
            Response::new(streamed(
                2000,
                |_| Bytes::from(vec![b'z'; 32 * 1024]),
                Duration::from_millis(1),
            ))
        } else {
            echo(req).await
        }
    })
    .await;
    let capture = proxy(&format!("http://{up}"), dir.path(), |_| {}).await;

    let stream = TcpStream::connect(capture.addr()).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake::<_, Body>(TokioIo::new(stream))
        .await
        .unwrap();
    let conn_task = tokio::spawn(conn);
    let resp = send
        .send_request(
            Request::get("/big")
                .header("host", "x")
                .body(full(""))
                .unwrap(),
        )
        .await
        .unwrap();
    let mut body = resp.into_body();
    // Read a little, then hang up.
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.is_data());
    drop(body);
    drop(send);
    conn_task.abort();

    // Another client is served normally.
    let mut other = Conn::open(capture.addr()).await;
    let (status, _) = other.send("GET", "/fine", "").await;
    assert_eq!(status, 200);
    drop(other);

    // The cut exchange is finished (and recorded) once the proxy notices.
    for _ in 0..200 {
        if capture.stats().exchanges == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let summary = capture.shutdown().await.unwrap();
    assert_eq!(summary.exchanges, 2);
    let exchanges = journal(dir.path());
    let cut = exchanges.iter().find(|e| e.request.uri == "/big").unwrap();
    assert!(
        cut.error.as_deref().unwrap().contains("client went away"),
        "{:?}",
        cut.error
    );
    assert!(cut.response.as_ref().unwrap().body.len < 2000 * 32 * 1024);
}

#[tokio::test]
async fn client_vanishing_mid_request_body_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let up = upstream(None, echo).await;
    let capture = proxy(&format!("http://{up}"), dir.path(), |_| {}).await;
    let mut s = TcpStream::connect(capture.addr()).await.unwrap();
    s.write_all(b"POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\nonly-this")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(s);
    for _ in 0..200 {
        if capture.stats().exchanges == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let summary = capture.shutdown().await.unwrap();
    assert_eq!(summary.exchanges, 1);
    let ex = &journal(dir.path())[0];
    assert_eq!(ex.request.body.data, b"only-this");
    assert!(ex.error.is_some(), "the cut upload is marked as an error");
}

#[tokio::test]
async fn slowloris_malformed_and_oversized_requests_are_refused_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let up = upstream(None, echo).await;
    let capture = proxy(&format!("http://{up}"), dir.path(), |c| {
        c.header_read_timeout = Duration::from_millis(300)
    })
    .await;

    // Slowloris: half a request head, then nothing. The proxy hangs up.
    let mut slow = TcpStream::connect(capture.addr()).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nx-a: 1\r\n")
        .await
        .unwrap();
    let reply = read_reply(&mut slow).await;
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 408"),
        "{reply}"
    );

    // Malformed request line: 400 from hyper.
    let mut bad = TcpStream::connect(capture.addr()).await.unwrap();
    bad.write_all(b"GARBAGE\x01\x02 nonsense\r\n\r\n")
        .await
        .unwrap();
    let reply = read_reply(&mut bad).await;
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");

    // A 1 MiB header: 431.
    let mut big = TcpStream::connect(capture.addr()).await.unwrap();
    let head = format!(
        "GET / HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let _ = big.write_all(head.as_bytes()).await;
    let reply = read_reply(&mut big).await;
    assert!(
        reply.starts_with("HTTP/1.1 431"),
        "{}",
        &reply[..reply.len().min(200)]
    );

    // Still serving.
    let mut conn = Conn::open(capture.addr()).await;
    assert_eq!(conn.send("GET", "/ok", "").await.0, 200);
    drop(conn);
    let stats = capture.stats();
    assert!(stats.client_errors >= 3, "{stats:?}");
    let summary = capture.shutdown().await.unwrap();
    assert_eq!(
        summary.exchanges, 1,
        "refused requests never reach the journal"
    );
}

#[tokio::test]
async fn an_unwritable_journal_is_reported_and_traffic_keeps_flowing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("journals");
    let up = upstream(None, echo).await;
    // Rotate after every frame, so the writer opens new files while running.
    let capture = proxy(&format!("http://{up}"), &dir, |c| {
        c.rotate_size = Some(1);
        c.flush_every = Duration::from_millis(20);
    })
    .await;
    let mut conn = Conn::open(capture.addr()).await;
    for i in 0..5 {
        assert_eq!(conn.send("GET", &format!("/before/{i}"), "").await.0, 200);
    }
    // Wait until those are on disk.
    for _ in 0..200 {
        if capture.stats().recorded == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Move the journals away and put a plain file where the directory was:
    // the next file the writer opens cannot be created.
    let moved = tmp.path().join("moved");
    std::fs::rename(&dir, &moved).unwrap();
    std::fs::write(&dir, b"not a directory").unwrap();
    for i in 0..20 {
        assert_eq!(conn.send("GET", &format!("/after/{i}"), "").await.0, 200);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(conn);
    let stats = capture.stats();
    assert!(stats.write_errors >= 1, "{stats:?}");
    let summary = capture.shutdown().await.unwrap();
    assert!(summary.journal_failure.is_some(), "{summary:?}");
    assert!(summary.dropped >= 1, "{summary:?}");
    assert_eq!(summary.exchanges + summary.dropped, 25, "{summary:?}");
    // What was written before the failure is still readable.
    let recovered = journal(&moved);
    assert!(recovered.len() >= 5, "{}", recovered.len());
    for (i, ex) in recovered.iter().take(5).enumerate() {
        assert_eq!(ex.request.uri, format!("/before/{i}"));
    }
}
