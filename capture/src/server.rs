//! The listening side: accept client connections (plain or TLS with ALPN
//! h2/http1.1), serve HTTP/1.1 and h2 on one port with hyper-util's auto
//! builder, and shut down gracefully: stop accepting, let in-flight
//! exchanges finish, then close the journal.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tapedeck_sessions::journal::WriterOptions;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::config::{CaptureConfig, Mode};
use crate::proxy::{ConnInfo, ReverseTarget, Shared};
use crate::recorder::{self, WriterSetup};
use crate::redact::Redactor;
use crate::stats::{self, CaptureStats, Counters, Exposition};
use crate::upstream;
use crate::Error;

/// What a finished capture run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureSummary {
    /// Exchanges written to the journal.
    pub exchanges: u64,
    /// Distinct session keys among them.
    pub sessions: u64,
    /// Compressed bytes written to journal files.
    pub bytes: u64,
    /// Records dropped (writer behind or failed).
    pub dropped: u64,
    /// Exchanges that ended with an error.
    pub errors: u64,
    /// Journal files, in order.
    pub files: Vec<PathBuf>,
    /// The journal failure, if recording stopped early.
    pub journal_failure: Option<String>,
}

impl std::fmt::Display for CaptureSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "captured {} exchanges in {} sessions, {} bytes written, {} dropped, {} errors, {} file{}",
            self.exchanges,
            self.sessions,
            self.bytes,
            self.dropped,
            self.errors,
            self.files.len(),
            if self.files.len() == 1 { "" } else { "s" }
        )?;
        for file in &self.files {
            write!(f, "\n  {}", file.display())?;
        }
        if let Some(why) = &self.journal_failure {
            write!(f, "\n  journal failure: {why}")?;
        }
        Ok(())
    }
}

/// A capture proxy running on the current tokio runtime. Call
/// [`shutdown`](Self::shutdown) to finish the journal: dropping it leaves the
/// proxy serving until the runtime stops, and the last frame unflushed.
pub struct RunningCapture {
    addr: SocketAddr,
    status_addr: Option<SocketAddr>,
    metrics_addr: Option<SocketAddr>,
    counters: Arc<Counters>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<CaptureSummary, Error>>,
}

impl std::fmt::Debug for RunningCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningCapture")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RunningCapture {
    /// The address the proxy listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The status endpoint's address, when `status_listen` was set.
    pub fn status_addr(&self) -> Option<SocketAddr> {
        self.status_addr
    }

    /// The metrics endpoint's address, when `metrics_listen` was set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The counters right now.
    pub fn stats(&self) -> CaptureStats {
        self.counters.snapshot()
    }

    /// Stops accepting, lets in-flight exchanges finish (up to the
    /// configured grace period), flushes and closes the journal.
    pub async fn shutdown(self) -> Result<CaptureSummary, Error> {
        let _ = self.stop.send(true);
        self.task
            .await
            .map_err(|e| Error::Journal(format!("capture task failed: {e}")))?
    }
}

/// Starts a capture proxy: binds the listener, opens the journal, and
/// serves until [`RunningCapture::shutdown`].
pub async fn start(config: CaptureConfig) -> Result<RunningCapture, Error> {
    config.validate()?;
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(server_tls(cert, key)?),
        _ => None,
    };
    let client = upstream::client(config.upstream_ca.as_deref(), &config.resolve)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::Input {
            what: format!("--listen {}", config.listen),
            why: format!("cannot listen: {e}"),
        })?;
    let addr = listener.local_addr().map_err(|e| Error::Input {
        what: format!("--listen {}", config.listen),
        why: e.to_string(),
    })?;

    let reverse = config.upstream.as_ref().map(ReverseTarget::new);
    let header_upstream = match (&config.mode, &reverse) {
        (Mode::Reverse, Some(r)) => r.display.clone(),
        _ => "forward-proxy".to_string(),
    };
    let mut options = WriterOptions::new(&config.out, header_upstream);
    options.prefix = config.prefix.clone();
    options.rotate_size = config.rotate_size;
    options.rotate_every = config.rotate_every;
    options.flush_every = config.flush_every;
    // The writer shares the machine with the traffic it records: the
    // fastest zstd level keeps it ahead (journals compress well anyway).
    options.level = 1;
    let redactor = Redactor::new(&config.redact_json, &config.redact_header);
    let counters = Arc::new(Counters::default());
    let (recorder, writer) = recorder::spawn(
        WriterSetup {
            options,
            redactor,
            session_key: config.session_key()?,
            idle_split: config.idle_split,
            queue_capacity: config.queue_capacity,
        },
        counters.clone(),
    )?;

    let (stop, stop_rx) = watch::channel(false);
    let status_addr = match config.status_listen {
        Some(a) => {
            Some(stats::serve(a, Exposition::Json, counters.clone(), stop_rx.clone()).await?)
        }
        None => None,
    };
    let metrics_addr = match config.metrics_listen {
        Some(a) => {
            Some(stats::serve(a, Exposition::Prometheus, counters.clone(), stop_rx.clone()).await?)
        }
        None => None,
    };

    let forward = match config.mode {
        Mode::Forward => Some(crate::forward::Forward::new(&config)?),
        Mode::Reverse => None,
    };
    let shared = Arc::new(Shared {
        client,
        recorder: recorder.clone(),
        counters: counters.clone(),
        next_id: AtomicU64::new(0),
        max_body: config.max_body,
        upstream_timeout: config.upstream_timeout,
        upstream: reverse,
        forward,
        builder: Arc::new(builder(&config)),
    });
    let serve = Serve {
        shared,
        tls,
        next_conn: AtomicU64::new(0),
    };
    let grace = config.shutdown_grace;
    let task_counters = counters.clone();
    let task = tokio::spawn(async move {
        serve.accept_loop(listener, stop_rx, grace).await;
        // Connections are done (or were cut off after the grace period):
        // tell the writer to drain what is queued and close the journal.
        let report = tokio::task::spawn_blocking(move || {
            recorder.close();
            writer.join()
        })
        .await
        .map_err(|e| Error::Journal(format!("journal writer task failed: {e}")))?
        .map_err(|_| Error::Journal("journal writer thread panicked".into()))?;
        Ok(CaptureSummary {
            exchanges: report.exchanges,
            sessions: report.sessions,
            bytes: report.bytes_written,
            dropped: task_counters.dropped.load(Relaxed),
            errors: task_counters.errors.load(Relaxed),
            files: report.files,
            journal_failure: report.failure,
        })
    });
    Ok(RunningCapture {
        addr,
        status_addr,
        metrics_addr,
        counters,
        stop,
        task,
    })
}

fn builder(config: &CaptureConfig) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(512);
    b
}

fn server_tls(cert: &std::path::Path, key_path: &std::path::Path) -> Result<TlsAcceptor, Error> {
    let certs = upstream::load_certs(cert, "--tls-cert")?;
    let key = upstream::load_key(key_path, "--tls-key")?;
    let mut config = rustls::ServerConfig::builder_with_provider(upstream::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::Input {
            what: format!(
                "--tls-cert {} / --tls-key {}",
                cert.display(),
                key_path.display()
            ),
            why: e.to_string(),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

// === impl Serve ===

/// The accept loop's state.
pub(crate) struct Serve {
    pub(crate) shared: Arc<Shared>,
    pub(crate) tls: Option<TlsAcceptor>,
    pub(crate) next_conn: AtomicU64,
}

impl Serve {
    async fn accept_loop(
        self,
        listener: TcpListener,
        mut stop: watch::Receiver<bool>,
        grace: Duration,
    ) {
        let graceful = GracefulShutdown::new();
        loop {
            let (stream, peer) = tokio::select! {
                biased;
                _ = stop.changed() => break,
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(_) => {
                        // Out of file descriptors or a connection reset
                        // before accept: back off briefly, keep serving.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            self.shared.counters.connections.fetch_add(1, Relaxed);
            let conn = ConnInfo {
                id: self.next_conn.fetch_add(1, Relaxed) + 1,
                client: peer,
                scheme: if self.tls.is_some() { "https" } else { "http" },
            };
            let watcher = graceful.watcher();
            match &self.tls {
                None => self.serve_connection(stream, conn, watcher),
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    let this = self.for_task();
                    let counters = self.shared.counters.clone();
                    tokio::spawn(async move {
                        let handshake =
                            tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
                        match handshake.await {
                            Ok(Ok(tls)) => this.serve_connection(tls, conn, watcher),
                            _ => {
                                counters.client_errors.fetch_add(1, Relaxed);
                            }
                        }
                    });
                }
            }
        }
        drop(listener);
        tokio::select! {
            _ = graceful.shutdown() => {}
            _ = tokio::time::sleep(grace) => {}
        }
    }

    fn for_task(&self) -> ConnServer {
        ConnServer {
            shared: self.shared.clone(),
        }
    }

    fn serve_connection<I>(
        &self,
        io: I,
        conn: ConnInfo,
        watcher: hyper_util::server::graceful::Watcher,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.for_task().serve_connection(io, conn, watcher)
    }
}

/// What a connection task needs to serve one client connection.
#[derive(Clone)]
pub(crate) struct ConnServer {
    pub(crate) shared: Arc<Shared>,
}

impl ConnServer {
    pub(crate) fn serve_connection<I>(
        self,
        io: I,
        conn: ConnInfo,
        watcher: hyper_util::server::graceful::Watcher,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        tokio::spawn(async move {
            let counters = self.shared.counters.clone();
            let shared = self.shared.clone();
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let shared = shared.clone();
                let conn = conn.clone();
                async move {
                    let resp = if shared.forward.is_some() {
                        crate::forward::handle(shared, conn, req).await
                    } else {
                        crate::proxy::handle_reverse(shared, conn, req).await
                    };
                    Ok::<_, Infallible>(resp)
                }
            });
            let builder = self.shared.builder.clone();
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
            if watcher.watch(connection.into_owned()).await.is_err() {
                counters.client_errors.fetch_add(1, Relaxed);
            }
        });
    }
}
