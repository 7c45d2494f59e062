//! Text and Markdown tables for runs, comparisons and checks.

use std::fmt::Write as _;

use super::{fmt_change, fmt_ms, fmt_p, run_rows};
use crate::check::{Check, Status};
use crate::compare::{Comparison, EndpointComparison, ErrorVerdict, Verdict};
use crate::report::RunReport;

/// Column alignment.
#[derive(Clone, Copy)]
enum Align {
    Left,
    Right,
}

/// Lays out cells in aligned columns. `paint` may wrap a padded cell in
/// terminal colours (it must not change the visible width).
fn aligned(
    header: &[&str],
    align: &[Align],
    rows: &[Vec<String>],
    paint: &dyn Fn(usize, usize, String) -> String,
) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>, row: Option<usize>| -> String {
        let mut s = String::new();
        for (i, c) in cells.into_iter().enumerate() {
            let pad = widths[i] - c.chars().count();
            let padded = match align[i] {
                Align::Left => format!("{c}{}", " ".repeat(pad)),
                Align::Right => format!("{}{c}", " ".repeat(pad)),
            };
            if i > 0 {
                s.push_str("  ");
            }
            s.push_str(&match row {
                Some(r) => paint(r, i, padded),
                None => padded,
            });
        }
        s.trim_end().to_string()
    };
    let mut out = String::new();
    let head = line(header.iter().map(|h| h.to_string()).collect(), None);
    let _ = writeln!(out, "{head}");
    let _ = writeln!(
        out,
        "{}",
        "-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1))
    );
    for (ri, r) in rows.iter().enumerate() {
        let _ = writeln!(out, "{}", line(r.clone(), Some(ri)));
    }
    out
}

fn md_table(header: &[&str], align: &[Align], rows: &[Vec<String>]) -> String {
    let esc = |s: &str| s.replace('|', "\\|");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| {} |",
        header
            .iter()
            .map(|h| esc(h))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(
        out,
        "|{}|",
        align
            .iter()
            .map(|a| match a {
                Align::Left => ":---",
                Align::Right => "---:",
            })
            .collect::<Vec<_>>()
            .join("|")
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} |",
            r.iter().map(|c| esc(c)).collect::<Vec<_>>().join(" | ")
        );
    }
    out
}

const COMPARE_HEADER: &[&str] = &[
    "Endpoint", "n base", "n cand", "p50 base", "p50 cand", "Δp50", "p95 base", "p95 cand", "Δp95",
    "Δp99", "Δmean", "Δrps", "err base", "err cand", "p", "verdict", "errors",
];

fn compare_align() -> Vec<Align> {
    let mut a = vec![Align::Right; COMPARE_HEADER.len()];
    a[0] = Align::Left;
    a[15] = Align::Left;
    a[16] = Align::Left;
    a
}

fn pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

fn compare_row(e: &EndpointComparison) -> Vec<String> {
    let ms = |v: Option<f64>| v.map(fmt_ms).unwrap_or_else(|| "-".to_string());
    let b = e.base.as_ref();
    let c = e.candidate.as_ref();
    vec![
        e.name.clone(),
        b.map_or("-".into(), |s| s.requests.to_string()),
        c.map_or("-".into(), |s| s.requests.to_string()),
        ms(b.map(|s| s.p50_ms)),
        ms(c.map(|s| s.p50_ms)),
        fmt_change(e.change.p50),
        ms(b.map(|s| s.p95_ms)),
        ms(c.map(|s| s.p95_ms)),
        fmt_change(e.change.p95),
        fmt_change(e.change.p99),
        fmt_change(e.change.mean),
        fmt_change(e.change.rps),
        b.map_or("-".into(), |s| pct(s.error_rate)),
        c.map_or("-".into(), |s| pct(s.error_rate)),
        if e.base.is_some() && e.candidate.is_some() {
            fmt_p(e.p_value)
        } else {
            "-".into()
        },
        e.verdict.as_str().to_string(),
        e.errors.as_str().to_string(),
    ]
}

fn geomean_row(c: &Comparison) -> Vec<String> {
    let mut r = vec![String::new(); COMPARE_HEADER.len()];
    r[0] = format!("geomean ({} endpoints)", c.geomean.endpoints);
    r[5] = fmt_change(c.geomean.p50);
    r[8] = fmt_change(c.geomean.p95);
    r[10] = fmt_change(c.geomean.mean);
    r
}

fn side_line(label: &str, s: &crate::compare::SideInfo) -> String {
    format!(
        "{label}: {} ({} run{}, {} requests)",
        s.labels.join(", "),
        s.labels.len(),
        if s.labels.len() == 1 { "" } else { "s" },
        s.requests
    )
}

fn summary_line(c: &Comparison) -> String {
    let slower = c.slower();
    let faster = c
        .endpoints
        .iter()
        .filter(|e| e.verdict == Verdict::Faster)
        .count();
    let errors_up = c.errors_up();
    let unknown = c
        .endpoints
        .iter()
        .filter(|e| e.verdict == Verdict::Unknown)
        .count();
    let mut parts = Vec::new();
    if !slower.is_empty() {
        parts.push(format!("SLOWER: {}", slower.join(", ")));
    }
    if !errors_up.is_empty() {
        parts.push(format!("ERRORS UP: {}", errors_up.join(", ")));
    }
    if faster > 0 {
        parts.push(format!("{faster} faster"));
    }
    if unknown > 0 {
        parts.push(format!("{unknown} with too little data (?)"));
    }
    if slower.is_empty() && errors_up.is_empty() {
        parts.insert(0, "no regression found".to_string());
    }
    parts.join("; ")
}

/// One sentence about the A-vs-A control, if there is one.
pub(crate) fn control_line(c: &Comparison) -> Option<String> {
    let k = c.control.as_ref()?;
    let flagged = if k.flagged.is_empty() {
        "nothing flagged".to_string()
    } else {
        format!(
            "flagged {} (noise: trust the verdicts less)",
            k.flagged.join(", ")
        )
    };
    Some(format!(
        "A-vs-A control ('{}' vs '{}', two base runs, one-run rule): {flagged}; largest p50 drift {:.1}% ({})",
        k.runs[0],
        k.runs[1],
        k.max_p50_drift * 100.0,
        if k.max_p50_drift_endpoint.is_empty() { "-" } else { &k.max_p50_drift_endpoint }
    ))
}

/// The comparison as an aligned terminal table; `color` adds ANSI colours
/// (red for regressions, green for improvements, yellow for `?`).
pub fn text_compare(c: &Comparison, color: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", side_line("base     ", &c.base));
    let _ = writeln!(out, "{}", side_line("candidate", &c.candidate));
    for w in &c.warnings {
        let text = format!("WARNING: {w}");
        let _ = writeln!(
            out,
            "{}",
            if color {
                format!("\x1b[1;33m{text}\x1b[0m")
            } else {
                text
            }
        );
    }
    let _ = writeln!(out);
    let mut rows: Vec<Vec<String>> = c.endpoints.iter().map(compare_row).collect();
    rows.push(geomean_row(c));
    let verdicts: Vec<(Verdict, ErrorVerdict)> =
        c.endpoints.iter().map(|e| (e.verdict, e.errors)).collect();
    let paint = |row: usize, col: usize, cell: String| -> String {
        if !color || row >= verdicts.len() {
            return cell;
        }
        let code = match (col, verdicts[row]) {
            (15, (Verdict::Slower, _)) | (16, (_, ErrorVerdict::Up)) => "1;31",
            (15, (Verdict::Faster, _)) | (16, (_, ErrorVerdict::Down)) => "32",
            (15, (Verdict::Unknown, _)) => "33",
            _ => return cell,
        };
        format!("\x1b[{code}m{cell}\x1b[0m")
    };
    out.push_str(&aligned(COMPARE_HEADER, &compare_align(), &rows, &paint));
    let _ = writeln!(
        out,
        "(latencies in ms; Δ is candidate vs base (Δmean: mean of the fastest 90 %); p is Mann–Whitney U, two-sided)"
    );
    let notes: Vec<String> = c
        .endpoints
        .iter()
        .filter(|e| !e.note.is_empty())
        .map(|e| format!("  {}: {}", e.name, e.note))
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(out, "\nNotes:\n{}", notes.join("\n"));
    }
    if !c.errors.is_empty() {
        let _ = writeln!(out, "\nFailures that changed (base → candidate):");
        for f in &c.errors {
            let _ = writeln!(
                out,
                "  {}: {}  {} → {}",
                f.endpoint, f.error, f.base, f.candidate
            );
        }
    }
    if let Some(line) = control_line(c) {
        let _ = writeln!(out, "\n{line}");
    }
    let _ = writeln!(out, "\nRule: {}.", c.floor_rule);
    let summary = format!("Result: {}", summary_line(c));
    let _ = writeln!(
        out,
        "{}",
        if color && c.regressed() {
            format!("\x1b[1;31m{summary}\x1b[0m")
        } else {
            summary
        }
    );
    out
}

/// The comparison as Markdown (a pull-request comment or CI job summary).
pub fn md_compare(c: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## tapedeck compare: {}\n", summary_line(c));
    let _ = writeln!(out, "- {}", side_line("**base**", &c.base));
    let _ = writeln!(out, "- {}", side_line("**candidate**", &c.candidate));
    for w in &c.warnings {
        let _ = writeln!(out, "\n> [!WARNING]\n> {w}");
    }
    let _ = writeln!(out);
    let mut rows: Vec<Vec<String>> = c
        .endpoints
        .iter()
        .map(|e| {
            let mut r = compare_row(e);
            if e.verdict == Verdict::Slower {
                r[15] = "**slower**".into();
            }
            if e.errors == ErrorVerdict::Up {
                r[16] = "**up**".into();
            }
            r
        })
        .collect();
    rows.push(geomean_row(c));
    out.push_str(&md_table(COMPARE_HEADER, &compare_align(), &rows));
    let _ = writeln!(
        out,
        "\nLatencies in ms; Δ is candidate vs base (Δmean: mean of the fastest 90 %); p is Mann–Whitney U (two-sided)."
    );
    if let Some(line) = control_line(c) {
        let _ = writeln!(out, "\n{line}");
    }
    let _ = writeln!(out, "Rule: {}.", c.floor_rule);
    if !c.errors.is_empty() {
        let _ = writeln!(out, "\n### Failures that changed\n");
        let rows: Vec<Vec<String>> = c
            .errors
            .iter()
            .map(|f| {
                vec![
                    f.endpoint.clone(),
                    f.error.clone(),
                    f.base.to_string(),
                    f.candidate.to_string(),
                ]
            })
            .collect();
        out.push_str(&md_table(
            &["Endpoint", "Error", "base", "candidate"],
            &[Align::Left, Align::Left, Align::Right, Align::Right],
            &rows,
        ));
    }
    out
}

/// The end-of-run table as Markdown.
pub fn md_run(r: &RunReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## tapedeck run '{}'\n\n{} requests, {} failures in {:.1} s against `{}`{}\n",
        r.label,
        r.total_requests(),
        r.total_failures(),
        r.duration_s(),
        r.target,
        if r.partial { " (**partial**)" } else { "" }
    );
    let rows: Vec<Vec<String>> = run_rows(r)
        .into_iter()
        .map(|x| {
            vec![
                x.name,
                x.requests.to_string(),
                x.failures.to_string(),
                fmt_ms(x.p50),
                fmt_ms(x.p95),
                fmt_ms(x.p99),
                fmt_ms(x.mean),
                fmt_ms(x.max),
                format!("{:.2}", x.rps),
            ]
        })
        .collect();
    let mut align = vec![Align::Right; 9];
    align[0] = Align::Left;
    out.push_str(&md_table(
        &[
            "Name", "# reqs", "# fails", "Median", "95%ile", "99%ile", "Avg", "Max", "req/s",
        ],
        &align,
        &rows,
    ));
    if !r.thresholds.is_empty() {
        let _ = writeln!(out, "\n### Thresholds\n");
        for t in &r.thresholds {
            let _ = writeln!(
                out,
                "- {} `{}` (observed {})",
                if t.ok { "ok" } else { "**FAILED**" },
                t.expr,
                t.observed
            );
        }
    }
    out
}

fn check_rows(c: &Check) -> Vec<Vec<String>> {
    c.rows
        .iter()
        .map(|r| {
            let v = |x: f64| match r.unit {
                "ms" => fmt_ms(x),
                "ratio" => pct(x),
                _ => format!("{x:.1}"),
            };
            vec![
                r.what.clone(),
                r.observed.map(v).unwrap_or_else(|| "-".into()),
                v(r.target),
                v(r.acceptable),
                v(r.critical),
                r.unit.replace("ratio", "%"),
                r.status.as_str().to_string(),
            ]
        })
        .collect()
}

const CHECK_HEADER: &[&str] = &[
    "Metric",
    "Observed",
    "Target",
    "Acceptable",
    "Critical",
    "Unit",
    "Status",
];

fn check_align() -> Vec<Align> {
    vec![
        Align::Left,
        Align::Right,
        Align::Right,
        Align::Right,
        Align::Right,
        Align::Left,
        Align::Left,
    ]
}

/// The plan check as an aligned terminal table.
pub fn text_check(c: &Check, color: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Run '{}' against the {} plan:", c.label, c.profile);
    let statuses: Vec<Status> = c.rows.iter().map(|r| r.status).collect();
    let paint = |row: usize, col: usize, cell: String| -> String {
        if !color || col != 6 {
            return cell;
        }
        let code = match statuses[row] {
            Status::Ok => "32",
            Status::Acceptable => "36",
            Status::Degraded | Status::BelowMinimum => "33",
            Status::Critical => "1;31",
            Status::NoData => return cell,
        };
        format!("\x1b[{code}m{cell}\x1b[0m")
    };
    out.push_str(&aligned(
        CHECK_HEADER,
        &check_align(),
        &check_rows(c),
        &paint,
    ));
    let _ = writeln!(
        out,
        "(throughput: acceptable is the plan's minimum, critical its maximum)"
    );
    if !c.thresholds.is_empty() {
        let _ = writeln!(out, "\nThresholds:");
        for t in &c.thresholds {
            let mark = if t.ok { "ok    " } else { "FAILED" };
            let _ = writeln!(out, "  {mark} {}  (observed {})", t.expr, t.observed);
        }
    }
    let _ = writeln!(
        out,
        "\nResult: {}",
        if c.failed() {
            "FAILED (critical level or threshold)"
        } else {
            "passed"
        }
    );
    out
}

/// The plan check as Markdown.
pub fn md_check(c: &Check) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## tapedeck check '{}' ({} plan): {}\n",
        c.label,
        c.profile,
        if c.failed() { "**FAILED**" } else { "passed" }
    );
    out.push_str(&md_table(CHECK_HEADER, &check_align(), &check_rows(c)));
    for t in &c.thresholds {
        let _ = writeln!(
            out,
            "- {} `{}` (observed {})",
            if t.ok { "ok" } else { "**FAILED**" },
            t.expr,
            t.observed
        );
    }
    out
}
