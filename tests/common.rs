//! Shared helpers for the end-to-end tests: the binary, free ports, waiting
//! for a server, and child processes that are killed when dropped.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `Command` for the `tapedeck` binary under test.
pub fn tapedeck() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tapedeck"));
    c.env("NO_COLOR", "1");
    c
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts TCP connections on `addr` (at most 20 s).
pub fn wait_for_port(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {addr} after 20 s");
}

/// A child process killed (SIGKILL) when dropped, so a failing test never
/// leaves servers behind.
pub struct ChildGuard(pub Child);

impl ChildGuard {
    /// Starts `cmd` with stdout/stderr piped.
    pub fn spawn(mut cmd: Command) -> ChildGuard {
        ChildGuard(
            cmd.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn tapedeck"),
        )
    }

    /// Sends SIGTERM and waits (at most 20 s) for the exit; returns the exit
    /// code and everything the child printed.
    pub fn terminate(mut self) -> (Option<i32>, String, String) {
        let pid = self.0.id().to_string();
        // A child that already exited was reaped: its pid may be reused.
        if self.0.try_wait().unwrap().is_none() {
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                let mut out = String::new();
                let mut err = String::new();
                if let Some(mut o) = self.0.stdout.take() {
                    let _ = o.read_to_string(&mut out);
                }
                if let Some(mut e) = self.0.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                return (status.code(), out, err);
            }
            assert!(
                Instant::now() < deadline,
                "child {pid} ignored SIGTERM for 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl ChildGuard {
    /// Waits (at most 60 s) for the child to exit by itself; returns the
    /// exit code and everything it printed.
    pub fn terminate_when_done(mut self) -> (Option<i32>, String, String) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.0.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "child still running after 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.terminate()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A minimal blocking HTTP/1.1 request on a fresh connection (Connection:
/// close); returns status and body. Enough for end-to-end checks.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Mode bits of a file.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Serializes the load-heavy tests of one test binary: they measure or
/// crash things under load, and two at once on two cores measure each other.
pub fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A sample API (release a) on a free port of 127.0.0.1, served by a runtime
/// of its own until dropped.
pub struct Testbed {
    /// Where it listens.
    pub addr: SocketAddr,
    _server: tapedeck_testbed::RunningTestbed,
    /// The runtime serving it; tests may run other async work on it.
    pub runtime: tokio::runtime::Runtime,
}

/// Starts a [`Testbed`].
pub fn testbed() -> Testbed {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = runtime
        .block_on(tapedeck_testbed::start(
            "127.0.0.1:0".parse().unwrap(),
            tapedeck_testbed::TestbedConfig::new(tapedeck_testbed::Release::A),
        ))
        .unwrap();
    Testbed {
        addr: server.addr(),
        _server: server,
        runtime,
    }
}
