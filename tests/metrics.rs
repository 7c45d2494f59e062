//! `--metrics-listen` on capture and replay: the Prometheus text they serve
//! parses with Prometheus's own Python parser (`prometheus_client`, which
//! `.ci/run` installs).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{free_port, http, tapedeck, wait_for_port, ChildGuard};

/// Starts `tapedeck ARGS` and returns it with the address of its first
/// stdout line (`... listening on http://ADDR ...`).
fn service(args: &[&str]) -> (ChildGuard, SocketAddr) {
    let mut cmd = tapedeck();
    cmd.args(args);
    let mut guard = ChildGuard::spawn(cmd);
    let stdout = guard.0.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches(',')
        .parse()
        .unwrap();
    (guard, addr)
}

/// Metric family names, as Prometheus's Python parser reads `text`.
fn parse_with_prometheus_client(text: &str) -> Vec<String> {
    let mut py = Command::new("python3")
        .args([
            "-c",
            "import sys\nfrom prometheus_client.parser import text_string_to_metric_families as parse\nfor f in parse(sys.stdin.read()):\n    print(f.name, len(f.samples))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    use std::io::Write;
    py.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client rejected the exposition (is it installed? .ci/run installs it):\n{}\n---\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.to_string())
        .collect()
}

#[test]
fn capture_and_replay_metrics_parse_as_prometheus_text() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let (_upstream, upstream) = service(&["testbed", "--listen", "127.0.0.1:0"]);

    let metrics_port = free_port();
    let metrics: SocketAddr = format!("127.0.0.1:{metrics_port}").parse().unwrap();
    let (capture, proxy) = service(&[
        "capture",
        "--upstream",
        &format!("http://{upstream}"),
        "--listen",
        "127.0.0.1:0",
        "--out",
        journal.to_str().unwrap(),
        "--metrics-listen",
        &metrics.to_string(),
    ]);
    wait_for_port(metrics);
    let login = r#"{"username":"student3","password":"corevia-pass"}"#;
    for _ in 0..5 {
        let (status, _) = http(
            proxy,
            "POST",
            "/api/v1/auth/login",
            &[("Content-Type", "application/json")],
            login,
        );
        assert_eq!(status, 200);
    }
    let (status, text) = http(metrics, "GET", "/metrics", &[], "");
    assert_eq!(status, 200, "{text}");
    let families = parse_with_prometheus_client(&text);
    assert!(
        families.len() >= 3,
        "capture exposes too little: {families:?}"
    );
    let (code, _, err) = capture.terminate();
    assert_eq!(code, Some(0), "{err}");

    // Replay what was captured, with metrics on, and read them mid-run.
    let (_target, target) = service(&["testbed", "--listen", "127.0.0.1:0"]);
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut cmd = tapedeck();
    cmd.args([
        "replay",
        journal.to_str().unwrap(),
        "--target",
        &format!("http://{target}"),
        "--users",
        "3",
        "--speed",
        "10",
        "--run-time",
        "6s",
        "--quiet",
        "--metrics-listen",
        &metrics.to_string(),
    ]);
    let replay = ChildGuard::spawn(cmd);
    wait_for_port(metrics);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut families = Vec::new();
    while Instant::now() < deadline {
        let (status, text) = http(metrics, "GET", "/metrics", &[], "");
        assert_eq!(status, 200, "{text}");
        families = parse_with_prometheus_client(&text);
        if text.contains("Login") {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        families.len() >= 3,
        "replay exposes too little: {families:?}"
    );
    drop(replay);
}
