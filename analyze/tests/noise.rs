//! False alarms and power of `compare` on synthetic runs drawn from one
//! distribution with realistic run-to-run drift (see `synth::MACHINE`,
//! `synth::BUSY`, `synth::NOISY`).

use tapedeck_analyze::compare::{compare, CompareOptions, ErrorVerdict, Verdict};

use crate::synth::{
    self, corevia, flagged, none, same, same_build_pairs, Drift, BUSY, MACHINE, NOISY, QUIET,
};

/// Same-build pairs per false-alarm test; `TAPEDECK_NOISE_PAIRS` raises it
/// to measure the false-alarm rate more finely.
fn pairs() -> usize {
    std::env::var("TAPEDECK_NOISE_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

/// The drift multiplier under test; `TAPEDECK_NOISE_M` overrides the
/// default to compare choices (the figures in `compare`'s docs).
fn multiplier() -> f64 {
    std::env::var("TAPEDECK_NOISE_M")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(tapedeck_analyze::compare::DRIFT_MULTIPLIER)
}

/// Asserts ≥ 95 % of same-build comparisons flag nothing.
fn assert_few_false_alarms(seed: u64, base: usize, cand: usize, drift: Drift) -> Vec<f64> {
    let n = pairs();
    let (clean, alarms, floors) = same_build_pairs(seed, n, base, cand, drift, multiplier());
    eprintln!(
        "{base}/{cand} runs, {drift:?}: {clean}/{n} clean, median feed floor {:.3}",
        median(&floors)
    );
    assert!(clean * 20 >= n * 19, "{clean}/{n} clean: {alarms:#?}");
    floors
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
fn same_build_single_runs_are_not_flagged() {
    assert_few_false_alarms(7, 1, 1, BUSY);
    assert_few_false_alarms(8, 1, 1, MACHINE);
    // Endpoints with < 30 requests are `?`, never a verdict.
    let specs = corevia();
    let mut rng = synth::rng(9);
    let a = synth::run(&mut rng, "a", &specs, BUSY, &same, &none);
    let b = synth::run(&mut rng, "b", &specs, BUSY, &same, &none);
    let c = compare(&[a], &[b], &CompareOptions::default());
    let tc = c
        .endpoints
        .iter()
        .find(|e| e.name == "Trainer Content")
        .unwrap();
    assert_eq!(tc.verdict, Verdict::Unknown);
    assert!(c.control.is_none());
    assert!(c.drift.is_none());
    assert!(c.floor_rule.starts_with("one run on a side"));
}

/// The A, B, A recipe: two base runs, one candidate run of the same build.
#[test]
fn same_build_a_b_a_is_not_flagged() {
    assert_few_false_alarms(17, 2, 1, MACHINE);
    assert_few_false_alarms(19, 2, 1, BUSY);
}

#[test]
fn same_build_two_runs_are_not_flagged() {
    assert_few_false_alarms(13, 2, 2, MACHINE);
    assert_few_false_alarms(14, 2, 2, BUSY);
}

#[test]
fn same_build_three_runs_are_not_flagged() {
    assert_few_false_alarms(11, 3, 3, MACHINE);
    assert_few_false_alarms(12, 3, 3, BUSY);
}

/// On a machine whose runs drift twice as far, the measured floor rises
/// with the drift and the same build still comes out `~`.
#[test]
fn noisy_machine_raises_the_floor() {
    let noisy = assert_few_false_alarms(21, 2, 1, NOISY);
    let usual = assert_few_false_alarms(21, 2, 1, MACHINE);
    let quiet = assert_few_false_alarms(21, 2, 1, QUIET);
    assert!(
        median(&noisy) > median(&usual) && median(&usual) > median(&quiet),
        "floors: noisy {} usual {} quiet {}",
        median(&noisy),
        median(&usual),
        median(&quiet)
    );
    assert_few_false_alarms(22, 2, 2, NOISY);
    assert_few_false_alarms(23, 3, 3, NOISY);
}

/// Release b as the demo measures it end to end: Social Feed about 14 %
/// slower, base runs within a few percent of each other, two base runs and
/// one candidate run. The feed is `slower` and nothing else is flagged.
#[test]
fn release_b_shape_is_found_with_a_b_a() {
    let specs = corevia();
    let mut rng = synth::rng(71);
    let quiet = Drift {
        machine: 0.01,
        endpoint: 0.01,
    };
    let trials = pairs();
    let mut found = 0;
    let mut misses = Vec::new();
    for trial in 0..trials {
        let a = synth::runs(&mut rng, "a", 2, &specs, quiet, &same, &none);
        let slow = |n: &str| if n == "Social Feed" { 1.14 } else { 1.0 };
        let b = synth::run(&mut rng, "b", &specs, quiet, &slow, &none);
        let o = CompareOptions {
            drift_multiplier: multiplier(),
            ..CompareOptions::default()
        };
        let c = compare(&a, &[b], &o);
        assert!(
            !c.warnings.iter().any(|w| w.contains("one run on a side")),
            "{:?}",
            c.warnings
        );
        assert!(
            c.floor_rule
                .starts_with("noise floor from 2 base runs: drift "),
            "{}",
            c.floor_rule
        );
        let f = flagged(&c);
        let feed = c
            .endpoints
            .iter()
            .find(|e| e.name == "Social Feed")
            .unwrap();
        if feed.verdict == Verdict::Slower && f.len() == 1 {
            found += 1;
        } else {
            misses.push(format!("trial {trial}: drift {:?} {f:?}", c.drift));
        }
    }
    eprintln!("release b with A, B, A: found {found}/{trials}");
    assert!(
        found * 20 >= trials * 18,
        "found {found}/{trials}: {misses:#?}"
    );
}

/// With five runs per side on a quiet machine (`synth::QUIET`) the
/// run-level t-test gives a floor below the drift rule's, and a 10 % shift
/// of one endpoint is found there and nowhere else. (With three runs, or on
/// the busy machine of `synth::BUSY`, the floor stays above 10 %: the
/// statistics do not claim what the runs cannot show.)
#[test]
fn ten_percent_shift_found_with_five_runs() {
    let specs = corevia();
    let mut rng = synth::rng(23);
    let mut found = 0;
    let mut misses = Vec::new();
    for trial in 0..20 {
        let a = synth::runs(&mut rng, "a", 5, &specs, QUIET, &same, &none);
        let slow = |n: &str| if n == "Marketplace Browse" { 1.10 } else { 1.0 };
        let b = synth::runs(&mut rng, "b", 5, &specs, QUIET, &slow, &none);
        let c = compare(&a, &b, &CompareOptions::default());
        let f = flagged(&c);
        let hit = c
            .endpoints
            .iter()
            .find(|e| e.name == "Marketplace Browse")
            .unwrap();
        if hit.verdict == Verdict::Slower && f.len() == 1 {
            found += 1;
        } else {
            misses.push(format!(
                "trial {trial}: {f:?} spread {:?} floor {}",
                hit.spread, hit.floor
            ));
        }
    }
    assert!(found >= 18, "found {found}/20: {misses:#?}");
}

/// Release b of the testbed in miniature: Social Feed 30 % slower and
/// Analytics Dashboard failing 2 % of requests, one run per side.
#[test]
fn release_b_shape_is_found_with_single_runs() {
    let specs = corevia();
    let mut rng = synth::rng(31);
    let mut clean = 0;
    let mut extra = Vec::new();
    for trial in 0..10 {
        let a = synth::run(&mut rng, "a", &specs, BUSY, &same, &none);
        let slow = |n: &str| if n == "Social Feed" { 1.30 } else { 1.0 };
        let errs = |n: &str| {
            if n == "Analytics Dashboard" {
                0.02
            } else {
                0.0
            }
        };
        let b = synth::run(&mut rng, "b", &specs, BUSY, &slow, &errs);
        let c = compare(&[a], &[b], &CompareOptions::default());
        let f = flagged(&c);
        let of = |name: &str| c.endpoints.iter().find(|e| e.name == name).unwrap();
        assert_eq!(
            of("Social Feed").verdict,
            Verdict::Slower,
            "trial {trial}: {f:#?}"
        );
        assert_eq!(
            of("Analytics Dashboard").errors,
            ErrorVerdict::Up,
            "trial {trial}: {f:#?}"
        );
        assert_eq!(
            of("Analytics Dashboard").verdict,
            Verdict::Same,
            "trial {trial}: {f:#?}"
        );
        assert!(c.regressed());
        assert!(c.warnings.iter().any(|w| w.contains("one run on a side")));
        if f.len() == 2 {
            clean += 1;
        } else {
            extra.push(format!("trial {trial}: {f:?}"));
        }
    }
    // Nothing else flagged, allowing the 1-in-100 family-wise false alarm.
    assert!(clean >= 9, "{extra:#?}");
}

/// One run per side cannot tell 10 % from drift: the floor is 20 %, and the
/// output says so rather than guessing.
#[test]
fn ten_percent_shift_is_below_the_single_run_floor() {
    let specs = corevia();
    let mut rng = synth::rng(41);
    let a = synth::run(
        &mut rng,
        "a",
        &specs,
        synth::Drift {
            machine: 0.0,
            endpoint: 0.0,
        },
        &same,
        &none,
    );
    let slow = |n: &str| if n == "Social Feed" { 1.10 } else { 1.0 };
    let b = synth::run(
        &mut rng,
        "b",
        &specs,
        synth::Drift {
            machine: 0.0,
            endpoint: 0.0,
        },
        &slow,
        &none,
    );
    let c = compare(&[a], &[b], &CompareOptions::default());
    let feed = c
        .endpoints
        .iter()
        .find(|e| e.name == "Social Feed")
        .unwrap();
    assert!(
        feed.p_value < 0.01,
        "the shift is significant: {}",
        feed.p_value
    );
    assert_eq!(feed.verdict, Verdict::Same);
    assert_eq!(feed.note, "within run-to-run noise");
    assert!(c.floor_rule.contains("one run on a side"));
    // An explicit, lower floor for a quiet machine finds it.
    let quiet = CompareOptions {
        single_run_drift: 0.05,
        ..CompareOptions::default()
    };
    let a = synth::run(
        &mut synth::rng(41),
        "a",
        &specs,
        synth::Drift {
            machine: 0.0,
            endpoint: 0.0,
        },
        &same,
        &none,
    );
    let b = synth::run(
        &mut synth::rng(42),
        "b",
        &specs,
        synth::Drift {
            machine: 0.0,
            endpoint: 0.0,
        },
        &slow,
        &none,
    );
    let c = compare(&[a], &[b], &quiet);
    let feed = c
        .endpoints
        .iter()
        .find(|e| e.name == "Social Feed")
        .unwrap();
    assert_eq!(feed.verdict, Verdict::Slower);
}

#[test]
fn faster_is_symmetric() {
    let specs = corevia();
    let mut rng = synth::rng(51);
    let a = synth::run(&mut rng, "a", &specs, BUSY, &same, &none);
    let fast = |n: &str| if n == "Like Post" { 0.6 } else { 1.0 };
    let b = synth::run(&mut rng, "b", &specs, BUSY, &fast, &none);
    let c = compare(&[a], &[b], &CompareOptions::default());
    let like = c.endpoints.iter().find(|e| e.name == "Like Post").unwrap();
    assert_eq!(like.verdict, Verdict::Faster);
    assert!(!c.regressed());
}

/// Several runs never see less than one: with two runs per side (few runs,
/// so the t-test alone would demand a huge effect) release b's shape is
/// still found.
#[test]
fn release_b_shape_is_found_with_two_runs() {
    let specs = corevia();
    let mut rng = synth::rng(61);
    for trial in 0..5 {
        let a = synth::runs(&mut rng, "a", 2, &specs, BUSY, &same, &none);
        let slow = |n: &str| if n == "Social Feed" { 1.30 } else { 1.0 };
        let errs = |n: &str| {
            if n == "Analytics Dashboard" {
                0.02
            } else {
                0.0
            }
        };
        let b = synth::runs(&mut rng, "b", 2, &specs, BUSY, &slow, &errs);
        let c = compare(&a, &b, &CompareOptions::default());
        let of = |name: &str| c.endpoints.iter().find(|e| e.name == name).unwrap();
        let feed = of("Social Feed");
        assert_eq!(
            feed.verdict,
            Verdict::Slower,
            "trial {trial}: floor {}",
            feed.floor
        );
        assert!(
            feed.floor <= 0.2 + 1e-9,
            "trial {trial}: floor {}",
            feed.floor
        );
        assert_eq!(of("Analytics Dashboard").errors, ErrorVerdict::Up);
        assert!(c.control.is_some());
    }
}
