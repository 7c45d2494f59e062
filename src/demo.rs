//! `tapedeck demo`: the whole story on the embedded sample app.
//!
//! The demo runs the real commands as child processes of this same binary
//! (`testbed`, `capture`, `simulate`, `sessions stats`, `replay`, `analyze
//! compare`), so what it shows is exactly what a user gets from typing them.
//! Runs are interleaved A, B, A so slow drift of the machine falls on both
//! sides, and the A-vs-A control is printed beside the verdict.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tapedeck_sessions::Outcome;
use tapedeck_testbed::server::{SEEDED_STUDENTS, SEEDED_TRAINERS};

/// Flags of `tapedeck demo`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  tapedeck demo\n  tapedeck demo --out /tmp/demo --record 10s --replay 10s"
)]
pub struct DemoArgs {
    /// Where to leave the journal, run reports, CSVs and HTML comparison.
    #[arg(long, default_value = "demo-out")]
    pub out: PathBuf,
    /// How long the simulated app is recorded.
    #[arg(long, default_value = "20s")]
    pub record: String,
    /// How long each replay runs.
    #[arg(long, default_value = "15s")]
    pub replay: String,
    /// Simulated students during the recording.
    #[arg(long, default_value_t = 18)]
    pub students: u32,
    /// Simulated trainers during the recording.
    #[arg(long, default_value_t = 2)]
    pub trainers: u32,
}

/// A child process that is stopped when dropped, so an interrupted demo
/// leaves no servers behind.
struct Service {
    name: &'static str,
    child: Child,
    url: String,
    stdout_rest: mpsc::Receiver<String>,
}

impl Service {
    /// Starts `tapedeck ARGS...` and waits for its first stdout line, which
    /// names the address it listens on (`... listening on http://ADDR ...`).
    fn start(name: &'static str, args: &[&str]) -> anyhow::Result<Service> {
        let exe = std::env::current_exe().context("locating the tapedeck binary")?;
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = rx
            .recv_timeout(Duration::from_secs(30))
            .with_context(|| format!("{name} did not start within 30 s"))?;
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .with_context(|| format!("{name} printed no address: {first}"))?
            .to_string();
        Ok(Service {
            name,
            child,
            url,
            stdout_rest: rx,
        })
    }

    /// SIGTERM, wait, and return what it printed after its first line.
    fn stop(mut self) -> anyhow::Result<String> {
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let status = wait_bounded(&mut self.child, Duration::from_secs(30))
            .with_context(|| format!("{} did not stop", self.name))?;
        let rest: Vec<String> = self.stdout_rest.try_iter().collect();
        if !status.success() {
            bail!("{} exited with {status}", self.name);
        }
        Ok(rest.join("\n"))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn wait_bounded(child: &mut Child, limit: Duration) -> anyhow::Result<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `tapedeck ARGS...` to completion with inherited stdout/stderr and
/// returns its exit code.
fn run_step(args: &[&str]) -> anyhow::Result<i32> {
    let exe = std::env::current_exe().context("locating the tapedeck binary")?;
    let status = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("running tapedeck {}", args.join(" ")))?;
    Ok(status.code().unwrap_or(-1))
}

struct Progress {
    start: Instant,
    step: usize,
    steps: usize,
}

impl Progress {
    fn step(&mut self, what: &str) {
        self.step += 1;
        println!(
            "\n[{}/{}] {what}   (t+{:.0}s)",
            self.step,
            self.steps,
            self.start.elapsed().as_secs_f64()
        );
    }
}

fn path_str(p: &Path) -> anyhow::Result<&str> {
    p.to_str()
        .with_context(|| format!("--out {}: path is not UTF-8", p.display()))
}

/// Writes `username,password,role` rows for the sample API's accounts.
fn write_credentials(path: &Path, students: u32, trainers: u32) -> anyhow::Result<()> {
    use tapedeck_testbed::server::SEEDED_PASSWORD;
    let mut csv = String::from("username,password,role\n");
    for i in 1..=students {
        csv.push_str(&format!("student{i},{SEEDED_PASSWORD},student\n"));
    }
    for i in 1..=trainers {
        csv.push_str(&format!("trainer{i},{SEEDED_PASSWORD},trainer\n"));
    }
    std::fs::write(path, csv).with_context(|| format!("writing {}", path.display()))
}

/// Runs the demo.
pub fn run(args: DemoArgs) -> anyhow::Result<Outcome> {
    let out = args.out.clone();
    std::fs::create_dir_all(&out)
        .with_context(|| format!("--out {}: cannot create directory", out.display()))?;
    let journal_dir = out.join("journal");
    if journal_dir.exists() {
        std::fs::remove_dir_all(&journal_dir)
            .with_context(|| format!("clearing {}", journal_dir.display()))?;
    }
    let out_s = path_str(&out)?.to_string();
    let journal_s = path_str(&journal_dir)?.to_string();
    let mut progress = Progress {
        start: Instant::now(),
        step: 0,
        steps: 8,
    };

    progress.step("starting the sample API, release a");
    let recorded = Service::start(
        "testbed a",
        &["testbed", "--listen", "127.0.0.1:0", "--release", "a"],
    )?;
    println!("  testbed release a at {}", recorded.url);

    progress.step("starting tapedeck capture in front of it");
    let capture = Service::start(
        "capture",
        &[
            "capture",
            "--upstream",
            &recorded.url,
            "--listen",
            "127.0.0.1:0",
            "--out",
            &journal_s,
        ],
    )?;
    println!("  capture proxy at {} writing {journal_s}", capture.url);

    progress.step(&format!(
        "recording {} simulated students and {} trainers for {}",
        args.students, args.trainers, args.record
    ));
    let students = args.students.to_string();
    let trainers = args.trainers.to_string();
    let code = run_step(&[
        "simulate",
        "--target",
        &capture.url,
        "--students",
        &students,
        "--trainers",
        &trainers,
        "--run-time",
        &args.record,
        "--seed",
        "7",
    ])?;
    if code != 0 {
        bail!("simulate failed (exit {code})");
    }
    let summary = capture.stop()?;
    if !summary.is_empty() {
        println!("{summary}");
    }
    drop(recorded);

    progress.step("the recorded sessions");
    run_step(&["sessions", "stats", &journal_s])?;

    // The capture redacted the recorded passwords, so every virtual user
    // logs in with a row of its own from the sample API's accounts: with
    // `--multiply 10` that is ten times as many distinct users as recorded.
    let (students, trainers) = (
        (args.students * 10).max(SEEDED_STUDENTS),
        (args.trainers * 10).max(SEEDED_TRAINERS),
    );
    let users = out.join("users.csv");
    write_credentials(&users, students, trainers)?;
    let (students_s, trainers_s) = (students.to_string(), trainers.to_string());
    let users_s = path_str(&users)?.to_string();

    // Fresh servers for every replay: the recording server's state and JWT
    // secret are not reused, so the replay must carry tokens and ids over
    // from live responses (correlation) to succeed.
    let runs = [("a1", "a"), ("b", "b"), ("a2", "a")];
    let mut reports = Vec::new();
    for (i, (label, release)) in runs.iter().enumerate() {
        progress.step(&format!(
            "replay {}/3 at 10x against a fresh release {release} ({})",
            i + 1,
            args.replay
        ));
        let server = Service::start(
            "testbed",
            &[
                "testbed",
                "--listen",
                "127.0.0.1:0",
                "--release",
                release,
                "--students",
                &students_s,
                "--trainers",
                &trainers_s,
            ],
        )?;
        let report = format!("{out_s}/run-{label}.json");
        let csv = format!("{out_s}/run-{label}");
        let code = run_step(&[
            "replay",
            &journal_s,
            "--target",
            &server.url,
            "--multiply",
            "10",
            "--speed",
            "10",
            "--run-time",
            &args.replay,
            "--label",
            &format!("release-{release}-{label}"),
            "--report",
            &report,
            "--csv",
            &csv,
            "--credentials",
            &users_s,
            "--no-fail",
        ])?;
        server.stop()?;
        if code != 0 {
            bail!("replay against release {release} failed (exit {code})");
        }
        reports.push(report);
    }

    progress.step("comparing release b against release a (runs a1, a2 interleaved around b)");
    let html = format!("{out_s}/compare.html");
    println!("  control: release a against itself (a1 vs a2) — should be all ~");
    run_step(&[
        "analyze",
        "compare",
        "--base",
        &reports[0],
        "--candidate",
        &reports[2],
        "--no-fail",
    ])?;
    println!();
    let code = run_step(&[
        "analyze",
        "compare",
        "--base",
        &reports[0],
        &reports[2],
        "--candidate",
        &reports[1],
        "--no-fail",
    ])?;
    if code != 0 {
        bail!("analyze compare failed (exit {code})");
    }
    run_step(&[
        "analyze",
        "compare",
        "--base",
        &reports[0],
        &reports[2],
        "--candidate",
        &reports[1],
        "--format",
        "html",
        "-o",
        &html,
        "--no-fail",
    ])?;

    println!(
        "\nDone in {:.0}s. Files:",
        progress.start.elapsed().as_secs_f64()
    );
    println!("  journal:        {journal_s}/");
    for r in &reports {
        println!("  run report:     {r}");
    }
    println!("  Locust CSVs:    {out_s}/run-*_stats.csv, _stats_history.csv, _failures.csv");
    println!("  comparison:     {html}");
    Ok(Outcome::Success)
}
