//! End-to-end tests of `tapedeck replay` through the real binary against the
//! embedded testbed on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tapedeck_sessions::{Exchange, JournalWriter};

use crate::common::{mode, tapedeck, testbed, ChildGuard};

/// A journal of `sessions` sessions, each: User Profile, then Social Feed
/// `gap_ms` later, both recorded unauthenticated (401).
fn journal(dir: &Path, upstream: &str, sessions: usize, gap_ms: i64) -> PathBuf {
    let path = dir.join("capture.jsonl.zst");
    let mut w = JournalWriter::create_file(&path, upstream).unwrap();
    let mut id = 0;
    for s in 0..sessions {
        for (i, uri) in ["/api/v1/users/me", "/api/v1/social/feed?limit=5"]
            .iter()
            .enumerate()
        {
            id += 1;
            let ms = s as i64 * 5 + i as i64 * gap_ms;
            // Built from its journal line: the started time is RFC 3339 text.
            let ex: Exchange = serde_json::from_value(serde_json::json!({
                "id": id,
                "session": format!("client:{s}"),
                "conn": s,
                "started": format!("2026-11-26T10:{:02}:{:02}.{:03}Z", ms / 60_000, (ms / 1000) % 60, ms % 1000),
                "client": format!("10.0.0.{s}:4000"),
                "request": {"method": "GET", "uri": uri, "version": "HTTP/1.1",
                            "headers": [["accept", "application/json"]], "body": ""},
                "response": {"status": 401, "headers": [],
                             "body": "{\"detail\":\"Not authenticated\"}"},
                "error": null, "ttfb_us": 900, "duration_us": 1000
            }))
            .unwrap();
            w.write(&ex).unwrap();
            // One frame per exchange, so damage costs single exchanges.
            w.flush().unwrap();
        }
    }
    w.finish().unwrap();
    path
}

const LOCUST_STATS: &str = "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%";
const LOCUST_HISTORY: &str = "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,Total Request Count,Total Failure Count,Total Median Response Time,Total Average Response Time,Total Min Response Time,Total Max Response Time,Total Average Content Size";

#[test]
fn replay_writes_report_locust_csvs_hlog_and_html() {
    let tb = testbed();
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path(), "https://api.corevia.app", 3, 200);
    let prefix = dir.path().join("run");
    let report = dir.path().join("run.json");
    let hlog = dir.path().join("run.hlog");
    let html = dir.path().join("run.html");
    let out = tapedeck()
        .arg("replay")
        .arg(&j)
        .args(["--target", &format!("http://{}", tb.addr)])
        .args(["--multiply", "2", "--speed", "10", "--label", "a"])
        .arg("--report")
        .arg(&report)
        .arg("--csv")
        .arg(&prefix)
        .arg("--hlog")
        .arg(&hlog)
        .arg("--html")
        .arg(&html)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("User Profile") && stdout.contains("Social Feed"),
        "{stdout}"
    );

    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(run["format"], "tapedeck-run");
    assert_eq!(run["label"], "a");
    assert_eq!(run["options"]["multiply"], 2);
    assert_eq!(run["options"]["speed"], 10.0);
    assert_eq!(run["partial"], false);
    let requests: u64 = run["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(requests, 12);
    // The replayer's own accuracy is in the report (sends after a recorded
    // think time; a session's first request starts it).
    let sends = run["lateness"]["sends"].as_u64().unwrap();
    assert!((1..=12).contains(&sends), "{sends}");
    assert!(
        run["lateness"]["p99_ms"].as_f64().unwrap() >= run["lateness"]["p50_ms"].as_f64().unwrap()
    );
    // Recorded 401 and live 401: not failures.
    assert_eq!(run["failures"].as_array().unwrap().len(), 0);

    let stats = std::fs::read_to_string(format!("{}_stats.csv", prefix.display())).unwrap();
    let lines: Vec<&str> = stats.split("\r\n").collect();
    assert_eq!(lines[0], LOCUST_STATS);
    assert!(
        lines.iter().any(|l| l.starts_with(",Aggregated,12,0,")),
        "{stats}"
    );
    let history =
        std::fs::read_to_string(format!("{}_stats_history.csv", prefix.display())).unwrap();
    assert_eq!(history.split("\r\n").next(), Some(LOCUST_HISTORY));
    let failures = std::fs::read_to_string(format!("{}_failures.csv", prefix.display())).unwrap();
    assert_eq!(failures, "Method,Name,Error,Occurrences\r\n");
    let exceptions =
        std::fs::read_to_string(format!("{}_exceptions.csv", prefix.display())).unwrap();
    assert_eq!(exceptions, "Count,Message,Traceback,Nodes\r\n");

    let log = std::fs::read_to_string(&hlog).unwrap();
    assert!(log.contains("#[Histogram log format version 1.3]"), "{log}");
    assert!(log.contains("Tag=User_Profile,"), "{log}");
    assert!(std::fs::read_to_string(&html).unwrap().contains("<html"));
    for f in [&report, &hlog, &html] {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
}

#[test]
fn replay_threshold_breach_exits_1_unless_no_fail() {
    let tb = testbed();
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path(), "https://api.corevia.app", 1, 10);
    let report = dir.path().join("run.json");
    let run = |extra: &[&str]| {
        tapedeck()
            .arg("replay")
            .arg(&j)
            .args(["--target", &format!("http://{}", tb.addr), "--quiet"])
            .arg("--report")
            .arg(&report)
            .args(extra)
            .output()
            .unwrap()
    };
    let pass = run(&[
        "--threshold",
        "User Profile:p95<60000ms",
        "--threshold",
        "rps>0",
    ]);
    assert_eq!(
        pass.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&pass.stderr)
    );
    let fail = run(&["--threshold", "Social Feed:max<0.001ms"]);
    assert_eq!(fail.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&fail.stderr).contains("Social Feed:max<0.001ms"));
    let run_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(run_json["thresholds"][0]["ok"], false);
    let no_fail = run(&["--threshold", "Social Feed:max<0.001ms", "--no-fail"]);
    assert_eq!(no_fail.status.code(), Some(0));
}

#[test]
fn replay_refuses_the_recorded_upstream() {
    let tb = testbed();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{}", tb.addr);
    let j = journal(dir.path(), &url, 1, 10);
    let out = tapedeck()
        .arg("replay")
        .arg(&j)
        .args(["--target", &url, "--quiet"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--allow-recorded-host"), "{err}");
    let ok = tapedeck()
        .arg("replay")
        .arg(&j)
        .args(["--target", &url, "--quiet", "--allow-recorded-host"])
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0));
}

#[test]
fn replay_bad_flags_exit_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path(), "https://api.corevia.app", 1, 10);
    let cases: &[(&[&str], &str)] = &[
        (&["--speed", "0"], "--speed"),
        (&["--stages", "1m"], "--stages"),
        (&["--shard", "3/2"], "--shard"),
        (&["--run-time", "5 days"], "--run-time"),
        (&["--mix", "student"], "--mix"),
        (&["--threshold", "p95<<1"], "--threshold"),
        (&["--users", "0"], "--users"),
    ];
    for (flags, name) in cases {
        let out = tapedeck()
            .arg("replay")
            .arg(&j)
            .args(["--target", "http://127.0.0.1:9"])
            .args(*flags)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {err}");
        assert!(err.contains(name), "{flags:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{flags:?}: {err}");
    }
    let out = tapedeck()
        .args([
            "replay",
            "missing.jsonl.zst",
            "--target",
            "http://127.0.0.1:9",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.jsonl.zst"));
    let out = tapedeck()
        .arg("replay")
        .arg(&j)
        .args(["--target", "ftp://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn replay_sigterm_writes_a_partial_report() {
    let tb = testbed();
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path(), "https://api.corevia.app", 2, 100);
    let report = dir.path().join("run.json");
    let mut cmd = tapedeck();
    cmd.arg("replay")
        .arg(&j)
        .args(["--target", &format!("http://{}", tb.addr)])
        .args(["--users", "4", "--run-time", "60s", "--quiet"])
        .arg("--report")
        .arg(&report);
    let child = ChildGuard::spawn(cmd);
    std::thread::sleep(Duration::from_millis(1500));
    let (code, _out, err) = child.terminate();
    assert_eq!(code, Some(0), "{err}");
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(run["partial"], true);
    assert!(run["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["requests"].as_u64() > Some(0)));
}

#[test]
fn replay_of_a_journal_with_a_damaged_middle_says_what_it_skipped() {
    let tb = testbed();
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path(), "https://api.corevia.app", 10, 10);
    let mut data = std::fs::read(&j).unwrap();
    let mid = data.len() / 2;
    for b in &mut data[mid..mid + 16] {
        *b ^= 0x5a;
    }
    std::fs::write(&j, &data).unwrap();
    let report = dir.path().join("run.json");
    let out = tapedeck()
        .arg("replay")
        .arg(&j)
        .args([
            "--target",
            &format!("http://{}", tb.addr),
            "--quiet",
            "--speed",
            "max",
        ])
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning") && err.contains("corrupt") && err.contains("capture.jsonl.zst"),
        "{err}"
    );
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let requests: u64 = run["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["requests"].as_u64().unwrap())
        .sum();
    assert!(requests > 10 && requests < 20, "{requests}");
}

/// The scaling recipe as local processes: N `replay --shard I/N` processes
/// at once, then `analyze merge`, add up exactly to one process's run.
#[test]
fn shard_processes_merge_to_the_totals_of_one_process() {
    let tb = testbed();
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path(), "https://api.corevia.app", 5, 100);
    let target = format!("http://{}", tb.addr);
    let replay = |extra: &[&str], report: &Path| {
        let mut cmd = tapedeck();
        cmd.arg("replay")
            .arg(&j)
            .args([
                "--target",
                &target,
                "--multiply",
                "3",
                "--speed",
                "max",
                "--quiet",
            ])
            .args(extra)
            .arg("--report")
            .arg(report);
        cmd
    };
    let one = dir.path().join("one.json");
    let out = replay(&[], &one).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let shards: Vec<PathBuf> = (1..=3)
        .map(|i| dir.path().join(format!("shard-{i}.json")))
        .collect();
    let children: Vec<_> = shards
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let spec = format!("{}/3", i + 1);
            ChildGuard::spawn(replay(&["--shard", &spec], p))
        })
        .collect();
    for child in children {
        let (code, _, err) = child.terminate_when_done();
        assert_eq!(code, Some(0), "{err}");
    }
    let merged = dir.path().join("merged.json");
    let out = tapedeck()
        .args(["analyze", "merge"])
        .args(&shards)
        .arg("-o")
        .arg(&merged)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let read = |p: &Path| tapedeck_analyze::RunReport::read(p).unwrap();
    let (one, merged) = (read(&one), read(&merged));
    assert_eq!(merged.total_requests(), one.total_requests());
    assert_eq!(
        merged.total_requests(),
        5 * 2 * 3,
        "every VU replays its session once"
    );
    for ep in &one.endpoints {
        let m = merged.endpoints.iter().find(|e| e.name == ep.name).unwrap();
        assert_eq!(
            (m.requests, m.failures),
            (ep.requests, ep.failures),
            "{}",
            ep.name
        );
        assert_eq!(m.histogram.len(), ep.histogram.len(), "{}", ep.name);
    }
}
