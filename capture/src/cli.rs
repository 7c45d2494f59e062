//! `tapedeck capture` and `tapedeck ca`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tapedeck_sessions::Outcome;

use crate::config::{
    parse_duration, parse_local_addr, parse_size, parse_upstream, CaptureConfig, Mode,
};
use crate::Error;

/// Flags of `tapedeck capture`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
tapedeck capture --upstream http://127.0.0.1:8000 --listen 127.0.0.1:8080 --out journals/\n  \
tapedeck capture --upstream https://api.corevia.app --out journals/ --redact-json password,refresh_token --status-listen 9901\n  \
tapedeck capture --mode forward --listen 0.0.0.0:8888 --out journals/ --intercept 'api.corevia.app,*.corevia.app'")]
pub struct CaptureArgs {
    /// reverse: clients talk to the proxy as if it were the API; forward:
    /// clients use it as their HTTP proxy.
    #[arg(long, default_value = "reverse", value_parser = parse_mode)]
    pub mode: Mode,
    /// The API every request goes to (reverse mode), e.g. http://127.0.0.1:8000.
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Directory for the journals (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Start a new journal file after this size (e.g. 256MiB); 0 never.
    #[arg(long, default_value = "256MiB", value_parser = parse_size, value_name = "SIZE")]
    pub rotate_size: u64,
    /// Start a new journal file after this long (e.g. 1h); 0s never.
    #[arg(long, default_value = "1h", value_parser = parse_duration, value_name = "DURATION")]
    pub rotate_every: Duration,
    /// Close a compressed frame at least this often: after a crash,
    /// everything older than this is recoverable.
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub flush_every: Duration,
    /// Bytes of each body kept in the record (the rest is forwarded, and
    /// marked truncated in the record).
    #[arg(long, default_value = "1MiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_body: u64,
    /// JSON and form fields whose values are replaced by a salted hash.
    #[arg(
        long,
        default_value = "password",
        value_delimiter = ',',
        value_name = "FIELD,..."
    )]
    pub redact_json: Vec<String>,
    /// Headers whose values are replaced by a salted hash (Authorization is
    /// kept by default: replay needs the tokens to correlate).
    #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
    pub redact_header: Vec<String>,
    /// Keep every value as it was (no redaction at all).
    #[arg(long)]
    pub no_redact: bool,
    /// How exchanges are grouped into sessions: auto|header:NAME|cookie:NAME|jwt:CLAIM.
    #[arg(long, default_value = "auto", value_name = "RULE")]
    pub session_key: String,
    /// A gap longer than this starts a new session.
    #[arg(long, default_value = "30m", value_parser = parse_duration, value_name = "DURATION")]
    pub idle_split: Duration,
    /// Serve TLS to clients with this certificate chain (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) for --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Extra CA certificate(s) (PEM) trusted for an HTTPS upstream.
    #[arg(long, value_name = "FILE")]
    pub upstream_ca: Option<PathBuf>,
    /// Answer 504 when the upstream's response head takes longer than this.
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub upstream_timeout: Duration,
    /// Serve live counters as JSON here (PORT binds loopback).
    #[arg(long, value_parser = parse_local_addr, value_name = "ADDR")]
    pub status_listen: Option<SocketAddr>,
    /// Serve live counters as Prometheus text here (PORT binds loopback).
    #[arg(long, value_parser = parse_local_addr, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Forward mode: hosts whose HTTPS is intercepted and recorded (globs).
    #[arg(long, value_delimiter = ',', value_name = "HOST,...")]
    pub intercept: Vec<String>,
    /// Forward mode: connect to IP:PORT instead of resolving HOST.
    #[arg(long, value_parser = parse_resolve, value_name = "HOST=IP:PORT")]
    pub resolve: Vec<(String, SocketAddr)>,
    /// Forward mode: the directory holding tapedeck's CA (see `tapedeck ca init`).
    #[arg(long, value_name = "DIR")]
    pub ca_dir: Option<PathBuf>,
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    s.parse::<Mode>().map_err(|e| e.to_string())
}

fn parse_resolve(s: &str) -> Result<(String, SocketAddr), String> {
    let (host, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected HOST=IP:PORT"))?;
    if host.is_empty() {
        return Err(format!("{s:?}: empty host"));
    }
    let addr = addr
        .parse()
        .map_err(|_| format!("{s:?}: {addr:?} is not IP:PORT"))?;
    Ok((host.to_ascii_lowercase(), addr))
}

impl CaptureArgs {
    /// The run configuration these flags describe.
    pub fn to_config(&self) -> Result<CaptureConfig, Error> {
        let upstream = match &self.upstream {
            Some(u) => Some(parse_upstream(u)?),
            None => None,
        };
        let (redact_json, redact_header) = if self.no_redact {
            (Vec::new(), Vec::new())
        } else {
            (
                clean_list(&self.redact_json),
                clean_list(&self.redact_header),
            )
        };
        let config = CaptureConfig {
            mode: self.mode,
            upstream,
            listen: self.listen,
            out: self.out.clone(),
            rotate_size: (self.rotate_size > 0).then_some(self.rotate_size),
            rotate_every: (!self.rotate_every.is_zero()).then_some(self.rotate_every),
            flush_every: self.flush_every,
            max_body: self.max_body,
            redact_json,
            redact_header,
            session_key: self.session_key.clone(),
            idle_split: self.idle_split,
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            upstream_ca: self.upstream_ca.clone(),
            upstream_timeout: self.upstream_timeout,
            status_listen: self.status_listen,
            metrics_listen: self.metrics_listen,
            intercept: clean_list(&self.intercept),
            resolve: self.resolve.clone(),
            ca_dir: self.ca_dir.clone(),
            ..CaptureConfig::default()
        };
        config.validate()?;
        Ok(config)
    }
}

fn clean_list(items: &[String]) -> Vec<String> {
    items
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// `tapedeck ca init|export`.
#[derive(Debug, clap::Subcommand)]
pub enum CaCommand {
    /// Create the CA used to intercept HTTPS in forward mode (key file 0600).
    #[command(after_help = "Examples:\n  tapedeck ca init\n  tapedeck ca init --dir ./ca")]
    Init {
        /// Where the CA lives (default $TAPEDECK_CA_DIR or ~/.tapedeck/ca).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Replace an existing CA (devices that trust the old one stop working).
        #[arg(long)]
        force: bool,
    },
    /// Print the CA certificate to install on a phone or in a browser.
    #[command(
        after_help = "Examples:\n  tapedeck ca export > tapedeck-ca.pem\n  tapedeck ca export --format der > tapedeck-ca.cer"
    )]
    Export {
        /// Where the CA lives (default $TAPEDECK_CA_DIR or ~/.tapedeck/ca).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// pem (text, for Android and most tools) or der (binary .cer, for iOS).
        #[arg(long, default_value = "pem", value_parser = ["pem", "der"])]
        format: String,
    },
}

/// Runs the capture proxy until SIGINT/SIGTERM, then prints the summary.
pub fn run_capture(args: CaptureArgs) -> Result<Outcome, Error> {
    let config = args.to_config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async move {
        let target = match (&config.mode, &config.upstream) {
            (Mode::Reverse, Some(u)) => u.as_str().trim_end_matches('/').to_string(),
            _ => "forward proxy".to_string(),
        };
        let out = config.out.clone();
        let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| Error::Runtime(format!("cannot watch SIGTERM: {e}")))?;
        let capture = crate::start(config).await?;
        {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(
                stdout,
                "capture listening on http://{} -> {target}, writing {}",
                capture.addr(),
                out.display()
            );
            if let Some(a) = capture.status_addr() {
                let _ = writeln!(stdout, "status on http://{a}/");
            }
            if let Some(a) = capture.metrics_addr() {
                let _ = writeln!(stdout, "metrics on http://{a}/metrics");
            }
            let _ = stdout.flush();
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = sigterm.recv() => {}
        }
        eprintln!("tapedeck capture: stopping (finishing in-flight exchanges)");
        let summary = capture.shutdown().await?;
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{summary}");
        let _ = stdout.flush();
        Ok(Outcome::Success)
    })
}

/// Runs a `tapedeck ca` subcommand.
pub fn run_ca(cmd: CaCommand) -> Result<Outcome, Error> {
    match cmd {
        CaCommand::Init { dir, force } => {
            let dir = dir.unwrap_or_else(crate::ca::default_dir);
            crate::ca::Ca::init(&dir, force)?;
            println!(
                "created the tapedeck CA in {dir}\n  certificate: {cert} (install it on the device: `tapedeck ca export`)\n  key:         {key} (0600, keep it private)",
                dir = dir.display(),
                cert = dir.join(crate::ca::CA_CERT_FILE).display(),
                key = dir.join(crate::ca::CA_KEY_FILE).display(),
            );
        }
        CaCommand::Export { dir, format } => {
            let dir = dir.unwrap_or_else(crate::ca::default_dir);
            let ca = crate::ca::Ca::load(&dir)?;
            let mut stdout = std::io::stdout().lock();
            let written = if format == "der" {
                stdout.write_all(ca.cert_der())
            } else {
                stdout.write_all(ca.cert_pem().as_bytes())
            };
            written
                .and_then(|()| stdout.flush())
                .map_err(|e| Error::Runtime(format!("writing the certificate to stdout: {e}")))?;
        }
    }
    Ok(Outcome::Success)
}

/// `30s`, `1500ms`, `5m`: the shortest exact form of `d`.
pub(crate) fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 3_600_000 == 0 && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms % 60_000 == 0 && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}
