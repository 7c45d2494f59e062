//! The exchange model: what one recorded request/response pair looks like in
//! memory and on a journal line.
//!
//! Bodies are raw bytes in memory. On the wire a body that is valid UTF-8 is
//! stored as a JSON string (`"body"`), anything else as base64 (`"body_b64"`),
//! so `zstdcat | jq` shows JSON APIs as readable text and binary payloads
//! still round-trip exactly.

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The journal format name written in every header line.
pub const FORMAT_NAME: &str = "tapedeck-journal";
/// The journal format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// One line of a journal.
// Records are built one at a time and moved straight into a `Vec` or out of
// an iterator; boxing the exchange would cost an allocation per line.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Record {
    /// First line of every journal file.
    Header(JournalHeader),
    /// One recorded request/response pair.
    Exchange(Exchange),
    /// Closing statistics written by `finish()` (optional, last line).
    Stats(ClosingStats),
}

/// Line 1 of every journal file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalHeader {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// Always [`FORMAT_VERSION`] for files this crate writes.
    pub version: u32,
    /// When the file was created.
    pub created: DateTime<Utc>,
    /// The upstream the capture proxy forwarded to (reverse mode), or a
    /// description such as `forward-proxy` (forward mode).
    pub upstream: String,
    /// `tapedeck x.y.z`.
    pub tool: String,
}

impl JournalHeader {
    /// A header for a journal recorded in front of `upstream`, stamped now.
    pub fn new(upstream: impl Into<String>) -> Self {
        JournalHeader {
            format: FORMAT_NAME.to_string(),
            version: FORMAT_VERSION,
            created: Utc::now(),
            upstream: upstream.into(),
            tool: format!("tapedeck {}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// Counters written as the last line of a cleanly finished journal file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClosingStats {
    /// Exchanges written to this file.
    pub exchanges: u64,
    /// Records the capture proxy had to drop because the writer fell behind
    /// (counted since the previous file was closed).
    #[serde(default)]
    pub dropped: u64,
    /// When the file was closed.
    pub closed: DateTime<Utc>,
}

/// One recorded request/response pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    /// Unique within a capture run, increasing in the order requests arrived.
    pub id: u64,
    /// Session key assigned at capture time (see the grouping module).
    pub session: String,
    /// Client connection number; requests on one connection share it.
    pub conn: u64,
    /// When the request's head arrived at the proxy (nanosecond precision).
    pub started: DateTime<Utc>,
    /// The origin this exchange was sent to, when it differs from the
    /// journal header's (forward-proxy mode records it per exchange).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// The client's address as the proxy saw it (`ip:port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The request as the client sent it.
    pub request: RecordedRequest,
    /// The response as the upstream sent it; `None` when there was none.
    pub response: Option<RecordedResponse>,
    /// Why there is no (complete) response, e.g. `upstream refused connection`.
    pub error: Option<String>,
    /// Microseconds from request arrival to the response head.
    pub ttfb_us: u64,
    /// Microseconds from request arrival to the end of the response body.
    pub duration_us: u64,
}

impl Exchange {
    /// The request path without the query string.
    pub fn path(&self) -> &str {
        let uri = self.request.uri.as_str();
        // Absolute-form URIs (forward proxy) carry scheme and authority.
        let without_origin = match uri.find("://") {
            Some(i) => {
                let rest = &uri[i + 3..];
                rest.find('/').map_or("/", |j| &rest[j..])
            }
            None => uri,
        };
        without_origin.split(['?', '#']).next().unwrap_or("/")
    }

    /// The status code of the response, if there was one.
    pub fn status(&self) -> Option<u16> {
        self.response.as_ref().map(|r| r.status)
    }

    /// When the response ended: `started` plus `duration_us` (saturating at
    /// the latest representable time for nonsense durations).
    pub fn ended(&self) -> DateTime<Utc> {
        let us = i64::try_from(self.duration_us).unwrap_or(i64::MAX);
        self.started
            .checked_add_signed(chrono::TimeDelta::microseconds(us))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// A recorded request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request target as received: origin-form (`/a?b`) or absolute-form.
    pub uri: String,
    /// `HTTP/1.1`, `HTTP/2`, ...
    pub version: String,
    /// Header fields in order, duplicates kept.
    pub headers: Vec<(String, String)>,
    /// The (possibly truncated) body.
    pub body: Body,
}

/// A recorded response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordedResponse {
    /// Status code.
    pub status: u16,
    /// Header fields in order, duplicates kept.
    pub headers: Vec<(String, String)>,
    /// The (possibly truncated) body.
    pub body: Body,
}

/// A message body as recorded: the bytes kept, the full length seen on the
/// wire, and whether the kept bytes are only a prefix.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Body {
    /// The bytes kept (all of them unless `truncated`).
    pub data: Vec<u8>,
    /// Length of the whole body as it went over the wire.
    pub len: u64,
    /// True when `data` is only the first `--max-body` bytes.
    pub truncated: bool,
}

impl Body {
    /// A complete body.
    pub fn new(data: impl Into<Vec<u8>>) -> Self {
        let data = data.into();
        Body {
            len: data.len() as u64,
            data,
            truncated: false,
        }
    }

    /// The body as UTF-8 text, if it is.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.data).ok()
    }

    /// The body parsed as JSON, if it is complete JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        if self.truncated || self.data.is_empty() {
            return None;
        }
        serde_json::from_slice(&self.data).ok()
    }
}

/// Case-insensitive lookup of the first header named `name`.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

// === wire forms ===
//
// The journal line keeps the body inline with the message fields
// (`"body"` or `"body_b64"`, `"body_len"`, `"body_truncated"`). Serializing
// borrows the message (no copies on the capture hot path); deserializing
// reads one flat struct, which is much faster than `#[serde(flatten)]`.

/// A body as it goes on the wire: text borrowed, anything else base64.
fn wire_body(b: &Body) -> (Option<&str>, Option<String>) {
    match std::str::from_utf8(&b.data) {
        Ok(s) => (Some(s), None),
        Err(_) => (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(&b.data)),
        ),
    }
}

fn body_from_wire<E: serde::de::Error>(
    body: Option<String>,
    body_b64: Option<String>,
    body_len: Option<u64>,
    body_truncated: bool,
) -> Result<Body, E> {
    let data = match (body, body_b64) {
        (Some(s), _) => s.into_bytes(),
        (None, Some(b)) => base64::engine::general_purpose::STANDARD
            .decode(b.as_bytes())
            .map_err(|e| E::custom(format!("body_b64 is not base64: {e}")))?,
        (None, None) => Vec::new(),
    };
    Ok(Body {
        len: body_len.unwrap_or(data.len() as u64),
        data,
        truncated: body_truncated,
    })
}

#[derive(Serialize)]
struct WireRequestRef<'a> {
    method: &'a str,
    uri: &'a str,
    version: &'a str,
    headers: &'a [(String, String)],
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_b64: Option<String>,
    body_len: u64,
    body_truncated: bool,
}

#[derive(Deserialize)]
struct WireRequest {
    method: String,
    uri: String,
    #[serde(default = "default_version")]
    version: String,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    body_b64: Option<String>,
    #[serde(default)]
    body_len: Option<u64>,
    #[serde(default)]
    body_truncated: bool,
}

#[derive(Serialize)]
struct WireResponseRef<'a> {
    status: u16,
    headers: &'a [(String, String)],
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_b64: Option<String>,
    body_len: u64,
    body_truncated: bool,
}

#[derive(Deserialize)]
struct WireResponse {
    status: u16,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    body_b64: Option<String>,
    #[serde(default)]
    body_len: Option<u64>,
    #[serde(default)]
    body_truncated: bool,
}

fn default_version() -> String {
    "HTTP/1.1".to_string()
}

impl Serialize for RecordedRequest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (body, body_b64) = wire_body(&self.body);
        WireRequestRef {
            method: &self.method,
            uri: &self.uri,
            version: &self.version,
            headers: &self.headers,
            body,
            body_b64,
            body_len: self.body.len,
            body_truncated: self.body.truncated,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for RecordedRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = WireRequest::deserialize(d)?;
        Ok(RecordedRequest {
            method: w.method,
            uri: w.uri,
            version: w.version,
            headers: w.headers,
            body: body_from_wire(w.body, w.body_b64, w.body_len, w.body_truncated)?,
        })
    }
}

impl Serialize for RecordedResponse {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (body, body_b64) = wire_body(&self.body);
        WireResponseRef {
            status: self.status,
            headers: &self.headers,
            body,
            body_b64,
            body_len: self.body.len,
            body_truncated: self.body.truncated,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for RecordedResponse {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = WireResponse::deserialize(d)?;
        Ok(RecordedResponse {
            status: w.status,
            headers: w.headers,
            body: body_from_wire(w.body, w.body_b64, w.body_len, w.body_truncated)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(body: Vec<u8>) -> Exchange {
        Exchange {
            id: 7,
            session: "sub:42".into(),
            conn: 3,
            started: "2026-11-26T10:00:00.123456789Z".parse().unwrap(),
            upstream: None,
            client: Some("127.0.0.1:5000".into()),
            request: RecordedRequest {
                method: "POST".into(),
                uri: "/api/v1/social/posts?x=1".into(),
                version: "HTTP/1.1".into(),
                headers: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
                body: Body::new(body),
            },
            response: Some(RecordedResponse {
                status: 201,
                headers: vec![],
                body: Body::new(b"{\"id\":1}".to_vec()),
            }),
            error: None,
            ttfb_us: 10,
            duration_us: 20,
        }
    }

    #[test]
    fn text_and_binary_bodies_round_trip() {
        for body in [b"{\"text\":\"hi\"}".to_vec(), vec![0xff, 0, 1, 2]] {
            let rec = Record::Exchange(sample(body));
            let line = serde_json::to_string(&rec).unwrap();
            assert!(line.starts_with("{\"type\":\"exchange\""));
            let back: Record = serde_json::from_str(&line).unwrap();
            assert_eq!(back, rec);
        }
    }

    #[test]
    fn text_body_is_a_plain_string_on_the_wire() {
        let line = serde_json::to_string(&sample(b"hello".to_vec())).unwrap();
        assert!(line.contains("\"body\":\"hello\""), "{line}");
        let line = serde_json::to_string(&sample(vec![0xff])).unwrap();
        assert!(line.contains("\"body_b64\":\"/w==\""), "{line}");
    }

    #[test]
    fn path_strips_query_and_origin() {
        let mut e = sample(vec![]);
        assert_eq!(e.path(), "/api/v1/social/posts");
        e.request.uri = "https://api.corevia.app/api/v1/feed?limit=2".into();
        assert_eq!(e.path(), "/api/v1/feed");
    }
}
