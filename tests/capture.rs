//! End-to-end tests of `tapedeck capture` through the real binary.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{free_port, http, mode, tapedeck, testbed, wait_for_port, ChildGuard};

/// Starts `tapedeck capture` and waits for its first stdout line.
fn start_capture(args: &[&str]) -> (ChildGuard, SocketAddr, String) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut cmd = tapedeck();
    cmd.args(["capture", "--listen", &listen]).args(args);
    let mut child = ChildGuard::spawn(cmd);
    let stdout = child.0.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout);
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    // Nothing else is printed before shutdown, so no buffered line is lost.
    child.0.stdout = Some(reader.into_inner());
    let addr: SocketAddr = listen.parse().unwrap();
    wait_for_port(addr);
    (child, addr, first)
}

/// `GET path` on a fresh connection; `None` when the proxy is not there
/// (or died mid-request).
fn try_get(addr: SocketAddr, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw);
    text.split_whitespace().nth(1)?.parse().ok()
}

fn journal_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".jsonl.zst"))
        .collect();
    files.sort();
    files
}

#[test]
fn capture_records_simulated_users_and_stops_cleanly_on_sigterm() {
    let testbed = testbed();
    let (rt, tb) = (&testbed.runtime, testbed.addr);
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("journals");
    let upstream = format!("http://{tb}");
    let (child, proxy, first) = start_capture(&[
        "--upstream",
        &upstream,
        "--out",
        dir.to_str().unwrap(),
        "--flush-every",
        "100ms",
    ]);
    assert_eq!(
        first.trim_end(),
        format!(
            "capture listening on http://{proxy} -> {upstream}, writing {}",
            dir.display()
        )
    );

    let mut sim = tapedeck_testbed::SimConfig::new(format!("http://{proxy}"));
    sim.students = 4;
    sim.trainers = 1;
    sim.run_time = Duration::from_secs(2);
    sim.think_scale = 0.02;
    let summary = rt.block_on(tapedeck_testbed::simulate(sim)).unwrap();
    assert!(summary.requests() > 20, "{summary}");

    let (code, stdout, stderr) = child.terminate();
    assert_eq!(code, Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.contains(&format!("captured {} exchanges", summary.requests())),
        "{stdout}"
    );
    assert!(stdout.contains("0 dropped"), "{stdout}");

    let files = journal_files(&dir);
    assert!(!files.is_empty());
    let mut exchanges = 0;
    let mut sessions = std::collections::HashSet::new();
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
        let raw = zstd::decode_all(std::fs::File::open(f).unwrap()).unwrap();
        let text = String::from_utf8(raw).unwrap();
        assert!(
            !text.contains(tapedeck_testbed::server::SEEDED_PASSWORD),
            "{} holds the plaintext password",
            f.display()
        );
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if v["type"] == "exchange" {
                exchanges += 1;
                sessions.insert(v["session"].as_str().unwrap().to_string());
            }
        }
    }
    assert_eq!(exchanges, summary.requests());
    // Every simulated user logs in once, so each is one session (a user
    // that registers first may add one more for the registration).
    assert!(
        sessions.len() as u32 >= summary.logged_in && sessions.len() as u32 <= 2 * summary.users,
        "{} sessions for {} users",
        sessions.len(),
        summary.users
    );
}

#[test]
fn sigkill_loses_nothing_older_than_the_flush_interval() {
    let testbed = testbed();
    let tb = testbed.addr;
    let out = tempfile::tempdir().unwrap();
    let (mut child, proxy, _) = start_capture(&[
        "--upstream",
        &format!("http://{tb}"),
        "--out",
        out.path().to_str().unwrap(),
        "--flush-every",
        "200ms",
    ]);
    // Sequential requests for ~2 s, each remembered with when it completed.
    let started = Instant::now();
    let mut done: Vec<(u32, Instant)> = Vec::new();
    let mut n = 0u32;
    while started.elapsed() < Duration::from_secs(2) && n < 5000 {
        let (status, _) = http(proxy, "GET", &format!("/api/v1/users/me?n={n}"), &[], "");
        assert_eq!(status, 401);
        done.push((n, Instant::now()));
        n += 1;
    }
    // Traffic still flowing from another thread while the proxy dies.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let bg = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 10_000 {
                let _ = std::panic::catch_unwind(|| {
                    http(proxy, "GET", "/api/v1/users/me?bg=1", &[], "")
                });
                i += 1;
            }
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    let killed = Instant::now();
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = bg.join();

    // Recover with the journal reader, the same one `sessions verify` uses.
    let files = tapedeck_sessions::expand_paths(&[out.path().to_path_buf()]).unwrap();
    let journals = tapedeck_sessions::read_all(&files).unwrap();
    let recovered: std::collections::HashSet<String> = journals
        .exchanges
        .iter()
        .map(|e| e.request.uri.clone())
        .collect();
    // Frames close once their first line is 200 ms old; the writer checks
    // every 50 ms. A full second of slack keeps a loaded machine honest.
    let horizon = killed - Duration::from_millis(1200);
    let must_have: Vec<u32> = done
        .iter()
        .filter(|(_, t)| *t < horizon)
        .map(|(n, _)| *n)
        .collect();
    assert!(
        !must_have.is_empty(),
        "too little traffic before the horizon"
    );
    for n in &must_have {
        assert!(
            recovered.contains(&format!("/api/v1/users/me?n={n}")),
            "request {n} (completed well before the kill) is missing; {} recovered",
            recovered.len()
        );
    }
}

#[test]
fn twenty_sigkills_at_random_points_all_recover() {
    let testbed = testbed();
    let tb = testbed.addr;
    let upstream = format!("http://{tb}");
    // A fixed xorshift sequence: "random" kill points, reproducible.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut total_recovered = 0;
    for round in 0..20 {
        let out = tempfile::tempdir().unwrap();
        let (mut child, proxy, _) = start_capture(&[
            "--upstream",
            &upstream,
            "--out",
            out.path().to_str().unwrap(),
            "--flush-every",
            "50ms",
        ]);
        let run_for = Duration::from_millis(250 + next() % 400);
        let started = Instant::now();
        let workers: Vec<_> = (0..2)
            .map(|w| {
                std::thread::spawn(move || {
                    let mut done = Vec::new();
                    let mut n = 0u32;
                    while started.elapsed() < run_for && n < 2000 {
                        let path = format!("/api/v1/users/me?w={w}&n={n}");
                        match try_get(proxy, &path) {
                            Some(status) => assert_eq!(status, 401),
                            None => break, // the proxy is gone
                        }
                        done.push((path, Instant::now()));
                        n += 1;
                    }
                    done
                })
            })
            .collect();
        // Kill while the workers are still sending.
        std::thread::sleep(run_for.saturating_sub(Duration::from_millis(50)));
        let killed = Instant::now();
        child.0.kill().unwrap();
        child.0.wait().unwrap();
        let done: Vec<(String, Instant)> = workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker"))
            .collect();

        let files = tapedeck_sessions::expand_paths(&[out.path().to_path_buf()]).unwrap();
        let journals = tapedeck_sessions::read_all(&files)
            .unwrap_or_else(|e| panic!("round {round}: journal does not recover: {e}"));
        let recovered: std::collections::HashSet<&str> = journals
            .exchanges
            .iter()
            .map(|e| e.request.uri.as_str())
            .collect();
        total_recovered += recovered.len();
        // Frames close once their first line is 50 ms old; 250 ms of slack
        // for a busy machine.
        let horizon = killed.checked_sub(Duration::from_millis(300));
        for (path, t) in &done {
            if horizon.is_some_and(|h| *t < h) {
                assert!(
                    recovered.contains(path.as_str()),
                    "round {round}: {path} completed {:?} before the kill and is lost",
                    killed - *t
                );
            }
        }
    }
    assert!(total_recovered > 0);
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let out = tempfile::tempdir().unwrap();
    let o = out.path().to_str().unwrap();
    let not_a_dir = out.path().join("file");
    std::fs::write(&not_a_dir, "x").unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--out", o], "--upstream"),
        (vec!["--upstream", "ftp://x", "--out", o], "--upstream"),
        (
            vec![
                "--upstream",
                "http://127.0.0.1:1",
                "--out",
                o,
                "--rotate-size",
                "12XB",
            ],
            "--rotate-size",
        ),
        (
            vec![
                "--upstream",
                "http://127.0.0.1:1",
                "--out",
                o,
                "--flush-every",
                "soon",
            ],
            "--flush-every",
        ),
        (
            vec![
                "--upstream",
                "http://127.0.0.1:1",
                "--out",
                o,
                "--session-key",
                "magic",
            ],
            "--session-key",
        ),
        (
            vec![
                "--upstream",
                "http://127.0.0.1:1",
                "--out",
                o,
                "--tls-cert",
                "/nonexistent.pem",
                "--tls-key",
                "/nonexistent.key",
            ],
            "--tls-cert /nonexistent.pem",
        ),
        (
            vec![
                "--upstream",
                "http://127.0.0.1:1",
                "--out",
                not_a_dir.to_str().unwrap(),
            ],
            "--out",
        ),
    ];
    for (args, needle) in cases {
        let port = free_port().to_string();
        let listen = format!("127.0.0.1:{port}");
        let o = tapedeck()
            .args(["capture", "--listen", &listen])
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn ca_init_export_and_a_corrupt_key_through_the_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    let d = dir.to_str().unwrap();
    let o = tapedeck()
        .args(["ca", "init", "--dir", d])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(mode(&dir.join("ca.key")), 0o600);

    let pem = tapedeck()
        .args(["ca", "export", "--dir", d])
        .output()
        .unwrap();
    assert_eq!(pem.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&pem.stdout).starts_with("-----BEGIN CERTIFICATE-----"));
    let der = tapedeck()
        .args(["ca", "export", "--dir", d, "--format", "der"])
        .output()
        .unwrap();
    assert_eq!(der.status.code(), Some(0));
    assert_eq!(
        der.stdout.first(),
        Some(&0x30),
        "DER starts with a SEQUENCE"
    );

    // A second init refuses to replace the CA devices may trust.
    let again = tapedeck()
        .args(["ca", "init", "--dir", d])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));

    // A corrupt key: exit 2 naming the file, from `ca export` and `capture`.
    std::fs::write(dir.join("ca.key"), "corrupt").unwrap();
    let o = tapedeck()
        .args(["ca", "export", "--dir", d])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("ca.key"));
    let listen = format!("127.0.0.1:{}", free_port());
    let o = tapedeck()
        .args(["capture", "--mode", "forward", "--listen", &listen, "--out"])
        .arg(tmp.path().join("j"))
        .args(["--intercept", "api.corevia.app", "--ca-dir", d])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("ca.key") && !stderr.contains("panicked"),
        "{stderr}"
    );
}
