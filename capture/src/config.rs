//! What a capture run is told to do: [`CaptureConfig`], plus the small
//! parsers for sizes (`256MiB`) and durations (`500ms`) used by its flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::Error;

/// How the proxy finds the server it forwards to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Clients talk to the proxy as if it were the API; everything goes to
    /// `--upstream`.
    #[default]
    Reverse,
    /// Clients use the proxy as their HTTP proxy (absolute-form requests and
    /// `CONNECT`); each request goes to the origin it names.
    Forward,
}

impl std::str::FromStr for Mode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "reverse" => Ok(Mode::Reverse),
            "forward" => Ok(Mode::Forward),
            other => Err(Error::Usage(format!(
                "--mode: expected reverse or forward, got {other:?}"
            ))),
        }
    }
}

/// Everything a capture run needs. `Default` gives the documented defaults
/// with no upstream and `./journals` as output directory.
#[derive(Debug, Clone)]
pub struct CaptureConfig {
    /// Reverse or forward proxy.
    pub mode: Mode,
    /// Where every request goes in reverse mode (`http://host:port[/prefix]`).
    pub upstream: Option<url::Url>,
    /// Address the proxy listens on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Directory the journals are written to (created if missing).
    pub out: PathBuf,
    /// Journal file name prefix.
    pub prefix: String,
    /// Start a new journal file after this many bytes.
    pub rotate_size: Option<u64>,
    /// Start a new journal file after this long.
    pub rotate_every: Option<Duration>,
    /// Close a zstd frame at least this often, so a crash loses at most this much.
    pub flush_every: Duration,
    /// Bytes of each body kept in the record; the rest is forwarded but marked truncated.
    pub max_body: u64,
    /// JSON (and form) field names whose values are replaced by a salted hash.
    pub redact_json: Vec<String>,
    /// Header names whose values are replaced by a salted hash.
    pub redact_header: Vec<String>,
    /// Session key rule (`auto|header:NAME|cookie:NAME|jwt:CLAIM`).
    pub session_key: String,
    /// A gap longer than this starts a new session.
    pub idle_split: Duration,
    /// Serve TLS to clients with this certificate chain (PEM)...
    pub tls_cert: Option<PathBuf>,
    /// ... and this private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Extra CA certificates (PEM) trusted for HTTPS upstreams, beside the system roots.
    pub upstream_ca: Option<PathBuf>,
    /// How long to wait for the upstream's response head before answering 504.
    pub upstream_timeout: Duration,
    /// How long a client may take to send a request head (slowloris guard).
    pub header_read_timeout: Duration,
    /// Serve the counters as JSON here (loopback unless an address says otherwise).
    pub status_listen: Option<SocketAddr>,
    /// Serve the counters as Prometheus text here.
    pub metrics_listen: Option<SocketAddr>,
    /// Records that may wait for the journal writer before new ones are dropped.
    pub queue_capacity: usize,
    /// Forward mode: host patterns whose HTTPS is intercepted and recorded.
    pub intercept: Vec<String>,
    /// Forward mode: connect to these addresses instead of resolving the host.
    pub resolve: Vec<(String, SocketAddr)>,
    /// Forward mode: where tapedeck's CA lives.
    pub ca_dir: Option<PathBuf>,
    /// How long shutdown waits for in-flight exchanges before cutting them off.
    pub shutdown_grace: Duration,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            mode: Mode::Reverse,
            upstream: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            out: PathBuf::from("journals"),
            prefix: "capture".to_string(),
            rotate_size: Some(256 * 1024 * 1024),
            rotate_every: Some(Duration::from_secs(3600)),
            flush_every: Duration::from_secs(1),
            max_body: 1024 * 1024,
            redact_json: vec!["password".to_string()],
            redact_header: Vec::new(),
            session_key: "auto".to_string(),
            idle_split: Duration::from_secs(30 * 60),
            tls_cert: None,
            tls_key: None,
            upstream_ca: None,
            upstream_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(30),
            status_listen: None,
            metrics_listen: None,
            queue_capacity: 16 * 1024,
            intercept: Vec::new(),
            resolve: Vec::new(),
            ca_dir: None,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

impl CaptureConfig {
    /// A reverse-proxy configuration in front of `upstream`, writing to `out`,
    /// listening on a free loopback port.
    pub fn reverse(upstream: &str, out: impl Into<PathBuf>) -> Result<Self, Error> {
        Ok(CaptureConfig {
            upstream: Some(parse_upstream(upstream)?),
            out: out.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..CaptureConfig::default()
        })
    }

    /// Checks the combination of settings; every message names the flag.
    pub fn validate(&self) -> Result<(), Error> {
        match self.mode {
            Mode::Reverse if self.upstream.is_none() => {
                return Err(Error::Usage(
                    "--upstream URL is required in reverse mode".into(),
                ))
            }
            _ => {}
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(Error::Usage(
                "--tls-cert and --tls-key must be given together".into(),
            ));
        }
        if self.flush_every.is_zero() {
            return Err(Error::Usage("--flush-every must be more than 0".into()));
        }
        if self.upstream_timeout.is_zero() {
            return Err(Error::Usage(
                "--upstream-timeout must be more than 0".into(),
            ));
        }
        self.session_key()?;
        if self.queue_capacity == 0 {
            return Err(Error::Usage("queue capacity must be more than 0".into()));
        }
        Ok(())
    }
}

impl CaptureConfig {
    /// The parsed `--session-key` rule.
    pub fn session_key(&self) -> Result<tapedeck_sessions::SessionKey, Error> {
        self.session_key
            .parse()
            .map_err(|e: tapedeck_sessions::Error| Error::Usage(e.to_string()))
    }
}

/// Parses `--upstream`: an `http://` or `https://` URL with a host.
pub fn parse_upstream(s: &str) -> Result<url::Url, Error> {
    let url = url::Url::parse(s)
        .map_err(|e| Error::Usage(format!("--upstream {s:?}: not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Usage(format!(
            "--upstream {s:?}: scheme must be http or https"
        )));
    }
    if url.host_str().is_none() {
        return Err(Error::Usage(format!("--upstream {s:?}: no host")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::Usage(format!(
            "--upstream {s:?}: must not carry a query or fragment"
        )));
    }
    Ok(url)
}

/// Parses a size: `1000`, `64KiB`, `1MiB`, `256MiB`, `1GiB` (also `KB`,
/// `MB`, `GB` as powers of 1000, and `K`/`M`/`G` as powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(format!(
            "{s:?} is not a size (expected e.g. 1000, 64KiB, 256MiB)"
        ));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (number too large)"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "k" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        "KB" | "kB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
                "{s:?}: unknown size unit {other:?} (use B, KiB, MiB, GiB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Parses a duration: `500ms`, `30s`, `5m`, `2h` (also `1d`, `250us`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() || unit.is_empty() {
        return Err(format!(
            "{s:?} is not a duration (expected e.g. 500ms, 30s, 5m, 1h)"
        ));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (number too large)"))?;
    let d = match unit {
        "us" | "µs" => Some(Duration::from_micros(n)),
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        "d" => n.checked_mul(86_400).map(Duration::from_secs),
        other => {
            return Err(format!(
                "{s:?}: unknown duration unit {other:?} (use ms, s, m, h)"
            ))
        }
    };
    d.ok_or_else(|| format!("{s:?} is too long"))
}

/// Parses a listen address for the status and metrics endpoints: a bare
/// port binds loopback.
pub fn parse_local_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse()
        .map_err(|_| format!("{s:?} is not an address (expected PORT or IP:PORT)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert_eq!(parse_size("64KiB").unwrap(), 65536);
        assert_eq!(parse_size("1MiB").unwrap(), 1 << 20);
        assert_eq!(parse_size("256MiB").unwrap(), 256 << 20);
        assert_eq!(parse_size("2GB").unwrap(), 2_000_000_000);
        for bad in ["", "MiB", "12XB", "-1", "99999999999999999999GiB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        for bad in ["", "30", "s", "5x", "1.5s", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn upstream_urls() {
        assert!(parse_upstream("http://127.0.0.1:8000").is_ok());
        assert!(parse_upstream("https://api.example/v1").is_ok());
        assert!(parse_upstream("ftp://x").is_err());
        assert!(parse_upstream("127.0.0.1:8000").is_err());
        assert!(parse_upstream("http://h/?q=1").is_err());
    }

    #[test]
    fn local_addrs() {
        assert_eq!(
            parse_local_addr("9100").unwrap(),
            SocketAddr::from(([127, 0, 0, 1], 9100))
        );
        assert!(parse_local_addr("0.0.0.0:9").is_ok());
        assert!(parse_local_addr("nope").is_err());
    }
}
