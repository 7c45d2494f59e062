//! The correlation rules file (`--correlation FILE`) on arbitrary bytes,
//! applied to a small recorded session so that its patterns are matched.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tapedeck_replay::correlation::{Correlation, CorrelationOptions};
use tapedeck_sessions::{group_sessions, Exchange, GroupOptions, Profile, Session};

/// A login handing out a token and an id, then requests that use them.
fn sessions() -> &'static [Session] {
    static SESSIONS: OnceLock<Vec<Session>> = OnceLock::new();
    SESSIONS.get_or_init(|| {
        let exchange = |id: u64, ms: u64, method: &str, uri: &str, req: &str, resp: &str| {
            let mut headers = vec![serde_json::json!(["content-type", "application/json"])];
            if id > 1 {
                headers.push(serde_json::json!([
                    "authorization",
                    "Bearer tok-abcdef0123456789abcdef"
                ]));
            }
            serde_json::from_value::<Exchange>(serde_json::json!({
                "id": id, "session": "s1", "conn": 1,
                "started": format!("2026-11-26T10:00:00.{ms:03}Z"),
                "client": "10.0.0.1:4000",
                "request": {"method": method, "uri": uri, "version": "HTTP/1.1",
                            "headers": headers, "body": req},
                "response": {"status": 200,
                             "headers": [["content-type", "application/json"]],
                             "body": resp},
                "error": null, "ttfb_us": 900, "duration_us": 1000
            }))
            .expect("a well-formed exchange")
        };
        let exchanges = vec![
            exchange(
                1,
                0,
                "POST",
                "/api/v1/auth/login",
                r#"{"username":"ann","password":"x"}"#,
                r#"{"access_token":"tok-abcdef0123456789abcdef","user":{"id":4711,"username":"ann"}}"#,
            ),
            exchange(2, 100, "POST", "/api/v1/social/posts", r#"{"text":"hi"}"#, r#"{"id":98765}"#),
            exchange(3, 200, "POST", "/api/v1/social/posts/98765/like", "", "{}"),
            exchange(4, 300, "GET", "/api/v1/users/me?u=ann", "", r#"{"id":4711}"#),
        ];
        group_sessions(exchanges, &GroupOptions::default(), &Profile::builtin())
    })
}

/// One file per fuzzing process, rewritten for every input.
fn rules_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("tapedeck-fuzz-rules-{}.json", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = rules_path();
    std::fs::write(path, data).expect("write the rules file");
    let opts = CorrelationOptions {
        enabled: true,
        rules_file: Some(path.clone()),
        ..CorrelationOptions::default()
    };
    if let Err(e) = Correlation::discover(sessions(), &opts) {
        let message = e.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
    }
});
