//! The journal reader on arbitrary bytes: recovers what it can, never panics.

#![no_main]

use std::io::Cursor;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tapedeck_sessions::JournalReader;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.jsonl.zst");
    if let Ok(mut reader) = JournalReader::from_source(path, Cursor::new(data.to_vec())) {
        let n = reader.by_ref().count() as u64;
        let report = reader.report();
        assert_eq!(n, report.exchanges, "exchanges yielded and counted differ");
        let _ = report.describe(path);
    }
});
