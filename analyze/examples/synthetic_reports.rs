//! Writes synthetic run reports for trying `tapedeck analyze` and timing it:
//!
//!     cargo run -p tapedeck-analyze --example synthetic_reports -- OUT_DIR
//!
//! OUT_DIR/a.json, a2.json: two runs of "release a" (CoreVia-shaped, 60 s);
//! OUT_DIR/b.json: "release b" with Social Feed 30 % slower and Analytics
//! Dashboard failing 2 %; OUT_DIR/big-a.json, big-b.json: 50 endpoints and
//! 1 M requests each (the benchmark's size).

#[path = "../tests/synth.rs"]
mod synth;

use std::path::PathBuf;

use tapedeck_analyze::report::{RunReport, TimelinePoint};

fn with_timeline(mut r: RunReport, seed: u64, slow: f64) -> RunReport {
    let mut x = seed;
    r.timeline = (0..60u64)
        .map(|t| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let jitter = (x >> 33) % 20;
            let users = (t * 50 / 10).min(50);
            TimelinePoint {
                t,
                requests: users * 4 + jitter,
                failures: u64::from(slow > 1.0 && jitter == 3),
                users,
                p50_ms: (25.0 + jitter as f64 / 2.0) * slow,
                p95_ms: (70.0 + jitter as f64 * 2.0) * slow,
            }
        })
        .collect();
    r
}

fn big(label: &str, seed: u64) -> RunReport {
    let mut rng = synth::rng(seed);
    let specs: Vec<synth::Spec> = (0..50)
        .map(|e| synth::Spec {
            name: Box::leak(format!("GET /api/v1/endpoint/{e}").into_boxed_str()),
            median_ms: 5.0 + 4.0 * e as f64,
            sigma: 0.5,
            requests: 20_000,
            error_rate: 0.001,
        })
        .collect();
    synth::run(
        &mut rng,
        label,
        &specs,
        synth::BUSY,
        &synth::same,
        &synth::none,
    )
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".to_string()));
    std::fs::create_dir_all(&dir).expect("create output directory");
    let specs = synth::corevia();
    let mut rng = synth::rng(2026);
    let slow = |n: &str| if n == "Social Feed" { 1.3 } else { 1.0 };
    let errs = |n: &str| {
        if n == "Analytics Dashboard" {
            0.02
        } else {
            0.0
        }
    };
    let a = synth::run(
        &mut rng,
        "release-a",
        &specs,
        synth::QUIET,
        &synth::same,
        &synth::none,
    );
    let a2 = synth::run(
        &mut rng,
        "release-a",
        &specs,
        synth::QUIET,
        &synth::same,
        &synth::none,
    );
    let b = synth::run(&mut rng, "release-b", &specs, synth::QUIET, &slow, &errs);
    for (name, r, seed, k) in [
        ("a.json", a, 1, 1.0),
        ("a2.json", a2, 2, 1.0),
        ("b.json", b, 3, 1.3),
    ] {
        with_timeline(r, seed, k)
            .write(&dir.join(name))
            .expect("write report");
    }
    big("big-a", 10)
        .write(&dir.join("big-a.json"))
        .expect("write report");
    big("big-b", 11)
        .write(&dir.join("big-b.json"))
        .expect("write report");
    println!(
        "wrote a.json a2.json b.json big-a.json big-b.json to {}",
        dir.display()
    );
}
