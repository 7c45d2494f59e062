//! What a replay is asked to do, and the parsers for the flag values that
//! shape it (durations, rates, mixes, stage plans, shards, targets).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::correlation::CorrelationOptions;
use crate::Error;

/// Everything one replay needs. Built by the CLI from flags, or by hand by
/// tests and the demo.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    /// Journal files or directories.
    pub journals: Vec<PathBuf>,
    /// Where to send requests.
    pub targets: Vec<Target>,
    /// How many virtual users, and which sessions they replay.
    pub load: Load,
    /// Time scaling of recorded think times.
    pub speed: Speed,
    /// `--spawn-rate`: users started per second (all at once when `None`).
    pub spawn_rate: Option<f64>,
    /// `--stages`: a user-count plan; overrides `load`'s user count.
    pub stages: Option<Vec<Stage>>,
    /// `--run-time`: stop after this long. Without it (and without stages)
    /// every VU replays its session once and the run ends when all are done.
    pub run_time: Option<Duration>,
    /// `--rate`: open model, session arrivals per second (whole run, all shards).
    pub rate: Option<f64>,
    /// Correlation and identity options.
    pub correlation: CorrelationOptions,
    /// `--label`.
    pub label: String,
    /// `--threshold` expressions (only explicit ones gate).
    pub thresholds: Vec<String>,
    /// `--profile`.
    pub profile: Option<PathBuf>,
    /// `--shard I/N`.
    pub shard: Option<ShardSpec>,
    /// `--allow-recorded-host`.
    pub allow_recorded_host: bool,
    /// `--connect-timeout`.
    pub connect_timeout: Duration,
    /// `--timeout`: whole request, from send to the end of the response body.
    pub timeout: Duration,
    /// `--h2`: HTTP/2 with prior knowledge instead of HTTP/1.1.
    pub h2: bool,
    /// `--metrics-listen`: serve Prometheus text there while running.
    pub metrics_listen: Option<SocketAddr>,
    /// `--session-key` (grouping of exchanges into sessions).
    pub session_key: Option<String>,
    /// `--idle-split` (grouping).
    pub idle_split: Option<Duration>,
    /// `--ca-cert FILE`: extra CA certificates (PEM) trusted for https targets.
    pub ca_cert: Option<PathBuf>,
    /// `--hlog FILE`: HdrHistogram interval log written during the run.
    pub hlog: Option<PathBuf>,
    /// Show a live progress line on stderr (only honoured on a terminal).
    pub progress: bool,
}

impl ReplayConfig {
    /// A configuration with the defaults of the CLI: every recorded session
    /// replayed once by one VU at recorded speed against `target`.
    pub fn new(journals: Vec<PathBuf>, target: Target) -> Self {
        ReplayConfig {
            journals,
            targets: vec![target],
            load: Load::Multiply(1),
            speed: Speed::Factor(1.0),
            spawn_rate: None,
            stages: None,
            run_time: None,
            rate: None,
            correlation: CorrelationOptions {
                enabled: true,
                ..CorrelationOptions::default()
            },
            label: "replay".to_string(),
            thresholds: Vec::new(),
            profile: None,
            shard: None,
            allow_recorded_host: false,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            h2: false,
            metrics_listen: None,
            session_key: None,
            idle_split: None,
            ca_cert: None,
            hlog: None,
            progress: false,
        }
    }
}

/// How many VUs replay which sessions (closed model).
#[derive(Debug, Clone, PartialEq)]
pub enum Load {
    /// `--users N [--mix role=w,...]`: N VUs, roles by weight (profile
    /// behaviour weights when no mix is given).
    Users {
        /// Number of VUs.
        users: u64,
        /// Role weights.
        mix: Option<Vec<(String, f64)>>,
    },
    /// `--multiply K`: K VUs per recorded session.
    Multiply(u64),
}

/// Time scaling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// Recorded gaps are divided by this factor.
    Factor(f64),
    /// No think time: each request leaves as soon as the previous answered.
    Max,
}

/// One stage of a user-count plan: ramp linearly to `users` over `duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stage {
    /// Length of the ramp.
    pub duration: Duration,
    /// Users at its end.
    pub users: u64,
}

/// `--shard I/N` (1-based index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSpec {
    /// 1..=count.
    pub index: u32,
    /// Number of shards.
    pub count: u32,
}

impl ShardSpec {
    /// Whether global item number `n` (VU number, arrival number) is this shard's.
    pub fn owns(&self, n: u64) -> bool {
        n % u64::from(self.count) == u64::from(self.index - 1)
    }
}

/// A target: where requests recorded against `origin` (or all, when `None`) go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Recorded origin authority (`host:port`) this target replaces.
    pub origin: Option<String>,
    /// `http` or `https`.
    pub scheme: String,
    /// Host as given.
    pub host: String,
    /// Port (the scheme's default when not given).
    pub port: u16,
    /// Path prefix of the target URL, without a trailing `/` (usually empty).
    pub base_path: String,
}

impl Target {
    /// `host:port` as sent in the `Host` header.
    pub fn authority(&self) -> String {
        let default = if self.is_tls() { 443 } else { 80 };
        if self.port == default {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Whether requests go over TLS.
    pub fn is_tls(&self) -> bool {
        self.scheme == "https"
    }

    /// `host:port` always with the port, for connecting and comparing.
    pub fn host_port(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The URL, for reports.
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.authority(), self.base_path)
    }
}

/// Parses `500ms`, `30s`, `5m`, `2h` (a bare number is seconds).
pub fn parse_duration(flag: &str, s: &str) -> Result<Duration, Error> {
    let bad = || {
        Error::Usage(format!(
            "{flag} {s:?}: not a duration (use e.g. 500ms, 30s, 5m, 2h)"
        ))
    };
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(bad()),
    };
    if !secs.is_finite() || !(0.0..=366.0 * 86_400.0).contains(&secs) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses a per-second rate: `20`, `20/s`, `120/m`.
pub fn parse_rate(flag: &str, s: &str) -> Result<f64, Error> {
    let bad = || Error::Usage(format!("{flag} {s:?}: not a rate (use e.g. 20/s or 600/m)"));
    let (num, per) = match s.trim().split_once('/') {
        Some((n, p)) => (n, p),
        None => (s.trim(), "s"),
    };
    let value: f64 = num.trim().parse().map_err(|_| bad())?;
    let per_second = match per.trim() {
        "s" => value,
        "m" => value / 60.0,
        "h" => value / 3600.0,
        _ => return Err(bad()),
    };
    if !per_second.is_finite() || per_second <= 0.0 || per_second > 10_000_000.0 {
        return Err(bad());
    }
    Ok(per_second)
}

/// Parses `--speed`: a positive factor or `max`.
pub fn parse_speed(s: &str) -> Result<Speed, Error> {
    if s.trim().eq_ignore_ascii_case("max") {
        return Ok(Speed::Max);
    }
    let f: f64 = s
        .trim()
        .trim_end_matches('x')
        .parse()
        .map_err(|_| Error::Usage(format!("--speed {s:?}: not a number or `max`")))?;
    if !f.is_finite() || f <= 0.0 {
        return Err(Error::Usage(format!("--speed {s:?}: must be > 0")));
    }
    Ok(Speed::Factor(f))
}

/// Parses `--mix student=9,trainer=1`.
pub fn parse_mix(s: &str) -> Result<Vec<(String, f64)>, Error> {
    let mut out: Vec<(String, f64)> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (role, weight) = part
            .split_once('=')
            .ok_or_else(|| Error::Usage(format!("--mix {s:?}: {part:?} is not ROLE=WEIGHT")))?;
        let w: f64 = weight
            .trim()
            .parse()
            .map_err(|_| Error::Usage(format!("--mix {s:?}: weight {weight:?} is not a number")))?;
        if !w.is_finite() || w < 0.0 {
            return Err(Error::Usage(format!(
                "--mix {s:?}: weight of {role} must be >= 0"
            )));
        }
        if out.iter().any(|(r, _)| r == role.trim()) {
            return Err(Error::Usage(format!(
                "--mix {s:?}: role {role} appears twice"
            )));
        }
        out.push((role.trim().to_string(), w));
    }
    if out.is_empty() || out.iter().all(|(_, w)| *w == 0.0) {
        return Err(Error::Usage(format!(
            "--mix {s:?}: needs at least one ROLE=WEIGHT with a weight > 0"
        )));
    }
    Ok(out)
}

/// Parses `--stages 30s:10,1m:100,10m:0`.
pub fn parse_stages(s: &str) -> Result<Vec<Stage>, Error> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (d, u) = part.split_once(':').ok_or_else(|| {
            Error::Usage(format!("--stages {s:?}: {part:?} is not DURATION:USERS"))
        })?;
        let duration = parse_duration("--stages", d)?;
        let users: u64 = u.trim().parse().map_err(|_| {
            Error::Usage(format!("--stages {s:?}: users {u:?} is not a whole number"))
        })?;
        out.push(Stage { duration, users });
    }
    if out.is_empty() {
        return Err(Error::Usage(format!(
            "--stages {s:?}: needs at least one DURATION:USERS"
        )));
    }
    if out.iter().all(|st| st.duration.is_zero()) {
        return Err(Error::Usage(format!(
            "--stages {s:?}: total duration is zero"
        )));
    }
    Ok(out)
}

/// Parses `--shard I/N` (1 <= I <= N).
pub fn parse_shard(s: &str) -> Result<ShardSpec, Error> {
    let bad = |why: &str| Error::Usage(format!("--shard {s:?}: {why}"));
    let (i, n) = s.split_once('/').ok_or_else(|| bad("not I/N"))?;
    let index: u32 = i.trim().parse().map_err(|_| bad("I is not a number"))?;
    let count: u32 = n.trim().parse().map_err(|_| bad("N is not a number"))?;
    if count == 0 || index == 0 || index > count {
        return Err(bad("needs 1 <= I <= N"));
    }
    Ok(ShardSpec { index, count })
}

/// Parses `--target URL` or `--target ORIGIN=URL`.
pub fn parse_target(s: &str) -> Result<Target, Error> {
    let (origin, url) = match s.split_once('=') {
        Some((o, u))
            if u.trim_start().starts_with("http://") || u.trim_start().starts_with("https://") =>
        {
            (
                Some(normalize_origin(o).ok_or_else(|| {
                    Error::Usage(format!(
                        "--target {s:?}: origin {o:?} is not a URL or host:port"
                    ))
                })?),
                u,
            )
        }
        _ => (None, s),
    };
    let parsed = url::Url::parse(url.trim())
        .map_err(|e| Error::Usage(format!("--target {s:?}: not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::Usage(format!(
            "--target {s:?}: scheme {} is not http or https",
            parsed.scheme()
        )));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| Error::Usage(format!("--target {s:?}: no host")))?
        .to_string();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let base_path = parsed.path().trim_end_matches('/').to_string();
    Ok(Target {
        origin,
        scheme: parsed.scheme().to_string(),
        host,
        port,
        base_path,
    })
}

/// `host:port` of a URL or authority (`http://a:1/x`, `a:1`, `https://a`),
/// lower-cased, with the scheme's default port filled in.
pub fn normalize_origin(s: &str) -> Option<String> {
    let s = s.trim();
    let with_scheme = if s.contains("://") {
        s.to_string()
    } else {
        format!("http://{s}")
    };
    let u = url::Url::parse(&with_scheme).ok()?;
    let host = u.host_str()?.to_ascii_lowercase();
    let port = u.port_or_known_default()?;
    Some(format!("{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("--x", "500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            parse_duration("--x", "30s").unwrap(),
            Duration::from_secs(30)
        );
        assert_eq!(
            parse_duration("--x", "5m").unwrap(),
            Duration::from_secs(300)
        );
        assert_eq!(
            parse_duration("--x", "2h").unwrap(),
            Duration::from_secs(7200)
        );
        assert_eq!(
            parse_duration("--x", "1.5").unwrap(),
            Duration::from_millis(1500)
        );
        for bad in ["", "ms", "5d", "-1s", "1e400s", "abc"] {
            let e = parse_duration("--run-time", bad).unwrap_err().to_string();
            assert!(e.contains("--run-time"), "{e}");
        }
    }

    #[test]
    fn rates_speeds_mixes() {
        assert_eq!(parse_rate("--rate", "20/s").unwrap(), 20.0);
        assert_eq!(parse_rate("--rate", "120/m").unwrap(), 2.0);
        assert_eq!(parse_rate("--rate", "7").unwrap(), 7.0);
        assert!(parse_rate("--rate", "0/s").is_err());
        assert!(parse_rate("--rate", "5/d").is_err());
        assert_eq!(parse_speed("max").unwrap(), Speed::Max);
        assert_eq!(parse_speed("10").unwrap(), Speed::Factor(10.0));
        assert!(parse_speed("0").is_err());
        assert!(parse_speed("fast").is_err());
        assert_eq!(
            parse_mix("student=9, trainer=1").unwrap(),
            vec![("student".into(), 9.0), ("trainer".into(), 1.0)]
        );
        for bad in ["student", "a=x", "a=1,a=2", "a=0", ""] {
            assert!(parse_mix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stages_shards_targets() {
        let st = parse_stages("30s:10,1m:100,10s:0").unwrap();
        assert_eq!(st.len(), 3);
        assert_eq!(
            st[1],
            Stage {
                duration: Duration::from_secs(60),
                users: 100
            }
        );
        assert!(parse_stages("30s").is_err());
        assert!(parse_stages("0s:10").is_err());
        assert_eq!(
            parse_shard("2/3").unwrap(),
            ShardSpec { index: 2, count: 3 }
        );
        for bad in ["0/3", "4/3", "1/0", "x"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
        let s = ShardSpec { index: 2, count: 3 };
        assert_eq!(
            (0..9).filter(|n| s.owns(*n)).collect::<Vec<_>>(),
            vec![1, 4, 7]
        );

        let t = parse_target("http://127.0.0.1:9000").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.origin.clone()),
            ("127.0.0.1", 9000, None)
        );
        assert_eq!(t.authority(), "127.0.0.1:9000");
        let t = parse_target("api.corevia.app=http://127.0.0.1:9001/").unwrap();
        assert_eq!(t.origin.as_deref(), Some("api.corevia.app:80"));
        let t = parse_target("https://api.corevia.app=http://localhost").unwrap();
        assert_eq!(t.origin.as_deref(), Some("api.corevia.app:443"));
        assert_eq!((t.port, t.authority()), (80, "localhost".to_string()));
        assert!(parse_target("ftp://x").is_err());
        let t = parse_target("https://staging.corevia.app").unwrap();
        assert_eq!(
            (t.port, t.authority(), t.is_tls()),
            (443, "staging.corevia.app".to_string(), true)
        );
        assert!(parse_target("not a url").is_err());
    }

    proptest::proptest! {
        #[test]
        fn flag_parsers_never_panic(s in "\\PC{0,24}") {
            let _ = parse_duration("--run-time", &s);
            let _ = parse_rate("--rate", &s);
            let _ = parse_speed(&s);
            let _ = parse_mix(&s);
            let _ = parse_stages(&s);
            let _ = parse_shard(&s);
            let _ = parse_target(&s);
        }

        #[test]
        fn durations_round_trip_in_milliseconds(ms in 0u64..10_000_000) {
            let d = parse_duration("--x", &format!("{ms}ms")).unwrap();
            proptest::prop_assert_eq!(d, Duration::from_millis(ms));
        }
    }
}
