//! Journal throughput on CoreVia-shaped exchanges (JSON bodies of 0.2–4 KiB):
//! exchanges written per second, MB/s of JSON lines read back, and the
//! compression ratio (printed once: raw JSON line bytes / journal bytes).
//!
//! `cargo bench -p tapedeck-sessions --bench journal -- --warm-up-time 1 --measurement-time 3`

use std::path::Path;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tapedeck_sessions::chrono::DateTime;
use tapedeck_sessions::{
    Body, Exchange, JournalReader, JournalWriter, Record, RecordedRequest, RecordedResponse,
};

const EXCHANGES: usize = 20_000;

/// A small deterministic generator (xorshift64*), so every run writes the
/// same journal.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: &[&str] = &[
    "leg", "day", "squat", "protein", "oats", "morning", "run", "5k", "personal", "best", "coach",
    "plan", "stretch", "rest", "hydrate", "macro", "bench", "press", "cardio", "yoga",
];

fn text(rng: &mut Rng, words: usize) -> String {
    (0..words)
        .map(|_| WORDS[rng.below(WORDS.len() as u64) as usize])
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where feed items come from.
enum Items {
    /// Every item freshly random: the pessimistic case for compression.
    Unique,
    /// A shared store of posts, as on the real API: every user's feed page
    /// is a window onto the same latest posts (like counts drift).
    Shared(Vec<serde_json::Value>),
}

fn post(rng: &mut Rng, id: u64) -> serde_json::Value {
    let words = 4 + rng.below(12) as usize;
    serde_json::json!({
        "id": id,
        "author": format!("user{}", rng.below(5000)),
        "text": text(rng, words),
        "likes": rng.below(300),
        "comments": rng.below(40),
        "created_at": format!("2026-11-{:02}T{:02}:{:02}:{:02}Z", 1 + rng.below(28), rng.below(24), rng.below(60), rng.below(60)),
    })
}

/// A page of roughly `target` bytes.
fn page_body(rng: &mut Rng, target: usize, items: &Items) -> String {
    let Items::Shared(pool) = items else {
        return feed_body(rng, target);
    };
    let mut page = Vec::new();
    let mut size = 20;
    let mut at = rng.below(pool.len() as u64 / 2) as usize;
    while size < target && at < pool.len() {
        let mut item = pool[at].clone();
        item["likes"] = serde_json::json!(item["likes"].as_u64().unwrap_or(0) + rng.below(3));
        size += item.to_string().len() + 1;
        page.push(item);
        at += 1;
    }
    serde_json::json!({"items": page, "total": pool.len()}).to_string()
}

/// A feed page of roughly `target` bytes of fresh random items.
fn feed_body(rng: &mut Rng, target: usize) -> String {
    let mut items = Vec::new();
    let mut size = 20;
    while size < target {
        let words = 4 + rng.below(12) as usize;
        let item = serde_json::json!({
            "id": rng.below(100_000),
            "author": format!("user{}", rng.below(5000)),
            "text": text(rng, words),
            "likes": rng.below(300),
            "comments": rng.below(40),
            "created_at": format!("2026-11-{:02}T{:02}:{:02}:{:02}Z", 1 + rng.below(28), rng.below(24), rng.below(60), rng.below(60)),
        });
        let s = item.to_string();
        size += s.len() + 1;
        items.push(item);
    }
    serde_json::json!({"items": items, "total": 500 + rng.below(5000)}).to_string()
}

fn corevia_exchanges(n: usize, shared: bool) -> Vec<Exchange> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let items = if shared {
        Items::Shared((0..2000).map(|id| post(&mut rng, id)).collect())
    } else {
        Items::Unique
    };
    let token =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0MiIsInJvbGUiOiJzdHVkZW50In0.c2lnbmF0dXJl";
    (0..n)
        .map(|i| {
            let (method, uri, req_body) = match rng.below(5) {
                0 => (
                    "POST",
                    "/api/v1/social/posts".to_string(),
                    serde_json::json!({"text": text(&mut rng, 12)}).to_string(),
                ),
                1 => (
                    "POST",
                    format!("/api/v1/social/posts/{}/like", rng.below(10_000)),
                    String::new(),
                ),
                2 => (
                    "GET",
                    format!(
                        "/api/v1/marketplace/products?limit=20&offset={}",
                        rng.below(10) * 20
                    ),
                    String::new(),
                ),
                _ => (
                    "GET",
                    format!("/api/v1/social/feed?limit=20&offset={}", rng.below(10) * 20),
                    String::new(),
                ),
            };
            let target = 200 + rng.below(3900) as usize;
            Exchange {
                id: i as u64,
                session: format!("sub:{}", rng.below(500)),
                conn: rng.below(2000),
                started: DateTime::from_timestamp(
                    1_800_000_000 + i as i64 / 50,
                    rng.below(1_000_000_000) as u32,
                )
                .expect("valid timestamp"),
                upstream: None,
                client: Some(format!(
                    "10.0.{}.{}:{}",
                    rng.below(255),
                    rng.below(255),
                    30000 + rng.below(30000)
                )),
                request: RecordedRequest {
                    method: method.into(),
                    uri,
                    version: "HTTP/1.1".into(),
                    headers: vec![
                        ("host".into(), "api.corevia.app".into()),
                        (
                            "user-agent".into(),
                            "CoreVia/3.2.1 (iPhone; iOS 18.1)".into(),
                        ),
                        ("authorization".into(), format!("Bearer {token}")),
                        ("accept".into(), "application/json".into()),
                        ("content-type".into(), "application/json".into()),
                    ],
                    body: Body::new(req_body.into_bytes()),
                },
                response: Some(RecordedResponse {
                    status: 200,
                    headers: vec![
                        ("content-type".into(), "application/json".into()),
                        ("server".into(), "uvicorn".into()),
                        ("date".into(), "Thu, 26 Nov 2026 10:00:00 GMT".into()),
                    ],
                    body: Body::new(page_body(&mut rng, target, &items).into_bytes()),
                }),
                error: None,
                ttfb_us: 2000 + rng.below(50_000),
                duration_us: 60_000 + rng.below(50_000),
            }
        })
        .collect()
}

fn write_journal(path: &Path, exs: &[Exchange]) -> u64 {
    let mut w = JournalWriter::create_file(path, "http://127.0.0.1:8000").expect("create journal");
    for e in exs {
        w.write(e).expect("write exchange");
    }
    w.finish().expect("finish journal").bytes_written
}

/// Writes `exs` to `path` and prints the compression ratio; returns the
/// raw JSON-lines size.
fn report_ratio(what: &str, exs: &[Exchange], path: &Path) -> u64 {
    let journal_bytes = write_journal(path, exs);
    let raw_bytes: u64 = exs
        .iter()
        .map(|e| {
            serde_json::to_vec(&Record::Exchange(e.clone()))
                .expect("encode")
                .len() as u64
                + 1
        })
        .sum();
    println!(
        "journal ({what}): {} exchanges, {raw_bytes} bytes of JSON lines, {journal_bytes} bytes on disk, compression ratio {:.1}x",
        exs.len(),
        raw_bytes as f64 / journal_bytes as f64
    );
    raw_bytes
}

fn bench_journal(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let shared = corevia_exchanges(EXCHANGES, true);
    report_ratio(
        "shared feed posts",
        &shared,
        &dir.path().join("shared.jsonl.zst"),
    );
    drop(shared);

    // Timings use the pessimistic data: every feed item unique.
    let exs = corevia_exchanges(EXCHANGES, false);
    let path = dir.path().join("bench.jsonl.zst");
    let raw_bytes = report_ratio("unique feed items", &exs, &path);

    cpu_time_figures(&exs, &path, raw_bytes, dir.path());

    let mut g = c.benchmark_group("journal");
    g.sample_size(10);
    g.throughput(Throughput::Elements(EXCHANGES as u64));
    g.bench_function("write_exchanges", |b| {
        let out = dir.path().join("w.jsonl.zst");
        b.iter_batched(
            || (),
            |()| write_journal(&out, &exs),
            BatchSize::PerIteration,
        )
    });
    g.throughput(Throughput::Bytes(raw_bytes));
    g.bench_function("read_back", |b| {
        b.iter(|| {
            let mut r = JournalReader::open(&path).expect("open journal");
            let n = r.by_ref().count();
            assert_eq!(n, EXCHANGES);
            n
        })
    });
    g.finish();
}

/// Nanoseconds this thread has spent on a CPU (Linux), so throughput can
/// be quoted per CPU-second on a machine busy with other work.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn cpu_time_figures(exs: &[Exchange], path: &Path, raw_bytes: u64, dir: &Path) {
    const ROUNDS: u32 = 3;
    let out = dir.join("cpu.jsonl.zst");
    let (Some(w0), t0) = (thread_cpu_ns(), std::time::Instant::now()) else {
        return;
    };
    for _ in 0..ROUNDS {
        write_journal(&out, exs);
    }
    let (Some(w1), t1) = (thread_cpu_ns(), std::time::Instant::now()) else {
        return;
    };
    for _ in 0..ROUNDS {
        let mut r = JournalReader::open(path).expect("open journal");
        assert_eq!(r.by_ref().count(), exs.len());
    }
    let Some(r1) = thread_cpu_ns() else {
        return;
    };
    let t2 = std::time::Instant::now();
    let n = f64::from(ROUNDS);
    let write_cpu = (w1 - w0) as f64 / 1e9 / n;
    let read_cpu = (r1 - w1) as f64 / 1e9 / n;
    println!(
        "per CPU-second: write {:.0} exchanges/s ({:.0} MB/s of JSON lines), read {:.0} MB/s of JSON lines \
         (wall: write {:.0} exchanges/s, read {:.0} MB/s)",
        exs.len() as f64 / write_cpu,
        raw_bytes as f64 / 1e6 / write_cpu,
        raw_bytes as f64 / 1e6 / read_cpu,
        exs.len() as f64 / ((t1 - t0).as_secs_f64() / n),
        raw_bytes as f64 / 1e6 / ((t2 - t1).as_secs_f64() / n),
    );
}

criterion_group!(benches, bench_journal);
criterion_main!(benches);
