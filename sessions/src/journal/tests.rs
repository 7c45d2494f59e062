//! Journal round-trip, recovery and property tests.

use std::io::{BufRead, Cursor};
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::model::{Body, RecordedRequest, RecordedResponse};

fn exchange(id: u64, body: &[u8]) -> Exchange {
    Exchange {
        id,
        session: format!("sub:{}", id % 3),
        conn: id / 2,
        started: DateTime::from_timestamp(
            1_800_000_000 + id as i64,
            (id as u32 * 7919) % 1_000_000_000,
        )
        .expect("valid timestamp"),
        upstream: None,
        client: Some("127.0.0.1:40000".into()),
        request: RecordedRequest {
            method: "POST".into(),
            uri: format!("/api/v1/social/posts/{id}/comments"),
            version: "HTTP/1.1".into(),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-dup".into(), "1".into()),
                ("x-dup".into(), "2".into()),
            ],
            body: Body::new(body.to_vec()),
        },
        response: Some(RecordedResponse {
            status: 201,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Body::new(format!("{{\"id\":{id},\"text\":\"nice\"}}").into_bytes()),
        }),
        error: None,
        ttfb_us: 1000 + id,
        duration_us: 2000 + id,
    }
}

use chrono::DateTime;

/// Writes `exs` to one in-memory-checked file, closing a frame every
/// `per_frame` exchanges; returns the file bytes and the offset where each
/// frame ends (the header frame first) with how many exchanges it holds.
fn write_frames(exs: &[Exchange], per_frame: usize) -> (Vec<u8>, Vec<(u64, usize)>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl.zst");
    let mut w = JournalWriter::create_file(&path, "http://127.0.0.1:1").unwrap();
    let mut ends = vec![(std::fs::metadata(&path).unwrap().len(), 0)];
    for chunk in exs.chunks(per_frame.max(1)) {
        for ex in chunk {
            w.write(ex).unwrap();
        }
        w.flush().unwrap();
        ends.push((std::fs::metadata(&path).unwrap().len(), chunk.len()));
    }
    w.finish().unwrap();
    // The closing stats frame.
    ends.push((std::fs::metadata(&path).unwrap().len(), 0));
    let bytes = std::fs::read(&path).unwrap();
    (bytes, ends)
}

fn read_bytes(bytes: Vec<u8>) -> Result<(Vec<Exchange>, ReadReport), Error> {
    let mut r = JournalReader::from_source(Path::new("mem.jsonl.zst"), Cursor::new(bytes))?;
    let exs: Vec<Exchange> = r.by_ref().collect();
    Ok((exs, r.report().clone()))
}

#[test]
fn write_then_read_is_identity_and_clean() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.jsonl.zst");
    let exs: Vec<Exchange> = (0..50).map(|i| exchange(i, b"{\"text\":\"hi\"}")).collect();
    let mut w = JournalWriter::create_file(&path, "http://127.0.0.1:9").unwrap();
    for ex in &exs {
        w.write(ex).unwrap();
    }
    w.add_dropped(2);
    let summary = w.finish().unwrap();
    assert_eq!(summary.exchanges, 50);
    assert_eq!(summary.dropped, 2);
    assert_eq!(summary.files, vec![path.clone()]);
    assert_eq!(
        summary.bytes_written,
        std::fs::metadata(&path).unwrap().len()
    );

    let mut r = JournalReader::open(&path).unwrap();
    assert_eq!(r.header().upstream, "http://127.0.0.1:9");
    let back: Vec<Exchange> = r.by_ref().collect();
    assert_eq!(back, exs);
    let report = r.report();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.exchanges, 50);
    let stats = report.stats.as_ref().expect("closing stats line");
    assert_eq!((stats.exchanges, stats.dropped), (50, 2));
    assert!(report.describe(&path).contains("clean"));
}

#[test]
fn zstdcat_and_jq_read_a_finished_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.jsonl.zst");
    let mut w = JournalWriter::create_file(&path, "http://127.0.0.1:9").unwrap();
    for i in 0..20 {
        w.write(&exchange(i, &[0xff, 0x00, b'\n'])).unwrap();
        if i % 5 == 0 {
            w.flush().unwrap();
        }
    }
    w.finish().unwrap();
    // The plain streaming decoder reads all concatenated frames, like zstdcat.
    let dec = zstd::stream::read::Decoder::new(std::fs::File::open(&path).unwrap()).unwrap();
    let lines: Vec<serde_json::Value> = std::io::BufReader::new(dec)
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).expect("every line is JSON"))
        .collect();
    assert_eq!(lines.len(), 22);
    assert_eq!(lines[0]["type"], "header");
    assert_eq!(lines[0]["format"], "tapedeck-journal");
    assert_eq!(lines[0]["version"], 1);
    assert_eq!(lines[1]["type"], "exchange");
    assert_eq!(lines[1]["request"]["body_b64"], "/wAK");
    assert_eq!(lines[21]["type"], "stats");
    assert_eq!(lines[21]["exchanges"], 20);
}

#[cfg(unix)]
#[test]
fn files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let w = JournalWriter::create(WriterOptions::new(dir.path().join("sub/dir"), "u")).unwrap();
    let s = w.finish().unwrap();
    let mode = std::fs::metadata(&s.files[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn rotates_by_size_and_reads_the_set_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = WriterOptions::new(dir.path(), "http://127.0.0.1:9");
    opts.frame_bytes = 2048;
    opts.rotate_size = Some(4096);
    opts.prefix = "cap".into();
    let mut w = JournalWriter::create(opts).unwrap();
    let body = vec![b'x'; 600];
    let exs: Vec<Exchange> = (0..200).map(|i| exchange(i, &body)).collect();
    for ex in &exs {
        w.write(ex).unwrap();
    }
    let s = w.finish().unwrap();
    assert!(s.files.len() > 3, "{:?}", s.files);
    let mut sorted = s.files.clone();
    sorted.sort();
    assert_eq!(sorted, s.files, "name order is creation order");
    for (seq, f) in s.files.iter().enumerate() {
        // cap-20261126T101500.123Z-0000.jsonl.zst
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let stamp = &name[4..23];
        assert!(name.starts_with("cap-"), "{name}");
        assert!(
            chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%S%.3f").is_ok(),
            "{name}"
        );
        assert_eq!(&name[23..], format!("Z-{seq:04}.jsonl.zst"), "{name}");
    }
    let paths = expand_paths(&[dir.path().to_path_buf()]).unwrap();
    assert_eq!(paths, s.files);
    let all = read_all(&paths).unwrap();
    assert_eq!(all.exchanges, exs);
    assert!(all.files.iter().all(|f| f.report.is_clean()));
    let per_file: u64 = all
        .files
        .iter()
        .map(|f| f.report.stats.as_ref().unwrap().exchanges)
        .sum();
    assert_eq!(per_file, 200);
}

#[test]
fn merged_files_keep_each_exchanges_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.jsonl.zst");
    let b = dir.path().join("b.jsonl.zst");
    for (path, upstream, id) in [(&a, "http://127.0.0.1:1", 1), (&b, "http://127.0.0.1:2", 2)] {
        let mut w = JournalWriter::create_file(path, upstream).unwrap();
        w.write(&exchange(id, b"x")).unwrap();
        w.finish().unwrap();
    }
    let all = read_all(&[a, b]).unwrap();
    assert_eq!(all.upstream(), Some("http://127.0.0.1:1"));
    assert_eq!(all.exchanges[0].upstream, None);
    assert_eq!(
        all.exchanges[1].upstream.as_deref(),
        Some("http://127.0.0.1:2")
    );
}

#[test]
fn tick_closes_frames_and_rotates_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = WriterOptions::new(dir.path(), "u");
    opts.flush_every = Duration::ZERO;
    opts.rotate_every = Some(Duration::ZERO);
    let mut w = JournalWriter::create(opts).unwrap();
    w.write(&exchange(1, b"a")).unwrap();
    w.tick().unwrap();
    // The frame is closed and the file finished: a reader sees the exchange.
    let first = w.files()[0].clone();
    let all = read_all(&[first]).unwrap();
    assert_eq!(all.exchanges.len(), 1);
    assert!(all.files[0].report.stats.is_some());
    w.write(&exchange(2, b"b")).unwrap();
    let s = w.finish().unwrap();
    assert_eq!(s.files.len(), 2);
    assert_eq!(s.exchanges, 2);
}

#[test]
fn an_open_frame_is_readable_after_tick_and_drop_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.jsonl.zst");
    let mut w = JournalWriter::create_file(&path, "u").unwrap();
    w.write(&exchange(1, b"a")).unwrap();
    // Not yet closed: the exchange is in the open frame only.
    assert_eq!(
        read_all(std::slice::from_ref(&path))
            .unwrap()
            .exchanges
            .len(),
        0
    );
    w.write(&exchange(2, b"b")).unwrap();
    drop(w);
    let all = read_all(std::slice::from_ref(&path)).unwrap();
    assert_eq!(all.exchanges.len(), 2);
    assert!(all.files[0].report.stats.is_none(), "dropped, not finished");
    assert!(all.files[0].report.is_clean());
}

#[test]
fn bad_files_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.jsonl.zst");
    let e = JournalReader::open(&missing).unwrap_err().to_string();
    assert!(e.contains("missing.jsonl.zst"), "{e}");

    let empty = dir.path().join("empty.jsonl.zst");
    std::fs::write(&empty, b"").unwrap();
    let e = JournalReader::open(&empty).unwrap_err().to_string();
    assert!(
        e.contains("empty.jsonl.zst") && e.contains("empty file"),
        "{e}"
    );

    let text = dir.path().join("text.jsonl.zst");
    std::fs::write(&text, b"{\"type\":\"header\"}\n").unwrap();
    let e = JournalReader::open(&text).unwrap_err().to_string();
    assert!(
        e.contains("text.jsonl.zst") && e.contains("not a tapedeck journal"),
        "{e}"
    );

    let other = dir.path().join("other.jsonl.zst");
    std::fs::write(&other, zstd::encode_all(&b"hello\nworld\n"[..], 3).unwrap()).unwrap();
    let e = JournalReader::open(&other).unwrap_err().to_string();
    assert!(
        e.contains("other.jsonl.zst") && e.contains("not a tapedeck journal"),
        "{e}"
    );

    let e = expand_paths(&[dir.path().join("nope")]).map(|p| read_all(&p));
    assert!(e.unwrap().unwrap_err().to_string().contains("nope"));
    let empty_dir = dir.path().join("none");
    std::fs::create_dir(&empty_dir).unwrap();
    let e = expand_paths(&[empty_dir]).unwrap_err().to_string();
    assert!(e.contains("none") && e.contains("no *.jsonl.zst"), "{e}");
}

#[test]
fn corrupt_middle_frame_is_skipped_and_reported() {
    let exs: Vec<Exchange> = (0..30).map(|i| exchange(i, b"{}")).collect();
    let (mut bytes, ends) = write_frames(&exs, 10);
    // Damage the second exchange frame (exchanges 10..20) in its middle.
    let (a, b) = (ends[1].0 as usize, ends[2].0 as usize);
    for byte in &mut bytes[a + 8..b - 8] {
        *byte ^= 0x5a;
    }
    let (back, report) = read_bytes(bytes).unwrap();
    let ids: Vec<u64> = back.iter().map(|e| e.id).collect();
    let expected: Vec<u64> = (0..10).chain(20..30).collect();
    assert_eq!(ids, expected);
    assert_eq!(report.corrupt_frames, 1);
    assert_eq!(report.skipped_bytes, (b - a) as u64);
    assert_eq!(report.damage[0].offset, a as u64);
    assert_eq!(report.damage[0].frame, 2);
    let d = report.describe(Path::new("x.jsonl.zst"));
    assert!(
        d.starts_with(&format!(
            "journal x.jsonl.zst: frame 2 at byte {a} is corrupt (skipped {} bytes)",
            b - a
        )),
        "{d}"
    );
    assert!(!report.is_clean());
}

#[test]
fn truncated_tail_is_reported() {
    let exs: Vec<Exchange> = (0..30).map(|i| exchange(i, b"{}")).collect();
    let (bytes, ends) = write_frames(&exs, 10);
    let cut = ends[3].0 as usize - 5; // inside the last exchange frame
    let (back, report) = read_bytes(bytes[..cut].to_vec()).unwrap();
    assert_eq!(back.len(), 20);
    assert_eq!(
        report.truncated_tail_bytes,
        (cut - ends[2].0 as usize) as u64
    );
    assert!(report
        .describe(Path::new("t"))
        .contains("truncated tail of"));
    assert!(report.stats.is_none());
}

#[test]
fn garbage_between_frames_is_skipped() {
    let exs: Vec<Exchange> = (0..20).map(|i| exchange(i, b"{}")).collect();
    let (bytes, ends) = write_frames(&exs, 10);
    let at = ends[1].0 as usize;
    let mut damaged = bytes[..at].to_vec();
    damaged.extend_from_slice(b"garbage that is not zstd");
    damaged.extend_from_slice(&bytes[at..]);
    let (back, report) = read_bytes(damaged).unwrap();
    assert_eq!(back, exs);
    assert_eq!(report.skipped_bytes, 24);
    assert_eq!(report.corrupt_frames, 1);
}

#[test]
fn lost_header_frame_keeps_later_frames() {
    let exs: Vec<Exchange> = (0..20).map(|i| exchange(i, b"{}")).collect();
    let (mut bytes, ends) = write_frames(&exs, 10);
    bytes[ends[0].0 as usize - 6] ^= 0xff;
    let mut r = JournalReader::from_source(Path::new("h"), Cursor::new(bytes)).unwrap();
    let back: Vec<Exchange> = r.by_ref().collect();
    assert_eq!(back, exs);
    assert!(r.report().header_lost);
    assert!(r
        .report()
        .describe(Path::new("h"))
        .contains("header frame lost"));
}

#[test]
fn one_huge_frame_from_another_tool_streams() {
    // `zstd` on a whole JSON-lines file makes a single frame; lines are
    // released as they decode once the frame outgrows the hold-back limit.
    let header =
        serde_json::to_string(&crate::model::Record::Header(JournalHeader::new("u"))).unwrap();
    let body = vec![b'x'; 4000];
    let mut text = format!("{header}\n");
    let n = 3000; // ~12 MB of lines
    for i in 0..n {
        let rec = crate::model::Record::Exchange(exchange(i, &body));
        text.push_str(&serde_json::to_string(&rec).unwrap());
        text.push('\n');
    }
    assert!(text.len() > 9 * 1024 * 1024);
    let bytes = zstd::encode_all(text.as_bytes(), 1).unwrap();
    let (back, report) = read_bytes(bytes).unwrap();
    assert_eq!(back.len(), n as usize);
    assert!(back.iter().enumerate().all(|(i, e)| e.id == i as u64));
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.frames, 1);
}

// === property tests ===

fn arb_body() -> impl Strategy<Value = Body> {
    prop_oneof![
        ".{0,200}".prop_map(|s: String| Body::new(s.into_bytes())),
        proptest::collection::vec(any::<u8>(), 0..200).prop_map(Body::new),
        (proptest::collection::vec(any::<u8>(), 0..50), any::<u32>()).prop_map(|(d, extra)| Body {
            len: d.len() as u64 + u64::from(extra),
            data: d,
            truncated: true,
        }),
    ]
}

fn arb_headers() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec(("[!-~]{1,20}", "\\PC{0,40}|.*\n.*"), 0..6)
}

fn arb_exchange() -> impl Strategy<Value = Exchange> {
    (
        any::<u64>(),
        ".{0,30}",
        any::<u64>(),
        (0i64..4_000_000_000, 0u32..1_000_000_000),
        proptest::option::of("[a-z]{1,10}://[a-z0-9.:]{1,20}"),
        ("[A-Z]{1,8}", "/\\PC{0,60}", arb_headers(), arb_body()),
        proptest::option::of((100u16..600, arb_headers(), arb_body())),
        proptest::option::of(".{0,40}"),
        (any::<u64>(), any::<u64>()),
    )
        .prop_map(
            |(
                id,
                session,
                conn,
                (secs, nanos),
                upstream,
                (method, uri, headers, body),
                resp,
                error,
                (ttfb_us, duration_us),
            )| {
                Exchange {
                    id,
                    session,
                    conn,
                    started: DateTime::from_timestamp(secs, nanos).expect("in range"),
                    upstream,
                    client: None,
                    request: RecordedRequest {
                        method,
                        uri,
                        version: "HTTP/2".into(),
                        headers,
                        body,
                    },
                    response: resp.map(|(status, headers, body)| RecordedResponse {
                        status,
                        headers,
                        body,
                    }),
                    error,
                    ttfb_us,
                    duration_us,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn any_exchanges_round_trip(exs in proptest::collection::vec(arb_exchange(), 0..20), per_frame in 1usize..8) {
        let (bytes, _) = write_frames(&exs, per_frame);
        let (back, report) = read_bytes(bytes).unwrap();
        prop_assert_eq!(back, exs);
        prop_assert!(report.is_clean());
    }

    #[test]
    fn truncation_loses_at_most_the_last_frame(n in 1usize..25, per_frame in 1usize..6, cut_frac in 0.0f64..1.0) {
        let exs: Vec<Exchange> = (0..n as u64).map(|i| exchange(i, b"{\"k\":1}")).collect();
        let (bytes, ends) = write_frames(&exs, per_frame);
        let cut = (bytes.len() as f64 * cut_frac) as usize;
        // Exchanges in frames that end at or before the cut survive.
        let complete: usize = ends.iter().filter(|(end, _)| *end as usize <= cut).map(|(_, k)| k).sum();
        match read_bytes(bytes[..cut].to_vec()) {
            Ok((back, report)) => {
                prop_assert_eq!(&back[..], &exs[..complete]);
                prop_assert_eq!(report.corrupt_frames, 0);
                let last_end = ends.iter().map(|(e, _)| *e as usize).filter(|e| *e <= cut).max().unwrap_or(0);
                prop_assert_eq!(report.truncated_tail_bytes as usize, cut - last_end);
            }
            // Only a cut inside the header frame makes the file unreadable.
            Err(_) => prop_assert!(cut < ends[0].0 as usize),
        }
    }

    #[test]
    fn byte_flips_never_panic_and_lose_only_touched_frames(
        n in 1usize..25,
        per_frame in 1usize..6,
        flips in proptest::collection::vec((0.0f64..1.0, 1u8..=255), 1..4),
    ) {
        let exs: Vec<Exchange> = (0..n as u64).map(|i| exchange(i, b"{\"k\":1}")).collect();
        let (mut bytes, ends) = write_frames(&exs, per_frame);
        let mut touched = std::collections::BTreeSet::new();
        for (frac, mask) in flips {
            let at = ((bytes.len() - 1) as f64 * frac) as usize;
            bytes[at] ^= mask;
            touched.insert(ends.iter().position(|(end, _)| at < *end as usize).expect("inside some frame"));
        }
        let lost_at_most: usize = touched.iter().map(|&f| ends[f].1).sum();
        match read_bytes(bytes) {
            Ok((back, _report)) => {
                prop_assert!(back.len() + lost_at_most >= exs.len(), "recovered {} of {}, touched {:?}", back.len(), exs.len(), touched);
                let mut last = None;
                for ex in &back {
                    prop_assert_eq!(ex, &exs[ex.id as usize]);
                    prop_assert!(last < Some(ex.id));
                    last = Some(ex.id);
                }
            }
            Err(_) => prop_assert!(touched.contains(&0), "only a damaged header frame may fail the open"),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000), prefix in any::<bool>()) {
        let mut data = if prefix { ZSTD_MAGIC_FOR_TESTS.to_vec() } else { Vec::new() };
        data.extend(bytes);
        let _ = read_bytes(data);
    }
}

/// 48 cases keep `cargo test` fast; `PROPTEST_CASES=5000` searches harder.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

const ZSTD_MAGIC_FOR_TESTS: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
