//! Grouping, keying and role tests.

use base64::Engine;
use chrono::{DateTime, Utc};

use super::*;
use crate::keys::SessionKeyer;
use crate::model::{Body, RecordedRequest, RecordedResponse};

fn jwt(claims: serde_json::Value) -> String {
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!(
        "{}.{}.{}",
        b64(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes()),
        b64(b"signature")
    )
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
}

struct Ex(Exchange);

impl Ex {
    fn new(id: u64, conn: u64, secs: i64, method: &str, uri: &str) -> Ex {
        Ex(Exchange {
            id,
            session: String::new(),
            conn,
            started: at(secs),
            upstream: None,
            client: Some(format!("10.0.0.{conn}:5{conn}000")),
            request: RecordedRequest {
                method: method.into(),
                uri: uri.into(),
                version: "HTTP/1.1".into(),
                headers: vec![("user-agent".into(), "CoreVia/1.0".into())],
                body: Body::default(),
            },
            response: Some(RecordedResponse {
                status: 200,
                headers: vec![],
                body: Body::new(b"{}".to_vec()),
            }),
            error: None,
            ttfb_us: 1000,
            duration_us: 2000,
        })
    }
    fn bearer(mut self, token: &str) -> Ex {
        self.0
            .request
            .headers
            .push(("Authorization".into(), format!("Bearer {token}")));
        self
    }
    fn header(mut self, name: &str, value: &str) -> Ex {
        self.0.request.headers.push((name.into(), value.into()));
        self
    }
    fn req_body(mut self, body: serde_json::Value) -> Ex {
        self.0.request.body = Body::new(body.to_string().into_bytes());
        self
    }
    fn resp(mut self, status: u16, body: serde_json::Value) -> Ex {
        self.0.response = Some(RecordedResponse {
            status,
            headers: vec![],
            body: Body::new(body.to_string().into_bytes()),
        });
        self
    }
    fn session(mut self, s: &str) -> Ex {
        self.0.session = s.into();
        self
    }
}

fn auto() -> GroupOptions {
    GroupOptions {
        key: SessionKey::Auto,
        ..GroupOptions::default()
    }
}

fn ids(s: &Session) -> Vec<u64> {
    s.exchanges.iter().map(|e| e.id).collect()
}

#[test]
fn login_joins_the_session_it_hands_out_on_the_same_connection() {
    let token = jwt(serde_json::json!({"sub": "42", "role": "student"}));
    let exs = vec![
        // Uncredentialed requests on connection 1, then the login.
        Ex::new(1, 1, 0, "GET", "/api/v1/config").0,
        Ex::new(2, 1, 1, "POST", "/api/v1/auth/login")
            .req_body(serde_json::json!({"username": "ana", "password": "x"}))
            .resp(
                200,
                serde_json::json!({"access_token": token, "token_type": "bearer"}),
            )
            .0,
        Ex::new(3, 1, 2, "GET", "/api/v1/social/feed")
            .bearer(&token)
            .0,
        // Another connection of the same user (same token).
        Ex::new(4, 2, 3, "GET", "/api/v1/users/me").bearer(&token).0,
        // A different device, no credentials at all.
        Ex::new(5, 3, 4, "GET", "/api/v1/config").0,
    ];
    let sessions = group_sessions(exs, &auto(), &Profile::builtin());
    assert_eq!(sessions.len(), 2, "{sessions:#?}");
    assert_eq!(sessions[0].id, "sub:42");
    assert_eq!(ids(&sessions[0]), vec![1, 2, 3, 4]);
    assert_eq!(sessions[0].user.as_deref(), Some("42"));
    assert_eq!(sessions[0].role, "student");
    assert!(
        sessions[1].id.starts_with("client:10.0.0.3:"),
        "{}",
        sessions[1].id
    );
    assert_eq!(ids(&sessions[1]), vec![5]);
    assert_eq!(sessions[1].role, "student", "profile default");
}

#[test]
fn idle_gap_starts_a_new_session_with_a_stable_id() {
    let token = jwt(serde_json::json!({"sub": 7}));
    let exs = vec![
        Ex::new(1, 1, 0, "GET", "/api/v1/social/feed")
            .bearer(&token)
            .0,
        Ex::new(2, 1, 60, "GET", "/api/v1/social/feed")
            .bearer(&token)
            .0,
        Ex::new(3, 1, 60 + 31 * 60, "GET", "/api/v1/social/feed")
            .bearer(&token)
            .0,
    ];
    let sessions = group_sessions(exs.clone(), &auto(), &Profile::builtin());
    let got: Vec<(&str, Vec<u64>)> = sessions.iter().map(|s| (s.id.as_str(), ids(s))).collect();
    assert_eq!(got, vec![("sub:7", vec![1, 2]), ("sub:7#2", vec![3])]);
    assert_eq!(sessions[0].span(), Duration::from_micros(60_000_000 + 2000));

    let longer = GroupOptions {
        idle_split: Duration::from_secs(3600),
        ..auto()
    };
    assert_eq!(group_sessions(exs, &longer, &Profile::builtin()).len(), 1);
}

#[test]
fn sessions_are_ordered_by_first_request_and_exchanges_by_time() {
    let a = jwt(serde_json::json!({"sub": "a"}));
    let b = jwt(serde_json::json!({"sub": "b"}));
    let exs = vec![
        Ex::new(4, 2, 5, "GET", "/x").bearer(&a).0,
        Ex::new(3, 1, 2, "GET", "/x").bearer(&b).0,
        Ex::new(1, 1, 1, "GET", "/x").bearer(&a).0,
        Ex::new(2, 1, 1, "GET", "/x").bearer(&b).0,
    ];
    let sessions = group_sessions(exs, &auto(), &Profile::builtin());
    let got: Vec<(&str, Vec<u64>)> = sessions.iter().map(|s| (s.id.as_str(), ids(s))).collect();
    assert_eq!(got, vec![("sub:a", vec![1, 4]), ("sub:b", vec![2, 3])]);
}

#[test]
fn roles_come_from_jwt_then_login_then_paths_then_default() {
    let p = Profile::builtin();
    // JWT role claim wins even over trainer-only paths.
    let t = jwt(serde_json::json!({"sub": "1", "role": "admin"}));
    let s = group_sessions(
        vec![
            Ex::new(1, 1, 0, "POST", "/api/v1/marketplace/products")
                .bearer(&t)
                .0,
        ],
        &auto(),
        &p,
    );
    assert_eq!(s[0].role, "admin");

    // Login response field (`user.role` in the CoreVia profile), opaque token.
    let s = group_sessions(
        vec![
            Ex::new(1, 1, 0, "POST", "/api/v1/auth/login")
                .req_body(serde_json::json!({"username": "tom"}))
                .resp(200, serde_json::json!({"access_token": "opaque-1", "user": {"id": 3, "username": "tom", "role": "trainer"}}))
                .0,
            Ex::new(2, 1, 1, "GET", "/api/v1/social/feed").bearer("opaque-1").0,
        ],
        &auto(),
        &p,
    );
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].role, "trainer");
    assert_eq!(s[0].user.as_deref(), Some("tom"));
    assert!(s[0].id.starts_with("token:"));

    // Path rules: creating a product makes a trainer.
    let s = group_sessions(
        vec![
            Ex::new(1, 1, 0, "GET", "/api/v1/social/feed")
                .bearer("t2")
                .0,
            Ex::new(2, 1, 1, "POST", "/api/v1/marketplace/products")
                .bearer("t2")
                .0,
        ],
        &auto(),
        &p,
    );
    assert_eq!(s[0].role, "trainer");
    assert_eq!(s[0].user, None);

    // Nothing known: the profile default; without one, `other`.
    let exs = vec![
        Ex::new(1, 1, 0, "GET", "/api/v1/social/feed")
            .bearer("t3")
            .0,
    ];
    assert_eq!(group_sessions(exs.clone(), &auto(), &p)[0].role, "student");
    let mut bare = p.clone();
    bare.roles = crate::profile::RoleRules::default();
    assert_eq!(group_sessions(exs, &auto(), &bare)[0].role, "other");
}

#[test]
fn header_cookie_and_jwt_claim_keys() {
    let exs = vec![
        Ex::new(1, 1, 0, "GET", "/a")
            .header("X-Device", "dev-1")
            .header("Cookie", "theme=dark; sid=abc")
            .0,
        Ex::new(2, 2, 1, "GET", "/a")
            .header("x-device", "dev-2")
            .header("Cookie", "sid=abc")
            .0,
        Ex::new(3, 3, 2, "GET", "/a")
            .header("X-Device", "dev-1")
            .header("Cookie", "sid=xyz")
            .0,
    ];
    let by = |key: SessionKey| -> Vec<Vec<u64>> {
        let opts = GroupOptions {
            key,
            ..GroupOptions::default()
        };
        group_sessions(exs.clone(), &opts, &Profile::builtin())
            .iter()
            .map(ids)
            .collect()
    };
    assert_eq!(
        by("header:X-Device".parse().unwrap()),
        vec![vec![1, 3], vec![2]]
    );
    assert_eq!(by("cookie:sid".parse().unwrap()), vec![vec![1, 2], vec![3]]);
    // Auto picks the session cookie when there is no bearer token.
    assert_eq!(by(SessionKey::Auto), vec![vec![1, 2], vec![3]]);

    let t1 = jwt(serde_json::json!({"sub": "1", "tenant": "gym-a"}));
    let t2 = jwt(serde_json::json!({"sub": "2", "tenant": "gym-a"}));
    let exs = vec![
        Ex::new(1, 1, 0, "GET", "/a").bearer(&t1).0,
        Ex::new(2, 2, 1, "GET", "/a").bearer(&t2).0,
    ];
    let opts = GroupOptions {
        key: "jwt:tenant".parse().unwrap(),
        ..GroupOptions::default()
    };
    let s = group_sessions(exs, &opts, &Profile::builtin());
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].id, "tenant:gym-a");
}

#[test]
fn recorded_keys_are_used_and_stitched() {
    let token = jwt(serde_json::json!({"sub": "9"}));
    let mut keyer = SessionKeyer::new(SessionKey::Auto);
    let mut exs = vec![
        Ex::new(1, 1, 0, "GET", "/api/v1/config").0,
        Ex::new(2, 1, 1, "POST", "/api/v1/auth/login")
            .resp(200, serde_json::json!({"access_token": token}))
            .0,
        Ex::new(3, 1, 2, "GET", "/api/v1/config").0,
        Ex::new(4, 1, 3, "GET", "/api/v1/users/me").bearer(&token).0,
    ];
    for ex in &mut exs {
        ex.session = keyer.assign(ex);
    }
    // At capture time the request before the login could not know its session...
    assert!(exs[0].session.starts_with("client:"));
    // ...the login and everything after it on the connection could.
    assert_eq!(exs[1].session, "sub:9");
    assert_eq!(exs[2].session, "sub:9");
    assert_eq!(exs[3].session, "sub:9");
    let s = group_sessions(exs, &GroupOptions::default(), &Profile::builtin());
    assert_eq!(s.len(), 1);
    assert_eq!(ids(&s[0]), vec![1, 2, 3, 4]);
}

#[test]
fn recorded_key_strings_are_kept() {
    let exs = vec![
        Ex::new(1, 1, 0, "GET", "/a").session("conn:1").0,
        Ex::new(2, 2, 1, "GET", "/a").session("conn:2").0,
        Ex::new(3, 1, 2, "GET", "/a").session("conn:1").0,
    ];
    let s = group_sessions(exs, &GroupOptions::default(), &Profile::builtin());
    let got: Vec<(&str, Vec<u64>)> = s.iter().map(|s| (s.id.as_str(), ids(s))).collect();
    assert_eq!(got, vec![("conn:1", vec![1, 3]), ("conn:2", vec![2])]);
}

#[test]
fn keyer_splits_idle_visits() {
    let mut keyer = SessionKeyer::new(SessionKey::Auto).with_idle_split(Duration::from_secs(60));
    let t = jwt(serde_json::json!({"sub": "5"}));
    let keys: Vec<String> = [0, 30, 200, 210, 400]
        .iter()
        .enumerate()
        .map(|(i, s)| keyer.assign(&Ex::new(i as u64, 1, *s, "GET", "/a").bearer(&t).0))
        .collect();
    assert_eq!(
        keys,
        vec!["sub:5", "sub:5", "sub:5#2", "sub:5#2", "sub:5#3"]
    );
}

#[test]
fn session_key_flag_parses_and_names_bad_values() {
    assert_eq!("auto".parse::<SessionKey>().unwrap(), SessionKey::Auto);
    assert_eq!(
        "recorded".parse::<SessionKey>().unwrap(),
        SessionKey::Recorded
    );
    assert_eq!(
        "header:X-User".parse::<SessionKey>().unwrap(),
        SessionKey::Header("X-User".into())
    );
    assert_eq!(
        "cookie:sid".parse::<SessionKey>().unwrap(),
        SessionKey::Cookie("sid".into())
    );
    assert_eq!(
        "jwt:sub".parse::<SessionKey>().unwrap(),
        SessionKey::Jwt("sub".into())
    );
    for bad in ["", "ip", "header:", "query:x"] {
        let e = bad.parse::<SessionKey>().unwrap_err().to_string();
        assert!(
            e.contains("--session-key") && e.contains(&format!("{bad:?}")),
            "{e}"
        );
    }
    assert_eq!(SessionKey::Jwt("sub".into()).to_string(), "jwt:sub");
}

#[test]
fn jwt_claims_decode_without_verifying() {
    let t = jwt(serde_json::json!({"sub": "42", "role": "trainer"}));
    let c = crate::jwt_claims(&t).unwrap();
    assert_eq!(c["role"], "trainer");
    assert!(crate::jwt_claims("not-a-jwt").is_none());
    assert!(crate::jwt_claims("a.b.c").is_none());
    assert!(crate::jwt_claims("a.!!!.c").is_none());
    // A padded payload is accepted too.
    let parts: Vec<&str> = t.split('.').collect();
    let padded = format!("{}.{}==.{}", parts[0], parts[1], parts[2]);
    assert!(crate::jwt_claims(&padded).is_some());
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn arb_header() -> impl Strategy<Value = (String, String)> {
        prop_oneof![
            (
                Just("authorization".to_string()),
                "(Bearer |bearer )?[A-Za-z0-9._=-]{0,40}"
            ),
            (
                Just("cookie".to_string()),
                "([a-z]{1,6}=[a-z0-9]{0,6}; ?){0,3}"
            ),
            (Just("user-agent".to_string()), ".{0,20}"),
            ("[a-z-]{1,10}", ".{0,20}"),
        ]
    }

    fn arb_exchange() -> impl Strategy<Value = Exchange> {
        (
            any::<u64>(),
            ".{0,12}",
            0u64..4,
            (
                -8_000_000_000_000i64..8_000_000_000_000,
                0u32..1_000_000_000,
            ),
            proptest::option::of(".{0,22}"),
            ("[A-Z]{1,6}", "/[a-z0-9/]{0,30}"),
            proptest::collection::vec(arb_header(), 0..4),
            proptest::option::of((
                100u16..600,
                proptest::collection::vec(("set-cookie|x-a", ".{0,20}"), 0..2),
                prop_oneof![
                    Just(String::new()),
                    "[a-z0-9]{1,20}".prop_map(|t| format!(
                        "{{\"access_token\":\"{t}\",\"user\":{{\"role\":\"trainer\"}}}}"
                    )),
                    ".{0,30}",
                ],
            )),
            (any::<u64>(), any::<u64>()),
        )
            .prop_map(
                |(
                    id,
                    session,
                    conn,
                    (secs, ns),
                    client,
                    (method, uri),
                    headers,
                    resp,
                    (ttfb_us, duration_us),
                )| Exchange {
                    id,
                    session,
                    conn,
                    started: DateTime::from_timestamp(secs, ns).expect("in range"),
                    upstream: None,
                    client,
                    request: RecordedRequest {
                        method,
                        uri,
                        version: "HTTP/1.1".into(),
                        headers,
                        body: Body::default(),
                    },
                    response: resp.map(|(status, headers, body)| RecordedResponse {
                        status,
                        headers,
                        body: Body::new(body.into_bytes()),
                    }),
                    error: None,
                    ttfb_us,
                    duration_us,
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
        fn grouping_never_panics_or_drops_an_exchange(
            exs in proptest::collection::vec(arb_exchange(), 0..30),
            key in prop_oneof![
                Just(SessionKey::Recorded),
                Just(SessionKey::Auto),
                Just(SessionKey::Cookie("sid".into())),
                Just(SessionKey::Jwt("sub".into())),
            ],
            idle_s in 0u64..100_000,
        ) {
            let opts = GroupOptions { key: key.clone(), idle_split: Duration::from_secs(idle_s) };
            let sessions = group_sessions(exs.clone(), &opts, &Profile::builtin());
            let mut got: Vec<u64> = sessions.iter().flat_map(|s| s.exchanges.iter().map(|e| e.id)).collect();
            let mut want: Vec<u64> = exs.iter().map(|e| e.id).collect();
            got.sort_unstable();
            want.sort_unstable();
            prop_assert_eq!(got, want);
            let mut ids: Vec<&str> = sessions.iter().map(|s| s.id.as_str()).collect();
            let n = ids.len();
            ids.sort_unstable();
            ids.dedup();
            prop_assert_eq!(ids.len(), n, "session ids are unique");
            for s in &sessions {
                let _ = (s.span(), s.bytes());
            }
            let mut keyer = SessionKeyer::new(key).with_idle_split(Duration::from_secs(idle_s));
            for e in &exs {
                let _ = keyer.assign(e);
            }
        }
    }
}
