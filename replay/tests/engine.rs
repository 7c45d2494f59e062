//! In-process tests of the replay engine against real HTTP upstreams on
//! 127.0.0.1 (a raw hyper server whose behaviour each test picks by path).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tapedeck_replay::config::{parse_target, Load, ReplayConfig, ShardSpec, Speed, Stage};
use tapedeck_sessions::{Body, Exchange, JournalWriter, RecordedRequest, RecordedResponse};

/// What the test upstream saw.
#[derive(Default)]
struct Seen {
    requests: AtomicU64,
    connections: AtomicU64,
    arrivals: Mutex<Vec<(String, Instant)>>,
}

/// Starts an upstream: `/stall/MS` sleeps MS ms, `/boom` answers 500,
/// `/notfound` 404, anything else 200 with a small JSON body.
async fn upstream() -> (SocketAddr, Arc<Seen>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            s.connections.fetch_add(1, Ordering::Relaxed);
            let s = s.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let s = s.clone();
                    async move {
                        let path = req.uri().path().to_string();
                        s.requests.fetch_add(1, Ordering::Relaxed);
                        s.arrivals
                            .lock()
                            .unwrap()
                            .push((path.clone(), Instant::now()));
                        let mut status = 200;
                        if let Some(ms) = path.strip_prefix("/stall/") {
                            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
                        }
                        if path == "/boom" {
                            status = 500;
                        }
                        if path == "/notfound" {
                            status = 404;
                        }
                        Ok::<_, Infallible>(
                            hyper::Response::builder()
                                .status(status)
                                .body(Full::new(Bytes::from_static(b"{\"ok\":true}")))
                                .unwrap(),
                        )
                    }
                });
                // HTTP/1.1 and h2c on one port.
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, seen)
}

fn t0() -> DateTime<Utc> {
    "2026-11-26T10:00:00Z".parse().unwrap()
}

fn exchange(id: u64, session: &str, at_ms: i64, method: &str, uri: &str, status: u16) -> Exchange {
    Exchange {
        id,
        session: session.to_string(),
        conn: id,
        started: t0() + chrono::Duration::milliseconds(at_ms),
        upstream: None,
        client: Some("10.0.0.1:5000".into()),
        request: RecordedRequest {
            method: method.into(),
            uri: uri.into(),
            version: "HTTP/1.1".into(),
            headers: vec![("user-agent".into(), "CoreVia/1.0".into())],
            body: Body::default(),
        },
        response: Some(RecordedResponse {
            status,
            headers: vec![],
            body: Body::new(b"{}".to_vec()),
        }),
        error: None,
        ttfb_us: 1000,
        duration_us: 1000,
    }
}

fn journal(dir: &Path, upstream: &str, exchanges: &[Exchange]) -> PathBuf {
    let path = dir.join("j.jsonl.zst");
    let mut w = JournalWriter::create_file(&path, upstream).unwrap();
    for e in exchanges {
        w.write(e).unwrap();
    }
    w.finish().unwrap();
    path
}

/// `n` sessions of two requests each, `gap_ms` apart.
fn sessions(n: usize, gap_ms: i64) -> Vec<Exchange> {
    let mut out = Vec::new();
    for s in 0..n {
        let key = format!("sess-{s}");
        let base = s as i64 * 10;
        out.push(exchange(out.len() as u64, &key, base, "GET", "/a", 200));
        out.push(exchange(
            out.len() as u64,
            &key,
            base + gap_ms,
            "GET",
            "/b",
            200,
        ));
    }
    out
}

fn config(journal: PathBuf, addr: SocketAddr) -> ReplayConfig {
    ReplayConfig::new(
        vec![journal],
        parse_target(&format!("http://{addr}")).unwrap(),
    )
}

#[tokio::test]
async fn multiply_replays_each_session_k_times_one_connection_per_vu() {
    let (addr, seen) = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path(), "http://api.example:80", &sessions(3, 20));
    let mut c = config(j, addr);
    c.load = Load::Multiply(2);
    c.speed = Speed::Max;
    let r = tapedeck_replay::replay(c).await.unwrap();
    assert_eq!(r.total_requests(), 12);
    assert_eq!(seen.requests.load(Ordering::Relaxed), 12);
    assert_eq!(seen.connections.load(Ordering::Relaxed), 6);
    assert_eq!(r.total_failures(), 0);
    let names: Vec<&str> = r.endpoints.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, vec!["GET /a", "GET /b"]);
    assert_eq!(r.options["multiply"], 2);
    assert_eq!(r.journals.len(), 1);
    assert_eq!(r.journals[0].sha256.len(), 64);
    assert!(!r.partial);
}

#[tokio::test]
async fn users_count_is_honoured_with_run_time_loops() {
    let (addr, seen) = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path(), "http://api.example:80", &sessions(2, 50));
    let mut c = config(j, addr);
    c.load = Load::Users {
        users: 5,
        mix: None,
    };
    c.speed = Speed::Factor(1.0);
    c.run_time = Some(Duration::from_millis(1500));
    let r = tapedeck_replay::replay(c).await.unwrap();
    assert_eq!(
        seen.connections.load(Ordering::Relaxed),
        5,
        "one connection per VU"
    );
    // Looping: more than one pass of 5 users x 2 requests.
    assert!(r.total_requests() > 10, "{}", r.total_requests());
    assert_eq!(r.timeline.iter().map(|p| p.users).max(), Some(5));
}

#[tokio::test]
async fn speed_divides_recorded_think_time() {
    let (addr, seen) = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    // One session: /a at 0 s, /b at 10 s.
    let ex = vec![
        exchange(1, "s", 0, "GET", "/a", 200),
        exchange(2, "s", 10_000, "GET", "/b", 200),
    ];
    let j = journal(dir.path(), "http://api.example:80", &ex);
    let mut c = config(j, addr);
    c.speed = Speed::Factor(10.0);
    let r = tapedeck_replay::replay(c).await.unwrap();
    assert_eq!(r.total_requests(), 2);
    let arrivals = seen.arrivals.lock().unwrap().clone();
    let gap = arrivals[1].1 - arrivals[0].1;
    // 10 s recorded / 10 = 1 s; a wide band (correctness, not performance).
    assert!(
        gap >= Duration::from_millis(950) && gap < Duration::from_secs(5),
        "gap {gap:?}"
    );
}

#[tokio::test]
async fn stalled_server_shows_in_corrected_latency_not_only_service_time() {
    let (addr, _seen) = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    // The first request stalls 800 ms; the next three were due 50 ms apart
    // right after it, so they leave late and their latency counts the wait.
    let ex = vec![
        exchange(1, "s", 0, "GET", "/stall/800", 200),
        exchange(2, "s", 50, "GET", "/fast", 200),
        exchange(3, "s", 100, "GET", "/fast", 200),
        exchange(4, "s", 150, "GET", "/fast", 200),
    ];
    let j = journal(dir.path(), "http://api.example:80", &ex);
    let r = tapedeck_replay::replay(config(j, addr)).await.unwrap();
    let fast = r.endpoints.iter().find(|e| e.name == "GET /fast").unwrap();
    assert_eq!(fast.requests, 3);
    let corrected_min = fast.histogram.min();
    let service_max = fast.service_histogram.max();
    assert!(corrected_min >= 500_000, "corrected min {corrected_min} µs");
    assert!(service_max < 500_000, "service max {service_max} µs");
}

#[tokio::test]
async fn stage_plan_reaches_each_user_level() {
    let (addr, _seen) = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path(), "http://api.example:80", &sessions(2, 100));
    let mut c = config(j, addr);
    c.load = Load::Users {
        users: 0,
        mix: None,
    };
    c.stages = Some(vec![
        Stage {
            duration: Duration::from_millis(1000),
            users: 3,
        },
        Stage {
            duration: Duration::from_millis(1500),
            users: 3,
        },
        Stage {
            duration: Duration::from_millis(500),
            users: 6,
        },
        Stage {
            duration: Duration::from_millis(1500),
            users: 6,
        },
    ]);
    let r = tapedeck_replay::replay(c).await.unwrap();
    let users: Vec<u64> = r.timeline.iter().map(|p| p.users).collect();
    assert!(users.contains(&3), "{users:?}");
    assert!(users.contains(&6), "{users:?}");
    assert!(users.iter().all(|u| *u <= 6), "{users:?}");
}

#[tokio::test]
async fn failures_are_grouped_and_recorded_errors_are_not_failures() {
    let (addr, _seen) = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let ex = vec![
        exchange(1, "s", 0, "GET", "/boom", 200),
        exchange(2, "s", 10, "GET", "/notfound", 404),
        exchange(3, "s", 20, "GET", "/boom", 200),
    ];
    let j = journal(dir.path(), "http://api.example:80", &ex);
    let r = tapedeck_replay::replay(config(j, addr)).await.unwrap();
    assert_eq!(r.total_requests(), 3);
    assert_eq!(r.total_failures(), 2);
    assert_eq!(r.failures.len(), 1);
    assert_eq!(r.failures[0].error, "HTTP 500");
    assert_eq!(r.failures[0].count, 2);
    let nf = r
        .endpoints
        .iter()
        .find(|e| e.name == "GET /notfound")
        .unwrap();
    assert_eq!((nf.failures, nf.status_classes["4xx"]), (0, 1));
}

#[tokio::test]
async fn refused_connections_are_failures_and_the_run_still_ends() {
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path(), "http://api.example:80", &sessions(2, 10));
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let r = tapedeck_replay::replay(config(j, port)).await.unwrap();
    assert_eq!(r.total_requests(), 4);
    assert_eq!(r.total_failures(), 4);
    assert_eq!(r.failures[0].error, "connection refused");
    assert_eq!(r.endpoints[0].status_classes["error"], 2);
}

#[tokio::test]
async fn thresholds_pass_and_fail_as_written() {
    let (addr, _seen) = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path(), "http://api.example:80", &sessions(2, 10));
    let mut c = config(j, addr);
    c.thresholds = vec![
        "GET /a:p95<60000ms".into(),
        "error_rate<1%".into(),
        "GET /b:max<0.001ms".into(),
    ];
    let r = tapedeck_replay::replay(c).await.unwrap();
    let oks: Vec<bool> = r.thresholds.iter().map(|t| t.ok).collect();
    assert_eq!(oks, vec![true, true, false]);
    let mut bad = config(journal(dir.path(), "http://x:1", &sessions(1, 1)), addr);
    bad.thresholds = vec!["p95<<3".into()];
    let e = tapedeck_replay::replay(bad).await.unwrap_err().to_string();
    assert!(e.contains("--threshold"), "{e}");
}

#[tokio::test]
async fn shards_merge_to_the_totals_of_one_process() {
    let (addr, _seen) = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path(), "http://api.example:80", &sessions(3, 10));
    let mut whole = config(j.clone(), addr);
    whole.load = Load::Multiply(3);
    whole.speed = Speed::Max;
    let one = tapedeck_replay::replay(whole.clone()).await.unwrap();
    let mut shards = Vec::new();
    for index in 1..=2 {
        let mut c = whole.clone();
        c.shard = Some(ShardSpec { index, count: 2 });
        shards.push(tapedeck_replay::replay(c).await.unwrap());
    }
    assert_ne!(shards[0].total_requests(), 0);
    assert_ne!(shards[1].total_requests(), 0);
    let merged = tapedeck_analyze::merge::merge(&shards).unwrap();
    assert_eq!(merged.total_requests(), one.total_requests());
    for ep in &one.endpoints {
        let m = merged.endpoints.iter().find(|e| e.name == ep.name).unwrap();
        assert_eq!(m.requests, ep.requests, "{}", ep.name);
        assert_eq!(m.histogram.len(), ep.histogram.len(), "{}", ep.name);
    }
}

#[tokio::test]
async fn open_model_plays_each_recorded_session_once_at_the_rate() {
    let (addr, seen) = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path(), "http://api.example:80", &sessions(4, 10));
    let mut c = config(j, addr);
    c.rate = Some(20.0);
    c.load = Load::Users {
        users: 0,
        mix: None,
    };
    let r = tapedeck_replay::replay(c).await.unwrap();
    assert_eq!(r.total_requests(), 8);
    // Each arrival is a fresh VU with its own connection.
    assert_eq!(seen.connections.load(Ordering::Relaxed), 4);
}

#[tokio::test]
async fn production_guard_refuses_the_recorded_upstream() {
    let (addr, seen) = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path(), &format!("http://{addr}"), &sessions(1, 10));
    let e = tapedeck_replay::replay(config(j.clone(), addr))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("--allow-recorded-host"), "{e}");
    assert_eq!(seen.requests.load(Ordering::Relaxed), 0);
    let mut c = config(j, addr);
    c.allow_recorded_host = true;
    assert_eq!(
        tapedeck_replay::replay(c).await.unwrap().total_requests(),
        2
    );
}

#[tokio::test]
async fn users_and_mix_pick_sessions_by_role() {
    let (addr, seen) = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    // Two student sessions (feed) and one trainer session (creates a
    // product, which the profile's role rules make a trainer).
    let ex = vec![
        exchange(1, "student-1", 0, "GET", "/api/v1/social/feed", 200),
        exchange(2, "student-2", 5, "GET", "/api/v1/social/feed", 200),
        exchange(
            3,
            "trainer-1",
            10,
            "POST",
            "/api/v1/marketplace/products",
            201,
        ),
    ];
    let j = journal(dir.path(), "http://api.example:80", &ex);
    let mut c = config(j.clone(), addr);
    c.load = Load::Users {
        users: 10,
        mix: Some(vec![
            ("student".into(), 4.0),
            ("trainer".into(), 1.0),
            ("coach".into(), 1.0),
        ]),
    };
    c.speed = Speed::Max;
    let r = tapedeck_replay::replay(c).await.unwrap();
    // Every VU plays one session: 8 students, 2 trainers (coach has no
    // recorded session and is skipped).
    let by_name = |n: &str| {
        r.endpoints
            .iter()
            .find(|e| e.name == n)
            .map_or(0, |e| e.requests)
    };
    assert_eq!(by_name("Social Feed"), 8);
    assert_eq!(by_name("Create Product"), 2);
    assert_eq!(seen.connections.load(Ordering::Relaxed), 10);

    let mut none = config(j, addr);
    none.load = Load::Users {
        users: 1,
        mix: Some(vec![("coach".into(), 1.0)]),
    };
    let e = tapedeck_replay::replay(none).await.unwrap_err().to_string();
    assert!(e.contains("--mix") && e.contains("student"), "{e}");
}

#[tokio::test]
async fn h2_replays_over_one_connection_per_vu() {
    let (addr, seen) = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path(), "http://api.example:80", &sessions(2, 10));
    let mut c = config(j, addr);
    c.h2 = true;
    c.load = Load::Multiply(2);
    let r = tapedeck_replay::replay(c).await.unwrap();
    assert_eq!((r.total_requests(), r.total_failures()), (8, 0));
    assert_eq!(seen.connections.load(Ordering::Relaxed), 4);
}

#[tokio::test]
async fn slow_and_resetting_targets_are_failures_by_kind() {
    let (addr, _seen) = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let ex = vec![
        exchange(1, "s", 0, "GET", "/stall/3000", 200),
        exchange(2, "s", 10, "GET", "/after", 200),
    ];
    let j = journal(dir.path(), "http://api.example:80", &ex);
    let mut c = config(j.clone(), addr);
    c.timeout = Duration::from_millis(300);
    let r = tapedeck_replay::replay(c).await.unwrap();
    assert_eq!(r.failures.len(), 1);
    assert_eq!(
        (r.failures[0].error.as_str(), r.failures[0].count),
        ("timeout", 1)
    );
    // The VU reconnected and went on.
    let after = r.endpoints.iter().find(|e| e.name == "GET /after").unwrap();
    assert_eq!((after.requests, after.failures), (1, 0));

    // A server that accepts and closes every connection at once.
    let closer = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closer_addr = closer.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = closer.accept().await {
            drop(s);
        }
    });
    let r = tapedeck_replay::replay(config(j, closer_addr))
        .await
        .unwrap();
    assert_eq!(r.total_failures(), 2);
    assert!(
        r.failures.iter().all(|f| f.error.contains("connection")),
        "{:?}",
        r.failures
    );
}

#[tokio::test]
async fn metrics_endpoint_serves_prometheus_text_during_the_run() {
    let (addr, _seen) = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path(), "http://api.example:80", &sessions(2, 100));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut c = config(j, addr);
    c.load = Load::Users {
        users: 2,
        mix: None,
    };
    c.run_time = Some(Duration::from_millis(2500));
    c.metrics_listen = Some(port);
    let run = tokio::spawn(tapedeck_replay::replay(c));
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let mut s = tokio::net::TcpStream::connect(port).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut text))
        .await
        .unwrap()
        .unwrap();
    assert!(text.contains("tapedeck_active_users 2"), "{text}");
    assert!(
        text.contains("tapedeck_requests_total{endpoint=\"GET /a\"}"),
        "{text}"
    );
    assert!(text.contains("quantile=\"0.95\""), "{text}");
    run.await.unwrap().unwrap();
}

/// An https upstream for `localhost` with a certificate from a fresh CA;
/// returns its port and the CA's PEM file.
async fn tls_upstream(dir: &Path) -> (u16, PathBuf, Arc<Seen>) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let mut server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    )
    .unwrap();
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            let s = s.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                s.connections.fetch_add(1, Ordering::Relaxed);
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let s = s.clone();
                    async move {
                        s.requests.fetch_add(1, Ordering::Relaxed);
                        s.arrivals.lock().unwrap().push((
                            format!("{:?} {}", req.version(), req.uri().path()),
                            Instant::now(),
                        ));
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                            b"{}",
                        ))))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (port, ca_file, seen)
}

#[tokio::test]
async fn https_targets_over_http1_and_h2_with_an_extra_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (port, ca, seen) = tls_upstream(dir.path()).await;
    let j = journal(dir.path(), "http://api.example:80", &sessions(1, 10));
    let target = parse_target(&format!("https://localhost:{port}")).unwrap();
    for h2 in [false, true] {
        let mut c = ReplayConfig::new(vec![j.clone()], target.clone());
        c.ca_cert = Some(ca.clone());
        c.h2 = h2;
        let r = tapedeck_replay::replay(c).await.unwrap();
        assert_eq!(
            (r.total_requests(), r.total_failures()),
            (2, 0),
            "h2={h2}: {:?}",
            r.failures
        );
    }
    let versions: Vec<String> = seen
        .arrivals
        .lock()
        .unwrap()
        .iter()
        .map(|(v, _)| v.clone())
        .collect();
    assert_eq!(
        versions,
        vec!["HTTP/1.1 /a", "HTTP/1.1 /b", "HTTP/2.0 /a", "HTTP/2.0 /b"]
    );
    // Without the CA the certificate is not trusted: failures, not a crash
    // (or a clear error on a machine without any system roots).
    let c = ReplayConfig::new(vec![j], target);
    match tapedeck_replay::replay(c).await {
        Ok(r) => {
            assert_eq!(r.total_failures(), 2);
            assert!(r.failures[0].error.contains("TLS"), "{:?}", r.failures);
        }
        Err(e) => assert!(e.to_string().contains("no trusted CA"), "{e}"),
    }
}

#[tokio::test]
async fn origin_targets_route_each_recorded_origin_to_its_own_server() {
    let (api, api_seen) = upstream().await;
    let (cdn, cdn_seen) = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let mut a = exchange(
        1,
        "s",
        0,
        "GET",
        "https://api.corevia.app/api/v1/users/me",
        200,
    );
    a.upstream = Some("https://api.corevia.app".into());
    let mut b = exchange(2, "s", 10, "GET", "/img/1.png", 200);
    b.upstream = Some("https://cdn.corevia.app".into());
    let j = journal(dir.path(), "forward-proxy", &[a, b]);
    let mut c = config(j, api);
    c.targets = vec![
        parse_target(&format!("https://api.corevia.app=http://{api}")).unwrap(),
        parse_target(&format!("cdn.corevia.app:443=http://{cdn}")).unwrap(),
    ];
    let r = tapedeck_replay::replay(c).await.unwrap();
    assert_eq!((r.total_requests(), r.total_failures()), (2, 0));
    let paths = |s: &Seen| {
        s.arrivals
            .lock()
            .unwrap()
            .iter()
            .map(|(p, _)| p.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(paths(&api_seen), vec!["/api/v1/users/me"]);
    assert_eq!(paths(&cdn_seen), vec!["/img/1.png"]);
    assert!(
        r.target.contains("api.corevia.app:443=http://"),
        "{}",
        r.target
    );
}
