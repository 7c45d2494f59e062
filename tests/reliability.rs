//! Reliability: crashes, faulty targets, hostile input and secrets, with
//! nothing lost. Through the real binary against real servers on 127.0.0.1,
//! and property tests of the public parsers on arbitrary input.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use tapedeck_sessions::{Exchange, JournalReader, JournalWriter};

use crate::common::{free_port, heavy, mode, tapedeck, testbed, wait_for_port, ChildGuard};

/// Starts `tapedeck capture` in front of `upstream`, writing into `out`.
fn start_capture(upstream: SocketAddr, out: &Path, extra: &[&str]) -> (ChildGuard, SocketAddr) {
    let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut cmd = tapedeck();
    cmd.args(["capture", "--listen", &listen.to_string()])
        .args(["--upstream", &format!("http://{upstream}")])
        .arg("--out")
        .arg(out)
        .args(extra);
    let child = ChildGuard::spawn(cmd);
    wait_for_port(listen);
    (child, listen)
}

/// The journals in `dir`, sorted.
fn journal_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".jsonl.zst"))
        .collect();
    files.sort();
    files
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Output of a finished command, with a bound on how long it may take.
fn run_bounded(mut cmd: std::process::Command, limit: Duration) -> Output {
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stdout.read_to_end(&mut b);
        b
    });
    let err_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stderr.read_to_end(&mut b);
        b
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

/// A fixed xorshift sequence: "random" but reproducible.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

// ---------------------------------------------------------------------------
// Capture crash under keep-alive load
// ---------------------------------------------------------------------------

/// Reads one HTTP/1.1 response (Content-Length or chunked) from a
/// keep-alive connection; returns the status, or `None` when the
/// connection broke.
fn read_response(s: &mut TcpStream) -> Option<u16> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 64 * 1024 || s.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    if let Some(n) = length {
        let mut body = vec![0; n];
        s.read_exact(&mut body).ok()?;
    } else if head.contains("transfer-encoding: chunked") {
        loop {
            let mut line = Vec::new();
            while !line.ends_with(b"\r\n") {
                if s.read(&mut byte).ok()? == 0 {
                    return None;
                }
                line.push(byte[0]);
            }
            let size = usize::from_str_radix(String::from_utf8_lossy(&line).trim(), 16).ok()?;
            let mut chunk = vec![0; size + 2];
            s.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
        }
    }
    Some(status)
}

/// One client thread: POSTs on one keep-alive connection until `until`,
/// each request carrying a unique nonce in a header and in the body.
/// Returns each nonce with the instant its whole response had arrived.
fn keep_alive_client(proxy: SocketAddr, tag: String, until: Instant) -> Vec<(String, Instant)> {
    let mut done = Vec::new();
    let Ok(mut s) = TcpStream::connect(proxy) else {
        return done;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut n = 0u32;
    while Instant::now() < until && n < 5000 {
        let nonce = format!("{tag}-{n}");
        let body = format!(r#"{{"kind":"run","minutes":1,"calories":{n},"nonce":"{nonce}"}}"#);
        let req = format!(
            "POST /api/v1/workouts HTTP/1.1\r\nHost: {proxy}\r\nX-Nonce: {nonce}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if s.write_all(req.as_bytes()).is_err() {
            break;
        }
        match read_response(&mut s) {
            // No token: the testbed answers 401, which is still an exchange.
            Some(status) => assert_eq!(status, 401, "{nonce}"),
            None => break,
        }
        done.push((nonce, Instant::now()));
        n += 1;
    }
    done
}

/// What one killed capture left behind: every exchange of every journal,
/// read with the journal reader; damage other than a truncated tail fails.
fn recover(dir: &Path, round: usize) -> Vec<Exchange> {
    let mut all = Vec::new();
    for path in journal_files(dir) {
        let mut reader = match JournalReader::open(&path) {
            Ok(r) => r,
            Err(e) => panic!("round {round}: {} does not open: {e}", path.display()),
        };
        all.extend(reader.by_ref());
        let report = reader.report();
        assert!(
            report.corrupt_frames == 0
                && report.bad_lines == 0
                && !report.header_lost
                && report.io_error.is_none(),
            "round {round}: {}",
            report.describe(&path)
        );
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    all
}

#[test]
fn kill_nine_under_keep_alive_load_loses_nothing_older_than_the_flush_interval() {
    const FLUSH: Duration = Duration::from_millis(200);
    // The writer checks its frame every few tens of ms; a busy 2-core
    // machine gets 400 ms more.
    const MARGIN: Duration = Duration::from_millis(400);
    // Twenty loaded runs: not beside the tests whose verdicts need quiet cores.
    let _serial = heavy();
    let tb = testbed();
    let mut rng = Seeded(0x5eed_0009_c0ff_ee00);
    let (mut checked, mut recovered_total, mut sent_total) = (0usize, 0usize, 0usize);
    for round in 0..20 {
        let out = tempfile::tempdir().unwrap();
        let (mut child, proxy) = start_capture(tb.addr, out.path(), &["--flush-every", "200ms"]);
        let run_for = Duration::from_millis(500 + rng.next() % 700);
        let clients = 1 + (rng.next() % 3) as usize;
        let until = Instant::now() + run_for + Duration::from_secs(5);
        let workers: Vec<_> = (0..clients)
            .map(|c| {
                let tag = format!("r{round}c{c}");
                std::thread::spawn(move || keep_alive_client(proxy, tag, until))
            })
            .collect();
        // SIGKILL while the clients are still sending.
        std::thread::sleep(run_for);
        let killed = Instant::now();
        child.0.kill().unwrap();
        child.0.wait().unwrap();
        let done: Vec<(String, Instant)> = workers
            .into_iter()
            .flat_map(|w| w.join().expect("client thread"))
            .collect();
        sent_total += done.len();

        let exchanges = recover(out.path(), round);
        recovered_total += exchanges.len();
        let recovered: std::collections::HashSet<String> = exchanges
            .iter()
            .filter_map(|e| tapedeck_sessions::model::header(&e.request.headers, "x-nonce"))
            .map(str::to_string)
            .collect();
        // The body carries the same nonce (the record keeps bodies).
        for e in &exchanges {
            if let Some(nonce) = tapedeck_sessions::model::header(&e.request.headers, "x-nonce") {
                let body = e.request.body.text().unwrap_or("");
                assert!(body.contains(nonce), "round {round}: {body}");
            }
        }
        let horizon = killed.checked_sub(FLUSH + MARGIN);
        for (nonce, t) in &done {
            if horizon.is_some_and(|h| *t < h) {
                checked += 1;
                assert!(
                    recovered.contains(nonce),
                    "round {round}: {nonce} answered {:?} before the kill is lost ({} of {} recovered)",
                    killed - *t,
                    recovered.len(),
                    done.len()
                );
            }
        }

        // `sessions verify` agrees: at most a truncated tail, never corruption.
        let v = run_bounded(
            {
                let mut c = tapedeck();
                c.args(["sessions", "verify"]).arg(out.path());
                c
            },
            Duration::from_secs(20),
        );
        let said = text(&v.stdout) + &text(&v.stderr);
        assert!(
            v.status.code() == Some(0)
                || (v.status.code() == Some(2) && said.contains("truncated")),
            "round {round}: {said}"
        );
        assert!(
            !said.contains("corrupt") && !said.contains("panicked"),
            "round {round}: {said}"
        );
    }
    eprintln!(
        "20 kills: {sent_total} answered, {recovered_total} recovered, {checked} older than the flush horizon all present"
    );
    assert!(checked > 0, "too little traffic before the horizons");
}

// ---------------------------------------------------------------------------
// Secrets never leak
// ---------------------------------------------------------------------------

/// Every file under `dir` (zstd journals decompressed), with its path.
fn every_output(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let raw = std::fs::read(&p).unwrap();
            let data = if p.to_string_lossy().ends_with(".zst") {
                // A concatenation of frames; a clean stop leaves no torn one.
                zstd::stream::decode_all(&raw[..]).unwrap()
            } else {
                raw
            };
            out.push((p, data));
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn a_captured_password_appears_in_no_output_and_files_are_private() {
    const PASSWORD: &str = "Plain-Hunter2-q7Zx";
    // Replays at full speed: not beside the tests whose verdicts need quiet cores.
    let _serial = heavy();
    let tb = testbed();
    let work = tempfile::tempdir().unwrap();
    let journals = work.path().join("journals");
    let outputs = work.path().join("out");
    std::fs::create_dir_all(&journals).unwrap();
    std::fs::create_dir_all(&outputs).unwrap();
    let (child, proxy) = start_capture(tb.addr, &journals, &["--flush-every", "100ms"]);

    // A user registers, logs in (JSON and form body), and uses the token.
    let user = format!("leak{}", std::process::id());
    let reg = format!(
        r#"{{"username":"{user}","email":"{user}@example.test","password":"{PASSWORD}","role":"student"}}"#
    );
    let json = [("Content-Type", "application/json")];
    let (status, _) = crate::common::http(proxy, "POST", "/api/v1/auth/register", &json, &reg);
    assert_eq!(status, 201);
    let login = format!(r#"{{"username":"{user}","password":"{PASSWORD}"}}"#);
    let (status, body) = crate::common::http(proxy, "POST", "/api/v1/auth/login", &json, &login);
    assert_eq!(status, 200, "{body}");
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let _ = crate::common::http(
        proxy,
        "POST",
        "/api/v1/auth/login",
        &form,
        &format!("username={user}&password={PASSWORD}"),
    );
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
    let auth = [("Authorization", bearer.as_str())];
    for path in ["/api/v1/users/me", "/api/v1/social/feed?limit=5"] {
        let (status, _) = crate::common::http(proxy, "GET", path, &auth, "");
        assert_eq!(status, 200, "{path}");
    }
    let (code, _, err) = child.terminate();
    assert_eq!(code, Some(0), "{err}");

    let mut said: Vec<(String, Output)> = Vec::new();
    let mut run = |name: &str, args: &[&std::ffi::OsStr]| {
        let mut c = tapedeck();
        c.args(args);
        let o = run_bounded(c, Duration::from_secs(60));
        assert!(
            matches!(o.status.code(), Some(0) | Some(1)),
            "{name}: {}",
            text(&o.stderr)
        );
        let stdout = o.stdout.clone();
        said.push((name.to_string(), o));
        stdout
    };
    let j = journals.as_os_str();
    let o = |name: &str| outputs.join(name).into_os_string();
    let os = |s: &'static str| std::ffi::OsStr::new(s);
    run("sessions list", &[os("sessions"), os("list"), j]);
    let listed = run(
        "sessions list --json",
        &[os("sessions"), os("list"), j, os("--json")],
    );
    let listing: serde_json::Value =
        serde_json::from_slice(&listed).expect("sessions list --json prints JSON");
    let sessions: Vec<String> = listing
        .as_array()
        .or_else(|| listing["sessions"].as_array())
        .expect("a list of sessions")
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!sessions.is_empty());
    for id in &sessions {
        let id = std::ffi::OsString::from(id);
        run(
            "sessions show",
            &[
                os("sessions"),
                os("show"),
                j,
                os("--session"),
                &id,
                os("--bodies"),
            ],
        );
        run(
            "sessions show --json",
            &[
                os("sessions"),
                os("show"),
                j,
                os("--session"),
                &id,
                os("--json"),
            ],
        );
    }
    run("sessions stats", &[os("sessions"), os("stats"), j]);
    run("sessions verify", &[os("sessions"), os("verify"), j]);
    run(
        "sessions export-har",
        &[
            os("sessions"),
            os("export-har"),
            j,
            os("-o"),
            &o("capture.har"),
        ],
    );
    run(
        "sessions correlations",
        &[os("sessions"), os("correlations"), j],
    );
    run(
        "sessions correlations --json",
        &[os("sessions"), os("correlations"), j, os("--json")],
    );
    let target = std::ffi::OsString::from(format!("http://{}", tb.addr));
    run(
        "replay",
        &[
            os("replay"),
            j,
            os("--target"),
            &target,
            os("--allow-recorded-host"),
            os("--speed"),
            os("max"),
            os("--report"),
            &o("run.json"),
            os("--csv"),
            &o("run"),
            os("--html"),
            &o("run.html"),
            os("--hlog"),
            &o("run.hlog"),
        ],
    );
    let run_json = o("run.json");
    for format in ["text", "html", "md", "json"] {
        let f = std::ffi::OsString::from(format);
        let show = o(&format!("show.{format}"));
        run(
            "analyze show",
            &[
                os("analyze"),
                os("show"),
                &run_json,
                os("--format"),
                &f,
                os("-o"),
                &show,
            ],
        );
        run(
            "analyze show (stdout)",
            &[os("analyze"), os("show"), &run_json, os("--format"), &f],
        );
        let cmp = o(&format!("compare.{format}"));
        run(
            "analyze compare",
            &[
                os("analyze"),
                os("compare"),
                os("--base"),
                &run_json,
                os("--candidate"),
                &run_json,
                os("--format"),
                &f,
                os("-o"),
                &cmp,
            ],
        );
    }

    // Grep everything: printed output, reports, and the journals themselves.
    for (name, o) in &said {
        assert!(
            !contains(&o.stdout, PASSWORD),
            "{name} printed the password"
        );
        assert!(
            !contains(&o.stderr, PASSWORD),
            "{name} printed the password"
        );
    }
    let files = every_output(work.path());
    assert!(
        files.len() >= 15,
        "{:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for (path, data) in &files {
        assert!(
            !contains(data, PASSWORD),
            "{} holds the password",
            path.display()
        );
    }
    // The login itself is in the journal, redacted, not dropped.
    assert!(files
        .iter()
        .any(|(p, d)| p.starts_with(&journals) && contains(d, "<redacted:")));
    // Journals and reports are private.
    let mut private = journal_files(&journals);
    for name in [
        "run.json",
        "run.html",
        "run.hlog",
        "run_stats.csv",
        "run_stats_history.csv",
        "run_failures.csv",
        "run_exceptions.csv",
        "capture.har",
    ] {
        private.push(outputs.join(name));
    }
    for p in &private {
        assert_eq!(mode(p), 0o600, "{}", p.display());
    }
}

// ---------------------------------------------------------------------------
// Replay against faulty targets
// ---------------------------------------------------------------------------

/// How a faulty in-test server misbehaves.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Accepts and closes at once, before reading anything.
    Refuse,
    /// Sends half a response, then a TCP reset.
    ResetMidResponse,
    /// Reads the request and never answers (until the test ends).
    Stall,
    /// Answers every request with a 500, keeping the connection.
    Error500,
}

/// A raw TCP server on 127.0.0.1 with one fault, on `rt`.
fn faulty_server(rt: &tokio::runtime::Runtime, fault: Fault) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Fault::Refuse = fault {
                    return;
                }
                let mut buf = vec![0u8; 16 * 1024];
                let mut seen = Vec::new();
                loop {
                    let Ok(n) = s.read(&mut buf).await else { return };
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    // Recorded requests here have no body: one request per head.
                    while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        seen.drain(..end + 4);
                        match fault {
                            Fault::Refuse => return,
                            Fault::ResetMidResponse => {
                                let _ = s
                                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"items\":[")
                                    .await;
                                let _ = s.flush().await;
                                #[allow(deprecated)]
                                s.set_linger(Some(Duration::ZERO)).unwrap();
                                drop(s);
                                return;
                            }
                            Fault::Stall => {
                                tokio::time::sleep(Duration::from_secs(30)).await;
                                return;
                            }
                            Fault::Error500 => {
                                let body = br#"{"detail":"boom"}"#;
                                let head = format!(
                                    "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                                    body.len()
                                );
                                if s.write_all(head.as_bytes()).await.is_err()
                                    || s.write_all(body).await.is_err()
                                {
                                    return;
                                }
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

/// A journal of `sessions` sessions of two GETs each, recorded as 200s
/// against a production-looking upstream, one frame per exchange.
fn two_step_journal(path: &Path, sessions: usize) {
    let mut w = JournalWriter::create_file(path, "https://api.corevia.app").unwrap();
    let mut id = 0;
    for s in 0..sessions {
        for (i, uri) in ["/api/v1/users/me", "/api/v1/social/feed?limit=5"]
            .iter()
            .enumerate()
        {
            id += 1;
            let ms = s * 7 + i * 20;
            let ex: Exchange = serde_json::from_value(serde_json::json!({
                "id": id,
                "session": format!("client:{s}"),
                "conn": s,
                "started": format!("2026-11-26T10:00:{:02}.{:03}Z", ms / 1000, ms % 1000),
                "client": format!("10.0.0.{s}:4000"),
                "request": {"method": "GET", "uri": uri, "version": "HTTP/1.1",
                            "headers": [["accept", "application/json"]], "body": ""},
                "response": {"status": 200, "headers": [["content-type", "application/json"]],
                             "body": "{}"},
                "error": null, "ttfb_us": 900, "duration_us": 1000
            }))
            .unwrap();
            w.write(&ex).unwrap();
            w.flush().unwrap();
        }
    }
    w.finish().unwrap();
}

fn assert_no_panic(what: &str, o: &Output) {
    let err = text(&o.stderr);
    assert!(
        !err.contains("panicked")
            && !err.contains("RUST_BACKTRACE")
            && !err.contains("stack backtrace"),
        "{what}: {err}"
    );
}

#[test]
fn replay_against_faulty_targets_counts_failures_by_kind_and_writes_reports() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j.jsonl.zst");
    two_step_journal(&journal, 3);
    let down: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let cases: Vec<(&str, SocketAddr, &[&str])> = vec![
        ("down", down, &["refused"]),
        (
            "refusing",
            faulty_server(&rt, Fault::Refuse),
            &["closed", "reset"],
        ),
        (
            "reset",
            faulty_server(&rt, Fault::ResetMidResponse),
            &["reset", "closed", "body"],
        ),
        ("stall", faulty_server(&rt, Fault::Stall), &["timeout"]),
        ("500", faulty_server(&rt, Fault::Error500), &["HTTP 500"]),
    ];
    for (name, addr, kinds) in cases {
        let report = dir.path().join(format!("{name}.json"));
        let csv = dir.path().join(name);
        let mut cmd = tapedeck();
        cmd.arg("replay")
            .arg(&journal)
            .args(["--target", &format!("http://{addr}")])
            .args(["--multiply", "2", "--speed", "max", "--timeout", "500ms"])
            .args(["--connect-timeout", "500ms", "--quiet"])
            .arg("--report")
            .arg(&report)
            .arg("--csv")
            .arg(&csv);
        let o = run_bounded(cmd, Duration::from_secs(30));
        assert_no_panic(name, &o);
        assert!(
            matches!(o.status.code(), Some(0) | Some(1)),
            "{name}: exit {:?}: {}",
            o.status.code(),
            text(&o.stderr)
        );
        let run: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        let sum = |key: &str| -> u64 {
            run["endpoints"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e[key].as_u64().unwrap())
                .sum()
        };
        // 3 sessions x 2 VUs x 2 requests, every one of them failed.
        assert_eq!(
            (sum("requests"), sum("failures")),
            (12, 12),
            "{name}: {run}"
        );
        let failures = run["failures"].as_array().unwrap();
        let counted: u64 = failures.iter().map(|f| f["count"].as_u64().unwrap()).sum();
        assert_eq!(counted, 12, "{name}: {failures:?}");
        for f in failures {
            let error = f["error"].as_str().unwrap().to_ascii_lowercase();
            assert!(
                kinds
                    .iter()
                    .any(|k| error.contains(&k.to_ascii_lowercase())),
                "{name}: failure kind {error:?}"
            );
        }
        eprintln!("{name}: {failures:?}");
        let stats = std::fs::read_to_string(format!("{}_stats.csv", csv.display())).unwrap();
        assert!(stats.contains(",Aggregated,12,12,"), "{name}: {stats}");
        assert_eq!(mode(&report), 0o600);
    }
}

#[test]
fn sigint_mid_run_against_a_stalled_target_writes_a_partial_report() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let addr = faulty_server(&rt, Fault::Stall);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j.jsonl.zst");
    two_step_journal(&journal, 2);
    let report = dir.path().join("run.json");
    let html = dir.path().join("run.html");
    let mut cmd = tapedeck();
    cmd.arg("replay")
        .arg(&journal)
        .args(["--target", &format!("http://{addr}")])
        .args([
            "--users",
            "3",
            "--run-time",
            "60s",
            "--timeout",
            "20s",
            "--quiet",
        ])
        .arg("--report")
        .arg(&report)
        .arg("--html")
        .arg(&html);
    let mut child = ChildGuard::spawn(cmd);
    // Every VU is now waiting on a server that never answers.
    std::thread::sleep(Duration::from_millis(1500));
    let pid = child.0.id().to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "replay ignored SIGINT for 20 s");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        matches!(status.code(), Some(0) | Some(1)),
        "{status:?}: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(run["partial"], true, "{run}");
    assert!(std::fs::read_to_string(&html).unwrap().contains("<html"));
}

// ---------------------------------------------------------------------------
// Bad input through the binary
// ---------------------------------------------------------------------------

/// Exit 2, one line on stderr naming `name`, no panic.
fn assert_clean_refusal(what: &str, o: &Output, name: &str) {
    assert_no_panic(what, o);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{what}: {err}");
    assert!(err.contains(name), "{what}: {err} does not name {name}");
    assert_eq!(err.trim().lines().count(), 1, "{what}: {err}");
}

#[test]
fn bad_journals_exit_2_naming_the_file_and_truncated_ones_replay_what_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.jsonl.zst");
    let mut rng = Seeded(0xbad_f00d);
    let bytes: Vec<u8> = (0..4096).map(|_| rng.next() as u8).collect();
    std::fs::write(&garbage, &bytes).unwrap();
    let empty = dir.path().join("empty.jsonl.zst");
    std::fs::write(&empty, b"").unwrap();
    // A zstd magic followed by garbage: looks like a journal, is not.
    let fake = dir.path().join("fake.jsonl.zst");
    let mut b = vec![0x28, 0xb5, 0x2f, 0xfd];
    b.extend_from_slice(&bytes[..512]);
    std::fs::write(&fake, &b).unwrap();
    let no_journals = dir.path().join("nothing-here");
    std::fs::create_dir_all(&no_journals).unwrap();
    std::fs::write(no_journals.join("notes.txt"), "not a journal").unwrap();

    let target = "http://127.0.0.1:9";
    for bad in [&garbage, &empty, &fake, &no_journals] {
        let name = bad.file_name().unwrap().to_str().unwrap();
        let runs: Vec<(&str, Vec<&std::ffi::OsStr>)> = vec![
            ("sessions list", vec!["sessions".as_ref(), "list".as_ref()]),
            (
                "sessions stats",
                vec!["sessions".as_ref(), "stats".as_ref()],
            ),
            (
                "sessions correlations",
                vec!["sessions".as_ref(), "correlations".as_ref()],
            ),
            (
                "replay",
                vec!["replay".as_ref(), "--target".as_ref(), target.as_ref()],
            ),
        ];
        for (what, args) in runs {
            let mut c = tapedeck();
            c.args(&args).arg(bad);
            let o = run_bounded(c, Duration::from_secs(30));
            assert_clean_refusal(&format!("{what} {name}"), &o, name);
        }
        let mut c = tapedeck();
        c.args(["sessions", "verify"]).arg(bad);
        let o = run_bounded(c, Duration::from_secs(30));
        assert_no_panic("verify", &o);
        assert_eq!(o.status.code(), Some(2), "verify {name}");
        assert!(text(&o.stdout).contains(name) || text(&o.stderr).contains(name));
    }

    // A journal cut in the middle of its last frame: verify names the
    // truncated tail, replay plays every complete frame and warns.
    let whole = dir.path().join("whole.jsonl.zst");
    two_step_journal(&whole, 6);
    let data = std::fs::read(&whole).unwrap();
    let cut = dir.path().join("cut.jsonl.zst");
    // Cut halfway through the last exchange's frame (the one before the
    // closing-stats frame): both go.
    let magic = [0x28, 0xb5, 0x2f, 0xfd];
    let frames: Vec<usize> = (0..data.len() - 3)
        .filter(|&i| data[i..i + 4] == magic)
        .collect();
    assert!(frames.len() >= 3, "{frames:?}");
    let (last_exchange, closing) = (frames[frames.len() - 2], frames[frames.len() - 1]);
    std::fs::write(&cut, &data[..(last_exchange + closing) / 2]).unwrap();
    let mut c = tapedeck();
    c.args(["sessions", "verify"]).arg(&cut);
    let o = run_bounded(c, Duration::from_secs(30));
    assert_no_panic("verify cut", &o);
    let said = text(&o.stdout) + &text(&o.stderr);
    assert!(
        said.contains("cut.jsonl.zst") && said.contains("truncated"),
        "{said}"
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = faulty_server(&rt, Fault::Error500);
    let report = dir.path().join("cut.json");
    let mut c = tapedeck();
    c.arg("replay")
        .arg(&cut)
        .args([
            "--target",
            &format!("http://{server}"),
            "--speed",
            "max",
            "--quiet",
        ])
        .arg("--report")
        .arg(&report);
    let o = run_bounded(c, Duration::from_secs(30));
    assert_no_panic("replay cut", &o);
    let err = text(&o.stderr);
    assert!(matches!(o.status.code(), Some(0) | Some(1)), "{err}");
    assert!(
        err.contains("cut.jsonl.zst") && err.contains("truncated"),
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
    // 12 recorded; the torn last frame held one of them.
    assert_eq!(requests, 11);
}

#[test]
fn bad_flags_exit_2_with_one_line_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j.jsonl.zst");
    two_step_journal(&journal, 1);
    let cases: &[(&[&str], &str)] = &[
        // Negative numbers as typed: values of their flag, not flags.
        (&["--speed", "-1"], "--speed"),
        (&["--speed=-1"], "--speed"),
        (&["--users", "-3"], "--users"),
        (&["--multiply", "-2"], "--multiply"),
        (&["--run-time", "-5s"], "--run-time"),
        (&["--speed", "fast"], "--speed"),
        (&["--stages", "x"], "--stages"),
        (&["--stages", "1m:10,x:20"], "--stages"),
        (&["--threshold", "p95<<"], "--threshold"),
        (&["--threshold", "Social Feed:p95<"], "--threshold"),
        (&["--spawn-rate", "abc"], "--spawn-rate"),
        (&["--timeout", "banana"], "--timeout"),
        (&["--mix", "student=-1"], "--mix"),
        (&["--shard", "0/0"], "--shard"),
        (&["--shard", "x"], "--shard"),
        (&["--rate", "-5/s"], "--rate"),
    ];
    for (flags, name) in cases {
        let mut c = tapedeck();
        c.arg("replay")
            .arg(&journal)
            .args(["--target", "http://127.0.0.1:9"])
            .args(*flags);
        let o = run_bounded(c, Duration::from_secs(30));
        assert_clean_refusal(&format!("{flags:?}"), &o, name);
    }
    let run = dir.path().join("missing-run.json");
    let analyze: &[(&[&str], &str)] = &[
        (&["check", "--threshold", "p95<<"], "--threshold"),
        (&["compare", "--noise", "lots", "--base"], "--noise"),
    ];
    for (args, name) in analyze {
        let mut c = tapedeck();
        c.arg("analyze").args(*args).arg(&run);
        if args[0] == "compare" {
            c.arg("--candidate").arg(&run);
        }
        let o = run_bounded(c, Duration::from_secs(30));
        assert_no_panic(&format!("analyze {args:?}"), &o);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = text(&o.stderr);
        assert!(
            err.contains(name) || err.contains("missing-run.json"),
            "{args:?}: {err}"
        );
    }
}

// ---------------------------------------------------------------------------
// Property tests of the public parsers: never panic
// ---------------------------------------------------------------------------

/// A small valid journal, as bytes, for mutation.
fn sample_journal() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.jsonl.zst");
    two_step_journal(&path, 3);
    std::fs::read(path).unwrap()
}

/// Arbitrary JSON values, biased towards HAR-ish keys.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let key = prop_oneof![
        Just("log".to_string()),
        Just("entries".to_string()),
        Just("request".to_string()),
        Just("response".to_string()),
        Just("method".to_string()),
        Just("url".to_string()),
        Just("headers".to_string()),
        Just("name".to_string()),
        Just("value".to_string()),
        Just("status".to_string()),
        Just("startedDateTime".to_string()),
        Just("time".to_string()),
        Just("timings".to_string()),
        Just("postData".to_string()),
        Just("text".to_string()),
        Just("content".to_string()),
        Just("encoding".to_string()),
        Just("httpVersion".to_string()),
        "[a-z_]{1,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,24}".prop_map(Value::String),
        Just(Value::String("2026-11-26T10:00:00.000Z".into())),
        Just(Value::String(
            "https://api.corevia.app/api/v1/social/feed?limit=5".into()
        )),
        Just(Value::String("base64".into())),
        Just(Value::String("GET".into())),
    ];
    leaf.prop_recursive(5, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn journal_reader_survives_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let path = Path::new("arbitrary.jsonl.zst");
        if let Ok(mut r) = JournalReader::from_source(path, std::io::Cursor::new(bytes)) {
            let _ = r.by_ref().count();
            let _ = r.report().describe(path);
        }
    }

    #[test]
    fn journal_reader_survives_mutated_journals(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12),
        cut in any::<prop::sample::Index>(),
        do_cut in any::<bool>(),
    ) {
        let mut data = sample_journal();
        for (at, x) in flips {
            let i = at.index(data.len());
            data[i] ^= x;
        }
        if do_cut {
            data.truncate(cut.index(data.len() + 1));
        }
        let path = Path::new("mutated.jsonl.zst");
        if let Ok(mut r) = JournalReader::from_source(path, std::io::Cursor::new(data)) {
            let n = r.by_ref().count() as u64;
            prop_assert_eq!(n, r.report().exchanges);
            prop_assert!(n <= 6);
        }
    }

    #[test]
    fn har_import_survives_arbitrary_json(value in json_value()) {
        for key in [tapedeck_sessions::SessionKey::Recorded, tapedeck_sessions::SessionKey::Auto] {
            let _ = tapedeck_sessions::har::har_to_exchanges(&value, &key);
            let wrapped = serde_json::json!({"log": {"entries": [value.clone()]}});
            let _ = tapedeck_sessions::har::har_to_exchanges(&wrapped, &key);
        }
    }

    #[test]
    fn har_import_survives_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &bytes).unwrap();
        let r = tapedeck_sessions::har::import_har(file.path(), &tapedeck_sessions::SessionKey::Auto);
        if let Err(e) = r {
            // The error names the file, on one line.
            let msg = e.to_string();
            prop_assert!(msg.contains(&file.path().display().to_string()), "{}", msg);
            prop_assert!(!msg.contains('\n'), "{}", msg);
        }
    }

    #[test]
    fn threshold_parser_survives_arbitrary_text(
        s in prop_oneof![
            ".{0,40}",
            "[A-Za-z :()<>=.%0-9a-z_]{0,30}",
            "(Social Feed:)?(p|p\\(|avg|med|max|rate|rps|error_rate)[0-9.()]{0,6}[<>=]{1,2}[-0-9.]{0,8}(ms|s|%|/s)?",
        ]
    ) {
        match tapedeck_analyze::threshold::parse_threshold(&s) {
            Ok(_) => {}
            Err(e) => prop_assert!(!e.contains('\n'), "{}", e),
        }
    }

    #[test]
    fn correlation_rules_file_survives_arbitrary_text(
        text in prop_oneof![
            ".{0,200}",
            json_value().prop_map(|v| v.to_string()),
            prop::collection::vec(
                (
                    prop::option::of("(\\*|Login|Social Feed|[a-z ]{0,8})"),
                    prop::option::of("(\\*|json |\\$)[.$\\[\\]*a-z0-9_]{0,16}|(set-cookie|header|query|path segment|cookie) [a-z0-9]{0,6}"),
                    prop::option::of("(\\*|json |\\$)[.$\\[\\]*a-z0-9_]{0,16}|(header|query|path segment) [a-z0-9]{0,6}"),
                ),
                0..4,
            )
            .prop_map(|entries| {
                let list: Vec<serde_json::Value> = entries
                    .into_iter()
                    .map(|(e, src, sink)| {
                        let mut m = serde_json::Map::new();
                        if let Some(e) = e { m.insert("source_endpoint".into(), e.into()); }
                        if let Some(s) = src { m.insert("source".into(), s.into()); }
                        if let Some(s) = sink { m.insert("sink".into(), s.into()); }
                        serde_json::Value::Object(m)
                    })
                    .collect();
                serde_json::json!({"add": list.clone(), "veto": list}).to_string()
            }),
        ]
    ) {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &text).unwrap();
        let opts = tapedeck_replay::correlation::CorrelationOptions {
            enabled: true,
            rules_file: Some(file.path().to_path_buf()),
            ..Default::default()
        };
        let sessions = correlation_sessions();
        if let Err(e) = tapedeck_replay::correlation::Correlation::discover(&sessions, &opts) {
            prop_assert!(e.to_string().contains(&file.path().display().to_string()), "{}", e);
        }
    }
}

/// A login handing out a token and an id, then requests using both: enough
/// for rules from a rules file to match against.
fn correlation_sessions() -> Vec<tapedeck_sessions::Session> {
    let ex = |id: u64,
              ms: u64,
              method: &str,
              uri: &str,
              auth: bool,
              req: &str,
              resp: &str|
     -> Exchange {
        let mut headers = vec![serde_json::json!(["content-type", "application/json"])];
        if auth {
            headers.push(serde_json::json!([
                "authorization",
                "Bearer tok-abcdef0123456789abcdef"
            ]));
        }
        serde_json::from_value(serde_json::json!({
            "id": id, "session": "s1", "conn": 1,
            "started": format!("2026-11-26T10:00:00.{ms:03}Z"),
            "client": "10.0.0.1:4000",
            "request": {"method": method, "uri": uri, "version": "HTTP/1.1",
                        "headers": headers, "body": req},
            "response": {"status": 200, "headers": [["content-type", "application/json"]], "body": resp},
            "error": null, "ttfb_us": 900, "duration_us": 1000
        }))
        .unwrap()
    };
    let exchanges = vec![
        ex(
            1,
            0,
            "POST",
            "/api/v1/auth/login",
            false,
            r#"{"username":"ann","password":"<redacted:ab12>"}"#,
            r#"{"access_token":"tok-abcdef0123456789abcdef","token_type":"bearer","user":{"id":4711,"username":"ann","role":"student"}}"#,
        ),
        ex(
            2,
            100,
            "POST",
            "/api/v1/social/posts",
            true,
            r#"{"text":"hi"}"#,
            r#"{"id":98765,"author":"ann"}"#,
        ),
        ex(
            3,
            200,
            "POST",
            "/api/v1/social/posts/98765/like",
            true,
            "",
            "{}",
        ),
        ex(
            4,
            300,
            "GET",
            "/api/v1/users/me?u=ann",
            true,
            "",
            r#"{"id":4711}"#,
        ),
    ];
    tapedeck_sessions::group_sessions(
        exchanges,
        &tapedeck_sessions::GroupOptions::default(),
        &tapedeck_sessions::Profile::builtin(),
    )
}

// ---------------------------------------------------------------------------
// Status and metrics endpoints bind loopback
// ---------------------------------------------------------------------------

/// The local addresses (hex, as the kernel prints them) listening on `port`,
/// from /proc/net/tcp and /proc/net/tcp6.
fn listeners(port: u16) -> Vec<String> {
    let mut found = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state)) = (cols.get(1), cols.get(3)) else {
                continue;
            };
            let Some((addr, p)) = local.split_once(':') else {
                continue;
            };
            // 0A: LISTEN
            if *state == "0A" && u16::from_str_radix(p, 16).ok() == Some(port) {
                found.push(addr.to_string());
            }
        }
    }
    found
}

#[test]
fn status_and_metrics_given_a_bare_port_listen_on_loopback_only() {
    let tb = testbed();
    let out = tempfile::tempdir().unwrap();
    let (status_port, metrics_port) = (free_port(), free_port());
    let (child, _proxy) = start_capture(
        tb.addr,
        out.path(),
        &[
            "--status-listen",
            &status_port.to_string(),
            "--metrics-listen",
            &metrics_port.to_string(),
        ],
    );
    for port in [status_port, metrics_port] {
        wait_for_port(format!("127.0.0.1:{port}").parse().unwrap());
        let bound = listeners(port);
        assert!(!bound.is_empty(), "nothing listens on {port}");
        for addr in &bound {
            // 127.0.0.1 or ::1 as /proc/net prints them.
            assert!(
                addr == "0100007F" || addr == "00000000000000000000000001000000",
                "port {port} listens on {addr}, not loopback"
            );
        }
    }
    let (code, _, err) = child.terminate();
    assert_eq!(code, Some(0), "{err}");
}
