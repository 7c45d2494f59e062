//! End-to-end tests of correlation and per-VU identity.
//!
//! Record simulated CoreVia traffic through the capture proxy, then replay
//! it ten times over against a fresh testbed with another JWT secret: the
//! tokens, post ids and product ids of the recording mean nothing there, so
//! only correlation and per-VU credentials make the replay succeed. A
//! second capture proxy in front of the fresh testbed records what the
//! replay really sent, so the test counts distinct logged-in users and
//! checks every like and comment on the server's side too.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tapedeck_analyze::report::RunReport;
use tapedeck_sessions::Exchange;

use crate::common::{tapedeck, wait_for_port, ChildGuard};

/// Simulated students of the recording (the seeded pool has 45, so ten VUs
/// per recorded user still get distinct rows).
const STUDENTS: u32 = 4;
const MULTIPLY: usize = 10;

fn addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], crate::common::free_port()))
}

fn testbed(listen: SocketAddr, secret: &str) -> ChildGuard {
    let mut cmd = tapedeck();
    cmd.args([
        "testbed",
        "--listen",
        &listen.to_string(),
        "--jwt-secret",
        secret,
    ]);
    let child = ChildGuard::spawn(cmd);
    wait_for_port(listen);
    child
}

fn capture(listen: SocketAddr, upstream: SocketAddr, out: &Path) -> ChildGuard {
    let mut cmd = tapedeck();
    cmd.args(["capture", "--upstream", &format!("http://{upstream}")])
        .args(["--listen", &listen.to_string(), "--out"])
        .arg(out);
    let child = ChildGuard::spawn(cmd);
    wait_for_port(listen);
    child
}

fn stop(child: ChildGuard, what: &str) {
    let (code, out, err) = child.terminate();
    assert!(
        matches!(code, Some(0) | Some(130) | Some(143)),
        "{what} exited with {code:?}\n{out}\n{err}"
    );
}

fn journal(dir: &Path) -> Vec<Exchange> {
    let files = tapedeck_sessions::expand_paths(&[dir.to_path_buf()]).expect("journals written");
    tapedeck_sessions::read_all(&files)
        .expect("journals readable")
        .exchanges
}

/// Usernames of successful logins.
fn logged_in(exchanges: &[Exchange]) -> BTreeSet<String> {
    exchanges
        .iter()
        .filter(|e| e.path() == "/api/v1/auth/login" && e.status() == Some(200))
        .filter_map(|e| {
            let body: serde_json::Value = serde_json::from_slice(&e.request.body.data).ok()?;
            body["username"].as_str().map(str::to_string)
        })
        .collect()
}

/// Likes and comments, and how many of them the server answered 404.
fn post_targets(exchanges: &[Exchange]) -> (usize, usize) {
    let targets: Vec<&Exchange> = exchanges
        .iter()
        .filter(|e| {
            let p = e.path();
            p.starts_with("/api/v1/social/posts/")
                && (p.ends_with("/like") || p.ends_with("/comments"))
        })
        .collect();
    let missing = targets.iter().filter(|e| e.status() == Some(404)).count();
    (targets.len(), missing)
}

fn credentials(dir: &Path) -> PathBuf {
    let mut csv = String::from("username,password,role\n");
    let pw = tapedeck_testbed::SEEDED_PASSWORD;
    for i in 1..=tapedeck_testbed::server::SEEDED_STUDENTS {
        csv.push_str(&format!("student{i},{pw},student\n"));
    }
    for i in 1..=tapedeck_testbed::server::SEEDED_TRAINERS {
        csv.push_str(&format!("trainer{i},{pw},trainer\n"));
    }
    let path = dir.join("users.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

fn replay(journals: &Path, target: SocketAddr, report: &Path, extra: &[&str]) -> RunReport {
    let out = tapedeck()
        .arg("replay")
        .arg(journals)
        .args(["--target", &format!("http://{target}")])
        .args([
            "--multiply",
            &MULTIPLY.to_string(),
            "--speed",
            "10",
            "--no-fail",
        ])
        .arg("--report")
        .arg(report)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "replay {extra:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&std::fs::read(report).unwrap()).expect("run.json parses")
}

fn error_rate(r: &RunReport) -> f64 {
    r.total_failures() as f64 / r.total_requests().max(1) as f64
}

#[test]
fn replay_against_a_fresh_server_keeps_tokens_ids_and_identities_valid() {
    let dir = tempfile::tempdir().unwrap();
    let recorded = dir.path().join("recorded");

    // 1. Record a few seconds of simulated students.
    let (bed_a, cap_a) = (addr(), addr());
    let old = testbed(bed_a, "secret-of-the-recorded-server");
    let cap = capture(cap_a, bed_a, &recorded);
    let sim = tapedeck()
        .args(["simulate", "--target", &format!("http://{cap_a}")])
        .args(["--students", &STUDENTS.to_string(), "--trainers", "0"])
        .args(["--run-time", "4s", "--think-scale", "0.2", "--seed", "11"])
        .output()
        .unwrap();
    assert!(
        sim.status.success(),
        "simulate: {}",
        String::from_utf8_lossy(&sim.stderr)
    );
    stop(cap, "capture");
    drop(old);
    let recording = journal(&recorded);
    let recorded_users = logged_in(&recording);
    let (recorded_targets, _) = post_targets(&recording);
    assert!(!recorded_users.is_empty(), "the recording holds logins");
    assert!(recorded_targets > 0, "the recording likes or comments");

    // The listing shows the rules that make this work.
    let listing = tapedeck()
        .args(["sessions", "correlations"])
        .arg(&recorded)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.status.success(), "{text}");
    assert!(text.contains("json $.access_token"), "{text}");
    assert!(text.contains("header authorization (Bearer)"), "{text}");

    // 2. A fresh server: other secret, only its seed data.
    let (bed_b, cap_b) = (addr(), addr());
    let _fresh = testbed(bed_b, "a-different-secret");
    let seen = dir.path().join("replayed");
    let cap = capture(cap_b, bed_b, &seen);
    let users = credentials(dir.path());
    let users_arg = users.to_str().unwrap();
    let run = replay(
        &recorded,
        cap_b,
        &dir.path().join("run.json"),
        &["--credentials", users_arg],
    );
    stop(cap, "replay capture");

    let rate = error_rate(&run);
    assert!(
        rate < 0.01,
        "error rate {rate:.3} over {} requests; failures: {:?}",
        run.total_requests(),
        run.failures
    );
    assert!(
        !run.failures.iter().any(|f| f.error.contains("404")),
        "{:?}",
        run.failures
    );
    let substituted: u64 = run.endpoints.iter().map(|e| e.substituted).sum();
    assert!(substituted > 0, "correlation substituted nothing");
    // A value goes out uncorrelated only when the request producing it
    // failed, and none did.
    let uncorrelated: u64 = run.endpoints.iter().map(|e| e.uncorrelated).sum();
    assert!(
        uncorrelated <= run.total_failures(),
        "{uncorrelated} uncorrelated sends"
    );

    let replayed = journal(&seen);
    let (targets, missing) = post_targets(&replayed);
    assert!(
        targets >= recorded_targets * MULTIPLY / 2,
        "{targets} likes/comments replayed"
    );
    assert_eq!(missing, 0, "likes/comments on posts the fresh server lacks");
    let replay_users = logged_in(&replayed);
    assert!(
        replay_users.len() >= MULTIPLY * recorded_users.len(),
        "{} distinct users logged in, recorded {}",
        replay_users.len(),
        recorded_users.len()
    );

    // 3. The same replay verbatim fails: stale tokens and ids.
    let off = replay(
        &recorded,
        bed_b,
        &dir.path().join("off.json"),
        &["--credentials", users_arg, "--no-correlation"],
    );
    assert!(
        error_rate(&off) > 0.5,
        "error rate without correlation {}",
        error_rate(&off)
    );
    let auth_or_missing: u64 = off
        .failures
        .iter()
        .filter(|f| f.error.contains("401") || f.error.contains("404"))
        .map(|f| f.count)
        .sum();
    assert!(
        auth_or_missing * 2 > off.total_failures(),
        "failures not mostly 401/404: {:?}",
        off.failures
    );
}

#[test]
fn correlations_listing_rejects_bad_rules_file() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.json");
    std::fs::write(&rules, "{\"veto\": 1}").unwrap();
    let out = tapedeck()
        .args([
            "sessions",
            "correlations",
            "nope.jsonl.zst",
            "--correlation",
        ])
        .arg(&rules)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("tapedeck: ") && err.lines().count() == 1,
        "{err}"
    );
    assert!(err.contains("rules.json"), "{err}");
}
