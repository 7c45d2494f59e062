//! The threshold parser (`--threshold EXPR`) on arbitrary text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tapedeck_analyze::threshold::parse_threshold;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(message) = parse_threshold(text) {
            assert!(!message.contains('\n'), "multi-line error: {message}");
        }
    }
});
