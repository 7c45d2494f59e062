//! One virtual user: replays recorded sessions of its role request by
//! request, keeping the recorded timing (scaled by `--speed`), and reports
//! one [`Sample`] per request.
//!
//! Timing: each request is due at session start + recorded offset ÷ speed.
//! Latency is measured from that due time, so a server that makes a VU fall
//! behind shows its queueing in the numbers (coordinated omission); the
//! service time from the actual send is recorded beside it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};

use crate::client::{ClientConfig, Connection};
use crate::collector::{Live, Outbox, Sample};
use crate::config::{Speed, Target};
use crate::correlation::{Correlation, LiveResponse, Position};
use crate::pool::Pool;

/// What all VUs share.
pub struct Shared {
    /// Sessions and scripts.
    pub pool: Pool,
    /// Correlation rules.
    pub correlation: Correlation,
    /// Targets, indexed by [`crate::pool::Step::target`].
    pub targets: Vec<Target>,
    /// Timeouts and protocol.
    pub client: ClientConfig,
    /// Time scaling.
    pub speed: Speed,
    /// Whether responses feed correlation (false with `--no-correlation`,
    /// which spares copying response headers).
    pub learn: bool,
    /// Start of the run (sample times are relative to it).
    pub start: Instant,
    /// Live counters.
    pub live: Arc<Live>,
}

/// Which sessions a VU plays.
#[derive(Debug, Clone, Copy)]
pub enum Playlist {
    /// The same session every time (`--multiply`).
    Fixed(usize),
    /// The sessions of a role pool in order, starting at `offset`.
    Cycle {
        /// Index into [`Pool::roles`].
        role: usize,
        /// First position in the role's pool.
        offset: u64,
    },
}

impl Playlist {
    fn session(&self, pool: &Pool, iteration: u64) -> usize {
        match *self {
            Playlist::Fixed(s) => s,
            Playlist::Cycle { role, offset } => {
                let sessions = &pool.roles[role].sessions;
                sessions[((offset + iteration) % sessions.len() as u64) as usize]
            }
        }
    }

    /// The role of the VU.
    pub fn role<'a>(&self, pool: &'a Pool) -> &'a str {
        match *self {
            Playlist::Fixed(s) => &pool.sessions[s].role,
            Playlist::Cycle { role, .. } => &pool.roles[role].role,
        }
    }
}

/// One VU's orders.
#[derive(Debug)]
pub struct VuPlan {
    /// Global VU number (unique across shards).
    pub vu: u64,
    /// What it plays.
    pub playlist: Playlist,
    /// Play one session and exit (instead of looping).
    pub once: bool,
    /// When its first session was due (open model arrivals); now when `None`.
    pub due: Option<Instant>,
}

/// How a VU learns it must stop: the whole run ends (`global` turns true or
/// its sender is gone), or this VU alone is scaled down (`own` sender dropped).
pub struct StopSignal {
    /// Run-wide stop.
    pub global: watch::Receiver<bool>,
    /// Per-VU stop, for ramp-downs.
    pub own: Option<oneshot::Receiver<()>>,
}

impl StopSignal {
    async fn wait(&mut self) {
        let StopSignal { global, own } = self;
        let own = async {
            match own.as_mut() {
                Some(rx) => {
                    let _ = rx.await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = own => {}
            _ = global.wait_for(|stop| *stop) => {}
        }
    }

    fn is_stopped(&mut self) -> bool {
        if *self.global.borrow() || self.global.has_changed().is_err() {
            return true;
        }
        match self.own.as_mut() {
            Some(rx) => !matches!(rx.try_recv(), Err(oneshot::error::TryRecvError::Empty)),
            None => false,
        }
    }
}

/// Decrements the active-user gauge however the VU ends.
struct ActiveGuard(Arc<Live>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active_users.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Pause after a failed connect at `--speed max`, so a dead target is not
/// hammered in a tight loop.
const CONNECT_BACKOFF: Duration = Duration::from_millis(50);

/// Runs one VU until its plan is done or it is told to stop.
pub async fn run_vu(
    shared: Arc<Shared>,
    plan: VuPlan,
    tx: mpsc::UnboundedSender<Vec<Sample>>,
    mut stop: StopSignal,
) {
    shared.live.active_users.fetch_add(1, Ordering::Relaxed);
    let _active = ActiveGuard(shared.live.clone());
    let pool = &shared.pool;
    let corr = &shared.correlation;
    let mut state = corr.new_vu(plan.vu, plan.playlist.role(pool));
    let mut conns: Vec<Connection> = shared
        .targets
        .iter()
        .map(|_| Connection::default())
        .collect();
    let mut outbox = Outbox::new(tx);
    let mut due_first = plan.due;
    if let Some(due) = plan.due {
        if due > Instant::now() {
            tokio::select! {
                _ = tokio::time::sleep_until(due.into()) => {}
                _ = stop.wait() => return,
            }
        }
    }
    // Bounded: `once` VUs return after one session; looping VUs return when
    // stopped (every step awaits the stop signal alongside its work).
    for iteration in 0u64.. {
        let s = plan.playlist.session(pool, iteration);
        let script = &pool.scripts[s];
        if script.is_empty() {
            return;
        }
        corr.start_session(&mut state, s);
        let session_start = due_first.take().unwrap_or_else(Instant::now);
        for (i, step) in script.iter().enumerate() {
            let scheduled = match shared.speed {
                Speed::Max => None,
                Speed::Factor(f) => Some(session_start + step.offset.div_f64(f)),
            };
            let mut lateness = None;
            if let Some(at) = scheduled {
                if at > Instant::now() {
                    if !outbox.flush() {
                        return;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep_until(at.into()) => {}
                        _ = stop.wait() => return,
                    }
                    lateness = Some(Instant::now().saturating_duration_since(at));
                }
            }
            if stop.is_stopped() {
                return;
            }
            let at = Position {
                session: s,
                exchange: i,
            };
            let recorded = &pool.sessions[s].exchanges[i];
            let out = corr.rewrite(&mut state, at, &recorded.request);
            let sent = Instant::now();
            let due = scheduled.unwrap_or(sent);
            let target = &shared.targets[usize::from(step.target)];
            let result = tokio::select! {
                r = conns[usize::from(step.target)].send(&shared.client, target, &out, shared.learn) => r,
                _ = stop.wait() => return,
            };
            let done = Instant::now();
            let (status, bytes, failure, connect_failed) = match &result {
                Ok(r) => {
                    let failed = r.status >= 400 && step.recorded_status != Some(r.status);
                    (
                        r.status,
                        r.body.len() as u64,
                        failed.then(|| format!("HTTP {}", r.status)),
                        false,
                    )
                }
                Err(e) => (
                    0,
                    0,
                    Some(e.clone()),
                    e.starts_with("connect") || e == "connection refused",
                ),
            };
            if shared.learn {
                let live = match &result {
                    Ok(r) => LiveResponse {
                        status: r.status,
                        headers: &r.headers,
                        body: &r.body,
                    },
                    Err(_) => LiveResponse {
                        status: 0,
                        headers: &[],
                        body: &[],
                    },
                };
                corr.learn(&mut state, at, &live);
            }
            let sample = Sample {
                endpoint: step.endpoint,
                due_us: due.saturating_duration_since(shared.start).as_micros() as u64,
                latency_us: done.saturating_duration_since(due).as_micros() as u64,
                service_us: done.saturating_duration_since(sent).as_micros() as u64,
                lateness_us: lateness.map(|l| l.as_micros() as u64),
                status,
                bytes,
                failure,
                substituted: out.substituted,
                uncorrelated: out.uncorrelated,
            };
            if !outbox.push(sample) {
                return;
            }
            if connect_failed && matches!(shared.speed, Speed::Max) {
                outbox.flush();
                tokio::select! {
                    _ = tokio::time::sleep(CONNECT_BACKOFF) => {}
                    _ = stop.wait() => return,
                }
            }
        }
        if plan.once {
            return;
        }
    }
}
