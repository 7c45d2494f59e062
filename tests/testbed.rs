//! End-to-end tests of `tapedeck testbed` and `tapedeck simulate`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;

use crate::common::{free_port, http, tapedeck, wait_for_port, ChildGuard};

#[test]
fn testbed_serves_health_and_exits_0_on_sigterm() {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut cmd = tapedeck();
    cmd.args(["testbed", "--listen", &addr.to_string(), "--release", "b"]);
    let child = ChildGuard::spawn(cmd);
    wait_for_port(addr);
    let (status, body) = http(addr, "GET", "/health", &[], "");
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["release"], "b");
    let (status, body) = http(
        addr,
        "POST",
        "/api/v1/auth/login",
        &[("Content-Type", "application/json")],
        r#"{"username":"trainer3","password":"corevia-pass"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let (code, out, err) = child.terminate();
    assert_eq!(code, Some(0), "stderr: {err}");
    assert_eq!(
        out.lines().next(),
        Some(format!("testbed release b listening on http://{addr}").as_str())
    );
}

#[test]
fn testbed_on_port_0_prints_its_address_first() {
    let mut cmd = tapedeck();
    cmd.args([
        "testbed",
        "--listen",
        "127.0.0.1:0",
        "--jwt-secret",
        "s3cret",
    ]);
    let mut child = ChildGuard::spawn(cmd);
    let stdout = child.0.stdout.take().unwrap();
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).unwrap();
    let url = first
        .trim()
        .strip_prefix("testbed release a listening on http://")
        .unwrap_or_else(|| panic!("first line: {first}"));
    let addr: SocketAddr = url.parse().unwrap();
    let (status, _) = http(addr, "GET", "/health", &[], "");
    assert_eq!(status, 200);
    let (code, _, err) = child.terminate();
    assert_eq!(code, Some(0), "stderr: {err}");
}

#[test]
fn simulate_prints_per_endpoint_counts() {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut cmd = tapedeck();
    cmd.args(["testbed", "--listen", &addr.to_string()]);
    let server = ChildGuard::spawn(cmd);
    wait_for_port(addr);
    let out = tapedeck()
        .args([
            "simulate",
            "--target",
            &format!("http://{addr}"),
            "--students",
            "4",
            "--trainers",
            "1",
            "--run-time",
            "1s",
            "--think-scale",
            "0.05",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("5 users"), "{stdout}");
    let login = stdout
        .lines()
        .find(|l| l.starts_with("Login "))
        .unwrap_or_else(|| panic!("no Login row: {stdout}"));
    let fields: Vec<&str> = login.split_whitespace().collect();
    assert_eq!(fields, ["Login", "5", "0"], "{stdout}");
    assert!(stdout.contains("Social Feed"), "{stdout}");
    assert!(
        stdout.lines().last().unwrap().starts_with("total"),
        "{stdout}"
    );
    let (code, _, _) = server.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn bad_flags_exit_2_with_one_line() {
    let out = tapedeck()
        .args([
            "simulate",
            "--target",
            "http://127.0.0.1:1",
            "--run-time",
            "10x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'10x'"));

    let port = free_port();
    let out = tapedeck()
        .args([
            "simulate",
            "--target",
            &format!("http://127.0.0.1:{port}"),
            "--run-time",
            "1s",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("tapedeck: simulate --target"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");

    let out = tapedeck()
        .args(["testbed", "--release", "c"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    // A port already in use names the flag and the address.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = tapedeck()
        .args(["testbed", "--listen", &addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("testbed --listen {addr}")), "{err}");
}
