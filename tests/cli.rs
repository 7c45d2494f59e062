//! The command line as a whole: help, completions, exit codes.

use crate::common::tapedeck;

#[test]
fn help_lists_every_job() {
    let out = tapedeck().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in [
        "demo", "testbed", "simulate", "capture", "sessions", "replay", "analyze",
    ] {
        assert!(text.contains(cmd), "--help lacks {cmd}: {text}");
    }
}

#[test]
fn unknown_flag_exits_2() {
    let out = tapedeck()
        .args(["replay", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn completions_are_printed() {
    let out = tapedeck().args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("tapedeck"));
}
