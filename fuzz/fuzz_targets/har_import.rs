//! HAR import on arbitrary bytes: a document that parses as JSON is
//! converted or refused with a message, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tapedeck_sessions::har::{exchanges_to_har, har_to_exchanges};
use tapedeck_sessions::SessionKey;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    for key in [SessionKey::Recorded, SessionKey::Auto] {
        if let Ok(import) = har_to_exchanges(&value, &key) {
            // What was imported exports again.
            let _ = exchanges_to_har(&import.exchanges, &import.upstream);
        }
    }
});
