//! HAR import/export tests.

use super::*;

/// Shaped like what Chrome's devtools save ("Save all as HAR with content").
const DEVTOOLS_HAR: &str = r#"{
  "log": {
    "version": "1.2",
    "creator": {"name": "WebInspector", "version": "537.36"},
    "pages": [{"startedDateTime": "2026-11-26T10:00:00.000Z", "id": "page_1", "title": "x", "pageTimings": {}}],
    "entries": [
      {
        "_initiator": {"type": "script"},
        "_priority": "High",
        "_resourceType": "xhr",
        "cache": {},
        "connection": "48213",
        "pageref": "page_1",
        "request": {
          "method": "POST",
          "url": "https://api.corevia.app/api/v1/auth/login",
          "httpVersion": "http/2.0",
          "headers": [
            {"name": ":authority", "value": "api.corevia.app"},
            {"name": ":method", "value": "POST"},
            {"name": "content-type", "value": "application/json"},
            {"name": "user-agent", "value": "Mozilla/5.0"}
          ],
          "queryString": [],
          "cookies": [],
          "headersSize": -1,
          "bodySize": 38,
          "postData": {"mimeType": "application/json", "text": "{\"username\":\"ana\",\"password\":\"pw\"}"}
        },
        "response": {
          "status": 200,
          "statusText": "",
          "httpVersion": "http/2.0",
          "headers": [{"name": "content-type", "value": "application/json"}],
          "cookies": [],
          "content": {"size": 58, "mimeType": "application/json", "text": "{\"access_token\":\"opaque-token-1\",\"token_type\":\"bearer\"}"},
          "redirectURL": "",
          "headersSize": -1,
          "bodySize": -1,
          "_transferSize": 300,
          "_error": null
        },
        "serverIPAddress": "10.1.2.3",
        "startedDateTime": "2026-11-26T10:00:01.250+01:00",
        "time": 152.41,
        "timings": {"blocked": 1.2, "dns": -1, "ssl": -1, "connect": -1, "send": 0.1, "wait": 120.5, "receive": 30.61, "_blocked_queueing": 0.8}
      },
      {
        "request": {"method": "GET", "url": "https://api.corevia.app/api/v1/social/feed?limit=20", "headers": [{"name": "authorization", "value": "Bearer opaque-token-1"}]},
        "response": {"status": 200, "content": {"size": 1000, "mimeType": "application/json"}},
        "startedDateTime": "2026-11-26T09:00:02Z",
        "connection": "48213"
      },
      {
        "request": {"method": "GET", "url": "https://cdn.corevia.app/img/1.png", "headers": []},
        "response": {"status": 0, "_error": "net::ERR_CONNECTION_RESET"},
        "startedDateTime": "2026-11-26T09:00:03Z",
        "time": 5
      }
    ]
  }
}"#;

#[test]
fn imports_a_devtools_har() {
    let har: Value = serde_json::from_str(DEVTOOLS_HAR).unwrap();
    let imp = har_to_exchanges(&har, &SessionKey::Auto).unwrap();
    assert_eq!(imp.upstream, "https://api.corevia.app");
    let [login, feed, img] = &imp.exchanges[..] else {
        panic!("3 entries")
    };
    assert_eq!(login.request.method, "POST");
    assert_eq!(login.request.uri, "/api/v1/auth/login");
    assert_eq!(login.request.version, "HTTP/2");
    assert_eq!(login.request.headers.len(), 2, "pseudo-headers dropped");
    assert_eq!(login.started.to_rfc3339(), "2026-11-26T09:00:01.250+00:00");
    assert_eq!(login.ttfb_us, 121_800);
    assert_eq!(login.duration_us, 152_410);
    assert_eq!(login.conn, 48213);
    assert_eq!(login.status(), Some(200));
    assert!(login.request.body.json().is_some());
    // Login stitching applies to imported traffic too.
    assert_eq!(login.session, feed.session);
    assert!(feed.session.starts_with("token:"));
    assert_eq!(feed.request.uri, "/api/v1/social/feed?limit=20");
    let body = &feed.response.as_ref().unwrap().body;
    assert!(body.truncated && body.data.is_empty() && body.len == 1000);
    assert_eq!(img.upstream.as_deref(), Some("https://cdn.corevia.app"));
    assert!(img.response.is_none());
    assert_eq!(img.error.as_deref(), Some("net::ERR_CONNECTION_RESET"));
}

#[test]
fn missing_required_fields_name_the_entry() {
    let mut har: Value = serde_json::from_str(DEVTOOLS_HAR).unwrap();
    har["log"]["entries"][1]["request"]
        .as_object_mut()
        .unwrap()
        .remove("url");
    let e = har_to_exchanges(&har, &SessionKey::Auto).unwrap_err();
    assert_eq!(e, "entry 1: missing request.url");

    let mut har: Value = serde_json::from_str(DEVTOOLS_HAR).unwrap();
    har["log"]["entries"][2]
        .as_object_mut()
        .unwrap()
        .remove("startedDateTime");
    let e = har_to_exchanges(&har, &SessionKey::Auto).unwrap_err();
    assert_eq!(e, "entry 2: missing startedDateTime");

    let mut dated: Value = serde_json::from_str(DEVTOOLS_HAR).unwrap();
    dated["log"]["entries"][0]["startedDateTime"] = json!("yesterday");
    let e = har_to_exchanges(&dated, &SessionKey::Auto).unwrap_err();
    assert!(
        e.starts_with("entry 0: startedDateTime \"yesterday\""),
        "{e}"
    );
    dated["log"]["entries"][0]["startedDateTime"] = json!("2026-11-26T10:00:00.5");
    let imp = har_to_exchanges(&dated, &SessionKey::Auto).unwrap();
    assert_eq!(
        imp.exchanges[0].started.to_rfc3339(),
        "2026-11-26T10:00:00.500+00:00"
    );

    let e = har_to_exchanges(&json!({"entries": []}), &SessionKey::Auto).unwrap_err();
    assert!(e.contains("no \"log\""), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.har");
    std::fs::write(&path, serde_json::to_vec(&har).unwrap()).unwrap();
    let e = import_har(&path, &SessionKey::Auto)
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.har") && e.contains("entry 2"), "{e}");
    std::fs::write(&path, b"<html>").unwrap();
    let e = import_har(&path, &SessionKey::Auto)
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.har") && e.contains("not JSON"), "{e}");
}

fn sample(id: u64, req_body: Vec<u8>, resp_body: Vec<u8>) -> Exchange {
    Exchange {
        id,
        session: format!("sub:{id}"),
        conn: id * 10,
        started: DateTime::from_timestamp(1_800_000_000, 123_456_789 + id as u32).unwrap(),
        upstream: None,
        client: Some("127.0.0.1:4000".into()),
        request: RecordedRequest {
            method: "POST".into(),
            uri: "/api/v1/social/posts?tag=a%20b&x=1".into(),
            version: "HTTP/1.1".into(),
            headers: vec![
                ("Content-Type".into(), "application/octet-stream".into()),
                ("x-dup".into(), "1".into()),
                ("x-dup".into(), "2".into()),
            ],
            body: Body::new(req_body),
        },
        response: Some(RecordedResponse {
            status: 201,
            headers: vec![
                ("set-cookie".into(), "a=1".into()),
                ("set-cookie".into(), "b=2".into()),
            ],
            body: Body::new(resp_body),
        }),
        error: None,
        ttfb_us: 12_345,
        duration_us: 23_456,
    }
}

#[test]
fn export_then_import_round_trips() {
    let mut exs = vec![
        sample(1, b"{\"text\":\"hi\"}".to_vec(), b"{\"id\":1}".to_vec()),
        sample(2, vec![0xff, 0x00, 0x10], vec![0x89, b'P', b'N', b'G']),
        sample(3, Vec::new(), Vec::new()),
    ];
    exs[2].response = None;
    exs[2].error = Some("upstream refused connection".into());
    exs[1].response.as_mut().unwrap().body = Body {
        data: vec![0xfe; 10],
        len: 5000,
        truncated: true,
    };
    exs[0].upstream = Some("http://other.example:8080".into());
    exs[0].request.body = Body {
        data: b"{\"te".to_vec(),
        len: 900,
        truncated: true,
    };
    let har = exchanges_to_har(&exs, "http://127.0.0.1:8000");
    assert_eq!(har["log"]["version"], "1.2");
    assert_eq!(
        har["log"]["entries"][1]["request"]["postData"]["encoding"],
        "base64"
    );
    assert_eq!(
        har["log"]["entries"][1]["response"]["content"]["encoding"],
        "base64"
    );
    assert_eq!(
        har["log"]["entries"][0]["request"]["url"],
        "http://other.example:8080/api/v1/social/posts?tag=a%20b&x=1"
    );
    let back = har_to_exchanges(&har, &SessionKey::Auto).unwrap();
    assert_eq!(back.upstream, "http://other.example:8080");
    let mut expected = exs.clone();
    // The first entry's origin becomes the upstream; the others differ from it.
    expected[0].upstream = None;
    expected[1].upstream = Some("http://127.0.0.1:8000".into());
    expected[2].upstream = Some("http://127.0.0.1:8000".into());
    assert_eq!(back.exchanges, expected);

    // Through a file, too (0600).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.har");
    export_har(&path, &exs, "http://127.0.0.1:8000").unwrap();
    let imported = import_har(&path, &SessionKey::Auto).unwrap();
    assert_eq!(imported.exchanges, expected);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

mod round_trip {
    use proptest::prelude::*;

    use super::*;

    fn arb_body() -> impl Strategy<Value = Body> {
        prop_oneof![
            ".{0,80}".prop_map(|s: String| Body::new(s.into_bytes())),
            proptest::collection::vec(any::<u8>(), 0..80).prop_map(Body::new),
            (proptest::collection::vec(any::<u8>(), 1..20), 1u32..10_000).prop_map(|(d, extra)| {
                Body {
                    len: d.len() as u64 + u64::from(extra),
                    data: d,
                    truncated: true,
                }
            }),
        ]
    }

    fn arb_headers() -> impl Strategy<Value = Vec<(String, String)>> {
        proptest::collection::vec(("[a-z][a-z0-9-]{0,15}", ".{0,30}"), 0..5)
    }

    fn arb_exchange() -> impl Strategy<Value = Exchange> {
        (
            (any::<u32>(), "[a-z0-9:]{1,12}", any::<u32>()),
            (0i64..4_000_000_000, 0u32..1_000_000_000),
            (
                "[A-Z]{1,7}",
                "(/[a-z0-9._~-]{1,8}){0,4}(\\?[a-z]{1,5}=[a-z0-9]{0,5})?",
            ),
            prop_oneof![Just("HTTP/1.1"), Just("HTTP/2"), Just("HTTP/1.0")],
            (arb_headers(), arb_body()),
            proptest::option::of((100u16..600, arb_headers(), arb_body())),
            proptest::option::of(".{1,30}"),
            (0u32..10_000_000, 0u32..10_000_000),
        )
            .prop_map(
                |(
                    (id, session, conn),
                    (secs, ns),
                    (method, path),
                    version,
                    (headers, body),
                    resp,
                    error,
                    (ttfb, extra),
                )| {
                    let uri = if path.is_empty() || path.starts_with('?') {
                        format!("/{path}")
                    } else {
                        path
                    };
                    Exchange {
                        id: u64::from(id),
                        session,
                        conn: u64::from(conn),
                        started: DateTime::from_timestamp(secs, ns).expect("in range"),
                        upstream: None,
                        client: Some("127.0.0.1:5000".into()),
                        request: RecordedRequest {
                            method,
                            uri,
                            version: version.to_string(),
                            headers,
                            body,
                        },
                        error: if resp.is_none() {
                            Some(error.unwrap_or_else(|| "upstream refused connection".into()))
                        } else {
                            error
                        },
                        response: resp.map(|(status, headers, body)| RecordedResponse {
                            status,
                            headers,
                            body,
                        }),
                        ttfb_us: u64::from(ttfb),
                        duration_us: u64::from(ttfb) + u64::from(extra),
                    }
                },
            )
    }

    /// 64 cases keep `cargo test` fast; `PROPTEST_CASES=5000` searches harder.
    fn cases() -> u32 {
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(64)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

        #[test]
        fn export_import_is_identity(exs in proptest::collection::vec(arb_exchange(), 1..8)) {
            let har = exchanges_to_har(&exs, "http://127.0.0.1:8000");
            let text = serde_json::to_string(&har).unwrap();
            let back = har_to_exchanges(&serde_json::from_str(&text).unwrap(), &SessionKey::Auto).unwrap();
            prop_assert_eq!(back.upstream, "http://127.0.0.1:8000");
            prop_assert_eq!(back.exchanges, exs);
        }
    }
}
