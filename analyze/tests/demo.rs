//! Real run reports of one `tapedeck demo` (runs A, B, A of the testbed on
//! one busy machine): release b's Social Feed is about 30 % slower
//! server-side (+15 % end to end under load) and its Analytics Dashboard
//! fails about 2 % of requests.

use std::path::PathBuf;

use tapedeck_analyze::compare::{compare, CompareOptions};
use tapedeck_analyze::report::RunReport;

use crate::synth::flagged;

fn demo(name: &str) -> RunReport {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("demo-{name}.json"));
    RunReport::read(&path).expect("demo fixture reads")
}

/// `--base a1 a2 --candidate b`: the drift between a1 and a2 sets the
/// floor, and exactly the feed and the dashboard's errors are flagged.
#[test]
fn demo_a_b_a_flags_the_feed_and_the_dashboard_errors() {
    let (a1, a2, b) = (demo("a1"), demo("a2"), demo("b"));
    let c = compare(&[a1, a2], &[b], &CompareOptions::default());
    let f = flagged(&c);
    assert_eq!(f.len(), 2, "{f:#?}\n{}", c.floor_rule);
    assert!(
        f[0].starts_with("Social Feed slower errors ~"),
        "{f:#?}\n{}",
        c.floor_rule
    );
    assert!(
        f[1].starts_with("Analytics Dashboard ~ errors up"),
        "{f:#?}\n{}",
        c.floor_rule
    );
    let drift = c.drift.expect("two base runs measure the drift");
    assert!(drift > 0.0 && drift < 0.05, "drift {drift}");
    assert!(
        c.floor_rule
            .starts_with("noise floor from 2 base runs: drift "),
        "{}",
        c.floor_rule
    );
    assert!(!c.warnings.iter().any(|w| w.contains("one run on a side")));
    assert!(c.regressed());
    let control = c.control.as_ref().expect("two base runs give a control");
    assert!(control.flagged.is_empty(), "{control:?}");
}

/// a1 against a2: one build, one run a side, nothing flagged.
#[test]
fn demo_a_against_a_flags_nothing() {
    let c = compare(&[demo("a1")], &[demo("a2")], &CompareOptions::default());
    assert!(flagged(&c).is_empty(), "{:#?}", flagged(&c));
    assert!(!c.regressed());
    assert!(c.drift.is_none());
    assert!(c.warnings.iter().any(|w| w.contains("one run on a side")));
}
