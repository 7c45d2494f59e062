//! Which recorded values are worth correlating.
//!
//! A value handed out by the server is worth carrying over when its shape
//! makes a coincidental match unlikely (tokens, UUIDs, long hex, large
//! numbers). Small numbers and short strings match by accident all the time
//! (`limit=20`, `"ok"`), so they only count when the places match exactly:
//! an id-named response field feeding a path segment or an id-named field.

/// How much a value's shape says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Strength {
    /// Never correlated (booleans, empty, huge, fractional numbers).
    Ignored,
    /// Correlated only on an exact location match.
    Weak,
    /// Correlated wherever it reappears.
    Strong,
}

/// Numbers at least this large are specific enough to match anywhere.
const STRONG_NUMBER: u64 = 100_000;
/// Longer values are not ids or tokens (text, blobs).
const MAX_VALUE_LEN: usize = 4096;

/// Classifies a string value.
pub(crate) fn of_str(s: &str) -> Strength {
    if s.is_empty() || s.len() > MAX_VALUE_LEN || matches!(s, "true" | "false" | "null") {
        return Strength::Ignored;
    }
    if is_jwt(s) || is_uuid(s) || is_long_hex(s) || is_token(s) {
        return Strength::Strong;
    }
    if let Ok(n) = s.parse::<u64>() {
        return of_u64(n);
    }
    Strength::Weak
}

/// Classifies a JSON number (its text form).
pub(crate) fn of_number(n: &serde_json::Number) -> Strength {
    match n.as_u64() {
        Some(v) => of_u64(v),
        None => Strength::Ignored,
    }
}

fn of_u64(n: u64) -> Strength {
    if n >= STRONG_NUMBER {
        Strength::Strong
    } else {
        Strength::Weak
    }
}

/// `id`, `post_id`, `postId`, `uuid`, ...: a field that names an object.
pub(crate) fn is_id_key(key: &str) -> bool {
    let lower_end = |suffix: &str| {
        key.len() > suffix.len() && key[key.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
    };
    key.eq_ignore_ascii_case("id")
        || key.eq_ignore_ascii_case("uuid")
        || key.ends_with("_id")
        || key.ends_with("Id")
        || key.ends_with("ID")
        || lower_end("_uuid")
}

/// Three base64url parts separated by dots, the first decoding to a JSON
/// object: a JSON Web Token.
pub(crate) fn is_jwt(s: &str) -> bool {
    let mut parts = s.split('.');
    let (Some(h), Some(p), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    h.starts_with("eyJ") && p.len() >= 4 && s.bytes().all(is_base64url_or_dot)
}

fn is_base64url_or_dot(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'=')
}

/// `8-4-4-4-12` hex digits.
pub(crate) fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// At least 16 hex digits (hashes, object ids, session ids).
pub(crate) fn is_long_hex(s: &str) -> bool {
    s.len() >= 16 && s.bytes().all(|c| c.is_ascii_hexdigit())
}

/// At least 16 characters of a token alphabet mixing letters and digits
/// (opaque session tokens, API keys).
pub(crate) fn is_token(s: &str) -> bool {
    s.len() >= 16
        && s.bytes().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~' | b'+' | b'/' | b'=')
        })
        && s.bytes().any(|c| c.is_ascii_digit())
        && s.bytes().any(|c| c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(
            of_str("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"),
            Strength::Strong
        );
        assert_eq!(
            of_str("123e4567-e89b-12d3-a456-426614174000"),
            Strength::Strong
        );
        assert_eq!(of_str("deadbeefdeadbeef01"), Strength::Strong);
        assert_eq!(of_str("sess_4f9a8b7c6d5e4f3a"), Strength::Strong);
        assert_eq!(of_str("17"), Strength::Weak);
        assert_eq!(of_str("hello"), Strength::Weak);
        assert_eq!(of_str("true"), Strength::Ignored);
        assert_eq!(of_str(""), Strength::Ignored);
        assert_eq!(of_number(&serde_json::Number::from(17)), Strength::Weak);
        assert_eq!(
            of_number(&serde_json::Number::from(1_234_567)),
            Strength::Strong
        );
        assert_eq!(
            of_number(&serde_json::Number::from_f64(1.5).unwrap()),
            Strength::Ignored
        );
    }

    #[test]
    fn id_keys() {
        for k in ["id", "ID", "post_id", "postId", "uuid", "user_uuid"] {
            assert!(is_id_key(k), "{k}");
        }
        for k in ["idle", "valid", "limit", "text", "id_card"] {
            assert!(!is_id_key(k), "{k}");
        }
    }
}
