//! Redaction: secrets named by `--redact-json` / `--redact-header` are
//! replaced by `<redacted:HASH>` where HASH is the first 12 hex digits of
//! sha256(salt + value). The salt is random per capture run and stored
//! nowhere, so equal secrets still correlate inside one journal while the
//! plaintext cannot be recovered from it.

use serde_json::Value;
use sha2::{Digest, Sha256};
use tapedeck_sessions::{Body, Exchange};

/// What to redact and the run's salt.
#[derive(Clone)]
pub(crate) struct Redactor {
    salt: [u8; 16],
    json_keys: Vec<String>,
    headers: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The salt stays out of logs and debug output.
        f.debug_struct("Redactor")
            .field("json_keys", &self.json_keys)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl Redactor {
    /// A redactor with a fresh random salt. Field and header names match
    /// case-insensitively.
    pub(crate) fn new(json_keys: &[String], headers: &[String]) -> Self {
        Redactor {
            salt: rand::random(),
            json_keys: json_keys.iter().map(|k| k.to_ascii_lowercase()).collect(),
            headers: headers.iter().map(|h| h.to_ascii_lowercase()).collect(),
        }
    }

    /// True when nothing is configured.
    pub(crate) fn is_noop(&self) -> bool {
        self.json_keys.is_empty() && self.headers.is_empty()
    }

    /// `<redacted:` + 12 hex digits of sha256(salt + value) + `>`.
    pub(crate) fn mask(&self, value: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.salt);
        h.update(value.as_bytes());
        let digest = h.finalize();
        format!("<redacted:{}>", &hex::encode(&digest[..6]))
    }

    /// Redacts headers and bodies of both sides of `ex` in place. A secret
    /// found in a named field is also masked wherever else it appears in
    /// the exchange (an API that echoes a login body, an error message
    /// quoting it), so the plaintext never reaches the journal.
    pub(crate) fn apply(&self, ex: &mut Exchange) {
        if self.is_noop() {
            return;
        }
        let mut found = Vec::new();
        self.headers_in(&mut ex.request.headers, &mut found);
        let req_type = content_type(&ex.request.headers);
        self.body_in(&mut ex.request.body, req_type.as_deref(), &mut found);
        // The URI query can carry the same fields as a form body.
        if let Some((path, query)) = ex.request.uri.split_once('?') {
            if let Some(q) = self.form(query, &mut found) {
                ex.request.uri = format!("{path}?{q}");
            }
        }
        if let Some(resp) = ex.response.as_mut() {
            self.headers_in(&mut resp.headers, &mut found);
            let resp_type = content_type(&resp.headers);
            self.body_in(&mut resp.body, resp_type.as_deref(), &mut found);
        }
        // Very short values would mask unrelated text; they are still
        // masked in their own fields above.
        found.retain(|s| s.len() >= 4);
        if found.is_empty() {
            return;
        }
        found.sort_by_key(|s| std::cmp::Reverse(s.len()));
        found.dedup();
        let mut variants: Vec<(String, String)> = Vec::new();
        for secret in &found {
            let mask = self.mask(secret);
            // JSON-escaped forms, as the value appears in a JSON string
            // (and in a JSON document quoted inside a JSON string).
            let escaped = json_escape(secret);
            let escaped_twice = json_escape(&escaped);
            let encoded =
                percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
                    .to_string();
            for v in [secret.clone(), escaped, escaped_twice, encoded] {
                if !variants.iter().any(|(seen, _)| *seen == v) {
                    variants.push((v, mask.clone()));
                }
            }
        }
        let scrub = |text: &mut String| {
            for (plain, mask) in &variants {
                if text.contains(plain.as_str()) {
                    *text = text.replace(plain.as_str(), mask);
                }
            }
        };
        scrub(&mut ex.request.uri);
        for (_, v) in ex.request.headers.iter_mut() {
            scrub(v);
        }
        scrub_body(&mut ex.request.body, &scrub);
        if let Some(resp) = ex.response.as_mut() {
            for (_, v) in resp.headers.iter_mut() {
                scrub(v);
            }
            scrub_body(&mut resp.body, &scrub);
        }
        if let Some(err) = ex.error.as_mut() {
            scrub(err);
        }
    }

    fn headers_in(&self, headers: &mut [(String, String)], found: &mut Vec<String>) {
        for (name, value) in headers.iter_mut() {
            if self.headers.iter().any(|h| name.eq_ignore_ascii_case(h)) {
                let plain = std::mem::take(value);
                *value = self.mask(&plain);
                found.push(plain);
            }
        }
    }

    fn body_in(&self, body: &mut Body, content_type: Option<&str>, found: &mut Vec<String>) {
        if self.json_keys.is_empty() || body.data.is_empty() {
            return;
        }
        // Most bodies name no secret field: skip parsing them at all.
        if !self
            .json_keys
            .iter()
            .any(|k| contains_ignore_ascii_case(&body.data, k.as_bytes()))
        {
            return;
        }
        let is_form =
            content_type.is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            if let Some(text) = body.text() {
                if let Some(redacted) = self.form(text, found) {
                    body.data = redacted.into_bytes();
                }
            }
            return;
        }
        if !body.truncated {
            if let Ok(mut value) = serde_json::from_slice::<Value>(&body.data) {
                if self.json_value(&mut value, found) {
                    // Serializing a Value cannot fail.
                    body.data = serde_json::to_vec(&value).unwrap_or_default();
                }
                return;
            }
        }
        // A truncated or non-JSON text body may still hold `"password": "..."`.
        if let Some(text) = body.text() {
            if let Some(redacted) = self.json_text(text, found) {
                body.data = redacted.into_bytes();
            }
        }
    }

    fn is_secret_key(&self, key: &str) -> bool {
        self.json_keys.iter().any(|k| key.eq_ignore_ascii_case(k))
    }

    /// Returns true when something was replaced.
    fn json_value(&self, v: &mut Value, found: &mut Vec<String>) -> bool {
        let mut changed = false;
        match v {
            Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    if self.is_secret_key(k) {
                        match child {
                            Value::String(s) => {
                                let plain = std::mem::take(s);
                                *child = Value::String(self.mask(&plain));
                                found.push(plain);
                                changed = true;
                            }
                            Value::Number(n) => {
                                let plain = n.to_string();
                                *child = Value::String(self.mask(&plain));
                                found.push(plain);
                                changed = true;
                            }
                            other => changed |= self.json_value(other, found),
                        }
                    } else {
                        changed |= self.json_value(child, found);
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    changed |= self.json_value(item, found);
                }
            }
            _ => {}
        }
        changed
    }

    /// `a=1&password=x` → `a=1&password=<redacted:..>`; `None` if unchanged.
    fn form(&self, text: &str, found: &mut Vec<String>) -> Option<String> {
        let mut changed = false;
        let parts: Vec<String> = text
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, v)) if self.is_secret_key(&decode_form(k)) => {
                    changed = true;
                    let plain = decode_form(v);
                    let masked = format!("{k}={}", self.mask(&plain));
                    found.push(plain);
                    masked
                }
                _ => pair.to_string(),
            })
            .collect();
        changed.then(|| parts.join("&"))
    }

    /// Textual fallback for text that does not parse as JSON (typically a
    /// truncated body): replaces the string value after each `"key":`.
    fn json_text(&self, text: &str, found: &mut Vec<String>) -> Option<String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        let mut changed = false;
        while let Some(q) = rest.find('"') {
            out.push_str(&rest[..q]);
            let after = &rest[q + 1..];
            let Some(end) = string_end(after) else {
                // Unterminated string: keep the tail as is.
                out.push_str(&rest[q..]);
                rest = "";
                break;
            };
            let key = &after[..end];
            out.push('"');
            out.push_str(key);
            out.push('"');
            rest = &after[end + 1..];
            if !self.is_secret_key(key) {
                continue;
            }
            let trimmed = rest.trim_start();
            let Some(colon_rest) = trimmed.strip_prefix(':') else {
                continue;
            };
            let value_rest = colon_rest.trim_start();
            let Some(value_body) = value_rest.strip_prefix('"') else {
                continue;
            };
            out.push_str(&rest[..rest.len() - value_rest.len()]);
            match string_end(value_body) {
                Some(vend) => {
                    out.push('"');
                    out.push_str(&self.mask(&value_body[..vend]));
                    found.push(value_body[..vend].to_string());
                    out.push('"');
                    rest = &value_body[vend + 1..];
                }
                None => {
                    // The value was cut by truncation: mask what is there.
                    out.push('"');
                    out.push_str(&self.mask(value_body));
                    found.push(value_body.to_string());
                    rest = "";
                }
            }
            changed = true;
        }
        out.push_str(rest);
        changed.then_some(out)
    }
}

/// Whether `needle` (lowercase ASCII) occurs in `haystack`, ignoring ASCII
/// case. Runs on every recorded body, so it jumps between candidate first
/// bytes with memchr instead of comparing at every position.
fn contains_ignore_ascii_case(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    if haystack.len() < needle.len() {
        return false;
    }
    let last_start = haystack.len() - needle.len();
    memchr::memchr2_iter(first, first.to_ascii_uppercase(), &haystack[..=last_start]).any(|i| {
        haystack[i + 1..i + needle.len()]
            .iter()
            .zip(rest)
            .all(|(a, b)| a.to_ascii_lowercase() == *b)
    })
}

/// `s` as it appears between the quotes of a JSON string.
fn json_escape(s: &str) -> String {
    let quoted = serde_json::to_string(s).unwrap_or_default();
    quoted[1..quoted.len().saturating_sub(1).max(1)].to_string()
}

/// Applies `scrub` to a text body (binary bodies are left alone).
fn scrub_body(body: &mut Body, scrub: &impl Fn(&mut String)) {
    if body.data.is_empty() {
        return;
    }
    if let Ok(text) = std::str::from_utf8(&body.data) {
        let mut text = text.to_string();
        scrub(&mut text);
        if text.as_bytes() != body.data.as_slice() {
            body.data = text.into_bytes();
        }
    }
}

/// Index of the closing quote of a JSON string body (after its opening quote).
fn string_end(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn decode_form(s: &str) -> String {
    let plus = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8_lossy()
        .into_owned()
}

fn content_type(headers: &[(String, String)]) -> Option<String> {
    tapedeck_sessions::model::header(headers, "content-type").map(|t| t.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapedeck_sessions::{RecordedRequest, RecordedResponse};

    fn redactor() -> Redactor {
        Redactor::new(&["password".into()], &["cookie".into()])
    }

    #[test]
    fn case_insensitive_search() {
        assert!(contains_ignore_ascii_case(b"{\"PassWord\":1}", b"password"));
        assert!(!contains_ignore_ascii_case(b"{\"pass\":1}", b"password"));
        assert!(!contains_ignore_ascii_case(b"", b"password"));
        assert!(contains_ignore_ascii_case(b"xPASSWORD", b"password"));
        assert!(!contains_ignore_ascii_case(b"passwor", b"password"));
    }

    #[test]
    fn mask_is_stable_within_a_run_and_salted_between_runs() {
        let a = redactor();
        let b = redactor();
        assert_eq!(a.mask("hunter2"), a.mask("hunter2"));
        assert_ne!(a.mask("hunter2"), a.mask("hunter3"));
        assert_ne!(a.mask("hunter2"), b.mask("hunter2"));
        let m = a.mask("x");
        assert!(m.starts_with("<redacted:") && m.ends_with('>'));
        assert_eq!(m.len(), "<redacted:>".len() + 12);
    }

    #[test]
    fn json_form_text_and_headers_are_redacted() {
        let r = redactor();
        let mut ex = Exchange {
            id: 1,
            session: String::new(),
            conn: 1,
            started: chrono::Utc::now(),
            upstream: None,
            client: None,
            request: RecordedRequest {
                method: "POST".into(),
                uri: "/login?password=qs-secret&x=1".into(),
                version: "HTTP/1.1".into(),
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("Cookie".into(), "sid=abc".into()),
                ],
                body: Body::new(
                    br#"{"username":"u","Password":"s3cret","n":{"password":42}}"#.to_vec(),
                ),
            },
            response: Some(RecordedResponse {
                status: 200,
                headers: vec![(
                    "content-type".into(),
                    "application/x-www-form-urlencoded".into(),
                )],
                body: Body::new(b"a=1&password=form%20secret".to_vec()),
            }),
            error: None,
            ttfb_us: 0,
            duration_us: 0,
        };
        r.apply(&mut ex);
        let line = serde_json::to_string(&ex).unwrap();
        for secret in [
            "s3cret",
            "sid=abc",
            "form secret",
            "form%20secret",
            "qs-secret",
            "42}",
        ] {
            assert!(!line.contains(secret), "{secret} leaked: {line}");
        }
        assert!(
            line.contains(&r.mask("s3cret").replace('<', "\\u003c"))
                || line.contains(&r.mask("s3cret"))
        );
        assert_eq!(ex.request.body.len, 56, "wire length is kept");
    }

    #[test]
    fn a_secret_echoed_elsewhere_is_masked_too() {
        let r = redactor();
        let mut ex = Exchange {
            id: 1,
            session: String::new(),
            conn: 1,
            started: chrono::Utc::now(),
            upstream: None,
            client: None,
            request: RecordedRequest {
                method: "POST".into(),
                uri: "/login".into(),
                version: "HTTP/1.1".into(),
                headers: vec![("content-type".into(), "application/json".into())],
                body: Body::new(br#"{"password":"Pa\"ss word"}"#.to_vec()),
            },
            response: Some(RecordedResponse {
                status: 400,
                headers: vec![("x-echo".into(), "Pa\"ss word".into())],
                body: Body::new(
                    br#"{"detail":"bad {\"password\":\"Pa\\\"ss word\"}", "q":"Pa%22ss%20word"}"#
                        .to_vec(),
                ),
            }),
            error: None,
            ttfb_us: 0,
            duration_us: 0,
        };
        r.apply(&mut ex);
        let line = serde_json::to_string(&ex).unwrap();
        assert!(!line.contains("ss word"), "{line}");
        assert!(!line.contains("ss%20word"), "{line}");
    }

    #[test]
    fn truncated_json_is_redacted_textually() {
        let r = redactor();
        let mut found = Vec::new();
        let out = r
            .json_text(
                r#"{"a":"x\"y","password" : "abc\"d","b":1, "password":"cut"#,
                &mut found,
            )
            .unwrap();
        assert_eq!(found, [r#"abc\"d"#, "cut"]);
        assert!(!out.contains("abc"), "{out}");
        assert!(!out.contains("cut"), "{out}");
        assert!(out.contains(r#""a":"x\"y""#), "{out}");
        assert!(out.contains(&r.mask("abc\\\"d")), "{out}");
        assert_eq!(r.json_text(r#"{"a":"b"}"#, &mut found), None);
    }
}
