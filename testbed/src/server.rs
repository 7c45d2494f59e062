//! The sample API server: configuration, start, graceful shutdown.

mod api;
mod jwt;
mod latency;
mod store;
mod validation;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use rand::distributions::{Alphanumeric, DistString};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use api::MAX_BODY_BYTES;
pub use latency::{DASHBOARD_FAILURE_RATE, FEED_REGRESSION};
pub use store::{Role, SEEDED_PASSWORD, SEEDED_STUDENTS, SEEDED_TRAINERS};

/// How long a graceful shutdown waits for in-flight requests before it
/// drops the remaining connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Which build of the sample app runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Release {
    /// The baseline.
    A,
    /// The baseline plus a regression: Social Feed 30 % slower, Analytics
    /// Dashboard answering 500 on 2 % of calls.
    B,
}

impl Release {
    /// `a` or `b`.
    pub fn as_str(self) -> &'static str {
        match self {
            Release::A => "a",
            Release::B => "b",
        }
    }
}

impl std::fmt::Display for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a testbed is set up.
#[derive(Debug, Clone)]
pub struct TestbedConfig {
    /// Release a or b.
    pub release: Release,
    /// HS256 secret of issued tokens.
    pub jwt_secret: String,
    /// Seed of the initial data and of the latency jitter.
    pub seed: u64,
    /// Student accounts (`student1`..): at least the 45 seeded ones.
    pub students: u32,
    /// Trainer accounts (`trainer1`..): at least the 5 seeded ones.
    pub trainers: u32,
}

/// The seed of [`TestbedConfig::new`]: two testbeds built with defaults
/// hold the same data.
pub const DEFAULT_SEED: u64 = 20_231_101;

impl TestbedConfig {
    /// `release` with a random JWT secret (so tokens of another testbed
    /// are refused) and the default seed.
    pub fn new(release: Release) -> TestbedConfig {
        TestbedConfig {
            release,
            jwt_secret: Alphanumeric.sample_string(&mut rand::thread_rng(), 32),
            seed: DEFAULT_SEED,
            students: SEEDED_STUDENTS,
            trainers: SEEDED_TRAINERS,
        }
    }
}

/// State shared by every connection.
#[derive(Debug)]
struct App {
    config: TestbedConfig,
    store: RwLock<store::Store>,
    jitter: latency::Jitter,
}

/// A testbed serving on a socket. Dropping it stops accepting and closes
/// connections; [`RunningTestbed::shutdown`] lets in-flight requests end.
#[derive(Debug)]
pub struct RunningTestbed {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    accept_loop: JoinHandle<()>,
}

impl RunningTestbed {
    /// The bound address (the real port when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish (at most 10 s),
    /// then returns.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.accept_loop.await;
    }
}

/// Binds `listen` (port 0 picks a free port), spawns the accept loop on
/// the current tokio runtime and returns at once.
pub async fn start(listen: SocketAddr, config: TestbedConfig) -> std::io::Result<RunningTestbed> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let app = Arc::new(App {
        store: RwLock::new(store::Store::seeded_with_accounts(
            config.seed,
            config.students,
            config.trainers,
        )),
        jitter: latency::Jitter::new(config.seed),
        config,
    });
    let (stop, stopped) = watch::channel(false);
    let accept_loop = tokio::spawn(accept_loop(listener, app, stopped));
    Ok(RunningTestbed {
        addr,
        stop,
        accept_loop,
    })
}

async fn accept_loop(listener: TcpListener, app: Arc<App>, mut stopped: watch::Receiver<bool>) {
    let mut builder = Builder::new(TokioExecutor::new());
    // With a timer, hyper's 30 s limit on reading request headers applies,
    // so a client that stalls mid-headers cannot hold a connection open.
    builder.http1().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(accepted) => accepted,
                    // Out of file descriptors or a connection reset before
                    // accept: keep serving the others, after a breath.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let service = service_fn(move |request| {
                    let app = app.clone();
                    async move { Ok::<_, Infallible>(api::handle(app, request).await) }
                });
                let connection = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    // A client that goes away mid-request is not an error
                    // of the server.
                    let _ = connection.await;
                });
            }
            // A send of `true` or the drop of the handle both stop the loop.
            _ = stopped.changed() => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
}
