//! The API's rules: auth, roles, validation, limits, state.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::Method;
use serde_json::{json, Value};
use sha2::Sha256;
use tapedeck_testbed::{start, Release, TestbedConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::client::{call, call_raw, login, testbed};

/// An HS256 token signed the way any JWT library would.
fn token(secret: &str, sub: &str, role: &str, exp: i64) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = json!({"sub": sub, "role": role, "iat": exp - 3600, "exp": exp});
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{header}.{payload}").as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{header}.{payload}.{signature}")
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn health_and_unknown_routes() {
    let tb = testbed(Release::B).await;
    let (status, body) = call(tb.addr(), Method::GET, "/health", None, Value::Null).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"status": "ok", "release": "b"}));
    for path in [
        "/",
        "/api/v1/nothing",
        "/api/v2/social/feed",
        "/api/v1/social/feed/extra",
    ] {
        let (status, body) = call(tb.addr(), Method::GET, path, None, Value::Null).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(body, json!({"detail": "Not Found"}));
    }
    let (status, body) = call(
        tb.addr(),
        Method::PUT,
        "/api/v1/social/feed",
        None,
        Value::Null,
    )
    .await;
    assert_eq!(status, 405);
    assert_eq!(body["detail"], "Method Not Allowed");
    tb.shutdown().await;
}

#[tokio::test]
async fn login_register_and_taken_names() {
    let tb = testbed(Release::A).await;
    let addr = tb.addr();
    let (status, body) = call(
        addr,
        Method::POST,
        "/api/v1/auth/login",
        None,
        json!({"username": "student17", "password": "corevia-pass"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(
        body["user"],
        json!({"id": 17, "username": "student17", "role": "student"})
    );
    let (status, _) = call(
        addr,
        Method::POST,
        "/api/v1/auth/login",
        None,
        json!({"username": "student17", "password": "wrong"}),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = call(
        addr,
        Method::POST,
        "/api/v1/auth/login",
        None,
        json!({"username": "nobody", "password": "corevia-pass"}),
    )
    .await;
    assert_eq!(status, 401);

    let new_user = json!({"username": "coach_kim", "email": "kim@example.com", "password": "secret-1", "role": "trainer"});
    let (status, body) = call(
        addr,
        Method::POST,
        "/api/v1/auth/register",
        None,
        new_user.clone(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["username"], "coach_kim");
    assert_eq!(body["role"], "trainer");
    assert!(body["id"].as_u64().unwrap() > 50);
    let (status, body) = call(addr, Method::POST, "/api/v1/auth/register", None, new_user).await;
    assert_eq!(status, 409);
    assert_eq!(body["detail"], "Username already registered");
    let (status, body) = call(
        addr,
        Method::POST,
        "/api/v1/auth/login",
        None,
        json!({"username": "coach_kim", "password": "secret-1"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["user"]["role"], "trainer");
    // The fresh trainer may use trainer endpoints.
    let token = body["access_token"].as_str().unwrap();
    let (status, _) = call(
        addr,
        Method::POST,
        "/api/v1/trainer/content",
        Some(token),
        json!({"title": "Warm-up", "body": "Ten minutes, always."}),
    )
    .await;
    assert_eq!(status, 201);
    tb.shutdown().await;
}

#[tokio::test]
async fn missing_forged_expired_and_foreign_tokens_are_401() {
    let config = TestbedConfig {
        jwt_secret: "known-secret".into(),
        ..TestbedConfig::new(Release::A)
    };
    let tb = start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    let other = testbed(Release::A).await;
    let addr = tb.addr();
    let feed = "/api/v1/social/feed";

    let (status, body) = call(addr, Method::GET, feed, None, Value::Null).await;
    assert_eq!(status, 401);
    assert_eq!(body["detail"], "Not authenticated");

    let valid = token("known-secret", "17", "student", now() + 600);
    let (status, _) = call(addr, Method::GET, feed, Some(&valid), Value::Null).await;
    assert_eq!(status, 200, "a token signed with --jwt-secret is accepted");

    let expired = token("known-secret", "17", "student", now() - 10);
    let (status, body) = call(addr, Method::GET, feed, Some(&expired), Value::Null).await;
    assert_eq!(status, 401);
    assert_eq!(body["detail"], "Token has expired");

    let forged = token("guessed-secret", "17", "trainer", now() + 600);
    let (status, _) = call(addr, Method::GET, feed, Some(&forged), Value::Null).await;
    assert_eq!(status, 401);

    let (status, _) = call(addr, Method::GET, feed, Some("not.a.jwt"), Value::Null).await;
    assert_eq!(status, 401);

    // A token of another testbed (another random secret) is refused.
    let foreign = login(other.addr(), "student3").await;
    let (status, _) = call(addr, Method::GET, feed, Some(&foreign), Value::Null).await;
    assert_eq!(status, 401);
    let (status, _) = call(other.addr(), Method::GET, feed, Some(&foreign), Value::Null).await;
    assert_eq!(status, 200);
    tb.shutdown().await;
    other.shutdown().await;
}

#[tokio::test]
async fn students_are_403_on_trainer_endpoints() {
    let tb = testbed(Release::A).await;
    let addr = tb.addr();
    let student = login(addr, "student1").await;
    let trainer = login(addr, "trainer3").await;
    let product = json!({"title": "Core plan", "price": 19.99, "description": "Six weeks"});
    let content = json!({"title": "Tips", "body": "Sleep."});
    let cases = [
        (
            Method::POST,
            "/api/v1/marketplace/products",
            product.clone(),
        ),
        (Method::GET, "/api/v1/marketplace/my-products", Value::Null),
        (Method::POST, "/api/v1/trainer/content", content.clone()),
    ];
    for (method, path, body) in cases {
        let (status, answer) = call(addr, method.clone(), path, Some(&student), body.clone()).await;
        assert_eq!(status, 403, "{method} {path}");
        assert_eq!(answer["detail"], "Trainer role required");
        let (status, _) = call(addr, method.clone(), path, Some(&trainer), body).await;
        assert!(status == 200 || status == 201, "{method} {path}: {status}");
    }
    // 403 comes before validation, as in FastAPI's dependency order.
    let (status, _) = call(
        addr,
        Method::POST,
        "/api/v1/trainer/content",
        Some(&student),
        json!({}),
    )
    .await;
    assert_eq!(status, 403);
    tb.shutdown().await;
}

#[tokio::test]
async fn invalid_bodies_are_422_with_fastapi_detail() {
    let tb = testbed(Release::A).await;
    let addr = tb.addr();
    let t = login(addr, "student2").await;
    let t = Some(t.as_str());

    let (status, body) = call(
        addr,
        Method::POST,
        "/api/v1/workouts",
        t,
        json!({"kind": "run", "minutes": "lots"}),
    )
    .await;
    assert_eq!(status, 422);
    let detail = body["detail"].as_array().unwrap();
    assert_eq!(detail.len(), 2, "{body}");
    assert_eq!(detail[0]["loc"], json!(["body", "minutes"]));
    assert_eq!(detail[0]["type"], "int_parsing");
    assert_eq!(detail[1]["loc"], json!(["body", "calories"]));
    assert_eq!(detail[1]["type"], "missing");
    assert_eq!(detail[1]["msg"], "Field required");

    let (status, body) = call_raw(
        addr,
        Method::POST,
        "/api/v1/social/posts",
        t,
        b"{\"text\": ".to_vec(),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["type"], "json_invalid");
    assert_eq!(body["detail"].as_array().unwrap().len(), 1);

    let (status, body) = call(
        addr,
        Method::POST,
        "/api/v1/social/posts",
        t,
        json!(["text"]),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["type"], "model_attributes_type");

    let (status, body) = call(
        addr,
        Method::POST,
        "/api/v1/social/posts",
        t,
        json!({"text": ""}),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["type"], "string_too_short");

    let (status, body) = call(
        addr,
        Method::POST,
        "/api/v1/food-logs",
        t,
        json!({"food": 3, "calories": -5}),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["type"], "string_type");
    assert_eq!(body["detail"][1]["type"], "greater_than_equal");

    let (status, body) = call(
        addr,
        Method::GET,
        "/api/v1/social/feed?limit=abc",
        t,
        Value::Null,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["loc"], json!(["query", "limit"]));
    let (status, _) = call(
        addr,
        Method::GET,
        "/api/v1/social/feed?limit=1000",
        t,
        Value::Null,
    )
    .await;
    assert_eq!(status, 422);

    let (status, body) = call(
        addr,
        Method::POST,
        "/api/v1/social/posts/abc/like",
        t,
        Value::Null,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["loc"], json!(["path", "post_id"]));

    let (status, body) = call(
        addr,
        Method::POST,
        "/api/v1/auth/register",
        None,
        json!({"username": "x", "email": "no-at-sign", "password": "123", "role": "admin"}),
    )
    .await;
    assert_eq!(status, 422);
    let fields: Vec<&str> = body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["loc"][1].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["username", "email", "password", "role"]);
    tb.shutdown().await;
}

#[tokio::test]
async fn bodies_over_one_mib_are_413_and_junk_never_crashes() {
    let tb = testbed(Release::A).await;
    let addr = tb.addr();
    let t = login(addr, "student4").await;
    let big = vec![b'a'; tapedeck_testbed::server::MAX_BODY_BYTES + 1];
    let (status, body) = call_raw(addr, Method::POST, "/api/v1/social/posts", Some(&t), big).await;
    assert_eq!(status, 413);
    assert_eq!(body["detail"], "Request body too large");

    // Chunked, no Content-Length: the limit still applies while reading.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let head = format!(
        "POST /api/v1/social/posts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    for _ in 0..20 {
        let sent = async {
            s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await?;
            s.write_all(&chunk).await?;
            s.write_all(b"\r\n").await
        };
        if sent.await.is_err() {
            break;
        }
    }
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        s.read_to_end(&mut answer),
    )
    .await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // Garbage that is not HTTP: the connection is dropped, the server lives.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"\x00\x01\x02 NOT HTTP AT ALL\r\n\r\n")
        .await
        .unwrap();
    let mut sink = Vec::new();
    let _ =
        tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut sink)).await;
    let (status, _) = call(addr, Method::GET, "/health", None, Value::Null).await;
    assert_eq!(status, 200);
    tb.shutdown().await;
}

#[tokio::test]
async fn created_posts_likes_and_comments_are_visible() {
    let tb = testbed(Release::A).await;
    let addr = tb.addr();
    let alice = login(addr, "student5").await;
    let bob = login(addr, "student6").await;
    let (status, post) = call(
        addr,
        Method::POST,
        "/api/v1/social/posts",
        Some(&alice),
        json!({"text": "hello from the test"}),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(post["author"], "student5");
    assert_eq!(post["likes"], 0);
    let id = post["id"].as_u64().unwrap();

    let (status, feed) = call(
        addr,
        Method::GET,
        "/api/v1/social/feed?limit=5",
        Some(&bob),
        Value::Null,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(feed["items"].as_array().unwrap().len(), 5);
    assert_eq!(feed["items"][0]["id"], id, "newest first");
    assert_eq!(feed["items"][0]["text"], "hello from the test");
    assert_eq!(feed["total"], 201);

    // Pagination: offset 1 starts with the newest seeded post.
    let (_, page) = call(
        addr,
        Method::GET,
        "/api/v1/social/feed?limit=2&offset=1",
        Some(&bob),
        Value::Null,
    )
    .await;
    assert_eq!(page["items"][0]["id"], 200);
    assert_eq!(page["items"][1]["id"], 199);

    let like = format!("/api/v1/social/posts/{id}/like");
    let (status, liked) = call(addr, Method::POST, &like, Some(&bob), Value::Null).await;
    assert_eq!(status, 200);
    assert_eq!(liked["likes"], 1);
    let (_, again) = call(addr, Method::POST, &like, Some(&bob), Value::Null).await;
    assert_eq!(again["likes"], 1, "liking twice counts once");
    let (_, by_alice) = call(addr, Method::POST, &like, Some(&alice), Value::Null).await;
    assert_eq!(by_alice["likes"], 2);
    let (status, unliked) = call(addr, Method::DELETE, &like, Some(&bob), Value::Null).await;
    assert_eq!(status, 200);
    assert_eq!(unliked["likes"], 1);

    let comments = format!("/api/v1/social/posts/{id}/comments");
    let (status, comment) = call(
        addr,
        Method::POST,
        &comments,
        Some(&bob),
        json!({"text": "nice"}),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(comment["post_id"], id);
    assert_eq!(comment["author"], "student6");

    let (_, feed) = call(
        addr,
        Method::GET,
        "/api/v1/social/feed?limit=1",
        Some(&bob),
        Value::Null,
    )
    .await;
    assert_eq!(feed["items"][0]["likes"], 1);
    assert_eq!(feed["items"][0]["comments"], 1);

    for path in [
        "/api/v1/social/posts/99999/like",
        "/api/v1/social/posts/0/like",
    ] {
        let (status, body) = call(addr, Method::POST, path, Some(&bob), Value::Null).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(body["detail"], "Post not found");
    }
    let (status, _) = call(
        addr,
        Method::POST,
        "/api/v1/social/posts/99999/comments",
        Some(&bob),
        json!({"text": "?"}),
    )
    .await;
    assert_eq!(status, 404);
    tb.shutdown().await;
}

#[tokio::test]
async fn marketplace_workouts_food_and_profile() {
    let tb = testbed(Release::A).await;
    let addr = tb.addr();
    let trainer = login(addr, "trainer2").await;
    let student = login(addr, "student9").await;

    let (status, product) = call(
        addr,
        Method::POST,
        "/api/v1/marketplace/products",
        Some(&trainer),
        json!({"title": "Zebra sprint plan", "price": "29.5", "description": "Fast"}),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(product["price"], 29.5);
    let id = product["id"].as_u64().unwrap();
    let (status, detail) = call(
        addr,
        Method::GET,
        &format!("/api/v1/marketplace/products/{id}"),
        Some(&student),
        Value::Null,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(detail["title"], "Zebra sprint plan");
    assert_eq!(detail["trainer"], "trainer2");
    let (status, _) = call(
        addr,
        Method::GET,
        "/api/v1/marketplace/products/4242",
        Some(&student),
        Value::Null,
    )
    .await;
    assert_eq!(status, 404);

    let (_, found) = call(
        addr,
        Method::GET,
        "/api/v1/marketplace/products?q=zebra",
        Some(&student),
        Value::Null,
    )
    .await;
    assert_eq!(found["total"], 1);
    assert_eq!(found["items"][0]["id"], id);
    let (_, all) = call(
        addr,
        Method::GET,
        "/api/v1/marketplace/products?limit=10",
        Some(&student),
        Value::Null,
    )
    .await;
    assert_eq!(all["total"], 41);
    assert_eq!(all["items"].as_array().unwrap().len(), 10);

    let (_, mine) = call(
        addr,
        Method::GET,
        "/api/v1/marketplace/my-products?limit=100",
        Some(&trainer),
        Value::Null,
    )
    .await;
    let items = mine["items"].as_array().unwrap();
    assert!(items.iter().all(|p| p["trainer"] == "trainer2"));
    assert_eq!(items[0]["id"], id);

    let (_, before) = call(
        addr,
        Method::GET,
        "/api/v1/analytics/dashboard",
        Some(&student),
        Value::Null,
    )
    .await;
    let (status, _) = call(
        addr,
        Method::POST,
        "/api/v1/workouts",
        Some(&student),
        json!({"kind": "swim", "minutes": 40, "calories": 400}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = call(
        addr,
        Method::POST,
        "/api/v1/food-logs",
        Some(&student),
        json!({"food": "pasta", "calories": 650}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, after) = call(
        addr,
        Method::GET,
        "/api/v1/analytics/dashboard",
        Some(&student),
        Value::Null,
    )
    .await;
    assert_eq!(status, 200);
    let total = |v: &Value, k: &str| v["totals"][k].as_i64().unwrap();
    assert_eq!(total(&after, "workouts"), total(&before, "workouts") + 1);
    assert_eq!(total(&after, "minutes"), total(&before, "minutes") + 40);
    assert_eq!(
        total(&after, "calories_burned"),
        total(&before, "calories_burned") + 400
    );
    assert_eq!(
        total(&after, "calories_eaten"),
        total(&before, "calories_eaten") + 650
    );
    assert!(!after["weeks"].as_array().unwrap().is_empty());

    let (status, me) = call(
        addr,
        Method::GET,
        "/api/v1/users/me",
        Some(&student),
        Value::Null,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(me["username"], "student9");
    assert_eq!(me["role"], "student");
    assert_eq!(me["stats"]["workouts"], total(&after, "workouts"));
    tb.shutdown().await;
}

/// Reads one HTTP/1.1 response with a Content-Length body.
async fn read_response(s: &mut tokio::net::TcpStream) -> String {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&raw).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= length {
                return text;
            }
        }
        let n = tokio::time::timeout(std::time::Duration::from_secs(20), s.read(&mut buf))
            .await
            .expect("response within 20 s")
            .unwrap();
        assert!(n > 0, "connection closed early: {text}");
        raw.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let tb = testbed(Release::A).await;
    let addr = tb.addr();
    let t = login(addr, "student8").await;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    // One full exchange first, so the server has surely accepted this
    // connection before it is told to stop.
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
    let body = br#"{"text": "posted during shutdown"}"#;
    let head = format!(
        "POST /api/v1/social/posts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&body[..10]).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let stopping = tokio::spawn(tb.shutdown());
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(
        !stopping.is_finished(),
        "shutdown waits for the request in flight"
    );
    s.write_all(&body[10..]).await.unwrap();
    let answer = read_response(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(answer.contains("posted during shutdown"));
    tokio::time::timeout(std::time::Duration::from_secs(20), stopping)
        .await
        .expect("shutdown ends once the request is answered")
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}
