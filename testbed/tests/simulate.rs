//! Simulated users against a real testbed.

use std::collections::BTreeMap;
use std::time::Duration;

use tapedeck_sessions::Profile;
use tapedeck_testbed::{simulate, Release, SimConfig};

use crate::client::testbed;

/// Share of each task among one role's requests, against the profile's
/// weights.
fn check_mix(counts: &BTreeMap<String, u64>, weights: &BTreeMap<String, f64>, role: &str) {
    let total: u64 = weights
        .keys()
        .map(|t| counts.get(t).copied().unwrap_or(0))
        .sum();
    let weight_sum: f64 = weights.values().sum();
    assert!(total >= 100, "{role}: only {total} requests");
    for (task, weight) in weights {
        let expected = weight / weight_sum;
        let observed = counts.get(task).copied().unwrap_or(0) as f64 / total as f64;
        // Four standard deviations of a multinomial share, and at least
        // three points: the feed and the marketplace also carry the
        // app-start and navigation calls.
        let sigma = (expected * (1.0 - expected) / total as f64).sqrt();
        let tolerance = (4.0 * sigma).max(0.03);
        assert!(
            (observed - expected).abs() < tolerance,
            "{role} {task}: observed {observed:.3}, profile {expected:.3} ({counts:?})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_follows_the_profile_weights() {
    let tb = testbed(Release::A).await;
    let config = SimConfig {
        students: 16,
        trainers: 8,
        run_time: Duration::from_secs(3),
        seed: 11,
        think_scale: 0.01,
        ..SimConfig::new(tb.base_url())
    };
    let summary = simulate(config).await.unwrap();
    assert_eq!(summary.users, 24);
    assert_eq!(summary.logged_in, 24);
    assert_eq!(summary.errors(), 0, "{summary}");
    let count = |name: &str| summary.per_endpoint.get(name).map_or(0, |c| c.requests);
    assert_eq!(count("Login"), 24, "every user logs in once");
    assert_eq!(count("Register"), u64::from(summary.registered));
    assert!(
        summary.registered >= 1 && summary.registered < 12,
        "{summary}"
    );

    let counts: BTreeMap<String, u64> = summary
        .per_endpoint
        .iter()
        .map(|(k, v)| (k.clone(), v.requests))
        .collect();
    let profile = Profile::builtin();
    for role in ["student", "trainer"] {
        check_mix(&counts, &profile.behaviour[role].tasks, role);
    }
    tb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_with_the_same_seed_logs_in_its_registered_users() {
    let tb = testbed(Release::A).await;
    let config = SimConfig {
        students: 20,
        trainers: 2,
        run_time: Duration::from_millis(600),
        seed: 5,
        think_scale: 0.01,
        ..SimConfig::new(tb.base_url())
    };
    let first = simulate(config.clone()).await.unwrap();
    assert!(first.registered > 0, "{first}");
    let second = simulate(config).await.unwrap();
    // Same seed, same names: registration answers 409 and the user logs in.
    assert_eq!(second.registered, 0);
    assert_eq!(second.logged_in, 22);
    let register = second.per_endpoint["Register"];
    assert_eq!(register.errors, register.requests, "all 409");
    assert_eq!(second.per_endpoint["Login"].errors, 0);
    tb.shutdown().await;
}

#[tokio::test]
async fn unreachable_or_bad_targets_are_clear_errors() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = SimConfig {
        run_time: Duration::from_millis(100),
        ..SimConfig::new(format!("http://127.0.0.1:{port}"))
    };
    let error = simulate(config).await.unwrap_err().to_string();
    assert!(
        error.starts_with(&format!("simulate --target http://127.0.0.1:{port}: ")),
        "{error}"
    );
    let error = simulate(SimConfig::new("ftp://127.0.0.1:1"))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("only http://"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_goes_away_is_counted_not_fatal() {
    let tb = testbed(Release::A).await;
    let config = SimConfig {
        students: 5,
        trainers: 1,
        run_time: Duration::from_millis(1500),
        think_scale: 0.01,
        ..SimConfig::new(tb.base_url())
    };
    let run = tokio::spawn(simulate(config));
    tokio::time::sleep(Duration::from_millis(500)).await;
    tb.shutdown().await;
    let summary = run.await.unwrap().unwrap();
    assert!(summary.requests() > summary.errors(), "{summary}");
    assert!(summary.errors() > 0, "{summary}");
    assert!(summary.elapsed < Duration::from_secs(10), "{summary}");
}
