//! The recording path: a bounded queue from the request path to one writer
//! thread that assigns session keys, redacts, and appends to the journal.
//!
//! The request path only ever calls `try_send`: when the writer falls
//! behind (or has failed), records are dropped and counted, and traffic
//! keeps flowing. The count goes to the summary, the status endpoint and
//! the journal's closing stats.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tapedeck_sessions::journal::{JournalWriter, WriterOptions};
use tapedeck_sessions::{SessionKey, SessionKeyer};

use crate::redact::Redactor;
use crate::stats::Counters;
use crate::tap::Finished;
use crate::Error;

/// How long the writer waits after draining the queue before blocking on it.
const BATCH_NAP: Duration = Duration::from_millis(2);

// === impl Recorder ===

/// The request path's handle on the queue.
#[derive(Clone)]
pub(crate) struct Recorder {
    tx: SyncSender<Msg>,
    counters: Arc<Counters>,
}

impl Recorder {
    /// Marks an exchange as started; the guard marks it finished.
    pub(crate) fn begin(&self) -> InFlight {
        self.counters.in_flight.fetch_add(1, Relaxed);
        InFlight(self.counters.clone())
    }

    /// Queues a finished exchange without ever blocking.
    pub(crate) fn record(&self, finished: Finished, body_bytes: u64, failed: bool) {
        self.counters.exchanges.fetch_add(1, Relaxed);
        self.counters.bytes.fetch_add(body_bytes, Relaxed);
        if failed {
            self.counters.errors.fetch_add(1, Relaxed);
        }
        match self.tx.try_send(Msg::Exchange(Box::new(finished))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Relaxed);
            }
        }
    }

    /// Asks the writer to drain the queue and close the journal. Blocks
    /// while the queue is full (the writer is draining it), so call it from
    /// a blocking context.
    pub(crate) fn close(&self) {
        let _ = self.tx.send(Msg::Close);
    }
}

/// What goes through the queue.
pub(crate) enum Msg {
    /// Boxed so the bounded queue's slots stay small.
    Exchange(Box<Finished>),
    /// Drain and finish; records sent after this are dropped and counted.
    Close,
}

/// Counts an exchange as in flight while alive.
pub(crate) struct InFlight(Arc<Counters>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

// === impl Writer thread ===

/// What the writer thread reports when the queue closes.
#[derive(Debug, Default)]
pub(crate) struct WriterReport {
    pub(crate) files: Vec<PathBuf>,
    pub(crate) exchanges: u64,
    pub(crate) sessions: u64,
    pub(crate) bytes_written: u64,
    /// The first journal failure, if any (reported once on stderr too).
    pub(crate) failure: Option<String>,
}

/// Everything the writer thread owns.
pub(crate) struct WriterSetup {
    pub(crate) options: WriterOptions,
    pub(crate) redactor: Redactor,
    pub(crate) session_key: SessionKey,
    pub(crate) idle_split: Duration,
    pub(crate) queue_capacity: usize,
}

/// Opens the first journal file (so a bad `--out` fails at start) and
/// starts the writer thread.
pub(crate) fn spawn(
    setup: WriterSetup,
    counters: Arc<Counters>,
) -> Result<(Recorder, JoinHandle<WriterReport>), Error> {
    let writer = JournalWriter::create(setup.options.clone())
        .map_err(|e| Error::Journal(format!("--out {}: {e}", setup.options.dir.display())))?;
    let (tx, rx) = std::sync::mpsc::sync_channel(setup.queue_capacity);
    let thread_counters = counters.clone();
    let handle = std::thread::Builder::new()
        .name("tapedeck-journal".into())
        .spawn(move || run_writer(writer, setup, rx, thread_counters))
        .map_err(|e| Error::Journal(format!("cannot start the journal writer thread: {e}")))?;
    Ok((Recorder { tx, counters }, handle))
}

fn run_writer(
    mut writer: JournalWriter,
    setup: WriterSetup,
    rx: Receiver<Msg>,
    counters: Arc<Counters>,
) -> WriterReport {
    // Ticks often enough that a frame closes within a small fraction of
    // `flush_every` after it is due.
    let tick =
        (setup.options.flush_every / 4).clamp(Duration::from_millis(5), Duration::from_millis(100));
    let mut last_tick = Instant::now();
    let mut sessions: HashSet<String> = HashSet::new();
    let mut keyer = SessionKeyer::new(setup.session_key.clone()).with_idle_split(setup.idle_split);
    let mut failure: Option<String> = None;
    let mut dropped_reported = 0u64;

    let fail = |failure: &mut Option<String>, what: String| {
        counters.write_errors.fetch_add(1, Relaxed);
        if failure.is_none() {
            eprintln!(
                "tapedeck capture: journal write failed, recording stops (traffic keeps flowing, records are counted as dropped): {what}"
            );
            *failure = Some(what);
        }
    };

    // After a drained batch the writer naps briefly instead of blocking
    // at once: senders only pay for a wake-up (a futex syscall on the
    // request path) when the writer is blocked, so batching keeps that to
    // a few hundred per second however busy the proxy is.
    let mut drained_batch = false;
    loop {
        let next = match rx.try_recv() {
            Ok(msg) => Ok(msg),
            Err(TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
            Err(TryRecvError::Empty) if drained_batch => {
                drained_batch = false;
                std::thread::sleep(BATCH_NAP);
                continue;
            }
            Err(TryRecvError::Empty) => rx.recv_timeout(tick),
        };
        if next.is_ok() {
            drained_batch = true;
        }
        match next {
            Ok(Msg::Close) => break,
            Ok(Msg::Exchange(finished)) => {
                let mut ex = finished.assemble();
                ex.session = keyer.assign(&ex);
                if failure.is_some() {
                    counters.dropped.fetch_add(1, Relaxed);
                } else {
                    setup.redactor.apply(&mut ex);
                    match writer.write(&ex) {
                        Ok(()) => {
                            counters.recorded.fetch_add(1, Relaxed);
                            sessions.insert(std::mem::take(&mut ex.session));
                        }
                        Err(e) => {
                            counters.dropped.fetch_add(1, Relaxed);
                            fail(&mut failure, e.to_string());
                        }
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let dropped = counters.dropped.load(Relaxed);
        if dropped > dropped_reported {
            writer.add_dropped(dropped - dropped_reported);
            dropped_reported = dropped;
        }
        if last_tick.elapsed() >= tick {
            last_tick = Instant::now();
            if failure.is_none() {
                if let Err(e) = writer.tick() {
                    fail(&mut failure, e.to_string());
                }
            }
        }
    }

    let dropped = counters.dropped.load(Relaxed);
    if dropped > dropped_reported {
        writer.add_dropped(dropped - dropped_reported);
    }
    let files = writer.files().to_vec();
    let mut report = WriterReport {
        files,
        sessions: sessions.len() as u64,
        ..WriterReport::default()
    };
    match writer.finish() {
        Ok(summary) => {
            report.files = summary.files;
            // After a failure the writer may count a line whose frame never
            // reached the disk; the proxy's own count is the honest one.
            report.exchanges = if failure.is_some() {
                counters.recorded.load(Relaxed)
            } else {
                summary.exchanges
            };
            report.bytes_written = summary.bytes_written;
        }
        Err(e) => {
            counters.write_errors.fetch_add(1, Relaxed);
            if failure.is_none() {
                eprintln!("tapedeck capture: closing the journal failed: {e}");
                failure = Some(e.to_string());
            }
            report.exchanges = counters.recorded.load(Relaxed);
        }
    }
    report.failure = failure;
    report
}
