//! A small HTTP/1.1 client for the tests: one connection per call.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tapedeck_testbed::{start, Release, RunningTestbed, TestbedConfig};
use tokio::net::TcpStream;

/// Starts a testbed of `release` on a free port.
pub async fn testbed(release: Release) -> RunningTestbed {
    start("127.0.0.1:0".parse().unwrap(), TestbedConfig::new(release))
        .await
        .expect("testbed starts")
}

/// Sends raw body bytes; returns status and JSON body (`Null` if none).
pub async fn call_raw(
    addr: SocketAddr,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("user-agent", "CoreVia/2.3 (iPhone; iOS 17.1)");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if !body.is_empty() {
        request = request.header("content-type", "application/json");
    }
    let request = request.body(Full::new(Bytes::from(body))).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(20), sender.send_request(request))
        .await
        .expect("answer within 20 s")
        .expect("a response");
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("a JSON body")
    };
    (status, value)
}

/// Sends `body` as JSON (nothing for `Value::Null`).
pub async fn call(
    addr: SocketAddr,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(&body).unwrap()
    };
    call_raw(addr, method, path, token, bytes).await
}

/// Logs a seeded user in; returns the token.
pub async fn login(addr: SocketAddr, username: &str) -> String {
    let (status, body) = call(
        addr,
        Method::POST,
        "/api/v1/auth/login",
        None,
        serde_json::json!({"username": username, "password": tapedeck_testbed::SEEDED_PASSWORD}),
    )
    .await;
    assert_eq!(status, 200, "login {username}: {body}");
    body["access_token"].as_str().unwrap().to_string()
}
