//! The run: starts and stops VUs to follow the user plan (closed model) or
//! the arrival rate (open model), handles Ctrl-C/SIGTERM, and hands the
//! collector's totals back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use crate::collector::{Measured, Sample};
use crate::config::ShardSpec;
use crate::schedule::{RoleSequence, UserPlan};
use crate::vu::{run_vu, Playlist, Shared, StopSignal, VuPlan};

/// How VU numbers map to sessions.
#[derive(Debug, Clone)]
pub enum Assignment {
    /// VU `v` plays session `v / k`, always.
    Multiply {
        /// VUs per session.
        k: u64,
    },
    /// VU `v` gets role `seq[v]` and cycles through that role's pool.
    Roles {
        /// Weight per role pool index (0 for roles not in the mix).
        weights: Vec<f64>,
    },
}

/// The shape of the load.
#[derive(Debug, Clone)]
pub enum Model {
    /// A number of VUs following a plan.
    Closed {
        /// Users over time.
        plan: UserPlan,
        /// Who plays what.
        assignment: Assignment,
        /// Each VU plays one session then exits; the run ends when all did.
        once: bool,
    },
    /// Session arrivals at a fixed rate, each on a fresh VU.
    Open {
        /// Arrivals per second, whole run (all shards).
        rate: f64,
        /// Roles of arrivals.
        weights: Vec<f64>,
        /// Stop arriving after this many (all shards); `None`: until the deadline.
        arrivals: Option<u64>,
    },
}

/// How the run ended.
pub struct RunOutput {
    /// What was measured.
    pub measured: Measured,
    /// True when stopped by a signal before its end.
    pub partial: bool,
    /// Wall time of the run.
    pub elapsed: Duration,
}

/// Time allowed for VUs to wind down after the stop before they are aborted.
const WIND_DOWN: Duration = Duration::from_secs(5);
/// How often the closed-model controller re-reads the user plan.
const CONTROL_TICK: Duration = Duration::from_millis(50);
/// Upper bound on concurrently running open-model VUs (a server that never
/// answers must not make the replayer exhaust memory).
const MAX_OPEN_VUS: usize = 100_000;

/// Runs the load and returns what the collector measured.
pub async fn run(
    shared: Arc<Shared>,
    model: Model,
    shard: Option<ShardSpec>,
    deadline: Option<Duration>,
    handle_signals: bool,
    tx: mpsc::UnboundedSender<Vec<Sample>>,
    collector: tokio::task::JoinHandle<Measured>,
) -> RunOutput {
    let (stop_tx, stop_rx) = watch::channel(false);
    let owns = |n: u64| shard.is_none_or(|s| s.owns(n));
    let mut vus: JoinSet<()> = JoinSet::new();
    let mut signal = std::pin::pin!(shutdown_signal(handle_signals));
    let start = shared.start;
    let mut partial = false;

    match model {
        Model::Closed {
            plan,
            assignment,
            once,
        } => {
            let max = plan.max_users();
            let roles: Vec<(usize, u64)> = match &assignment {
                Assignment::Roles { weights } => {
                    RoleSequence::new(weights).take(max as usize).collect()
                }
                Assignment::Multiply { .. } => Vec::new(),
            };
            let mut own_stops: Vec<(u64, oneshot::Sender<()>)> = Vec::new();
            let mut next_v = 0u64;
            let mut tick = tokio::time::interval(CONTROL_TICK);
            loop {
                let elapsed = start.elapsed();
                if deadline.is_some_and(|d| elapsed >= d) {
                    break;
                }
                // Users started at a rate are spawned one tick ahead and
                // each waits for its own start time, so starts are evenly
                // spread instead of arriving in bursts of a tick's worth.
                let lookahead = if plan.start_of(0).is_some() {
                    CONTROL_TICK
                } else {
                    Duration::ZERO
                };
                let target = plan.users_at(elapsed + lookahead).min(max);
                while own_stops.last().is_some_and(|(v, _)| *v >= target) {
                    own_stops.pop();
                }
                if !once && next_v > target {
                    next_v = target;
                }
                while next_v < target {
                    let v = next_v;
                    next_v += 1;
                    if !owns(v) {
                        continue;
                    }
                    let playlist = match &assignment {
                        Assignment::Multiply { k } => Playlist::Fixed((v / k) as usize),
                        Assignment::Roles { .. } => {
                            let (role, ordinal) = roles[v as usize];
                            Playlist::Cycle {
                                role,
                                offset: ordinal,
                            }
                        }
                    };
                    let (own_tx, own_rx) = oneshot::channel();
                    own_stops.push((v, own_tx));
                    let stop = StopSignal {
                        global: stop_rx.clone(),
                        own: Some(own_rx),
                    };
                    let due = plan
                        .start_of(v)
                        .map(|d| start + d)
                        .filter(|d| *d > Instant::now());
                    let vu_plan = VuPlan {
                        vu: v,
                        playlist,
                        once,
                        due,
                    };
                    vus.spawn(run_vu(shared.clone(), vu_plan, tx.clone(), stop));
                }
                if once && next_v >= max && vus.is_empty() {
                    break;
                }
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = &mut signal => { partial = true; break; }
                    Some(_) = vus.join_next(), if !vus.is_empty() => {}
                }
            }
        }
        Model::Open {
            rate,
            weights,
            arrivals,
        } => {
            let mut seq = RoleSequence::new(&weights);
            let mut k = 0u64;
            // Bounded by `arrivals` or the deadline; the loop below waits
            // for the arrivals in flight only in the counted case.
            loop {
                if arrivals.is_some_and(|n| k >= n) {
                    break;
                }
                let due = start + Duration::from_secs_f64(k as f64 / rate);
                if deadline.is_some_and(|d| due.duration_since(start) >= d) {
                    break;
                }
                let Some((role, ordinal)) = seq.next() else {
                    break;
                };
                let mut arrived = false;
                while !arrived {
                    tokio::select! {
                        _ = tokio::time::sleep_until(due.into()) => arrived = true,
                        _ = &mut signal => { partial = true; break; }
                        Some(_) = vus.join_next(), if !vus.is_empty() => {}
                    }
                }
                if partial {
                    break;
                }
                if owns(k) && vus.len() < MAX_OPEN_VUS {
                    let plan = VuPlan {
                        vu: k,
                        playlist: Playlist::Cycle {
                            role,
                            offset: ordinal,
                        },
                        once: true,
                        due: Some(due),
                    };
                    let stop = StopSignal {
                        global: stop_rx.clone(),
                        own: None,
                    };
                    vus.spawn(run_vu(shared.clone(), plan, tx.clone(), stop));
                }
                k += 1;
            }
            if arrivals.is_some() && !partial {
                // Let the last arrivals finish their sessions (each request
                // is bounded by --timeout).
                loop {
                    tokio::select! {
                        next = vus.join_next() => if next.is_none() { break },
                        _ = &mut signal => { partial = true; break; }
                    }
                }
            }
        }
    }

    let elapsed = start.elapsed();
    let _ = stop_tx.send(true);
    let wind_down = tokio::time::sleep(WIND_DOWN);
    tokio::pin!(wind_down);
    loop {
        tokio::select! {
            next = vus.join_next() => if next.is_none() { break },
            _ = &mut wind_down => { vus.abort_all(); }
        }
    }
    drop(tx);
    drop(shared);
    let measured = collector.await.expect("the collector task does not panic");
    RunOutput {
        measured,
        partial,
        elapsed,
    }
}

/// Resolves on Ctrl-C or SIGTERM (never when signals are not handled).
async fn shutdown_signal(enabled: bool) {
    if !enabled {
        return std::future::pending().await;
    }
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
