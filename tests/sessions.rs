//! End-to-end tests of `tapedeck sessions`.
//!
//! Journals are written with the sessions crate's own writer (what the
//! capture proxy uses), shaped like CoreVia traffic: logins handing out JWTs,
//! students on the feed and marketplace, trainers creating products.

use std::path::{Path, PathBuf};
use std::process::Output;

use tapedeck_sessions::chrono::{DateTime, Utc};
use tapedeck_sessions::{
    read_all, Body, Exchange, JournalWriter, RecordedRequest, RecordedResponse, SessionKey,
    SessionKeyer, WriterOptions,
};

use crate::common::tapedeck;

/// Unpadded base64url, as JWTs use it.
fn b64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn jwt(sub: u64, role: &str) -> String {
    let claims = serde_json::json!({"sub": sub.to_string(), "role": role, "exp": 2_000_000_000u64});
    format!(
        "{}.{}.{}",
        b64(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes()),
        b64(b"sig")
    )
}

struct Traffic {
    next_id: u64,
    keyer: SessionKeyer,
    out: Vec<Exchange>,
}

impl Traffic {
    fn new() -> Traffic {
        Traffic {
            next_id: 1,
            keyer: SessionKeyer::new(SessionKey::Auto),
            out: Vec::new(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        conn: u64,
        at_ms: i64,
        method: &str,
        uri: &str,
        token: Option<&str>,
        req: &str,
        status: u16,
        resp: &str,
    ) {
        let mut headers = vec![
            ("host".to_string(), "api.corevia.test".to_string()),
            ("user-agent".to_string(), "CoreVia/3.2 (iOS)".to_string()),
        ];
        if let Some(t) = token {
            headers.push(("authorization".into(), format!("Bearer {t}")));
        }
        if !req.is_empty() {
            headers.push(("content-type".into(), "application/json".into()));
        }
        let started: DateTime<Utc> =
            DateTime::from_timestamp_millis(1_800_000_000_000 + at_ms).unwrap();
        let mut ex = Exchange {
            id: self.next_id,
            session: String::new(),
            conn,
            started,
            upstream: None,
            client: Some(format!(
                "10.0.{}.{}:{}",
                conn / 250,
                conn % 250,
                40000 + conn
            )),
            request: RecordedRequest {
                method: method.into(),
                uri: uri.into(),
                version: "HTTP/1.1".into(),
                headers,
                body: Body::new(req.as_bytes().to_vec()),
            },
            response: Some(RecordedResponse {
                status,
                headers: vec![("content-type".into(), "application/json".into())],
                body: Body::new(resp.as_bytes().to_vec()),
            }),
            error: None,
            ttfb_us: 4000 + self.next_id * 10,
            duration_us: 5000 + self.next_id * 10,
        };
        ex.session = self.keyer.assign(&ex);
        self.next_id += 1;
        self.out.push(ex);
    }

    /// One user's visit: login, then `tasks` (method, path) a second apart.
    fn visit(&mut self, user: u64, role: &str, start_ms: i64, tasks: &[(&str, &str)]) {
        let token = jwt(user, role);
        let login_body = serde_json::json!({"access_token": token, "token_type": "bearer",
            "user": {"id": user, "username": format!("user{user}"), "role": role}});
        self.push(
            user,
            start_ms,
            "POST",
            "/api/v1/auth/login",
            None,
            &format!("{{\"username\":\"user{user}\",\"password\":\"pw\"}}"),
            200,
            &login_body.to_string(),
        );
        for (i, (method, path)) in tasks.iter().enumerate() {
            let body = if *method == "POST" {
                "{\"text\":\"hello\"}"
            } else {
                ""
            };
            let status = if *method == "POST" { 201 } else { 200 };
            self.push(
                user,
                start_ms + 1000 * (i as i64 + 1),
                method,
                path,
                Some(&token),
                body,
                status,
                "{\"items\":[{\"id\":1,\"text\":\"nice workout\"}],\"total\":1}",
            );
        }
    }
}

const STUDENT: &[(&str, &str)] = &[
    ("GET", "/api/v1/social/feed?limit=20&offset=0"),
    ("POST", "/api/v1/social/posts/11/like"),
    ("GET", "/api/v1/social/feed?limit=20&offset=20"),
    ("GET", "/api/v1/marketplace/products?limit=10"),
    ("GET", "/api/v1/marketplace/products/7"),
    ("POST", "/api/v1/workouts"),
];
const TRAINER: &[(&str, &str)] = &[
    ("POST", "/api/v1/marketplace/products"),
    ("GET", "/api/v1/marketplace/my-products"),
    ("POST", "/api/v1/trainer/content"),
];

/// Three students (users 1-3) and one trainer (user 9), one of the students
/// coming back after an hour; `frame_every` exchanges per frame.
fn corevia_traffic() -> Vec<Exchange> {
    let mut t = Traffic::new();
    t.visit(1, "student", 0, STUDENT);
    t.visit(2, "student", 500, STUDENT);
    t.visit(9, "trainer", 700, TRAINER);
    t.visit(3, "student", 900, STUDENT);
    t.visit(1, "student", 3_600_000, &STUDENT[..2]);
    t.out
}

/// Writes `exs` into `dir` as rotated journals with small frames.
fn write_journals(dir: &Path, exs: &[Exchange]) -> Vec<PathBuf> {
    let mut opts = WriterOptions::new(dir, "http://127.0.0.1:9");
    opts.frame_bytes = 1500;
    opts.rotate_size = Some(3000);
    let mut w = JournalWriter::create(opts).unwrap();
    for e in exs {
        w.write(e).unwrap();
    }
    let s = w.finish().unwrap();
    assert!(
        s.files.len() >= 2,
        "the fixture spans several rotated files"
    );
    s.files
}

fn run(args: &[&str]) -> Output {
    tapedeck().args(args).output().expect("run tapedeck")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

#[test]
fn list_groups_sessions_and_classifies_roles() {
    let dir = tempfile::tempdir().unwrap();
    write_journals(dir.path(), &corevia_traffic());
    let d = path_str(dir.path());

    let o = run(&["sessions", "list", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("SESSION") && lines[0].contains("ROLE"),
        "{out}"
    );
    let row = |id: &str| {
        lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("no row {id} in\n{out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(row("sub:1")[1..4], ["student", "1", "7"]);
    assert_eq!(row("sub:9")[1..4], ["trainer", "9", "4"]);
    // User 1 came back an hour later: a second session.
    assert_eq!(row("sub:1#2")[1..4], ["student", "1", "3"]);
    assert!(
        out.contains("5 sessions, 28 exchanges (student 4, trainer 1)"),
        "{out}"
    );

    let o = run(&["sessions", "list", d, "--role", "trainer", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let sessions = v["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["id"], "sub:9");
    assert_eq!(sessions[0]["requests"], 4);

    // A longer idle split merges the two visits of user 1.
    let o = run(&["sessions", "list", d, "--idle-split", "2h", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["sessions"].as_array().unwrap().len(), 4);
}

#[test]
fn show_prints_every_exchange_of_a_session() {
    let dir = tempfile::tempdir().unwrap();
    write_journals(dir.path(), &corevia_traffic());
    let d = path_str(dir.path());
    let o = run(&["sessions", "show", d, "--session", "sub:9", "--bodies"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("session sub:9  role trainer  user 9  4 requests"),
        "{out}"
    );
    for name in ["Login", "Create Product", "My Products", "Trainer Content"] {
        assert!(out.contains(name), "{name} missing in\n{out}");
    }
    assert!(out.contains("> {\"username\":\"user9\""), "{out}");

    let o = run(&["sessions", "show", d, "--session", "sub:404"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--session \"sub:404\""),
        "{}",
        stderr(&o)
    );
}

#[test]
fn stats_prints_the_endpoint_mix_beside_the_profile() {
    let dir = tempfile::tempdir().unwrap();
    write_journals(dir.path(), &corevia_traffic());
    let d = path_str(dir.path());
    let o = run(&["sessions", "stats", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("28 exchanges, 5 sessions"), "{out}");
    // Social Feed: 7 of the 24 student requests; 7 of the 20 requests to
    // endpoints in the profile's task mix; expected 10 of the student task
    // weights (39).
    let feed = out
        .lines()
        .find(|l| l.trim_start().starts_with("Social Feed"))
        .unwrap_or_else(|| panic!("{out}"));
    let cells: Vec<&str> = feed.split_whitespace().collect();
    assert_eq!(cells[2..6], ["7", "29.2%", "35.0%", "25.6%"], "{feed}");

    let o = run(&["sessions", "stats", d, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let student = v["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"] == "student")
        .unwrap();
    assert_eq!(student["sessions"], 4);
    assert_eq!(student["expected_share"], 0.9);
    let trainer = v["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"] == "trainer")
        .unwrap();
    let cp = trainer["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "Create Product")
        .unwrap();
    assert_eq!(cp["requests"], 1);
    assert_eq!(cp["expected_share"], 0.5);
    // A task the profile expects but that never happened is listed with 0.
    let comments = student["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "Add Comment")
        .unwrap();
    assert_eq!(comments["requests"], 0);
}

#[test]
fn verify_passes_clean_journals_and_fails_damaged_ones() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_journals(dir.path(), &corevia_traffic());
    let d = path_str(dir.path());
    let o = run(&["sessions", "verify", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.lines().count(), files.len());
    assert!(
        out.lines()
            .all(|l| l.contains(": ok, ") && l.contains("finished cleanly")),
        "{out}"
    );

    // Damage the middle of the first file; truncate the last.
    let first = &files[0];
    let mut bytes = std::fs::read(first).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 40] {
        *b ^= 0xa5;
    }
    std::fs::write(first, &bytes).unwrap();
    let last = files.last().unwrap();
    let bytes = std::fs::read(last).unwrap();
    std::fs::write(last, &bytes[..bytes.len() - 7]).unwrap();

    let o = run(&["sessions", "verify", d]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.contains("is corrupt (skipped"), "{out}");
    assert!(out.contains("truncated tail of"), "{out}");
    assert!(out.contains("recovered"), "{out}");
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("tapedeck: ")
            && err.contains("damaged journal")
            && err.contains(path_str(first)),
        "{err}"
    );

    // Other commands read what is recoverable and warn once per damaged file.
    let o = run(&["sessions", "list", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    let warnings: Vec<String> = stderr(&o).lines().map(str::to_string).collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings
        .iter()
        .all(|w| w.starts_with("tapedeck: warning: journal ")));
}

#[test]
fn filter_writes_matching_sessions_and_exchanges() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    write_journals(&input, &corevia_traffic());
    let out = dir.path().join("trainers.jsonl.zst");
    let o = run(&[
        "sessions",
        "filter",
        path_str(&input),
        "-o",
        path_str(&out),
        "--role",
        "trainer",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("wrote 4 exchanges of 1 sessions"),
        "{}",
        stdout(&o)
    );
    let got = read_all(std::slice::from_ref(&out)).unwrap();
    assert_eq!(got.exchanges.len(), 4);
    assert!(got.exchanges.iter().all(|e| e.session == "sub:9"));
    assert_eq!(got.upstream(), Some("http://127.0.0.1:9"));

    let feed = dir.path().join("feed.jsonl.zst");
    let o = run(&[
        "sessions",
        "filter",
        path_str(&input),
        "-o",
        path_str(&feed),
        "--endpoint",
        "social feed",
        "--until",
        "+1h",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = read_all(&[feed]).unwrap();
    // Two feed calls for each of the three students' first visits.
    assert_eq!(got.exchanges.len(), 6);
    assert!(got
        .exchanges
        .iter()
        .all(|e| e.path() == "/api/v1/social/feed"));

    let o = run(&[
        "sessions",
        "filter",
        path_str(&input),
        "-o",
        path_str(&out),
        "--since",
        "yesterday",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--since \"yesterday\""),
        "{}",
        stderr(&o)
    );
}

#[test]
fn har_export_then_import_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let mut traffic = corevia_traffic();
    // A binary upload and a request that got no response.
    traffic[1].request.body = Body::new(vec![0u8, 0xff, 0x10, 0x80]);
    traffic[2].response = None;
    traffic[2].error = Some("upstream refused connection".into());
    write_journals(&input, &traffic);
    let har = dir.path().join("all.har");
    let o = run(&[
        "sessions",
        "export-har",
        path_str(&input),
        "-o",
        path_str(&har),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&har).unwrap()).unwrap();
    assert_eq!(doc["log"]["version"], "1.2");
    assert_eq!(
        doc["log"]["entries"].as_array().unwrap().len(),
        traffic.len()
    );

    let back = dir.path().join("back.jsonl.zst");
    let o = run(&[
        "sessions",
        "import-har",
        path_str(&har),
        "-o",
        path_str(&back),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("imported {} exchanges", traffic.len())),
        "{}",
        stdout(&o)
    );
    let got = read_all(&[back]).unwrap();
    assert_eq!(got.upstream(), Some("http://127.0.0.1:9"));
    let mut expected = traffic.clone();
    expected.sort_by_key(|e| (e.started, e.id));
    assert_eq!(got.exchanges, expected);

    // One session only.
    let one = dir.path().join("one.har");
    let o = run(&[
        "sessions",
        "export-har",
        path_str(&input),
        "-o",
        path_str(&one),
        "--session",
        "sub:9",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&one).unwrap()).unwrap();
    assert_eq!(doc["log"]["entries"].as_array().unwrap().len(), 4);
}

#[test]
fn bad_input_is_one_line_naming_the_file_or_flag() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.jsonl.zst");
    let text = dir.path().join("notes.jsonl.zst");
    std::fs::write(&text, "hello\n").unwrap();
    let har = dir.path().join("broken.har");
    std::fs::write(&har, r#"{"log":{"entries":[{"startedDateTime":"2026-11-26T10:00:00Z","request":{"method":"GET"},"response":{"status":200}}]}}"#).unwrap();
    let out = dir.path().join("o.jsonl.zst");
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["sessions", "list", path_str(&missing)],
            vec!["missing.jsonl.zst"],
        ),
        (
            vec!["sessions", "stats", path_str(&text)],
            vec!["notes.jsonl.zst", "not a tapedeck journal"],
        ),
        (
            vec!["sessions", "verify", path_str(&text)],
            vec!["notes.jsonl.zst"],
        ),
        (
            vec![
                "sessions",
                "import-har",
                path_str(&har),
                "-o",
                path_str(&out),
            ],
            vec!["broken.har", "entry 0", "request.url"],
        ),
        (
            vec!["sessions", "list", path_str(&text), "--session-key", "ip"],
            vec!["--session-key"],
        ),
        (
            vec!["sessions", "list", path_str(&text), "--idle-split", "soon"],
            vec!["--idle-split"],
        ),
    ];
    for (args, needles) in cases {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stdout(&o));
        let err = stderr(&o);
        for n in needles {
            assert!(err.contains(n), "{args:?}: {n:?} not in {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
        if !args.iter().any(|a| a.starts_with("--")) {
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        }
    }
}

/// Real traffic: the testbed API on its own runtime, `tapedeck capture` in
/// front of it, `tapedeck simulate` driving 9 students and a trainer through
/// the proxy; then the sessions commands on what was captured.
#[test]
fn captured_testbed_traffic_groups_into_one_session_per_user() {
    use crate::common::{free_port, wait_for_port, ChildGuard};

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let testbed = rt
        .block_on(tapedeck_testbed::start(
            "127.0.0.1:0".parse().unwrap(),
            tapedeck_testbed::TestbedConfig::new(tapedeck_testbed::Release::A),
        ))
        .unwrap();
    let upstream = format!("http://{}", testbed.addr());

    let dir = tempfile::tempdir().unwrap();
    let journals = dir.path().join("journals");
    let listen = format!("127.0.0.1:{}", free_port());
    let mut cmd = tapedeck();
    cmd.args([
        "capture",
        "--upstream",
        &upstream,
        "--listen",
        &listen,
        "--out",
    ])
    .arg(&journals);
    let capture = ChildGuard::spawn(cmd);
    wait_for_port(listen.parse().unwrap());

    let o = run(&[
        "simulate",
        "--target",
        &format!("http://{listen}"),
        "--students",
        "9",
        "--trainers",
        "1",
        "--run-time",
        "3s",
        "--think-scale",
        "0.1",
        "--seed",
        "3",
    ]);
    assert!(o.status.success(), "simulate: {}", stderr(&o));
    let (code, _, err) = capture.terminate();
    assert_eq!(code, Some(0), "capture: {err}");

    let j = path_str(&journals);
    let o = run(&["sessions", "verify", j]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("finished cleanly"), "{}", stdout(&o));

    // Every simulated user logs in once: one session per user, with the
    // role the login handed out.
    let o = run(&["sessions", "list", j, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let sessions = v["sessions"].as_array().unwrap();
    let roles: Vec<&str> = sessions
        .iter()
        .map(|s| s["role"].as_str().unwrap())
        .collect();
    assert_eq!(sessions.len(), 10, "{sessions:#?}");
    assert_eq!(
        roles.iter().filter(|r| **r == "trainer").count(),
        1,
        "{roles:?}"
    );
    assert!(sessions
        .iter()
        .all(|s| s["id"].as_str().unwrap().starts_with("sub:")));
    assert!(sessions.iter().all(|s| s["user"].is_string()));

    // Regrouping from scratch (auto) agrees with the keys capture recorded.
    let o = run(&["sessions", "list", j, "--json", "--session-key", "auto"]);
    let auto: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(auto["sessions"], v["sessions"]);

    let o = run(&["sessions", "stats", j, "--json"]);
    let stats: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let trainer = stats["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"] == "trainer")
        .unwrap();
    let names: Vec<&str> = trainer["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["requests"].as_u64().unwrap() > 0)
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Login"), "{names:?}");
    drop(testbed);
    drop(rt);
}
