//! `tapedeck testbed` and `tapedeck simulate`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use crate::duration::parse_duration;
use crate::server::{self, Release, TestbedConfig, DEFAULT_SEED, SEEDED_STUDENTS, SEEDED_TRAINERS};
use crate::simulate::{self, SimConfig};
use crate::Error;

/// Outcome of a command.
pub use tapedeck_sessions::Outcome;

/// Flags of `tapedeck testbed`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  tapedeck testbed\n  tapedeck testbed --listen 127.0.0.1:9000 --release b\n  tapedeck testbed --listen 127.0.0.1:0 --jwt-secret s3cret --seed 7"
)]
pub struct TestbedArgs {
    /// Address to serve on (port 0 picks a free port, printed on the first line).
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    /// Which release to run: `b` is `a` with a slower Social Feed and a
    /// failing Analytics Dashboard.
    #[arg(long, value_enum, default_value_t = Release::A)]
    pub release: Release,
    /// HS256 secret of issued tokens (random by default, so tokens of
    /// another testbed are refused).
    #[arg(long, env = "TAPEDECK_TESTBED_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Seed of the initial data and the latency jitter.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Student accounts to create (`student1`..`studentN`, password
    /// `corevia-pass`); the first 45 have a history. More accounts let
    /// every virtual user of a big replay log in as a user of its own.
    #[arg(long, default_value_t = SEEDED_STUDENTS, value_parser = clap::value_parser!(u32).range(45..=1_000_000))]
    pub students: u32,
    /// Trainer accounts to create (`trainer1`..`trainerN`); at least 5.
    #[arg(long, default_value_t = SEEDED_TRAINERS, value_parser = clap::value_parser!(u32).range(5..=1_000_000))]
    pub trainers: u32,
}

/// Flags of `tapedeck simulate`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  tapedeck simulate --target http://127.0.0.1:8000\n  tapedeck simulate --target http://127.0.0.1:8080 --students 90 --trainers 10 --run-time 5m\n  tapedeck simulate --target http://127.0.0.1:8000 --run-time 10s --think-scale 0.1 --seed 7"
)]
pub struct SimulateArgs {
    /// Base URL of the API (http only), e.g. the capture proxy.
    #[arg(long)]
    pub target: String,
    /// Simulated students.
    #[arg(long, default_value_t = 45)]
    pub students: u32,
    /// Simulated trainers.
    #[arg(long, default_value_t = 5)]
    pub trainers: u32,
    /// How long the users keep working (500ms, 30s, 5m, 2h).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub run_time: Duration,
    /// Seed of every choice the users make.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Factor on the profile's think times (0.1 = ten times busier users).
    #[arg(long, default_value_t = 1.0)]
    pub think_scale: f64,
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Runtime {
            what: "starting the tokio runtime",
            source,
        })
}

/// Runs the sample API until SIGINT/SIGTERM, then shuts down gracefully.
pub fn run_testbed(args: TestbedArgs) -> Result<Outcome, Error> {
    let mut config = TestbedConfig::new(args.release);
    if let Some(secret) = args.jwt_secret {
        if secret.is_empty() {
            return Err(Error::Usage("--jwt-secret: must not be empty".into()));
        }
        config.jwt_secret = secret;
    }
    config.seed = args.seed;
    config.students = args.students;
    config.trainers = args.trainers;
    runtime()?.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let release = config.release;
        let mut terminate = signal(SignalKind::terminate()).map_err(|source| Error::Runtime {
            what: "installing the SIGTERM handler",
            source,
        })?;
        let testbed = server::start(args.listen, config)
            .await
            .map_err(|source| Error::Bind {
                addr: args.listen,
                source,
            })?;
        let mut stdout = std::io::stdout();
        // Tests and `demo` read this line to learn the port.
        let _ = writeln!(
            stdout,
            "testbed release {release} listening on {}",
            testbed.base_url()
        );
        let _ = stdout.flush();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        testbed.shutdown().await;
        Ok(Outcome::Success)
    })
}

/// Drives simulated students and trainers against a target and prints
/// what they did per endpoint.
pub fn run_simulate(args: SimulateArgs) -> Result<Outcome, Error> {
    if args.students + args.trainers == 0 {
        return Err(Error::Usage(
            "--students and --trainers: at least one user is needed".into(),
        ));
    }
    let config = SimConfig {
        target: args.target,
        students: args.students,
        trainers: args.trainers,
        run_time: args.run_time,
        seed: args.seed,
        think_scale: args.think_scale,
    };
    let summary = runtime()?.block_on(simulate::simulate(config))?;
    println!("{summary}");
    Ok(Outcome::Success)
}
