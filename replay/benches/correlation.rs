//! Cost of correlation per request: `rewrite` of typical CoreVia requests
//! with two and three substituted values, and `learn` from a feed page.
//!
//! `cargo bench -p tapedeck-replay --bench correlation`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use tapedeck_replay::correlation::{
    Correlation, CorrelationOptions, LiveResponse, Position, Session,
};
use tapedeck_sessions::{Body, Exchange, RecordedRequest, RecordedResponse};

const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI3Iiwicm9sZSI6InN0dWRlbnQiLCJpYXQiOjE3NjQxNTAwMDAsImV4cCI6MTc2NDIzNjQwMH0.Q2hlY2tzdW1TaWduYXR1cmVPZlRoZVRva2Vu";
const LIVE: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI5OSIsInJvbGUiOiJzdHVkZW50IiwiaWF0IjoxNzY0MTUwMDAwLCJleHAiOjE3NjQyMzY0MDB9.TGl2ZVNpZ25hdHVyZU9mVGhlVG9rZW4xMjM0";

fn exchange(method: &str, uri: &str, body: &str, status: u16, resp: &str, auth: bool) -> Exchange {
    let mut headers = vec![
        ("host".to_string(), "api.corevia.app".to_string()),
        (
            "user-agent".to_string(),
            "CoreVia/3.2 (iPhone; iOS 17.4)".to_string(),
        ),
        ("accept".to_string(), "application/json".to_string()),
        ("accept-encoding".to_string(), "gzip".to_string()),
    ];
    if auth {
        headers.push(("authorization".to_string(), format!("Bearer {TOKEN}")));
    }
    if !body.is_empty() {
        headers.push(("content-type".to_string(), "application/json".to_string()));
    }
    Exchange {
        id: 0,
        session: "sub:7".into(),
        conn: 0,
        started: chrono::Utc::now(),
        upstream: None,
        client: None,
        request: RecordedRequest {
            method: method.into(),
            uri: uri.into(),
            version: "HTTP/1.1".into(),
            headers,
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

fn feed(first_id: u64) -> String {
    let items: Vec<String> = (0..20)
        .map(|i| {
            format!(
                r#"{{"id":{},"author":"student{}","text":"Leg day done, 5x5 squats","likes":{},"comments":2,"created_at":"2026-11-26T10:00:00Z"}}"#,
                first_id - i,
                i % 45 + 1,
                i * 3
            )
        })
        .collect();
    format!(r#"{{"items":[{}],"total":200}}"#, items.join(","))
}

fn session() -> Session {
    Session {
        id: "sub:7".into(),
        role: "student".into(),
        user: Some("7".into()),
        exchanges: vec![
            exchange(
                "POST",
                "/api/v1/auth/login",
                r#"{"username":"student7","password":"corevia"}"#,
                200,
                &format!(
                    r#"{{"access_token":"{TOKEN}","token_type":"bearer","user":{{"id":7,"username":"student7","role":"student"}}}}"#
                ),
                false,
            ),
            exchange(
                "GET",
                "/api/v1/social/feed?limit=20&offset=0",
                "",
                200,
                &feed(200),
                true,
            ),
            exchange(
                "POST",
                "/api/v1/social/posts/197/like",
                "",
                200,
                r#"{"liked":true,"likes":10}"#,
                true,
            ),
            exchange(
                "POST",
                "/api/v1/social/posts/197/comments",
                r#"{"text":"Great session, keep it up!","post_id":197}"#,
                201,
                r#"{"id":5012}"#,
                true,
            ),
        ],
    }
}

fn bench(c: &mut Criterion) {
    let sessions = vec![session()];
    let corr = Correlation::discover(
        &sessions,
        &CorrelationOptions {
            enabled: true,
            ..Default::default()
        },
    )
    .expect("no files to read");
    let mut vu = corr.new_vu(0, "student");
    corr.start_session(&mut vu, 0);
    let json = vec![("content-type".to_string(), "application/json".to_string())];
    let at = |exchange| Position {
        session: 0,
        exchange,
    };
    let login = format!(r#"{{"access_token":"{LIVE}","user":{{"id":99}}}}"#);
    corr.learn(
        &mut vu,
        at(0),
        &LiveResponse {
            status: 200,
            headers: &json,
            body: login.as_bytes(),
        },
    );
    let live_feed = feed(900);
    corr.learn(
        &mut vu,
        at(1),
        &LiveResponse {
            status: 200,
            headers: &json,
            body: live_feed.as_bytes(),
        },
    );

    let like = &sessions[0].exchanges[2].request;
    let out = corr.rewrite(&mut vu, at(2), like);
    assert_eq!(out.substituted, 2, "bearer token and post id");
    assert_eq!(out.uri, "/api/v1/social/posts/897/like");
    c.bench_function("rewrite like (2 values)", |b| {
        b.iter(|| corr.rewrite(&mut vu, at(2), black_box(like)))
    });

    let comment = &sessions[0].exchanges[3].request;
    assert_eq!(corr.rewrite(&mut vu, at(3), comment).substituted, 3);
    c.bench_function("rewrite comment (3 values)", |b| {
        b.iter(|| corr.rewrite(&mut vu, at(3), black_box(comment)))
    });

    let off = Correlation::discover(&sessions, &CorrelationOptions::default()).expect("disabled");
    let mut off_vu = off.new_vu(0, "student");
    c.bench_function("rewrite comment (correlation off)", |b| {
        b.iter(|| off.rewrite(&mut off_vu, at(3), black_box(comment)))
    });

    c.bench_function("learn feed page (20 items)", |b| {
        b.iter(|| {
            corr.learn(
                &mut vu,
                at(1),
                &LiveResponse {
                    status: 200,
                    headers: &json,
                    body: black_box(live_feed.as_bytes()),
                },
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
