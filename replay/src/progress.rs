//! The live progress line on stderr (only when stderr is a terminal).

use std::io::Write;
use std::time::Duration;

/// Prints one line per second, rewriting it in place.
pub struct Progress {
    total: Option<Duration>,
}

impl Progress {
    /// A progress line for a run of `total` (unknown when `None`).
    pub fn new(total: Option<Duration>) -> Self {
        Progress { total }
    }

    /// Redraws the line.
    pub fn update(
        &mut self,
        elapsed: Duration,
        users: u64,
        rps: f64,
        p95_ms: f64,
        requests: u64,
        failures: u64,
    ) {
        let total = match self.total {
            Some(t) => format!("/{}s", t.as_secs()),
            None => String::new(),
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K{:>5}s{total}  users {users:>6}  rps {rps:>8.1}  p95 {p95_ms:>8.1} ms  requests {requests}  errors {failures}",
            elapsed.as_secs()
        );
        let _ = err.flush();
    }

    /// Ends the line so later output starts on its own.
    pub fn finish(&self) {
        eprintln!();
    }
}
