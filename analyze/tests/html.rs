//! The HTML report in a real headless Chromium: the page loads without
//! console errors and its charts render as SVG.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tapedeck_analyze::compare::{compare, CompareOptions};
use tapedeck_analyze::report::TimelinePoint;
use tapedeck_analyze::render::{html_compare, html_run};

use crate::synth::{self, corevia, none, same, BUSY};

fn chromium() -> Option<String> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        })
        .map(str::to_string)
}

/// Runs headless Chromium on `page` with `--dump-dom`; returns the DOM after
/// scripts ran and everything Chromium logged. Bounded to 60 s.
fn render(browser: &str, page: &Path, profile: &Path) -> (String, String) {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish in 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn console_errors(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught") || l.contains("SyntaxError"))
        .collect()
}

#[test]
fn html_reports_render_in_chromium() {
    let Some(browser) = chromium() else {
        println!("NOTICE: chromium is not installed; skipping the headless HTML test");
        return;
    };
    let specs = corevia();
    let mut rng = synth::rng(5);
    let mut a = synth::run(&mut rng, "release-a", &specs, BUSY, &same, &none);
    let slow = |n: &str| if n == "Social Feed" { 1.3 } else { 1.0 };
    let mut b = synth::run(&mut rng, "release-<b>", &specs, BUSY, &slow, &none);
    for (r, k) in [(&mut a, 1.0), (&mut b, 1.3)] {
        r.timeline = (0..60)
            .map(|t| TimelinePoint {
                t,
                requests: 180 + t % 7,
                failures: t % 13 / 12,
                users: (t * 5).min(50),
                p50_ms: 30.0 * k,
                p95_ms: 90.0 * k,
            })
            .collect();
    }
    let c = compare(&[a.clone()], &[b], &CompareOptions::default());
    let dir = tempfile::tempdir().unwrap();
    for (name, html, charts) in [
        ("compare.html", html_compare(&c), c.endpoints.len() + 4),
        ("run.html", html_run(&a), a.endpoints.len() + 4),
    ] {
        let page = dir.path().join(name);
        std::fs::write(&page, &html).unwrap();
        assert!(!html.contains("http://") || !html.contains("<script src"), "no network");
        assert!(!html.contains("<script src") && !html.contains("<link "), "self-contained");
        let (dom, log) = render(&browser, &page, &dir.path().join("profile"));
        let errors = console_errors(&log);
        assert!(errors.is_empty(), "{name}: console errors: {errors:#?}");
        assert!(dom.contains("data-charts=\"rendered\""), "{name}: script did not finish:\n{}", &dom[..dom.len().min(2000)]);
        let svgs = dom.matches("<svg").count();
        assert_eq!(svgs, charts, "{name}: one SVG per chart");
        let paths = dom.matches("<path").count();
        assert!(paths >= charts, "{name}: every chart draws a line ({paths} paths)");
        // Labels are escaped, not interpreted.
        if name == "compare.html" {
            assert!(dom.contains("release-&lt;b&gt;"), "{name}: label escaped");
        }
    }
}
