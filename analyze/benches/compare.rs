//! `analyze compare` of two runs with 50 endpoints and 1 M requests each.
//!
//! The first benchmark reads both report files (JSON + base64 + deflate
//! histograms), compares with statistics and renders the text table: what
//! `tapedeck analyze compare --base a.json --candidate b.json` does after
//! argument parsing. `compare_only` is the statistics alone.
//!
//!     cargo bench -p tapedeck-analyze --bench compare

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tapedeck_analyze::cli::read_reports;
use tapedeck_analyze::compare::{compare, CompareOptions};
use tapedeck_analyze::render::text_compare;
use tapedeck_analyze::report::{new_histogram, EndpointReport, RunReport};

const ENDPOINTS: usize = 50;
const REQUESTS: u64 = 1_000_000;

fn synthetic_run(seed: u64, label: &str, slow: f64) -> RunReport {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut r = RunReport::new(label, "http://127.0.0.1:8000", chrono::Utc::now());
    r.ended = r.started + chrono::Duration::seconds(600);
    let per = REQUESTS / ENDPOINTS as u64;
    for e in 0..ENDPOINTS {
        let median = 5_000.0 + 4_000.0 * e as f64;
        let scale = if e == 7 { slow } else { 1.0 };
        let mut h = new_histogram();
        for _ in 0..per {
            // Log-normal by Box–Muller.
            let u1: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
            let u2: f64 = rng.gen();
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            h.record((median * scale * (0.5 * z).exp()) as u64 + 1)
                .expect("in bounds");
        }
        let mut ep = EndpointReport::new(format!("GET /api/v1/endpoint/{e}"), "GET", h.clone(), h);
        ep.requests = per;
        r.endpoints.push(ep);
    }
    r
}

fn end_to_end(a: &Path, b: &Path) -> String {
    let mut runs = read_reports(&[a.to_path_buf(), b.to_path_buf()]).expect("reports");
    let cand = runs.split_off(1);
    let c = compare(&runs, &cand, &CompareOptions::default());
    text_compare(&c, false)
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (pa, pb) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let a = synthetic_run(1, "a", 1.0);
    let b = synthetic_run(2, "b", 1.3);
    a.write(&pa).expect("write a");
    b.write(&pb).expect("write b");
    assert!(end_to_end(&pa, &pb).contains("slower"));
    c.bench_function(
        "compare 50 endpoints x 1M requests: read + compare + render",
        |bench| bench.iter(|| end_to_end(&pa, &pb)),
    );
    c.bench_function(
        "compare 50 endpoints x 1M requests: statistics only",
        |bench| {
            bench.iter(|| {
                compare(
                    std::slice::from_ref(&a),
                    std::slice::from_ref(&b),
                    &CompareOptions::default(),
                )
            })
        },
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
