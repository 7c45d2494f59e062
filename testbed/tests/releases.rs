//! Release b against release a: only the documented regression differs.

use http::Method;
use serde_json::Value;
use tapedeck_testbed::Release;
use tokio::time::Instant;

use crate::client::{call, login, testbed};

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Release b's feed is slower than a's: medians of many interleaved calls,
/// compared with a margin well inside the documented 30 %.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_b_feed_is_slower_than_a() {
    let a = testbed(Release::A).await;
    let b = testbed(Release::B).await;
    let ta = login(a.addr(), "student1").await;
    let tb = login(b.addr(), "student1").await;
    let (mut times_a, mut times_b) = (Vec::new(), Vec::new());
    let path = "/api/v1/social/feed?limit=20";
    for _ in 0..80 {
        let started = Instant::now();
        let (status, _) = call(a.addr(), Method::GET, path, Some(&ta), Value::Null).await;
        times_a.push(started.elapsed().as_secs_f64());
        assert_eq!(status, 200);
        let started = Instant::now();
        let (status, _) = call(b.addr(), Method::GET, path, Some(&tb), Value::Null).await;
        times_b.push(started.elapsed().as_secs_f64());
        assert_eq!(status, 200);
    }
    let (ma, mb) = (median(times_a), median(times_b));
    assert!(mb > ma * 1.1, "median feed a {ma:.4} s, b {mb:.4} s");
    a.shutdown().await;
    b.shutdown().await;
}

/// Release b's dashboard fails on a few percent of calls; a's never does,
/// and b's other endpoints do not fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_b_dashboard_fails_sometimes() {
    async fn failures(release: Release, path: &'static str) -> usize {
        let tb = testbed(release).await;
        let addr = tb.addr();
        let token = login(addr, "student2").await;
        let mut workers = Vec::new();
        for _ in 0..10 {
            let token = token.clone();
            workers.push(tokio::spawn(async move {
                let mut failed = 0;
                for _ in 0..40 {
                    let (status, body) =
                        call(addr, Method::GET, path, Some(&token), Value::Null).await;
                    if status == 500 {
                        assert_eq!(body["detail"], "Internal Server Error");
                        failed += 1;
                    } else {
                        assert_eq!(status, 200);
                    }
                }
                failed
            }));
        }
        let mut total = 0;
        for w in workers {
            total += w.await.unwrap();
        }
        tb.shutdown().await;
        total
    }
    let dashboard = "/api/v1/analytics/dashboard";
    let b = failures(Release::B, dashboard).await;
    // 400 calls at 2 %: 8 expected; 0 has probability 3e-4.
    assert!(
        (1..=30).contains(&b),
        "release b: {b} of 400 dashboard calls failed"
    );
    assert_eq!(failures(Release::A, dashboard).await, 0);
    assert_eq!(
        failures(Release::B, "/api/v1/marketplace/products").await,
        0
    );
}
