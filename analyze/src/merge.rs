//! Exact merging of shard reports (`--shard I/N` runs) into one run report.
//!
//! Histograms and counters add, so every summary number of the merged report
//! is exactly what one process measuring all the traffic would have written.
//! Timelines are aligned on wall-clock seconds and their counters add; the
//! per-second p50/p95 (no per-second histograms are stored) become the
//! request-weighted mean of the shards' values.

use std::collections::{BTreeMap, BTreeSet};

use crate::report::{EndpointReport, FailureGroup, RunReport, TimelinePoint};
use crate::threshold::{evaluate, parse_threshold};

/// Why shards could not be merged (always [`crate::Error::Merge`]).
pub type MergeError = crate::Error;

/// How many slow requests a merged report keeps (the slowest).
const MAX_SLOW_REQUESTS: usize = 1000;

/// The option keys that legitimately differ between shards of one run.
const PER_SHARD_OPTIONS: &[&str] = &["shard"];

/// Merges the shard reports of one run. Refuses reports of different runs
/// (target, journals, options or shard count differ), reports that are not
/// shards, and duplicate shard indexes. A merge of some but not all shards
/// is allowed and marked `partial`.
pub fn merge(shards: &[RunReport]) -> Result<RunReport, MergeError> {
    let refuse = |why: String| crate::Error::Merge(why);
    let first = shards
        .first()
        .ok_or_else(|| refuse("no shard reports given".to_string()))?;
    let count = first
        .shard
        .ok_or_else(|| {
            refuse(format!(
                "run '{}' is not a shard (no \"shard\" field)",
                first.label
            ))
        })?
        .count;
    let options_of = |r: &RunReport| {
        let mut o = r.options.clone();
        o.retain(|k, _| !PER_SHARD_OPTIONS.contains(&k.as_str()));
        o
    };
    let mut seen = BTreeSet::new();
    for (i, r) in shards.iter().enumerate() {
        let n = i + 1;
        let shard = r.shard.ok_or_else(|| {
            refuse(format!(
                "report #{n} ('{}') is not a shard (no \"shard\" field)",
                r.label
            ))
        })?;
        if shard.count != count {
            return Err(refuse(format!(
                "report #{n} is shard {}/{} but report #1 is of {count} shards",
                shard.index, shard.count
            )));
        }
        if shard.index == 0 || shard.index > count {
            return Err(refuse(format!(
                "report #{n} has shard index {} outside 1..={count}",
                shard.index
            )));
        }
        if !seen.insert(shard.index) {
            return Err(refuse(format!(
                "shard {}/{count} is given twice (report #{n})",
                shard.index
            )));
        }
        if r.target != first.target {
            return Err(refuse(format!(
                "report #{n} targets {} but report #1 targets {}: different runs",
                r.target, first.target
            )));
        }
        if r.journals != first.journals {
            return Err(refuse(format!(
                "report #{n} replayed different journals than report #1: different runs"
            )));
        }
        let (a, b) = (options_of(first), options_of(r));
        if a != b {
            let keys: Vec<&String> = a
                .keys()
                .chain(b.keys())
                .filter(|k| a.get(*k) != b.get(*k))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            return Err(refuse(format!(
                "report #{n} was run with different options than report #1 ({}): different runs",
                keys.iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }

    let started = shards.iter().map(|r| r.started).min().expect("non-empty");
    let ended = shards.iter().map(|r| r.ended).max().expect("non-empty");
    let mut merged = RunReport::new(first.label.clone(), first.target.clone(), started);
    merged.ended = ended;
    merged.journals = first.journals.clone();
    merged.options = first.options.clone();
    merged.options.remove("shard");
    merged.partial = shards.iter().any(|r| r.partial) || seen.len() as u32 != count;

    // Endpoints: in first-seen order, histograms and counters added.
    let mut endpoints: Vec<EndpointReport> = Vec::new();
    for r in shards {
        for ep in &r.endpoints {
            match endpoints.iter_mut().find(|e| e.name == ep.name) {
                None => endpoints.push(ep.clone()),
                Some(m) => {
                    m.histogram.add(&ep.histogram).map_err(|e| {
                        refuse(format!(
                            "histograms of '{}' do not fit together: {e:?}",
                            ep.name
                        ))
                    })?;
                    m.service_histogram
                        .add(&ep.service_histogram)
                        .map_err(|e| {
                            refuse(format!(
                                "histograms of '{}' do not fit together: {e:?}",
                                ep.name
                            ))
                        })?;
                    m.requests += ep.requests;
                    m.failures += ep.failures;
                    m.bytes += ep.bytes;
                    m.substituted += ep.substituted;
                    m.uncorrelated += ep.uncorrelated;
                    for (class, n) in &ep.status_classes {
                        *m.status_classes.entry(class.clone()).or_default() += n;
                    }
                }
            }
        }
    }
    for ep in &mut endpoints {
        ep.refresh_summary();
    }
    merged.endpoints = endpoints;

    // Timeline: shift each shard to the merged start, add by second.
    struct Acc {
        point: TimelinePoint,
        p50_sum: f64,
        p95_sum: f64,
    }
    let mut seconds: BTreeMap<u64, Acc> = BTreeMap::new();
    for r in shards {
        let offset = ((r.started - started).num_milliseconds().max(0) as u64 + 500) / 1000;
        for p in &r.timeline {
            let t = p.t + offset;
            let acc = seconds.entry(t).or_insert_with(|| Acc {
                point: TimelinePoint {
                    t,
                    ..TimelinePoint::default()
                },
                p50_sum: 0.0,
                p95_sum: 0.0,
            });
            acc.point.requests += p.requests;
            acc.point.failures += p.failures;
            acc.point.users += p.users;
            acc.p50_sum += p.p50_ms * p.requests as f64;
            acc.p95_sum += p.p95_ms * p.requests as f64;
        }
    }
    merged.timeline = seconds
        .into_values()
        .map(|mut a| {
            if a.point.requests > 0 {
                a.point.p50_ms = a.p50_sum / a.point.requests as f64;
                a.point.p95_ms = a.p95_sum / a.point.requests as f64;
            }
            a.point
        })
        .collect();

    // Failures grouped again by (endpoint, error).
    let mut failures: BTreeMap<(String, String), u64> = BTreeMap::new();
    for r in shards {
        for f in &r.failures {
            *failures
                .entry((f.endpoint.clone(), f.error.clone()))
                .or_default() += f.count;
        }
    }
    let mut failures: Vec<FailureGroup> = failures
        .into_iter()
        .map(|((endpoint, error), count)| FailureGroup {
            endpoint,
            error,
            count,
        })
        .collect();
    failures.sort_by_key(|f| std::cmp::Reverse(f.count));
    merged.failures = failures;

    // Slow requests: shifted to the merged clock, slowest kept.
    for r in shards {
        let offset = (r.started - started).num_milliseconds().max(0) as f64 / 1000.0;
        merged
            .slow_requests
            .extend(r.slow_requests.iter().cloned().map(|mut s| {
                s.t += offset;
                s
            }));
    }
    merged
        .slow_requests
        .sort_by(|a, b| b.latency_ms.total_cmp(&a.latency_ms));
    merged.slow_requests.truncate(MAX_SLOW_REQUESTS);

    // Thresholds are evaluated again on the merged numbers: a shard's p95 is
    // not the run's p95.
    let mut exprs: Vec<&str> = Vec::new();
    for r in shards {
        for t in &r.thresholds {
            if !exprs.contains(&t.expr.as_str()) {
                exprs.push(&t.expr);
            }
        }
    }
    let parsed: Vec<_> = exprs
        .iter()
        .filter_map(|e| parse_threshold(e).ok())
        .collect();
    merged.thresholds = evaluate(&merged, &parsed);
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{new_histogram, Shard};
    use chrono::{Duration, Utc};

    fn shard(index: u32, count: u32, values: &[u64]) -> RunReport {
        let start = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut r = RunReport::new(
            "a",
            "http://127.0.0.1:9",
            start + Duration::seconds(index as i64),
        );
        r.ended = r.started + Duration::seconds(10);
        r.shard = Some(Shard { index, count });
        r.options.insert("users".into(), 10.into());
        r.options
            .insert("shard".into(), format!("{index}/{count}").into());
        let mut h = new_histogram();
        for v in values {
            h.record(*v).unwrap();
        }
        let mut ep = EndpointReport::new("Social Feed", "GET", h.clone(), h);
        ep.requests = values.len() as u64;
        ep.failures = 1;
        r.endpoints.push(ep);
        r.timeline.push(TimelinePoint {
            t: 0,
            requests: values.len() as u64,
            failures: 1,
            users: 5,
            p50_ms: 1.0,
            p95_ms: 2.0,
        });
        r.failures.push(FailureGroup {
            endpoint: "Social Feed".into(),
            error: "HTTP 500".into(),
            count: 1,
        });
        r.thresholds.push(crate::report::ThresholdResult {
            expr: "Social Feed:max<50ms".into(),
            ok: true,
            observed: String::new(),
        });
        r
    }

    #[test]
    fn merge_is_exact() {
        let a = shard(1, 2, &[1_000, 2_000, 3_000]);
        let b = shard(2, 2, &[40_000, 60_000]);
        let m = merge(&[a, b]).unwrap();
        let ep = &m.endpoints[0];
        assert_eq!((ep.requests, ep.failures, ep.histogram.len()), (5, 2, 5));
        assert_eq!(ep.max_ms, ep.histogram.max() as f64 / 1000.0);
        assert!((59.9..60.1).contains(&ep.max_ms));
        assert_eq!(m.shard, None);
        assert!(!m.partial);
        assert_eq!(m.failures[0].count, 2);
        // Shard 2 started one second later: its second 0 is merged second 1.
        assert_eq!(m.timeline.len(), 2);
        assert_eq!(m.timeline[1].t, 1);
        // The threshold held on each shard alone but not on the merged run.
        assert!(!m.thresholds[0].ok);
    }

    #[test]
    fn refuses_different_runs_and_duplicates() {
        let a = shard(1, 2, &[1_000]);
        let e = merge(&[a.clone(), a.clone()]).unwrap_err().to_string();
        assert!(e.contains("given twice"), "{e}");
        let mut b = shard(2, 2, &[1_000]);
        b.target = "http://127.0.0.1:10".into();
        assert!(merge(&[a.clone(), b])
            .unwrap_err()
            .to_string()
            .contains("targets"));
        let mut b = shard(2, 2, &[1_000]);
        b.options.insert("users".into(), 20.into());
        let e = merge(&[a.clone(), b]).unwrap_err().to_string();
        assert!(e.contains("users"), "{e}");
        let mut b = shard(2, 3, &[1_000]);
        b.shard = Some(crate::report::Shard { index: 2, count: 3 });
        assert!(merge(&[a.clone(), b]).is_err());
        let mut b = shard(2, 2, &[1_000]);
        b.shard = None;
        assert!(merge(&[a.clone(), b])
            .unwrap_err()
            .to_string()
            .contains("not a shard"));
        assert!(merge(&[a]).unwrap().partial);
    }
}
