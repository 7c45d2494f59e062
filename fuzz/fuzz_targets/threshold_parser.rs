//! The threshold parser (`--threshold EXPR`) on arbitrary text: parsed or
//! refused, never a panic; the parser itself adds no line break to its
//! message (an expression holding one is echoed as given).

#![no_main]

use libfuzzer_sys::fuzz_target;
use tapedeck_analyze::threshold::parse_threshold;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(message) = parse_threshold(text) {
            if !text.contains(['\n', '\r']) {
                assert!(!message.contains('\n'), "multi-line error: {message}");
            }
        }
    }
});
