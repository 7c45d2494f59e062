//! Discovery, rewriting and identity on hand-built sessions.

use super::*;
use tapedeck_sessions::{Body, Exchange, RecordedResponse};

const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI3Iiwicm9sZSI6InN0dWRlbnQiLCJpYXQiOjEwMDAsImV4cCI6NDYwMH0.c2lnbmF0dXJlMTIz";
const LIVE_TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI5OSJ9.bGl2ZXNpZ25hdHVyZQ";

fn exchange(
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
    status: u16,
    resp: &str,
) -> Exchange {
    let h = |hs: &[(&str, &str)]| {
        hs.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    Exchange {
        id: 0,
        session: "s".into(),
        conn: 0,
        started: chrono::Utc::now(),
        upstream: None,
        client: None,
        request: RecordedRequest {
            method: method.into(),
            uri: uri.into(),
            version: "HTTP/1.1".into(),
            headers: h(headers),
            body: Body::new(body.as_bytes().to_vec()),
        },
        response: Some(RecordedResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Body::new(resp.as_bytes().to_vec()),
        }),
        error: None,
        ttfb_us: 0,
        duration_us: 0,
    }
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

/// Login, feed, like of the 2nd feed post, create post, comment on it.
fn student_session() -> Session {
    let auth = bearer();
    let auth = auth.as_str();
    let json = ("content-type", "application/json");
    Session {
        id: "sub:7".into(),
        role: "student".into(),
        user: Some("7".into()),
        exchanges: vec![
            exchange(
                "POST",
                "/api/v1/auth/login",
                &[json],
                r#"{"username":"student3","password":"pw"}"#,
                200,
                &format!(
                    r#"{{"access_token":"{TOKEN}","token_type":"bearer","user":{{"id":7,"username":"student3","role":"student"}}}}"#
                ),
            ),
            exchange(
                "GET",
                "/api/v1/social/feed?limit=3&offset=0",
                &[("authorization", auth)],
                "",
                200,
                r#"{"items":[{"id":12,"author":"a","likes":3},{"id":11,"author":"b","likes":0},{"id":3,"author":"c","likes":1}],"total":3}"#,
            ),
            exchange(
                "POST",
                "/api/v1/social/posts/11/like",
                &[("authorization", auth)],
                "",
                200,
                r#"{"liked":true}"#,
            ),
            exchange(
                "POST",
                "http://api.example:8000/api/v1/social/posts",
                &[("authorization", auth), json],
                r#"{"text":"hi"}"#,
                201,
                r#"{"id":250,"author":"student3","text":"hi"}"#,
            ),
            exchange(
                "POST",
                "/api/v1/social/posts/250/comments",
                &[("authorization", auth), json],
                r#"{"text":"3 laps","post_id":250}"#,
                201,
                r#"{"id":900}"#,
            ),
        ],
    }
}

fn enabled() -> CorrelationOptions {
    CorrelationOptions {
        enabled: true,
        ..Default::default()
    }
}

fn at(exchange: usize) -> Position {
    Position {
        session: 0,
        exchange,
    }
}

fn learn(c: &Correlation, vu: &mut VuState, e: usize, status: u16, body: &str) {
    let headers = vec![("content-type".to_string(), "application/json".to_string())];
    c.learn(
        vu,
        at(e),
        &LiveResponse {
            status,
            headers: &headers,
            body: body.as_bytes(),
        },
    );
}

fn header<'a>(o: &'a Outgoing, name: &str) -> &'a str {
    tapedeck_sessions::model::header(&o.headers, name).unwrap()
}

#[test]
fn tokens_and_ids_follow_the_live_responses() {
    let sessions = vec![student_session()];
    let c = Correlation::discover(&sessions, &enabled()).unwrap();
    let ex = &sessions[0].exchanges;
    let mut vu = c.new_vu(0, "student");
    c.start_session(&mut vu, 0);

    let o = c.rewrite(&mut vu, at(0), &ex[0].request);
    assert_eq!((o.substituted, o.uncorrelated), (0, 0));
    learn(
        &c,
        &mut vu,
        0,
        200,
        &format!(r#"{{"access_token":"{LIVE_TOKEN}","user":{{"id":99}}}}"#),
    );

    let o = c.rewrite(&mut vu, at(1), &ex[1].request);
    assert_eq!(header(&o, "authorization"), format!("Bearer {LIVE_TOKEN}"));
    // `limit=3` is not the post with id 3: a small number needs an exact place.
    assert_eq!(o.uri, "/api/v1/social/feed?limit=3&offset=0");
    assert_eq!((o.substituted, o.uncorrelated), (1, 0));
    learn(
        &c,
        &mut vu,
        1,
        200,
        r#"{"items":[{"id":501},{"id":502},{"id":503}]}"#,
    );

    // The recorded like went to the 2nd feed item: so does the live one.
    let o = c.rewrite(&mut vu, at(2), &ex[2].request);
    assert_eq!(o.uri, "/api/v1/social/posts/502/like");
    assert_eq!(o.substituted, 2);

    let o = c.rewrite(&mut vu, at(3), &ex[3].request);
    assert_eq!(o.uri, "/api/v1/social/posts", "absolute-form reduced");
    assert_eq!(&o.body[..], br#"{"text":"hi"}"#);
    learn(&c, &mut vu, 3, 201, r#"{"id":777,"text":"hi"}"#);

    let o = c.rewrite(&mut vu, at(4), &ex[4].request);
    assert_eq!(o.uri, "/api/v1/social/posts/777/comments");
    assert_eq!(&o.body[..], br#"{"text":"3 laps","post_id":777}"#);
    assert_eq!((o.substituted, o.uncorrelated), (3, 0));
}

#[test]
fn rules_say_where_values_come_from_and_go() {
    let c = Correlation::discover(&[student_session()], &enabled()).unwrap();
    let texts: Vec<String> = c
        .rules()
        .iter()
        .map(|r| {
            format!(
                "{}|{}|{}|{}",
                r.source_endpoint, r.source, r.sink_endpoint, r.sink
            )
        })
        .collect();
    assert!(
        texts.contains(
            &"Login|json $.access_token|Social Feed|header authorization (Bearer)".to_string()
        ),
        "{texts:#?}"
    );
    assert!(
        texts.contains(&"Social Feed|json $.items[*].id|Like Post|path segment 4".to_string()),
        "{texts:#?}"
    );
    assert!(
        texts.contains(&"Create Post|json $.id|Add Comment|json $.post_id".to_string()),
        "{texts:#?}"
    );
    // The login's own `user.id` (7) is nowhere in a later request.
    assert!(!texts.iter().any(|t| t.contains("user.id")));
    let token_rule = c
        .rules()
        .iter()
        .find(|r| r.source == "json $.access_token")
        .unwrap();
    assert_eq!((token_rule.uses, token_rule.sessions), (1, 1));
    assert!(token_rule
        .to_string()
        .contains("Login: json $.access_token"));
}

#[test]
fn failed_producers_leave_values_uncorrelated() {
    let sessions = vec![student_session()];
    let c = Correlation::discover(&sessions, &enabled()).unwrap();
    let ex = &sessions[0].exchanges;
    let mut vu = c.new_vu(3, "student");
    c.start_session(&mut vu, 0);
    learn(&c, &mut vu, 0, 401, r#"{"detail":"bad"}"#);
    let o = c.rewrite(&mut vu, at(1), &ex[1].request);
    assert_eq!(header(&o, "authorization"), bearer(), "sent as recorded");
    assert_eq!((o.substituted, o.uncorrelated), (0, 1));
    // A transport error (status 0) teaches nothing either.
    learn(&c, &mut vu, 1, 0, "");
    let o = c.rewrite(&mut vu, at(2), &ex[2].request);
    assert_eq!(o.uri, "/api/v1/social/posts/11/like");
    assert_eq!(o.uncorrelated, 2);
}

#[test]
fn a_new_session_forgets_live_values() {
    let sessions = vec![student_session()];
    let c = Correlation::discover(&sessions, &enabled()).unwrap();
    let mut vu = c.new_vu(0, "student");
    c.start_session(&mut vu, 0);
    learn(
        &c,
        &mut vu,
        0,
        200,
        &format!(r#"{{"access_token":"{LIVE_TOKEN}"}}"#),
    );
    c.start_session(&mut vu, 0);
    let o = c.rewrite(&mut vu, at(1), &sessions[0].exchanges[1].request);
    assert_eq!(o.uncorrelated, 1);
}

#[test]
fn disabled_is_a_pass_through() {
    let sessions = vec![student_session()];
    let opts = CorrelationOptions::default();
    let c = Correlation::discover(&sessions, &opts).unwrap();
    assert!(c.rules().is_empty());
    let mut vu = c.new_vu(0, "student");
    c.start_session(&mut vu, 0);
    learn(
        &c,
        &mut vu,
        0,
        200,
        &format!(r#"{{"access_token":"{LIVE_TOKEN}"}}"#),
    );
    let req = &sessions[0].exchanges[3].request;
    let o = c.rewrite(&mut vu, at(3), req);
    assert_eq!(o.headers, req.headers);
    assert_eq!(o.uri, "/api/v1/social/posts");
    assert_eq!((o.substituted, o.uncorrelated), (0, 0));
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn redacted_login_passwords_without_credentials_are_warned_about() {
    let mut session = student_session();
    session.exchanges[0].request.body =
        Body::new(br#"{"username":"student3","password":"<redacted:1f2e3d4c>"}"#.to_vec());
    let c = Correlation::discover(std::slice::from_ref(&session), &enabled()).unwrap();
    assert_eq!(c.warnings().len(), 1, "{:?}", c.warnings());
    assert!(c.warnings()[0].contains("--credentials"));
    assert!(Correlation::discover(&[student_session()], &enabled())
        .unwrap()
        .warnings()
        .is_empty());
}

#[test]
fn credentials_give_each_vu_its_own_login() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write(&dir, "users.csv", "username,password,role\nstudent1,pw1,student\nstudent2,pw2,student\ntrainer1,tpw,trainer\n");
    let sessions = vec![student_session()];
    let opts = CorrelationOptions {
        credentials: Some(csv),
        ..enabled()
    };
    let c = Correlation::discover(&sessions, &opts).unwrap();
    assert!(c.rules().iter().any(|r| r.kind == RuleKind::Credentials));
    let req = &sessions[0].exchanges[0].request;
    let bodies: Vec<String> = (0..3)
        .map(|n| {
            let mut vu = c.new_vu(n, "student");
            c.start_session(&mut vu, 0);
            let o = c.rewrite(&mut vu, at(0), req);
            assert_eq!(o.substituted, 2);
            String::from_utf8(o.body.to_vec()).unwrap()
        })
        .collect();
    assert_eq!(bodies[0], r#"{"username":"student1","password":"pw1"}"#);
    assert_eq!(bodies[1], r#"{"username":"student2","password":"pw2"}"#);
    assert_eq!(bodies[2], bodies[0], "the pool wraps");
    // Counted over the whole run (shards), the n-th VU of a role gets row n.
    let mut vu = c.new_vu_nth(7, "student", 1);
    c.start_session(&mut vu, 0);
    let o = c.rewrite(&mut vu, at(0), req);
    assert_eq!(&o.body[..], br#"{"username":"student2","password":"pw2"}"#);
}

#[test]
fn bad_credentials_and_rules_files_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write(&dir, "users.csv", "username,password\nx,y\n");
    let opts = CorrelationOptions {
        credentials: Some(csv),
        ..enabled()
    };
    let e = Correlation::discover(&[student_session()], &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("users.csv") && e.contains("role"), "{e}");
    let rules = write(&dir, "rules.json", "{\"veto\": 3}");
    let opts = CorrelationOptions {
        rules_file: Some(rules),
        ..enabled()
    };
    let e = Correlation::discover(&[student_session()], &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("rules.json"), "{e}");
    let opts = CorrelationOptions {
        credentials: Some(dir.path().join("missing.csv")),
        ..enabled()
    };
    assert!(Correlation::discover(&[], &opts)
        .unwrap_err()
        .to_string()
        .contains("missing.csv"));
}

#[test]
fn registration_names_are_unique_per_vu_and_loop_and_reused_by_login() {
    let json = ("content-type", "application/json");
    let session = Session {
        id: "s".into(),
        user: None,
        role: "student".into(),
        exchanges: vec![
            exchange(
                "POST",
                "/api/v1/auth/register",
                &[json],
                r#"{"username":"newbie","email":"newbie@x.io","password":"pw","role":"student"}"#,
                201,
                r#"{"id":60,"username":"newbie"}"#,
            ),
            exchange(
                "POST",
                "/api/v1/auth/login",
                &[json],
                r#"{"username":"newbie","password":"pw"}"#,
                200,
                &format!(r#"{{"access_token":"{TOKEN}"}}"#),
            ),
        ],
    };
    let dir = tempfile::tempdir().unwrap();
    let csv = write(
        &dir,
        "users.csv",
        "username,password,role\nstudent1,pw1,student\n",
    );
    let opts = CorrelationOptions {
        credentials: Some(csv),
        ..enabled()
    };
    let c = Correlation::discover(std::slice::from_ref(&session), &opts).unwrap();
    let mut vu = c.new_vu(4, "student");
    c.start_session(&mut vu, 0);
    let reg = c.rewrite(&mut vu, at(0), &session.exchanges[0].request);
    assert_eq!(
        std::str::from_utf8(&reg.body).unwrap(),
        r#"{"username":"newbie_vu4_0","email":"newbie_vu4_0@x.io","password":"pw","role":"student"}"#
    );
    let login = c.rewrite(&mut vu, at(1), &session.exchanges[1].request);
    assert_eq!(
        std::str::from_utf8(&login.body).unwrap(),
        r#"{"username":"newbie_vu4_0","password":"pw"}"#
    );
    c.start_session(&mut vu, 0);
    let again = c.rewrite(&mut vu, at(0), &session.exchanges[0].request);
    assert!(std::str::from_utf8(&again.body)
        .unwrap()
        .contains("newbie_vu4_1"));
}

#[test]
fn jwt_secret_resigns_tokens_of_sessions_without_login() {
    let auth = bearer();
    let session = Session {
        id: "s".into(),
        user: None,
        role: "student".into(),
        exchanges: vec![exchange(
            "GET",
            "/api/v1/users/me",
            &[("Authorization", &auth)],
            "",
            200,
            r#"{"id":7}"#,
        )],
    };
    let opts = CorrelationOptions {
        jwt_secret: Some("fresh-secret".into()),
        ..enabled()
    };
    let c = Correlation::discover(std::slice::from_ref(&session), &opts).unwrap();
    let mut vu = c.new_vu(0, "student");
    c.start_session(&mut vu, 0);
    let o = c.rewrite(&mut vu, at(0), &session.exchanges[0].request);
    let sent = header(&o, "authorization")
        .strip_prefix("Bearer ")
        .unwrap()
        .to_string();
    assert_ne!(sent, TOKEN);
    assert_eq!(o.substituted, 1);
    // Signed with the new secret, recorded claims kept, fresh expiry.
    use base64::Engine as _;
    use hmac::Mac as _;
    let (input, sig) = sent.rsplit_once('.').unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"fresh-secret").unwrap();
    mac.update(input.as_bytes());
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    assert_eq!(b64.encode(mac.finalize().into_bytes()), sig);
    let claims: serde_json::Value =
        serde_json::from_slice(&b64.decode(input.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(
        (claims["sub"].as_str(), claims["role"].as_str()),
        (Some("7"), Some("student"))
    );
    let now = chrono::Utc::now().timestamp();
    let exp = claims["exp"].as_i64().unwrap();
    assert!(exp > now && exp <= now + 3600 + 5, "exp {exp}, now {now}");
    // Cached per VU and session: the same token on every request.
    let again = c.rewrite(&mut vu, at(0), &session.exchanges[0].request);
    assert_eq!(header(&again, "authorization"), header(&o, "authorization"));
    // Without the flag the recorded token goes out unchanged.
    let c = Correlation::discover(std::slice::from_ref(&session), &enabled()).unwrap();
    let mut vu = c.new_vu(0, "student");
    let o = c.rewrite(&mut vu, at(0), &session.exchanges[0].request);
    assert_eq!(header(&o, "authorization"), auth);
}

#[test]
fn rules_file_vetoes_and_adds() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write(
        &dir,
        "rules.json",
        r#"{"veto":[{"source":"json $.items[*].id"}],
            "add":[{"source_endpoint":"Login","source":"json $.user.username"}]}"#,
    );
    let mut session = student_session();
    // A later request naming the user by their (short, weak) username.
    session.exchanges.push(exchange(
        "GET",
        "/api/v1/users/student3",
        &[],
        "",
        200,
        "{}",
    ));
    let opts = CorrelationOptions {
        rules_file: Some(rules),
        ..enabled()
    };
    let c = Correlation::discover(std::slice::from_ref(&session), &opts).unwrap();
    let texts: Vec<String> = c
        .rules()
        .iter()
        .map(|r| format!("{}|{}", r.source, r.sink))
        .collect();
    assert!(
        !texts.iter().any(|t| t.starts_with("json $.items")),
        "{texts:?}"
    );
    assert!(
        texts.contains(&"json $.user.username|path segment 3".to_string()),
        "{texts:?}"
    );
    let mut vu = c.new_vu(0, "student");
    c.start_session(&mut vu, 0);
    learn(
        &c,
        &mut vu,
        0,
        200,
        &format!(r#"{{"access_token":"{LIVE_TOKEN}","user":{{"username":"student9"}}}}"#),
    );
    let o = c.rewrite(&mut vu, at(5), &session.exchanges[5].request);
    assert_eq!(o.uri, "/api/v1/users/student9");
    let o = c.rewrite(&mut vu, at(2), &session.exchanges[2].request);
    assert_eq!(o.uri, "/api/v1/social/posts/11/like", "vetoed");
}

#[test]
fn cookies_locations_and_encodings() {
    let session = Session {
        id: "s".into(),
        user: None,
        role: "other".into(),
        exchanges: vec![
            Exchange {
                response: Some(RecordedResponse {
                    status: 302,
                    headers: vec![
                        (
                            "Set-Cookie".into(),
                            "sid=0123456789abcdef0123; Path=/; HttpOnly".into(),
                        ),
                        (
                            "Location".into(),
                            "/things/5f3a9c2e-0000-4000-8000-00000000abcd".into(),
                        ),
                    ],
                    body: Body::default(),
                }),
                ..exchange("POST", "/things", &[], "", 302, "")
            },
            exchange(
                "GET",
                "/things/5f3a9c2e-0000-4000-8000-00000000abcd?back=0123456789abcdef0123",
                &[("Cookie", "theme=dark; sid=0123456789abcdef0123")],
                "",
                200,
                "{}",
            ),
        ],
    };
    let c = Correlation::discover(std::slice::from_ref(&session), &enabled()).unwrap();
    let mut vu = c.new_vu(0, "other");
    c.start_session(&mut vu, 0);
    let headers = vec![
        (
            "set-cookie".to_string(),
            "sid=new value/1; Path=/".to_string(),
        ),
        ("location".to_string(), "/things/a b".to_string()),
    ];
    c.learn(
        &mut vu,
        at(0),
        &LiveResponse {
            status: 302,
            headers: &headers,
            body: b"",
        },
    );
    let o = c.rewrite(&mut vu, at(1), &session.exchanges[1].request);
    assert_eq!(header(&o, "cookie"), "theme=dark; sid=new value/1");
    assert_eq!(o.uri, "/things/a%20b?back=new%20value%2F1");
    assert_eq!(o.substituted, 3);
}

#[test]
fn json_strings_are_escaped() {
    let json = ("content-type", "application/json");
    let session = Session {
        id: "s".into(),
        user: None,
        role: "other".into(),
        exchanges: vec![
            exchange("POST", "/a", &[json], "{}", 200, r#"{"ref_id":"abc"}"#),
            exchange("POST", "/b", &[json], r#"{"ref_id": "abc"}"#, 200, "{}"),
        ],
    };
    let c = Correlation::discover(std::slice::from_ref(&session), &enabled()).unwrap();
    let mut vu = c.new_vu(0, "other");
    c.start_session(&mut vu, 0);
    learn(&c, &mut vu, 0, 200, r#"{"ref_id":"x\"y"}"#);
    let o = c.rewrite(&mut vu, at(1), &session.exchanges[1].request);
    assert_eq!(
        std::str::from_utf8(&o.body).unwrap(),
        r#"{"ref_id": "x\"y"}"#
    );
}

#[test]
fn the_best_fitting_field_wins_over_a_more_recent_accidental_one() {
    let json = ("content-type", "application/json");
    let session = Session {
        id: "s".into(),
        user: None,
        role: "other".into(),
        exchanges: vec![
            exchange(
                "GET",
                "/api/v1/marketplace/products",
                &[],
                "",
                200,
                r#"{"items":[{"id":39,"trainer_id":48}]}"#,
            ),
            exchange(
                "GET",
                "/api/v1/social/feed",
                &[],
                "",
                200,
                r#"{"items":[{"id":5,"author_id":39}]}"#,
            ),
            exchange(
                "GET",
                "/api/v1/marketplace/products/39",
                &[json],
                "",
                200,
                "{}",
            ),
        ],
    };
    let c = Correlation::discover(std::slice::from_ref(&session), &enabled()).unwrap();
    let rule = c
        .rules()
        .iter()
        .find(|r| r.sink_endpoint == "Product Detail")
        .unwrap();
    assert_eq!(
        (rule.source_endpoint.as_str(), rule.source.as_str()),
        ("Marketplace Browse", "json $.items[*].id")
    );
    let mut vu = c.new_vu(0, "student");
    c.start_session(&mut vu, 0);
    learn(&c, &mut vu, 0, 200, r#"{"items":[{"id":7}]}"#);
    learn(&c, &mut vu, 1, 200, r#"{"items":[{"id":5,"author_id":8}]}"#);
    assert_eq!(
        c.rewrite(&mut vu, at(2), &session.exchanges[2].request).uri,
        "/api/v1/marketplace/products/7"
    );
}
