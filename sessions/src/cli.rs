//! `tapedeck sessions`: inspect, verify, filter and convert journals.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::json;

use crate::grouping::{group_sessions, GroupOptions, Session};
use crate::har;
use crate::journal::{expand_paths, read_all, JournalReader, JournalWriter, Journals};
use crate::model::Exchange;
use crate::naming::EndpointNamer;
use crate::profile::Profile;
use crate::{Error, Outcome, SessionKey};

mod table;

use table::Table;

/// Journals to read and how to group them into sessions.
#[derive(Debug, Clone, clap::Args)]
pub struct ReadArgs {
    /// Journal files (`*.jsonl.zst`) or directories holding them.
    #[arg(required = true, value_name = "JOURNAL")]
    pub journals: Vec<PathBuf>,
    /// Application profile (endpoint names, role rules, task mix); default: the built-in CoreVia profile.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// How to group exchanges: recorded (as captured), auto, header:NAME, cookie:NAME, jwt:CLAIM.
    #[arg(long, value_name = "KEY", default_value = "recorded", value_parser = parse_session_key)]
    pub session_key: SessionKey,
    /// A gap longer than this starts a new session (500ms, 30s, 5m, 2h).
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse_duration)]
    pub idle_split: Duration,
}

/// `tapedeck sessions list|show|stats|verify|filter|import-har|export-har`.
#[derive(Debug, clap::Subcommand)]
pub enum SessionsCommand {
    /// One line per session: id, role, user, requests, span.
    #[command(
        after_help = "Examples:\n  tapedeck sessions list journals/\n  tapedeck sessions list capture.jsonl.zst --role trainer\n  tapedeck sessions list journals/ --session-key auto --idle-split 10m --json"
    )]
    List {
        #[command(flatten)]
        /// The journals and how to group them.
        read: ReadArgs,
        /// Only sessions with this role.
        #[arg(long, value_name = "ROLE")]
        role: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Every exchange of one session.
    #[command(
        after_help = "Examples:\n  tapedeck sessions show journals/ --session sub:42\n  tapedeck sessions show capture.jsonl.zst --session 'sub:42#2' --bodies"
    )]
    Show {
        #[command(flatten)]
        /// The journals and how to group them.
        read: ReadArgs,
        /// The session id, as `sessions list` prints it.
        #[arg(long, value_name = "ID")]
        session: String,
        /// Also print request and response bodies (first 2 KiB of each).
        #[arg(long)]
        bodies: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Endpoint mix per role next to the profile's expected task weights; exchanges, bytes, time span.
    #[command(
        after_help = "Examples:\n  tapedeck sessions stats journals/\n  tapedeck sessions stats journals/ --profile myapp-profile.json --json"
    )]
    Stats {
        #[command(flatten)]
        /// The journals and how to group them.
        read: ReadArgs,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Check journal integrity: frames, records, truncated tail. Exit 2 if any journal is damaged.
    #[command(
        after_help = "Examples:\n  tapedeck sessions verify journals/\n  tapedeck sessions verify capture-20261126T101500.000Z-0000.jsonl.zst"
    )]
    Verify {
        /// Journal files or directories holding them.
        #[arg(required = true, value_name = "JOURNAL")]
        journals: Vec<PathBuf>,
    },
    /// Write the sessions or exchanges that match to a new journal.
    #[command(
        after_help = "Examples:\n  tapedeck sessions filter journals/ -o trainers.jsonl.zst --role trainer\n  tapedeck sessions filter journals/ -o feed.jsonl.zst --endpoint 'Social Feed' --since +5m --until +10m\n  tapedeck sessions filter journals/ -o morning.jsonl.zst --since 2026-11-26T08:00:00Z --until 2026-11-26T12:00:00Z"
    )]
    Filter {
        #[command(flatten)]
        /// The journals and how to group them.
        read: ReadArgs,
        /// The journal to write.
        #[arg(short = 'o', long = "out", value_name = "OUT")]
        out: PathBuf,
        /// Keep sessions with this role.
        #[arg(long, value_name = "ROLE")]
        role: Option<String>,
        /// Keep exchanges started at or after T (RFC 3339, or +OFFSET from the first request).
        #[arg(long, value_name = "T")]
        since: Option<String>,
        /// Keep exchanges started before T (RFC 3339, or +OFFSET from the first request).
        #[arg(long, value_name = "T")]
        until: Option<String>,
        /// Keep exchanges whose endpoint name or path matches (case-insensitive substring; `*` wildcards).
        #[arg(long, value_name = "PAT")]
        endpoint: Option<String>,
    },
    /// Convert a HAR 1.2 file (e.g. saved from browser devtools) to a journal.
    #[command(
        after_help = "Examples:\n  tapedeck sessions import-har app.har -o app.jsonl.zst\n  tapedeck sessions import-har app.har -o app.jsonl.zst --session-key cookie:sessionid"
    )]
    ImportHar {
        /// The HAR file.
        #[arg(value_name = "FILE.har")]
        file: PathBuf,
        /// The journal to write.
        #[arg(short = 'o', long = "out", value_name = "OUT.jsonl.zst")]
        out: PathBuf,
        /// How to key sessions of entries that carry no tapedeck session.
        #[arg(long, value_name = "KEY", default_value = "auto", value_parser = parse_session_key)]
        session_key: SessionKey,
    },
    /// Convert journals to a HAR 1.2 file.
    #[command(
        after_help = "Examples:\n  tapedeck sessions export-har journals/ -o capture.har\n  tapedeck sessions export-har journals/ -o one.har --session sub:42"
    )]
    ExportHar {
        #[command(flatten)]
        /// The journals and how to group them.
        read: ReadArgs,
        /// The HAR file to write.
        #[arg(short = 'o', long = "out", value_name = "OUT.har")]
        out: PathBuf,
        /// Only this session.
        #[arg(long, value_name = "ID")]
        session: Option<String>,
    },
}

/// Runs a sessions subcommand.
pub fn run(cmd: SessionsCommand) -> Result<Outcome, Error> {
    match cmd {
        SessionsCommand::List { read, role, json } => list(&read, role.as_deref(), json),
        SessionsCommand::Show {
            read,
            session,
            bodies,
            json,
        } => show(&read, &session, bodies, json),
        SessionsCommand::Stats { read, json } => stats(&read, json),
        SessionsCommand::Verify { journals } => verify(&journals),
        SessionsCommand::Filter {
            read,
            out,
            role,
            since,
            until,
            endpoint,
        } => filter(
            &read,
            &out,
            &FilterSpec {
                role,
                since,
                until,
                endpoint,
            },
        ),
        SessionsCommand::ImportHar {
            file,
            out,
            session_key,
        } => import_har(&file, &out, &session_key),
        SessionsCommand::ExportHar { read, out, session } => {
            export_har(&read, &out, session.as_deref())
        }
    }
}

// === flag parsing ===

fn parse_session_key(s: &str) -> Result<SessionKey, String> {
    s.parse::<SessionKey>().map_err(|e| match e {
        Error::Usage(m) => m
            .split_once(": ")
            .map_or(m.clone(), |(_, why)| why.to_string()),
        other => other.to_string(),
    })
}

/// Parses `500ms`, `30s`, `5m`, `2h`, `1d` (and a bare number of seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (use 500ms, 30s, 5m, 2h)"))?;
    let secs = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86400.0,
        other => return Err(format!("{s:?}: unknown unit {other:?} (use ms, s, m, h)")),
    };
    if !secs.is_finite() || secs > 1e10 {
        return Err(format!("{s:?} is too long"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A time flag: RFC 3339, `YYYY-MM-DD HH:MM:SS` (UTC), or `+OFFSET` from `origin`.
fn parse_time(flag: &str, s: &str, origin: DateTime<Utc>) -> Result<DateTime<Utc>, Error> {
    let t = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(n.and_utc());
        }
    }
    if let Ok(d) = parse_duration(t.trim_start_matches('+')) {
        let d = chrono::Duration::from_std(d)
            .map_err(|e| Error::Usage(format!("{flag} {s:?}: {e}")))?;
        return origin.checked_add_signed(d).ok_or_else(|| {
            Error::Usage(format!("{flag} {s:?}: past the latest representable time"))
        });
    }
    Err(Error::Usage(format!(
        "{flag} {s:?}: expected an RFC 3339 time (2026-11-26T10:00:00Z) or an offset from the first request (+5m)"
    )))
}

// === reading ===

/// Journals, their sessions and the profile.
struct Loaded {
    journals: Journals,
    sessions: Vec<Session>,
    profile: Profile,
    namer: EndpointNamer,
}

fn load(read: &ReadArgs) -> Result<Loaded, Error> {
    let profile = Profile::load(read.profile.as_deref())?;
    let paths = expand_paths(&read.journals)?;
    let mut journals = read_all(&paths)?;
    for w in journals.warnings() {
        eprintln!("tapedeck: warning: {w}");
    }
    let opts = GroupOptions {
        key: read.session_key.clone(),
        idle_split: read.idle_split,
    };
    let sessions = group_sessions(std::mem::take(&mut journals.exchanges), &opts, &profile);
    let namer = EndpointNamer::new(&profile);
    Ok(Loaded {
        journals,
        sessions,
        profile,
        namer,
    })
}

fn failed(ex: &Exchange) -> bool {
    ex.response.is_none() || ex.error.is_some() || ex.status().is_some_and(|s| s >= 400)
}

fn endpoint(namer: &EndpointNamer, ex: &Exchange) -> String {
    namer.name(&ex.request.method, ex.path())
}

// === list ===

fn list(read: &ReadArgs, role: Option<&str>, as_json: bool) -> Result<Outcome, Error> {
    let loaded = load(read)?;
    let sessions: Vec<&Session> = loaded
        .sessions
        .iter()
        .filter(|s| role.is_none_or(|r| s.role == r))
        .collect();
    if as_json {
        let items: Vec<_> = sessions
            .iter()
            .map(|s| {
                json!({
                    "id": s.id, "role": s.role, "user": s.user,
                    "requests": s.exchanges.len(),
                    "failures": s.exchanges.iter().filter(|e| failed(e)).count(),
                    "start": s.start(), "end": s.end(),
                    "span_s": s.span().as_secs_f64(),
                })
            })
            .collect();
        print_json(&json!({ "sessions": items }));
        return Ok(Outcome::Success);
    }
    let mut t = Table::new(&[
        "SESSION",
        "ROLE",
        "USER",
        ">REQUESTS",
        ">FAILED",
        "START",
        ">SPAN",
    ]);
    for s in &sessions {
        t.row(vec![
            s.id.clone(),
            s.role.clone(),
            s.user.clone().unwrap_or_else(|| "-".into()),
            s.exchanges.len().to_string(),
            s.exchanges.iter().filter(|e| failed(e)).count().to_string(),
            format_time(s.start()),
            format_duration(s.span()),
        ]);
    }
    print!("{}", t.render(""));
    let mut per_role: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &sessions {
        *per_role.entry(s.role.as_str()).or_default() += 1;
    }
    let roles: Vec<String> = per_role.iter().map(|(r, n)| format!("{r} {n}")).collect();
    println!(
        "{} sessions, {} exchanges{}",
        sessions.len(),
        sessions.iter().map(|s| s.exchanges.len()).sum::<usize>(),
        if roles.is_empty() {
            String::new()
        } else {
            format!(" ({})", roles.join(", "))
        }
    );
    Ok(Outcome::Success)
}

// === show ===

fn find_session<'a>(sessions: &'a [Session], id: &str) -> Result<&'a Session, Error> {
    sessions.iter().find(|s| s.id == id).ok_or_else(|| {
        Error::Usage(format!(
            "--session {id:?}: no such session in these journals (see `tapedeck sessions list`)"
        ))
    })
}

fn show(read: &ReadArgs, id: &str, bodies: bool, as_json: bool) -> Result<Outcome, Error> {
    let loaded = load(read)?;
    let s = find_session(&loaded.sessions, id)?;
    let start = s.start();
    if as_json {
        let exchanges: Vec<_> = s
            .exchanges
            .iter()
            .map(|e| {
                let mut v = serde_json::to_value(e).unwrap_or_default();
                v["endpoint"] = json!(endpoint(&loaded.namer, e));
                v
            })
            .collect();
        print_json(&json!({
            "id": s.id, "role": s.role, "user": s.user, "start": start, "end": s.end(),
            "exchanges": exchanges,
        }));
        return Ok(Outcome::Success);
    }
    println!(
        "session {}  role {}  user {}  {} requests  from {}  span {}",
        s.id,
        s.role,
        s.user.as_deref().unwrap_or("-"),
        s.exchanges.len(),
        format_time(start),
        format_duration(s.span())
    );
    let mut t = Table::new(&[
        ">OFFSET",
        "METHOD",
        "ENDPOINT",
        "PATH",
        ">STATUS",
        ">TTFB ms",
        ">TOTAL ms",
        ">REQ B",
        ">RESP B",
    ]);
    let mut details = Vec::new();
    for e in &s.exchanges {
        let offset = (e.started - start).to_std().unwrap_or_default();
        t.row(vec![
            format!("+{:.3}s", offset.as_secs_f64()),
            e.request.method.clone(),
            endpoint(&loaded.namer, e),
            e.request.uri.clone(),
            e.status()
                .map_or_else(|| "-".to_string(), |s| s.to_string()),
            format!("{:.1}", e.ttfb_us as f64 / 1000.0),
            format!("{:.1}", e.duration_us as f64 / 1000.0),
            e.request.body.len.to_string(),
            e.response.as_ref().map_or(0, |r| r.body.len).to_string(),
        ]);
        if bodies {
            details.push(e);
        }
    }
    if !bodies {
        print!("{}", t.render("  "));
        return Ok(Outcome::Success);
    }
    // With bodies, each exchange line is followed by its bodies.
    let rendered = t.render("  ");
    let mut lines = rendered.lines();
    if let Some(h) = lines.next() {
        println!("{h}");
    }
    for (line, e) in lines.zip(details) {
        println!("{line}");
        if let Some(err) = &e.error {
            println!("      error: {err}");
        }
        print_body("      > ", &e.request.body);
        if let Some(r) = &e.response {
            print_body("      < ", &r.body);
        }
    }
    Ok(Outcome::Success)
}

fn print_body(prefix: &str, body: &crate::model::Body) {
    if body.data.is_empty() {
        return;
    }
    const SHOWN: usize = 2048;
    let cut = body.data.len().min(SHOWN);
    let text = match std::str::from_utf8(&body.data) {
        Ok(t) => {
            let mut end = cut;
            while !t.is_char_boundary(end) {
                end -= 1;
            }
            t[..end].replace('\n', "\\n")
        }
        Err(_) => format!("<{} binary bytes>", body.data.len()),
    };
    let more = if body.truncated || body.data.len() > cut {
        format!(" ... ({} bytes in all)", body.len)
    } else {
        String::new()
    };
    println!("{prefix}{text}{more}");
}

// === stats ===

/// Requests of one endpoint within one role.
#[derive(Default)]
struct EndpointStats {
    requests: u64,
    failures: u64,
    durations_us: Vec<u64>,
}

fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

fn stats(read: &ReadArgs, as_json: bool) -> Result<Outcome, Error> {
    let loaded = load(read)?;
    let Loaded {
        journals,
        sessions,
        profile,
        namer,
    } = &loaded;
    let exchanges: usize = sessions.iter().map(|s| s.exchanges.len()).sum();
    let bytes = sessions
        .iter()
        .map(Session::bytes)
        .fold(0u64, u64::saturating_add);
    let start = sessions.iter().map(Session::start).min();
    let end = sessions.iter().map(Session::end).max();

    // role → endpoint → stats; role → sessions.
    let mut roles: BTreeMap<String, (u64, BTreeMap<String, EndpointStats>)> = BTreeMap::new();
    for s in sessions {
        let entry = roles.entry(s.role.clone()).or_default();
        entry.0 += 1;
        for e in &s.exchanges {
            let st = entry.1.entry(endpoint(namer, e)).or_default();
            st.requests += 1;
            st.failures += u64::from(failed(e));
            st.durations_us.push(e.duration_us);
        }
    }
    // Roles the profile expects but that never showed up are listed too.
    for role in profile.behaviour.keys() {
        roles.entry(role.clone()).or_default();
    }
    let weight_total: f64 = profile.behaviour.values().map(|b| b.weight).sum();
    let session_total = sessions.len().max(1) as f64;

    let mut role_reports = Vec::new();
    for (role, (n_sessions, endpoints)) in &mut roles {
        let behaviour = profile.behaviour.get(role.as_str());
        let tasks = behaviour.map(|b| &b.tasks);
        let task_weight_total: f64 = tasks.map_or(0.0, |t| t.values().sum());
        let role_requests: u64 = endpoints.values().map(|e| e.requests).sum();
        let task_requests: u64 = endpoints
            .iter()
            .filter(|(name, _)| tasks.is_some_and(|t| t.contains_key(name.as_str())))
            .map(|(_, e)| e.requests)
            .sum();
        if let Some(t) = tasks {
            for name in t.keys() {
                endpoints.entry(name.clone()).or_default();
            }
        }
        let mut rows: Vec<(&String, &mut EndpointStats)> = endpoints.iter_mut().collect();
        rows.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then(a.0.cmp(b.0)));
        let mut endpoint_reports = Vec::new();
        for (name, st) in rows {
            st.durations_us.sort_unstable();
            let expected = tasks
                .and_then(|t| t.get(name.as_str()))
                .filter(|_| task_weight_total > 0.0)
                .map(|w| w / task_weight_total);
            let in_mix = expected.is_some();
            endpoint_reports.push(json!({
                "name": name,
                "requests": st.requests,
                "failures": st.failures,
                "share": ratio(st.requests, role_requests),
                "task_share": if in_mix { json!(ratio(st.requests, task_requests)) } else { json!(null) },
                "expected_share": expected,
                "p50_ms": percentile(&st.durations_us, 0.50),
                "p95_ms": percentile(&st.durations_us, 0.95),
            }));
        }
        role_reports.push(json!({
            "role": role,
            "sessions": n_sessions,
            "share": *n_sessions as f64 / session_total,
            "expected_share": behaviour.filter(|_| weight_total > 0.0).map(|b| b.weight / weight_total),
            "requests": role_requests,
            "endpoints": endpoint_reports,
        }));
    }
    let report = json!({
        "files": journals.files.len(),
        "damaged_files": journals.damaged().count(),
        "exchanges": exchanges,
        "sessions": sessions.len(),
        "body_bytes": bytes,
        "start": start,
        "end": end,
        "profile": profile.profile,
        "roles": role_reports,
    });
    if as_json {
        print_json(&report);
        return Ok(Outcome::Success);
    }
    print_stats_text(&report, start, end);
    Ok(Outcome::Success)
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn pct(v: &serde_json::Value) -> String {
    v.as_f64()
        .map_or_else(|| "-".to_string(), |f| format!("{:.1}%", f * 100.0))
}

fn print_stats_text(
    report: &serde_json::Value,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
) {
    let span = match (start, end) {
        (Some(s), Some(e)) => format!(
            "{} .. {} ({})",
            format_time(s),
            format_time(e),
            format_duration((e - s).to_std().unwrap_or_default())
        ),
        _ => "no exchanges".to_string(),
    };
    println!(
        "{} journal{} ({} damaged), {} exchanges, {} sessions, {} of bodies, {}",
        report["files"],
        if report["files"] == 1 { "" } else { "s" },
        report["damaged_files"],
        report["exchanges"],
        report["sessions"],
        format_bytes(report["body_bytes"].as_u64().unwrap_or(0)),
        span
    );
    println!("profile {}", report["profile"].as_str().unwrap_or(""));
    println!();
    let roles = report["roles"].as_array().cloned().unwrap_or_default();
    let mut t = Table::new(&["ROLE", ">SESSIONS", ">SHARE", ">EXPECTED", ">REQUESTS"]);
    for r in &roles {
        t.row(vec![
            r["role"].as_str().unwrap_or("").to_string(),
            r["sessions"].to_string(),
            pct(&r["share"]),
            pct(&r["expected_share"]),
            r["requests"].to_string(),
        ]);
    }
    print!("{}", t.render(""));
    for r in &roles {
        println!();
        println!(
            "role {}: endpoint mix (TASK MIX counts only the profile's tasks; EXPECTED is the profile's task weight)",
            r["role"].as_str().unwrap_or("")
        );
        let mut t = Table::new(&[
            "ENDPOINT",
            ">REQUESTS",
            ">SHARE",
            ">TASK MIX",
            ">EXPECTED",
            ">FAILED",
            ">p50 ms",
            ">p95 ms",
        ]);
        for e in r["endpoints"].as_array().into_iter().flatten() {
            let requests = e["requests"].as_u64().unwrap_or(0);
            t.row(vec![
                e["name"].as_str().unwrap_or("").to_string(),
                requests.to_string(),
                pct(&e["share"]),
                pct(&e["task_share"]),
                pct(&e["expected_share"]),
                e["failures"].to_string(),
                if requests == 0 {
                    "-".into()
                } else {
                    format!("{:.1}", e["p50_ms"].as_f64().unwrap_or(0.0))
                },
                if requests == 0 {
                    "-".into()
                } else {
                    format!("{:.1}", e["p95_ms"].as_f64().unwrap_or(0.0))
                },
            ]);
        }
        print!("{}", t.render("  "));
    }
}

// === verify ===

fn verify(args: &[PathBuf]) -> Result<Outcome, Error> {
    let paths = expand_paths(args)?;
    let mut bad: Vec<(PathBuf, String)> = Vec::new();
    for path in &paths {
        let mut reader = match JournalReader::open(path) {
            Ok(r) => r,
            Err(e) => {
                println!("unreadable: {e}");
                let text = e.to_string();
                let prefix = format!("{}: ", path.display());
                let detail = text.strip_prefix(&prefix).unwrap_or(&text).to_string();
                bad.push((path.clone(), detail));
                continue;
            }
        };
        let count = reader.by_ref().count() as u64;
        let report = reader.report();
        let closing = match &report.stats {
            Some(s) if s.exchanges == count => {
                format!("finished cleanly ({} dropped by the capture)", s.dropped)
            }
            Some(s) => format!("closing line says {} exchanges", s.exchanges),
            None => "not finished (no closing stats line)".to_string(),
        };
        let stats_mismatch = report.stats.as_ref().is_some_and(|s| s.exchanges != count);
        if report.is_clean() && !stats_mismatch {
            println!(
                "{}: ok, {} frames, {} exchanges, {closing}",
                path.display(),
                report.frames,
                count
            );
        } else {
            let mut what = report.describe(path);
            if stats_mismatch {
                what.push_str(&format!("; {closing} but {count} were read"));
            }
            println!("{what}");
            let detail = what
                .split_once(": ")
                .map_or(what.clone(), |x| x.1.to_string());
            bad.push((path.clone(), format!("damaged journal: {detail}")));
        }
    }
    match bad.first() {
        None => Ok(Outcome::Success),
        Some((path, what)) => Err(Error::Invalid {
            path: path.clone(),
            what: if bad.len() == 1 {
                what.clone()
            } else {
                format!(
                    "{what} (and {} more of {} journals damaged or unreadable)",
                    bad.len() - 1,
                    paths.len()
                )
            },
        }),
    }
}

// === filter ===

struct FilterSpec {
    role: Option<String>,
    since: Option<String>,
    until: Option<String>,
    endpoint: Option<String>,
}

/// Case-insensitive: substring without `*`, whole-string glob with `*`.
fn matches_pattern(pat: &str, text: &str) -> bool {
    let pat = pat.to_lowercase();
    let text = text.to_lowercase();
    if !pat.contains('*') {
        return text.contains(&pat);
    }
    let parts: Vec<&str> = pat.split('*').collect();
    let mut rest = text.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(j) => rest = &rest[j + part.len()..],
                None => return false,
            }
        }
    }
    rest.is_empty()
}

fn reject_input_as_output(read: &ReadArgs, out: &Path) -> Result<(), Error> {
    let inputs = expand_paths(&read.journals)?;
    let out_abs = std::fs::canonicalize(out).ok();
    let clash = inputs
        .iter()
        .any(|p| p == out || (out_abs.is_some() && std::fs::canonicalize(p).ok() == out_abs));
    if clash {
        return Err(Error::Usage(format!(
            "-o {}: is one of the input journals; write to a new file",
            out.display()
        )));
    }
    Ok(())
}

fn filter(read: &ReadArgs, out: &Path, spec: &FilterSpec) -> Result<Outcome, Error> {
    reject_input_as_output(read, out)?;
    let loaded = load(read)?;
    let origin = loaded
        .sessions
        .iter()
        .map(Session::start)
        .min()
        .unwrap_or(DateTime::UNIX_EPOCH);
    let since = spec
        .since
        .as_deref()
        .map(|s| parse_time("--since", s, origin))
        .transpose()?;
    let until = spec
        .until
        .as_deref()
        .map(|s| parse_time("--until", s, origin))
        .transpose()?;
    let upstream = loaded.journals.upstream().unwrap_or("").to_string();
    let mut writer = JournalWriter::create_file(out, &upstream)?;
    let (mut n_exchanges, mut n_sessions) = (0u64, 0u64);
    for s in &loaded.sessions {
        if spec.role.as_deref().is_some_and(|r| s.role != r) {
            continue;
        }
        let mut kept = false;
        for e in &s.exchanges {
            if since.is_some_and(|t| e.started < t) || until.is_some_and(|t| e.started >= t) {
                continue;
            }
            if let Some(p) = &spec.endpoint {
                let name = endpoint(&loaded.namer, e);
                let plain = format!("{} {}", e.request.method, e.path());
                if !matches_pattern(p, &name) && !matches_pattern(p, &plain) {
                    continue;
                }
            }
            // The session id is written as the recorded key, so reading the
            // output groups exactly as this run did.
            let mut e = e.clone();
            e.session = s.id.clone();
            writer.write(&e)?;
            n_exchanges += 1;
            kept = true;
        }
        n_sessions += u64::from(kept);
    }
    writer.finish()?;
    println!(
        "wrote {n_exchanges} exchanges of {n_sessions} sessions to {}",
        out.display()
    );
    if n_exchanges == 0 {
        eprintln!("tapedeck: warning: no exchange matched the filter");
    }
    Ok(Outcome::Success)
}

// === HAR ===

fn import_har(file: &Path, out: &Path, key: &SessionKey) -> Result<Outcome, Error> {
    let imported = har::import_har(file, key)?;
    let mut writer = JournalWriter::create_file(out, &imported.upstream)?;
    for e in &imported.exchanges {
        writer.write(e)?;
    }
    let summary = writer.finish()?;
    let sessions: std::collections::HashSet<&str> = imported
        .exchanges
        .iter()
        .map(|e| e.session.as_str())
        .collect();
    println!(
        "imported {} exchanges ({} sessions) from {} to {}",
        summary.exchanges,
        sessions.len(),
        file.display(),
        out.display()
    );
    Ok(Outcome::Success)
}

fn export_har(read: &ReadArgs, out: &Path, session: Option<&str>) -> Result<Outcome, Error> {
    let loaded = load(read)?;
    let upstream = loaded.journals.upstream().unwrap_or("").to_string();
    let mut exchanges: Vec<Exchange> = match session {
        Some(id) => find_session(&loaded.sessions, id)?.exchanges.clone(),
        None => loaded
            .sessions
            .iter()
            .flat_map(|s| s.exchanges.iter().cloned())
            .collect(),
    };
    exchanges.sort_by_key(|e| (e.started, e.id));
    har::export_har(out, &exchanges, &upstream)?;
    println!("wrote {} entries to {}", exchanges.len(), out.display());
    Ok(Outcome::Success)
}

// === formatting ===

fn print_json(v: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("a serde_json::Value always encodes")
    );
}

fn format_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

/// `850ms`, `12.3s`, `2m13s`, `1h02m`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    let s = d.as_secs();
    if ms < 1000 {
        format!("{ms}ms")
    } else if s < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

fn format_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("5 parsecs")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_duration("soon")
            .unwrap_err()
            .contains("not a duration"));
    }

    #[test]
    fn times_parse() {
        let origin: DateTime<Utc> = "2026-11-26T10:00:00Z".parse().unwrap();
        let t = parse_time("--since", "+5m", origin).unwrap();
        assert_eq!(t, origin + chrono::Duration::minutes(5));
        let t = parse_time("--since", "2026-11-26T11:00:00+01:00", origin).unwrap();
        assert_eq!(t, origin);
        let t = parse_time("--since", "2026-11-26 10:00:00", origin).unwrap();
        assert_eq!(t, origin);
        let e = parse_time("--until", "tomorrow", origin)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--until") && e.contains("tomorrow"), "{e}");
    }

    #[test]
    fn patterns_match() {
        assert!(matches_pattern("feed", "Social Feed"));
        assert!(matches_pattern(
            "GET /api/*/feed",
            "GET /api/v1/social/feed"
        ));
        assert!(matches_pattern(
            "*products*",
            "GET /api/v1/marketplace/products/{id}"
        ));
        assert!(!matches_pattern("POST *", "GET /x"));
        assert!(!matches_pattern("*feed", "Social Feed Old"));
    }

    #[test]
    fn formats() {
        assert_eq!(format_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(format_duration(Duration::from_secs(133)), "2m13s");
        assert_eq!(format_duration(Duration::from_secs(3720)), "1h02m");
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(3 * 1024 * 1024), "3.0 MiB");
    }
}
