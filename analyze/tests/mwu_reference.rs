//! Mann–Whitney U from histograms reproduces scipy's `mannwhitneyu`
//! (fixtures/make_mwu.py wrote fixtures/mwu_reference.json).

use serde_json::Value;
use tapedeck_analyze::report::new_histogram;
use tapedeck_analyze::stats::mann_whitney_u;

fn histogram(pairs: &Value) -> hdrhistogram::Histogram<u64> {
    let mut h = new_histogram();
    for pair in pairs.as_array().unwrap() {
        let v = pair[0].as_u64().unwrap();
        let n = pair[1].as_u64().unwrap();
        // Below 2048 µs a 3-digit histogram has one bucket per value, so
        // the histogram holds exactly scipy's data.
        assert!(v < 2048);
        h.record_n(v, n).unwrap();
    }
    h
}

#[test]
fn mwu_reference() {
    let text = include_str!("fixtures/mwu_reference.json");
    let fixture: Value = serde_json::from_str(text).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let x = histogram(&case["x"]);
        let y = histogram(&case["y"]);
        let r = mann_whitney_u(&x, &y);
        let (u, p) = (case["u"].as_f64().unwrap(), case["p"].as_f64().unwrap());
        assert_eq!(r.u, u, "{name}: U");
        let rel = if p == 0.0 {
            r.p_value
        } else {
            ((r.p_value - p) / p).abs()
        };
        assert!(rel < 1e-9, "{name}: p = {} but scipy says {p}", r.p_value);
    }
}

#[test]
fn histogram_buckets_are_ties() {
    // Above 2048 µs values share buckets: 10_000 and 10_004 fall in one
    // 8 µs-wide bucket and must rank as a tie, like equal values.
    let (mut a, mut b) = (new_histogram(), new_histogram());
    a.record_n(10_000, 50).unwrap();
    b.record_n(10_004, 50).unwrap();
    let r = mann_whitney_u(&a, &b);
    assert_eq!(r.u, 1250.0);
    assert_eq!(r.p_value, 1.0);
}
