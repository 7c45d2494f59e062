//! Capture against the CoreVia testbed: session keys, redaction of real
//! logins, rotation.

use std::time::Duration;

use tapedeck_capture::CaptureConfig;
use tapedeck_testbed::{Release, TestbedConfig};

use crate::support::{journal, Conn};

#[tokio::test]
async fn a_login_joins_the_session_that_follows_it() {
    let tb = tapedeck_testbed::start(
        "127.0.0.1:0".parse().unwrap(),
        TestbedConfig::new(Release::A),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = CaptureConfig::reverse(&tb.base_url(), dir.path()).unwrap();
    config.flush_every = Duration::from_millis(50);
    let capture = tapedeck_capture::start(config).await.unwrap();

    let mut tokens = Vec::new();
    for user in ["student1", "student2"] {
        let mut conn = Conn::open(capture.addr()).await;
        let body = format!(
            r#"{{"username":"{user}","password":"{}"}}"#,
            tapedeck_testbed::server::SEEDED_PASSWORD
        );
        let (status, resp) = conn.send("POST", "/api/v1/auth/login", &body).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&resp));
        let json: serde_json::Value = serde_json::from_slice(&resp).unwrap();
        let token = json["access_token"].as_str().unwrap().to_string();
        for _ in 0..3 {
            let req = hyper::Request::get("/api/v1/social/feed?limit=5")
                .header("host", "x")
                .header("authorization", format!("Bearer {token}"))
                .body(crate::support::full(""))
                .unwrap();
            assert_eq!(conn.request(req).await.0, 200);
        }
        tokens.push(token);
    }
    let summary = capture.shutdown().await.unwrap();
    assert_eq!(summary.exchanges, 8);
    assert_eq!(summary.sessions, 2);
    let exchanges = journal(dir.path());
    for user in exchanges.chunks(4) {
        let login = &user[0];
        assert_eq!(login.request.uri, "/api/v1/auth/login");
        assert!(!login.session.is_empty());
        assert!(
            user.iter().all(|e| e.session == login.session),
            "{:?}",
            user.iter().map(|e| &e.session).collect::<Vec<_>>()
        );
        let pw = login.request.body.json().unwrap()["password"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(pw.starts_with("<redacted:"), "{pw}");
    }
    assert_ne!(exchanges[0].session, exchanges[4].session);
    tb.shutdown().await;
}

#[tokio::test]
async fn rotation_by_size_keeps_every_exchange_readable() {
    let tb = tapedeck_testbed::start(
        "127.0.0.1:0".parse().unwrap(),
        TestbedConfig::new(Release::A),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = CaptureConfig::reverse(&tb.base_url(), dir.path()).unwrap();
    config.flush_every = Duration::from_millis(10);
    config.rotate_size = Some(600);
    let capture = tapedeck_capture::start(config).await.unwrap();
    let mut conn = Conn::open(capture.addr()).await;
    for i in 0..40 {
        assert_eq!(
            conn.send("GET", &format!("/api/v1/users/me?i={i}"), "")
                .await
                .0,
            401
        );
        if i % 5 == 4 {
            // Let frames close so the size threshold is crossed between them.
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
    }
    drop(conn);
    let summary = capture.shutdown().await.unwrap();
    assert!(summary.files.len() >= 2, "{summary}");
    let exchanges = journal(dir.path());
    let uris: Vec<String> = exchanges.iter().map(|e| e.request.uri.clone()).collect();
    let expected: Vec<String> = (0..40).map(|i| format!("/api/v1/users/me?i={i}")).collect();
    assert_eq!(uris, expected);
    tb.shutdown().await;
}
