//! `tapedeck demo` end to end: record, replay A/B/A, compare. The comparison
//! must name exactly release b's regressions: Social Feed slower, Analytics
//! Dashboard errors up, nothing else.
//!
//! This is a test binary of its own: cargo runs test binaries one after
//! another, so the demo's replays have the machine to themselves and its
//! latency verdicts mean something.

mod common;

use common::tapedeck;

#[test]
fn demo_names_exactly_the_regressions_of_release_b() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let run = tapedeck()
        .args(["demo", "--out", out.to_str().unwrap()])
        .args([
            "--record",
            "10s",
            "--replay",
            "8s",
            "--students",
            "9",
            "--trainers",
            "1",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "demo failed\n{stdout}\n{stderr}");
    for step in ["[1/", "recording", "replay 1/3", "comparing"] {
        assert!(
            stdout.contains(step),
            "no progress line {step:?}:\n{stdout}"
        );
    }
    for file in [
        "run-a1.json",
        "run-b.json",
        "run-a2.json",
        "compare.html",
        "run-b_stats.csv",
    ] {
        assert!(out.join(file).is_file(), "demo left no {file}");
    }
    assert!(std::fs::read_dir(out.join("journal")).unwrap().count() >= 1);
    for file in ["run-a1.json", "compare.html", "run-b_stats.csv"] {
        assert_eq!(
            common::mode(&out.join(file)),
            0o600,
            "{file} is not private"
        );
    }
    assert!(
        stdout.contains("[8/8]"),
        "progress counts its steps:\n{stdout}"
    );

    let cmp = tapedeck()
        .current_dir(&out)
        .args(["analyze", "compare", "--base", "run-a1.json", "run-a2.json"])
        .args(["--candidate", "run-b.json", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(
        cmp.status.code(),
        Some(1),
        "a regression must fail the gate"
    );
    let json: serde_json::Value = serde_json::from_slice(&cmp.stdout).unwrap();
    let mut flagged = Vec::new();
    for e in json["endpoints"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        let verdict = e["verdict"].as_str().unwrap();
        let errors = e["errors"].as_str().unwrap_or("~");
        if verdict != "~" && verdict != "?" {
            flagged.push(format!("{name}: {verdict}"));
        }
        if errors != "~" && errors != "?" {
            flagged.push(format!("{name}: errors {errors}"));
        }
    }
    flagged.sort();
    assert_eq!(
        flagged,
        ["Analytics Dashboard: errors up", "Social Feed: slower"],
        "demo output:\n{stdout}"
    );
}
