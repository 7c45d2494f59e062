//! End-to-end tests of `tapedeck analyze` through the real binary: exit
//! codes, the compare JSON shape, merge, check, and bad input.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use tapedeck_analyze::report::{new_histogram, EndpointReport, FailureGroup, RunReport, Shard};

use crate::common::tapedeck;

/// A deterministic pseudo-random stream (LCG) for latencies.
struct Lcg(u64);

impl Lcg {
    fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A CoreVia-shaped run: `feed` scales Social Feed's latency,
/// `dashboard_failures` of 1000 Analytics Dashboard requests fail.
fn run(label: &str, seed: u64, feed: f64, dashboard_failures: u64) -> RunReport {
    // Built from JSON: the root package does not depend on chrono.
    let mut r: RunReport = serde_json::from_value(serde_json::json!({
        "format": "tapedeck-run", "version": 1, "label": label,
        "started": "2026-11-26T12:00:00Z", "ended": "2026-11-26T12:00:30Z",
        "target": "http://127.0.0.1:9000", "journals": [], "options": {}, "shard": null,
        "endpoints": [], "timeline": [], "failures": [], "thresholds": []
    }))
    .unwrap();
    r.options.insert("users".into(), 20.into());
    r.options.insert("speed".into(), 10.into());
    let mut rng = Lcg(seed);
    for (name, median_ms, n) in [
        ("Social Feed", 40.0, 2000u64),
        ("Analytics Dashboard", 80.0, 1000),
        ("Like Post", 15.0, 1000),
        ("Login", 60.0, 20),
    ] {
        let scale = if name == "Social Feed" { feed } else { 1.0 };
        let mut h = new_histogram();
        for _ in 0..n {
            // Log-normal-ish: exp of a sum of uniforms.
            let z = (rng.unit() + rng.unit() + rng.unit() - 1.5) * 0.8;
            h.record((median_ms * 1000.0 * scale * z.exp()) as u64)
                .unwrap();
        }
        let mut ep = EndpointReport::new(name, "GET", h.clone(), h);
        ep.requests = n;
        if name == "Analytics Dashboard" && dashboard_failures > 0 {
            ep.failures = dashboard_failures;
            r.failures.push(FailureGroup {
                endpoint: name.into(),
                error: "HTTP 500".into(),
                count: dashboard_failures,
            });
        }
        r.endpoints.push(ep);
    }
    r
}

fn write(dir: &Path, name: &str, r: &RunReport) -> PathBuf {
    let p = dir.join(name);
    r.write(&p).unwrap();
    p
}

fn analyze(args: &[&str]) -> Output {
    tapedeck().arg("analyze").args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

#[test]
fn compare_exit_codes_and_json_shape() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.json", &run("release-a", 1, 1.0, 0));
    let a2 = write(dir.path(), "a2.json", &run("release-a", 2, 1.0, 0));
    let b = write(dir.path(), "b.json", &run("release-b", 3, 1.3, 20));
    let (a, a2, b) = (
        a.to_str().unwrap(),
        a2.to_str().unwrap(),
        b.to_str().unwrap(),
    );

    // Same build: exit 0, every endpoint `~` (Login has too few requests: `?`).
    let out = analyze(&[
        "compare",
        "--base",
        a,
        "--candidate",
        a2,
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["format"], "tapedeck-compare");
    assert_eq!(j["version"], 1);
    assert!(j["errors"].is_array() && j["warnings"].is_array());
    assert!(j["geomean"]["p50"].is_number());
    let verdicts: Vec<(String, String)> = j["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().into(),
                e["verdict"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(verdicts.len(), 4);
    for (name, v) in &verdicts {
        let want = if name == "Login" { "?" } else { "~" };
        assert_eq!(v, want, "{name}");
    }

    // Release b: Social Feed slower, Analytics Dashboard errors up, exit 1.
    let out = analyze(&["compare", "--base", a, "--candidate", b, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ep = |name: &str| {
        j["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(ep("Social Feed")["verdict"], "slower");
    assert_eq!(ep("Social Feed")["errors"], "~");
    assert!(ep("Social Feed")["p_value"].as_f64().unwrap() < 1e-6);
    assert!(ep("Social Feed")["change"]["p50"].as_f64().unwrap() > 0.2);
    assert_eq!(ep("Analytics Dashboard")["verdict"], "~");
    assert_eq!(ep("Analytics Dashboard")["errors"], "up");
    assert_eq!(ep("Like Post")["verdict"], "~");
    assert_eq!(ep("Like Post")["errors"], "~");
    assert_eq!(j["errors"][0]["endpoint"], "Analytics Dashboard");
    assert_eq!(j["errors"][0]["candidate"], 20);
    for e in j["endpoints"].as_array().unwrap() {
        let v = e["verdict"].as_str().unwrap();
        assert!(["slower", "faster", "~", "?"].contains(&v), "{v}");
    }
    assert!(j["warnings"][0]
        .as_str()
        .unwrap()
        .contains("one run on a side"));

    // --no-fail reports but exits 0; the text table names the verdicts.
    let out = analyze(&["compare", "--base", a, "--candidate", b, "--no-fail"]);
    assert_eq!(out.status.code(), Some(0));
    let t = text(&out.stdout);
    assert!(
        t.contains("slower") && t.contains("SLOWER: Social Feed"),
        "{t}"
    );
    assert!(t.contains("ERRORS UP: Analytics Dashboard"), "{t}");
    assert!(!t.contains('\x1b'), "no colour when not a terminal");

    // Markdown and HTML to a file; the text summary still goes to stdout.
    let html = dir.path().join("diff.html");
    let out = analyze(&[
        "compare",
        a,
        b,
        "--format",
        "html",
        "-o",
        html.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains("Social Feed"));
    assert!(text(&out.stdout).contains("Result:"));
    let out = analyze(&[
        "compare",
        "--base",
        a,
        "--candidate",
        b,
        "--format",
        "md",
        "--no-fail",
    ]);
    let md = text(&out.stdout);
    assert!(
        md.contains("| Social Feed |") && md.contains("**slower**"),
        "{md}"
    );
}

#[test]
fn compare_warns_loudly_when_options_differ() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.json", &run("a", 1, 1.0, 0));
    let mut other = run("a", 2, 1.0, 0);
    other.options.insert("users".into(), 200.into());
    let b = write(dir.path(), "b.json", &other);
    let out = analyze(&[
        "compare",
        "--base",
        a.to_str().unwrap(),
        "--candidate",
        b.to_str().unwrap(),
    ]);
    let t = text(&out.stdout);
    assert!(
        t.contains("WARNING: OPTIONS DIFFER") && t.contains("users"),
        "{t}"
    );
}

#[test]
fn analyze_bad_input_exits_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.json", &run("a", 1, 1.0, 0));
    let a = a.to_str().unwrap();
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{\"format\":\"tapedeck-run\",\"version\":1}").unwrap();
    let notjson = dir.path().join("notjson.json");
    std::fs::write(&notjson, "\x00\x01garbage").unwrap();
    let missing = dir.path().join("missing.json");
    for (args, needle) in [
        (
            vec![
                "compare",
                "--base",
                a,
                "--candidate",
                missing.to_str().unwrap(),
            ],
            "missing.json",
        ),
        (
            vec![
                "compare",
                "--base",
                a,
                "--candidate",
                junk.to_str().unwrap(),
            ],
            "junk.json",
        ),
        (vec!["show", notjson.to_str().unwrap()], "notjson.json"),
        (
            vec!["compare", "--base", a, "--candidate", a, "--noise", "lots"],
            "--noise",
        ),
        (
            vec!["check", a, "--threshold", "Social Feed:p95<<fast"],
            "--threshold",
        ),
        (vec!["compare", "--base", a], "--candidate"),
        (
            vec![
                "merge",
                a,
                "-o",
                dir.path().join("m.json").to_str().unwrap(),
            ],
            "not a shard",
        ),
    ] {
        let out = analyze(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(
            err.trim().lines().count() <= 3,
            "{args:?}: short message: {err}"
        );
    }
}

#[test]
fn merge_shards_then_show_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for i in 1..=2u32 {
        let mut r = run("sharded", u64::from(i), 1.0, 0);
        r.shard = Some(Shard { index: i, count: 2 });
        paths.push(write(dir.path(), &format!("s{i}.json"), &r));
    }
    let merged = dir.path().join("run.json");
    let p: Vec<&str> = paths.iter().map(|p| p.to_str().unwrap()).collect();
    let out = analyze(&["merge", p[0], p[1], "-o", merged.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let m = RunReport::read(&merged).unwrap();
    assert_eq!(m.total_requests(), 2 * 4020);
    assert_eq!(m.endpoints[0].histogram.len(), 4000);
    assert_eq!(m.shard, None);

    // The same shard twice is refused.
    let out = analyze(&[
        "merge",
        p[0],
        p[0],
        "-o",
        dir.path().join("x.json").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("given twice"));

    let out = analyze(&["show", merged.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let t = text(&out.stdout);
    assert!(
        t.contains("Aggregated") && t.contains("95%ile") && t.contains("8040"),
        "{t}"
    );

    // CoreVia plan: Social Feed p95 (~70 ms) is within target: exit 0.
    let out = analyze(&["check", merged.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("Social Feed p95"));
    // A critical p95 exits 1.
    let slow = write(dir.path(), "slow.json", &run("slow", 5, 30.0, 0));
    let out = analyze(&["check", slow.to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    let feed = j["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["what"] == "Social Feed p95")
        .unwrap();
    assert_eq!(feed["status"], "critical");
    // A failing --threshold exits 1 too.
    let out = analyze(&[
        "check",
        merged.to_str().unwrap(),
        "--threshold",
        "Like Post:p95<1ms",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("FAILED Like Post:p95<1ms"));
}
