//! The HTML report in a real headless Chromium: the page loads without
//! console errors and its charts render as SVG.

use std::path::Path;
use std::process::{Command, Stdio};

use std::time::{Duration, Instant};

use tapedeck_analyze::compare::{compare, CompareOptions};
use tapedeck_analyze::render::{html_compare, html_run};
use tapedeck_analyze::report::TimelinePoint;

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
/// scripts ran and everything Chromium logged. Output goes to files (a DOM
/// larger than a pipe buffer would block Chromium). Bounded to 60 s.
fn render(browser: &str, page: &Path, work: &Path) -> (String, String) {
    let out_path = work.join("dom.out");
    let err_path = work.join("chromium.log");
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!(
            "--user-data-dir={}",
            work.join("profile").display()
        ))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish in 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (
        std::fs::read_to_string(&out_path).unwrap(),
        std::fs::read_to_string(&err_path).unwrap(),
    )
}

/// Page console output and script errors in Chromium's log (the report's
/// script logs nothing, so any console line is a problem).
fn console_errors(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
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

    // The harness itself must see a broken page as broken.
    let broken = dir.path().join("broken.html");
    std::fs::write(
        &broken,
        "<!DOCTYPE html><script>undefinedFunction()</script>",
    )
    .unwrap();
    let (_, log) = render(&browser, &broken, dir.path());
    assert!(
        !console_errors(&log).is_empty(),
        "a script error must be detected:\n{log}"
    );

    for (name, html, charts) in [
        ("compare.html", html_compare(&c), c.endpoints.len() + 4),
        ("run.html", html_run(&a), a.endpoints.len() + 4),
    ] {
        let page = dir.path().join(name);
        std::fs::write(&page, &html).unwrap();
        assert!(
            !html.contains("http://") || !html.contains("<script src"),
            "no network"
        );
        assert!(
            !html.contains("<script src") && !html.contains("<link "),
            "self-contained"
        );
        let (dom, log) = render(&browser, &page, dir.path());
        let errors = console_errors(&log);
        assert!(errors.is_empty(), "{name}: console errors: {errors:#?}");
        assert!(
            dom.contains("data-charts=\"rendered\""),
            "{name}: script did not finish:\n{}",
            &dom[..dom.len().min(2000)]
        );
        let svgs = dom.matches("<svg").count();
        assert_eq!(svgs, charts, "{name}: one SVG per chart");
        let paths = dom.matches("<path").count();
        assert!(
            paths >= charts,
            "{name}: every chart draws a line ({paths} paths)"
        );
        // Labels are escaped, not interpreted.
        if name == "compare.html" {
            assert!(dom.contains("release-&lt;b&gt;"), "{name}: label escaped");
        }
    }
}
