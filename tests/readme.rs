//! The README cannot rot: every `tapedeck ...` command in its shell blocks
//! must parse with the current flags. (The flows themselves run for real in
//! the other modules: capture, replay, analyze, the demo.)

use crate::common::tapedeck;

/// Splits a shell line into words, honouring single and double quotes.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// Every `tapedeck` command line in the README's ```sh blocks, with
/// continuation lines joined and comments dropped.
fn readme_commands() -> Vec<String> {
    let readme = include_str!("../README.md");
    let mut cmds = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for line in readme.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            in_sh = t == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let code = t.split(" #").next().unwrap_or("").trim_end();
        if let Some(stripped) = code.strip_suffix('\\') {
            pending.push_str(stripped);
            pending.push(' ');
            continue;
        }
        pending.push_str(code);
        let full = std::mem::take(&mut pending);
        // Commands may follow `VAR=... ` or sit after `&&` / `|`.
        for part in full.split("&&").flat_map(|p| p.split('|')) {
            let p = part.trim();
            if let Some(i) = p.find("tapedeck ") {
                if i == 0 || p[..i].ends_with(' ') && !p[..i].contains('/') {
                    cmds.push(p[i..].to_string());
                }
            }
        }
    }
    cmds
}

#[test]
fn every_readme_command_parses() {
    let cmds = readme_commands();
    assert!(
        cmds.len() >= 20,
        "README lists only {} commands",
        cmds.len()
    );
    let mut bad = Vec::new();
    for cmd in &cmds {
        let words = shell_words(cmd);
        let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
        let out = tapedeck()
            .args(&args)
            .env("TAPEDECK_PARSE_ONLY", "1")
            .output()
            .unwrap();
        if !out.status.success() {
            bad.push(format!(
                "{cmd}\n    {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "README commands that no longer parse:\n{}",
        bad.join("\n")
    );
}

/// Rewrites a README command so it runs here, quickly: the example targets
/// become live sample APIs, durations shrink to seconds and user counts to
/// a handful, and the example session id becomes a recorded one.
fn localize(words: &[String], targets: &[(String, String)], session: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = words.iter().peekable();
    while let Some(w) = it.next() {
        let mut w = w.clone();
        for (from, to) in targets {
            w = w.replace(from.as_str(), to.as_str());
        }
        match w.as_str() {
            "--run-time" => {
                it.next();
                out.extend(["--run-time".to_string(), "2s".to_string()]);
            }
            "--users" => {
                let n: u64 = it.next().unwrap().parse().unwrap();
                out.extend(["--users".to_string(), n.min(10).to_string()]);
            }
            "--stages" => {
                let plan = it.next().unwrap();
                let short: Vec<String> = plan
                    .split(',')
                    .map(|st| {
                        let users: u64 = st.split(':').nth(1).unwrap().parse().unwrap();
                        format!("1s:{}", users.min(10))
                    })
                    .collect();
                out.extend(["--stages".to_string(), short.join(",")]);
            }
            "--session" => {
                it.next();
                out.extend(["--session".to_string(), session.to_string()]);
            }
            _ => out.push(w),
        }
    }
    out
}

/// Every README command that works on files (sessions, replay, analyze, ca,
/// completions, the `zstdcat | jq` one-liner) runs for real, in order, on a
/// journal captured from the sample API. Servers (`capture`, `testbed`,
/// `demo`) run in their own tests.
#[test]
fn readme_commands_run_for_real() {
    use crate::common::{testbed, ChildGuard};
    use std::io::{BufRead, BufReader};

    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let recorded = testbed();

    // Record a few simulated users into journals/.
    let mut cmd = tapedeck();
    cmd.args([
        "capture",
        "--upstream",
        &format!("http://{}", recorded.addr),
    ])
    .args(["--listen", "127.0.0.1:0", "--out"])
    .arg(dir.join("journals"));
    let mut capture = ChildGuard::spawn(cmd);
    let mut first = String::new();
    BufReader::new(capture.0.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let proxy = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .trim_end_matches(',')
        .to_string();
    let sim = tapedeck()
        .args([
            "simulate",
            "--target",
            &proxy,
            "--students",
            "5",
            "--trainers",
            "1",
        ])
        .args(["--run-time", "3s", "--think-scale", "0.3"])
        .output()
        .unwrap();
    assert!(
        sim.status.success(),
        "{}",
        String::from_utf8_lossy(&sim.stderr)
    );
    let (code, _, err) = capture.terminate();
    assert_eq!(code, Some(0), "{err}");

    // Inputs the README assumes: a devtools HAR, a credentials file, a
    // recorded session id.
    let run = |args: &[&str]| {
        let out = tapedeck().current_dir(dir).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    run(&["sessions", "export-har", "journals/", "-o", "devtools.har"]);
    let mut users = String::from("username,password,role\n");
    for i in 1..=tapedeck_testbed::server::SEEDED_STUDENTS {
        users.push_str(&format!("student{i},corevia-pass,student\n"));
    }
    for i in 1..=tapedeck_testbed::server::SEEDED_TRAINERS {
        users.push_str(&format!("trainer{i},corevia-pass,trainer\n"));
    }
    std::fs::write(dir.join("users.csv"), users).unwrap();
    let list = run(&["sessions", "list", "journals/", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let sessions = list
        .as_array()
        .or_else(|| list["sessions"].as_array())
        .expect("sessions list --json is a list");
    let session = sessions[0]["id"].as_str().unwrap().to_string();

    // Fresh sample APIs stand in for the README's example targets.
    let targets: Vec<_> = (0..3).map(|_| testbed()).collect();
    let map: Vec<(String, String)> = ["9000", "9001", "9002"]
        .iter()
        .zip(&targets)
        .map(|(port, t)| {
            (
                format!("http://127.0.0.1:{port}"),
                format!("http://{}", t.addr),
            )
        })
        .collect();

    let mut ran = 0;
    let readme = include_str!("../README.md");
    let oneliner = readme
        .lines()
        .find(|l| l.starts_with("zstdcat "))
        .expect("the README shows the zstdcat | jq one-liner");
    let out = std::process::Command::new("bash")
        .current_dir(dir)
        .args(["-c", &format!("set -o pipefail; {oneliner}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{oneliner}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("/api/v1/"));

    for cmd in readme_commands() {
        let words = shell_words(&cmd);
        let sub = words[1].as_str();
        if !matches!(
            sub,
            "sessions" | "replay" | "analyze" | "ca" | "completions"
        ) {
            continue;
        }
        let args = localize(&words[1..], &map, &session);
        let out = tapedeck()
            .current_dir(dir)
            .env("TAPEDECK_CA_DIR", dir.join("ca"))
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            matches!(out.status.code(), Some(0 | 1)) && !stderr.contains("panicked"),
            "README command failed: {cmd}\n  ran as: {args:?}\n  exit {:?}: {stderr}",
            out.status.code()
        );
        ran += 1;
    }
    assert!(ran >= 25, "only {ran} README commands ran");
    for file in [
        "a1.json",
        "b.json",
        "a2.json",
        "compare.html",
        "compare.md",
        "run.json",
        "students.jsonl.zst",
    ] {
        assert!(dir.join(file).is_file(), "README flow left no {file}");
    }
}
