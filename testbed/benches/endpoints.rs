//! Round trips of a few endpoints on release a and release b, over one
//! keep-alive HTTP/1.1 connection each: the feed regression shows here,
//! and the other endpoints should not move.
//!
//! `cargo bench -p tapedeck-testbed --bench endpoints`

use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tapedeck_testbed::{start, Release, RunningTestbed, TestbedConfig, SEEDED_PASSWORD};
use tokio::runtime::Runtime;

struct Client {
    sender: SendRequest<Full<Bytes>>,
    token: String,
}

async fn connect(release: Release) -> (Client, RunningTestbed) {
    let testbed = start(
        "127.0.0.1:0".parse().expect("a socket address"),
        TestbedConfig::new(release),
    )
    .await
    .expect("testbed starts");
    let stream = tokio::net::TcpStream::connect(testbed.addr())
        .await
        .expect("connect");
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let mut client = Client {
        sender,
        token: String::new(),
    };
    let login = format!(r#"{{"username":"student1","password":"{SEEDED_PASSWORD}"}}"#);
    let body = client.send("POST", "/api/v1/auth/login", login).await;
    let value: serde_json::Value = serde_json::from_slice(&body).expect("login answers JSON");
    client.token = value["access_token"].as_str().expect("a token").to_string();
    (client, testbed)
}

impl Client {
    async fn send(&mut self, method: &str, path: &str, body: String) -> Bytes {
        self.sender.ready().await.expect("connection open");
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "testbed")
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("a valid request");
        let response = self.sender.send_request(request).await.expect("a response");
        response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes()
    }
}

fn endpoints(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let cases = [
        ("Social Feed", "GET", "/api/v1/social/feed?limit=20"),
        (
            "Marketplace Browse",
            "GET",
            "/api/v1/marketplace/products?limit=20",
        ),
        ("Like Post", "POST", "/api/v1/social/posts/7/like"),
    ];
    let mut group = c.benchmark_group("round trip");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    for release in [Release::A, Release::B] {
        let (mut client, testbed) = rt.block_on(connect(release));
        for (name, method, path) in cases {
            group.bench_function(format!("{name}, release {release}"), |b| {
                b.iter(|| run(&rt, &mut client, method, path))
            });
        }
        rt.block_on(testbed.shutdown());
    }
    group.finish();
}

fn run(rt: &Runtime, client: &mut Client, method: &str, path: &str) -> Bytes {
    rt.block_on(client.send(method, path, String::new()))
}

criterion_group!(benches, endpoints);
criterion_main!(benches);
