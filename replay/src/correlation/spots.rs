//! Where values sit: the places in a request a value can go (sinks) and
//! the places in a response a value can come from (sources).
//!
//! Sinks carry the exact byte range of the value in the URI, a header value
//! or the body, so substitution at run time is splicing, not re-parsing.

use std::fmt;
use std::ops::Range;

use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};

use super::shape::{self, Strength};

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum Step {
    /// Object member.
    Key(String),
    /// Array element.
    Index(usize),
}

/// A JSON path written the way the listing shows it: `$.items[3].id`, or
/// with `wildcard` every index as `[*]`.
pub(crate) fn json_path_text(path: &[Step], wildcard: bool) -> String {
    let mut out = String::from("$");
    for step in path {
        match step {
            Step::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Step::Index(_) if wildcard => out.push_str("[*]"),
            Step::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

/// Parses `$.a.b[2].c` (indices may be `[*]`, which matches any index).
pub(crate) fn parse_json_path(text: &str) -> Option<Vec<Option<Step>>> {
    let rest = text.strip_prefix('$').unwrap_or(text);
    let mut out = Vec::new();
    let mut chars = rest.char_indices().peekable();
    let bytes = rest;
    while let Some((i, c)) = chars.next() {
        match c {
            '.' => {
                let start = i + 1;
                let mut end = bytes.len();
                while let Some(&(j, d)) = chars.peek() {
                    if d == '.' || d == '[' {
                        end = j;
                        break;
                    }
                    chars.next();
                }
                let key = &bytes[start..end];
                if key.is_empty() {
                    return None;
                }
                out.push(Some(Step::Key(key.to_string())));
            }
            '[' => {
                let start = i + 1;
                let end = bytes[start..].find(']')? + start;
                let inner = &bytes[start..end];
                out.push(if inner == "*" {
                    None
                } else {
                    Some(Step::Index(inner.parse().ok()?))
                });
                while let Some(&(j, _)) = chars.peek() {
                    if j > end {
                        break;
                    }
                    chars.next();
                }
            }
            _ if i == 0 => {
                // A bare first key without `$.`.
                let mut end = bytes.len();
                while let Some(&(j, d)) = chars.peek() {
                    if d == '.' || d == '[' {
                        end = j;
                        break;
                    }
                    chars.next();
                }
                out.push(Some(Step::Key(bytes[..end].to_string())));
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Where in a response a value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Source {
    /// A JSON body leaf.
    Json(Vec<Step>),
    /// The value of a `Set-Cookie` whose cookie has this name.
    SetCookie(String),
    /// The whole `Location` header.
    Location,
    /// One path segment of the `Location` header.
    LocationSegment(usize),
}

impl Source {
    /// The listing form; `wildcard` hides array indices.
    pub(crate) fn text(&self, wildcard: bool) -> String {
        match self {
            Source::Json(p) => format!("json {}", json_path_text(p, wildcard)),
            Source::SetCookie(n) => format!("set-cookie {n}"),
            Source::Location => "header location".to_string(),
            Source::LocationSegment(i) => format!("location segment {i}"),
        }
    }

    /// Reads this source from a live response.
    pub(crate) fn extract(
        &self,
        headers: &[(String, String)],
        json: Option<&serde_json::Value>,
    ) -> Option<String> {
        match self {
            Source::Json(path) => {
                let mut v = json?;
                for step in path {
                    v = match step {
                        Step::Key(k) => v.get(k.as_str())?,
                        Step::Index(i) => v.get(*i)?,
                    };
                }
                leaf_text(v)
            }
            Source::SetCookie(name) => headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
                .find_map(|(_, v)| {
                    let (n, val) = cookie_pair(v)?;
                    (n == name).then(|| val.to_string())
                }),
            Source::Location => {
                tapedeck_sessions::model::header(headers, "location").map(str::to_string)
            }
            Source::LocationSegment(i) => {
                let loc = tapedeck_sessions::model::header(headers, "location")?;
                location_segments(loc).nth(*i).map(str::to_string)
            }
        }
    }
}

/// The text of a JSON string or non-negative integer leaf.
pub(crate) fn leaf_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    }
}

/// A value a response hands out.
#[derive(Debug, Clone)]
pub(crate) struct Produced {
    /// Where it is.
    pub source: Source,
    /// The recorded value.
    pub value: String,
    /// How specific its shape is.
    pub strength: Strength,
    /// Whether the field naming it is id-like (`id`, `post_id`).
    pub id_named: bool,
}

/// Every value of interest in a recorded response.
pub(crate) fn produced(
    headers: &[(String, String)],
    json: Option<&serde_json::Value>,
    out: &mut Vec<Produced>,
) {
    if let Some(v) = json {
        let mut path = Vec::new();
        walk_json(v, &mut path, out, 0);
    }
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("set-cookie") {
            if let Some((n, val)) = cookie_pair(value) {
                out.push(Produced {
                    source: Source::SetCookie(n.to_string()),
                    value: val.to_string(),
                    strength: shape::of_str(val),
                    id_named: false,
                });
            }
        } else if name.eq_ignore_ascii_case("location") {
            // A whole location is specific unless it is as short as `/`.
            out.push(Produced {
                source: Source::Location,
                value: value.clone(),
                strength: if value.len() >= 8 {
                    Strength::Strong
                } else {
                    Strength::Ignored
                },
                id_named: false,
            });
            let mut prev: Option<&str> = None;
            for (i, seg) in location_segments(value).enumerate() {
                out.push(Produced {
                    source: Source::LocationSegment(i),
                    value: seg.to_string(),
                    strength: shape::of_str(seg),
                    // `/posts/17`: the segment after a collection name is an id.
                    id_named: prev.is_some_and(is_collection_segment),
                });
                prev = Some(seg);
            }
        }
    }
}

const MAX_DEPTH: usize = 32;

fn walk_json(v: &serde_json::Value, path: &mut Vec<Step>, out: &mut Vec<Produced>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match v {
        serde_json::Value::Object(map) => {
            for (k, child) in map {
                path.push(Step::Key(k.clone()));
                walk_json(child, path, out, depth + 1);
                path.pop();
            }
        }
        serde_json::Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                path.push(Step::Index(i));
                walk_json(child, path, out, depth + 1);
                path.pop();
            }
        }
        serde_json::Value::String(s) => {
            let strength = shape::of_str(s);
            if strength != Strength::Ignored {
                out.push(Produced {
                    source: Source::Json(path.clone()),
                    value: s.clone(),
                    strength,
                    id_named: last_key(path).is_some_and(shape::is_id_key),
                });
            }
        }
        serde_json::Value::Number(n) => {
            let strength = shape::of_number(n);
            if strength != Strength::Ignored {
                out.push(Produced {
                    source: Source::Json(path.clone()),
                    value: n.to_string(),
                    strength,
                    id_named: last_key(path).is_some_and(shape::is_id_key),
                });
            }
        }
        _ => {}
    }
}

fn last_key(path: &[Step]) -> Option<&str> {
    path.iter().rev().find_map(|s| match s {
        Step::Key(k) => Some(k.as_str()),
        Step::Index(_) => None,
    })
}

/// `name=value` of a `Set-Cookie` or one `Cookie` pair.
fn cookie_pair(v: &str) -> Option<(&str, &str)> {
    let first = v.split(';').next()?;
    let (n, val) = first.split_once('=')?;
    let n = n.trim();
    (!n.is_empty()).then_some((n, val.trim()))
}

/// Path segments of a `Location` value (absolute URL or path).
fn location_segments(loc: &str) -> impl Iterator<Item = &str> {
    let path = match loc.find("://") {
        Some(i) => loc[i + 3..].find('/').map_or("", |j| &loc[i + 3 + j..]),
        None => loc,
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    path.split('/').filter(|s| !s.is_empty())
}

/// A segment naming a collection (`posts`, `products`), after which an id
/// follows: letters, `-` and `_`, no digits.
pub(crate) fn is_collection_segment(seg: &str) -> bool {
    !seg.is_empty()
        && seg
            .bytes()
            .all(|b| b.is_ascii_alphabetic() || b == b'-' || b == b'_')
}

// === sinks ===

/// Which text of the request a sink lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Area {
    /// The origin-form URI.
    Uri,
    /// The value of the header at this index.
    Header(usize),
    /// The body.
    Body,
}

/// How a live value is written into a sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// As is (headers, cookies).
    Raw,
    /// Percent-encoded as a path segment.
    PathSegment,
    /// Percent-encoded as a query or form value.
    Component,
    /// Inside a JSON string (escaped).
    JsonString,
    /// A bare JSON number (quoted if the live value is not a number).
    JsonNumber,
}

/// Where in a request a value goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Place {
    /// A header value, or the credentials after the scheme of an
    /// `Authorization` header (`Bearer xyz`, `Token xyz`).
    Header {
        /// Lower-case header name.
        name: String,
        /// The authorization scheme the value follows, e.g. `Bearer`.
        scheme: Option<String>,
    },
    /// A `Cookie` pair.
    Cookie(String),
    /// A path segment; `after` is the preceding segment.
    PathSegment {
        /// Index among non-empty segments.
        index: usize,
        /// The segment before it.
        after: Option<String>,
    },
    /// A query value.
    Query(String),
    /// A JSON body leaf.
    Json(Vec<Step>),
    /// A form body field.
    Form(String),
}

impl Place {
    /// An `Authorization: Bearer ...` token.
    pub(crate) fn is_bearer(&self) -> bool {
        matches!(self, Place::Header { scheme: Some(s), .. } if s.eq_ignore_ascii_case("bearer"))
    }

    /// The listing form.
    pub(crate) fn text(&self) -> String {
        match self {
            Place::Header {
                name,
                scheme: Some(_),
            } if self.is_bearer() => format!("header {name} (Bearer)"),
            Place::Header {
                name,
                scheme: Some(scheme),
            } => format!("header {name} ({scheme})"),
            Place::Header { name, .. } => format!("header {name}"),
            Place::Cookie(n) => format!("cookie {n}"),
            Place::PathSegment { index, .. } => format!("path segment {index}"),
            Place::Query(k) => format!("query {k}"),
            Place::Json(p) => format!("json {}", json_path_text(p, true)),
            Place::Form(k) => format!("form {k}"),
        }
    }

    /// The sink names an object exactly: a segment after a collection name
    /// or an id-named field.
    pub(crate) fn is_exact(&self) -> bool {
        match self {
            Place::PathSegment { after, .. } => after.as_deref().is_some_and(is_collection_segment),
            Place::Query(k) | Place::Form(k) => shape::is_id_key(k),
            Place::Json(p) => last_key(p).is_some_and(shape::is_id_key),
            Place::Header { .. } | Place::Cookie(_) => false,
        }
    }

    /// The field name, for identity fields (`username`, `password`).
    pub(crate) fn field(&self) -> Option<&str> {
        match self {
            Place::Json(p) if p.len() == 1 => last_key(p),
            Place::Form(k) => Some(k),
            _ => None,
        }
    }
}

/// One value in a request.
#[derive(Debug, Clone)]
pub(crate) struct Spot {
    /// The text it is in.
    pub area: Area,
    /// Its byte range there.
    pub range: Range<usize>,
    /// The value, decoded.
    pub value: String,
    /// Where it is.
    pub place: Place,
    /// How to write a replacement.
    pub encoding: Encoding,
}

/// Headers that never carry server-issued values.
const PLAIN_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "accept",
    "accept-encoding",
    "accept-language",
    "user-agent",
    "connection",
    "transfer-encoding",
    "te",
    "upgrade",
    "keep-alive",
    "cache-control",
    "pragma",
    "origin",
    "referer",
    "date",
];

/// Every value in a request: `uri` is the origin-form URI.
pub(crate) fn spots(uri: &str, headers: &[(String, String)], body: &str, out: &mut Vec<Spot>) {
    uri_spots(uri, out);
    for (i, (name, value)) in headers.iter().enumerate() {
        let lname = name.to_ascii_lowercase();
        if PLAIN_HEADERS.contains(&lname.as_str()) {
            continue;
        }
        if lname == "cookie" {
            let mut offset = 0;
            for pair in value.split(';') {
                let start = offset;
                offset += pair.len() + 1;
                let Some(eq) = pair.find('=') else { continue };
                let name = pair[..eq].trim();
                let raw = &pair[eq + 1..];
                let lead = raw.len() - raw.trim_start().len();
                let val = raw.trim();
                if name.is_empty() || val.is_empty() {
                    continue;
                }
                let s = start + eq + 1 + lead;
                out.push(Spot {
                    area: Area::Header(i),
                    range: s..s + val.len(),
                    value: val.to_string(),
                    place: Place::Cookie(name.to_string()),
                    encoding: Encoding::Raw,
                });
            }
            continue;
        }
        let (scheme, start) = match value.split_once(' ') {
            Some((scheme, _))
                if matches!(lname.as_str(), "authorization" | "proxy-authorization")
                    && !scheme.is_empty() =>
            {
                (Some(scheme.to_string()), scheme.len() + 1)
            }
            _ => (None, 0),
        };
        let val = value[start..].trim_end();
        if val.is_empty() {
            continue;
        }
        out.push(Spot {
            area: Area::Header(i),
            range: start..start + val.len(),
            value: val.to_string(),
            place: Place::Header {
                name: lname,
                scheme,
            },
            encoding: Encoding::Raw,
        });
    }
    let content_type = tapedeck_sessions::model::header(headers, "content-type").unwrap_or("");
    if content_type.contains("x-www-form-urlencoded") {
        pairs_spots(body, 0, Area::Body, out, Place::Form);
    } else if content_type.contains("json") || body.starts_with(['{', '[']) {
        json_spots(body, out);
    }
}

fn uri_spots(uri: &str, out: &mut Vec<Spot>) {
    let path_end = uri.find(['?', '#']).unwrap_or(uri.len());
    let path = &uri[..path_end];
    let mut index = 0;
    let mut offset = 0;
    let mut prev: Option<String> = None;
    for seg in path.split('/') {
        let start = offset;
        offset += seg.len() + 1;
        if seg.is_empty() {
            continue;
        }
        let value = percent_decode_str(seg).decode_utf8_lossy().into_owned();
        out.push(Spot {
            area: Area::Uri,
            range: start..start + seg.len(),
            value: value.clone(),
            place: Place::PathSegment {
                index,
                after: prev.take(),
            },
            encoding: Encoding::PathSegment,
        });
        prev = Some(value);
        index += 1;
    }
    if uri[path_end..].starts_with('?') {
        let qstart = path_end + 1;
        let qend = uri[qstart..].find('#').map_or(uri.len(), |j| qstart + j);
        pairs_spots(&uri[qstart..qend], qstart, Area::Uri, out, Place::Query);
    }
}

/// `a=1&b=2` pairs starting at byte `base` of their area.
fn pairs_spots(
    text: &str,
    base: usize,
    area: Area,
    out: &mut Vec<Spot>,
    place: fn(String) -> Place,
) {
    let mut offset = 0;
    for pair in text.split('&') {
        let start = offset;
        offset += pair.len() + 1;
        let Some(eq) = pair.find('=') else { continue };
        let raw = &pair[eq + 1..];
        if raw.is_empty() {
            continue;
        }
        let decode = |s: &str| {
            percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        let s = base + start + eq + 1;
        out.push(Spot {
            area,
            range: s..s + raw.len(),
            value: decode(raw),
            place: place(decode(&pair[..eq])),
            encoding: Encoding::Component,
        });
    }
}

fn json_spots(body: &str, out: &mut Vec<Spot>) {
    if serde_json::from_str::<serde::de::IgnoredAny>(body).is_err() {
        return;
    }
    scan_json(body, &mut |path, range, string| {
        let raw = &body[range.clone()];
        let (value, encoding) = if string {
            let Some(v) = unescape_inner(raw) else { return };
            (v, Encoding::JsonString)
        } else {
            (raw.to_string(), Encoding::JsonNumber)
        };
        out.push(Spot {
            area: Area::Body,
            range,
            value,
            place: Place::Json(path.to_vec()),
            encoding,
        });
    });
}

/// Called with the path, byte range and stringness of each JSON leaf.
pub(crate) type Visit<'a> = dyn FnMut(&[Step], Range<usize>, bool) + 'a;

/// Walks JSON text calling `visit(path, range, is_string)` for every string
/// leaf (range inside the quotes, still escaped) and every unsigned integer
/// leaf, without building a tree. Malformed input ends the walk early;
/// what was visited before stays valid.
pub(crate) fn scan_json(text: &str, visit: &mut Visit<'_>) {
    let mut scanner = Scanner {
        text,
        pos: 0,
        path: Vec::new(),
        visit,
    };
    scanner.value(0);
}

/// A position-keeping walk over JSON text.
struct Scanner<'a, 'v> {
    text: &'a str,
    pos: usize,
    path: Vec<Step>,
    visit: &'v mut Visit<'v>,
}

impl Scanner<'_, '_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// Returns the raw range of a string's contents (between the quotes).
    fn string(&mut self) -> Option<Range<usize>> {
        if self.peek() != Some(b'"') {
            return None;
        }
        self.pos += 1;
        let start = self.pos;
        loop {
            match self.peek()? {
                b'\\' => self.pos += 2,
                b'"' => {
                    let r = start..self.pos;
                    self.pos += 1;
                    return Some(r);
                }
                _ => self.pos += 1,
            }
        }
    }

    fn value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_ws();
        match self.peek()? {
            b'{' => {
                self.pos += 1;
                loop {
                    self.skip_ws();
                    match self.peek()? {
                        b'}' => {
                            self.pos += 1;
                            return Some(());
                        }
                        b',' => self.pos += 1,
                        _ => {
                            let r = self.string()?;
                            let key = unescape_inner(&self.text[r])?;
                            self.skip_ws();
                            if self.peek()? != b':' {
                                return None;
                            }
                            self.pos += 1;
                            self.path.push(Step::Key(key));
                            self.value(depth + 1)?;
                            self.path.pop();
                        }
                    }
                }
            }
            b'[' => {
                self.pos += 1;
                let mut i = 0;
                loop {
                    self.skip_ws();
                    match self.peek()? {
                        b']' => {
                            self.pos += 1;
                            return Some(());
                        }
                        b',' => self.pos += 1,
                        _ => {
                            self.path.push(Step::Index(i));
                            self.value(depth + 1)?;
                            self.path.pop();
                            i += 1;
                        }
                    }
                }
            }
            b'"' => {
                let r = self.string()?;
                (self.visit)(&self.path, r, true);
                Some(())
            }
            b'-' | b'0'..=b'9' => {
                let start = self.pos;
                while matches!(
                    self.peek(),
                    Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                ) {
                    self.pos += 1;
                }
                let text = &self.text[start..self.pos];
                if text.bytes().all(|b| b.is_ascii_digit()) {
                    (self.visit)(&self.path, start..self.pos, false);
                }
                Some(())
            }
            _ => {
                // true, false, null; anything else is malformed.
                let start = self.pos;
                while matches!(self.peek(), Some(b'a'..=b'z')) {
                    self.pos += 1;
                }
                (self.pos > start).then_some(())
            }
        }
    }
}

/// The value of a JSON string given its escaped contents.
pub(crate) fn unescape_inner(raw: &str) -> Option<String> {
    if !raw.contains('\\') {
        return Some(raw.to_string());
    }
    serde_json::from_str(&format!("\"{raw}\"")).ok()
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text(true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(uri: &str, headers: &[(&str, &str)], body: &str) -> Vec<Spot> {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let mut out = Vec::new();
        spots(uri, &headers, body, &mut out);
        out
    }

    #[test]
    fn request_spots_have_exact_ranges() {
        let uri = "/api/v1/social/posts/17/like?ref=abc%20d";
        let body = r#"{"post_id": 17, "text":"hi \"x\"", "tags":["a"]}"#;
        let headers = [
            ("Authorization", "Bearer tok123"),
            ("Cookie", "a=1; sid=xyz"),
            ("Content-Type", "application/json"),
        ];
        let spots = all(uri, &headers, body);
        let text = |s: &Spot| match s.area {
            Area::Uri => &uri[s.range.clone()],
            Area::Header(i) => &headers[i].1[s.range.clone()],
            Area::Body => &body[s.range.clone()],
        };
        let find = |v: &str| spots.iter().find(|s| s.value == v).unwrap();
        assert_eq!(text(find("17")), "17");
        assert_eq!(find("17").place.text(), "path segment 4");
        assert!(find("17").place.is_exact());
        assert_eq!(text(find("abc d")), "abc%20d");
        assert_eq!(text(find("tok123")), "tok123");
        assert_eq!(find("tok123").place.text(), "header authorization (Bearer)");
        assert_eq!(text(find("xyz")), "xyz");
        assert_eq!(text(find("hi \"x\"")), "hi \\\"x\\\"");
        let n = spots
            .iter()
            .find(|s| s.area == Area::Body && s.value == "17")
            .unwrap();
        assert_eq!(text(n), "17");
        assert_eq!(n.place.text(), "json $.post_id");
        assert!(n.place.is_exact());
        assert!(spots.iter().any(|s| s.place.text() == "json $.tags[*]"));
        assert!(!spots.iter().any(|s| s.value == "application/json"));
    }

    #[test]
    fn authorization_schemes() {
        let spots = all(
            "/",
            &[
                ("authorization", "bearer abc"),
                ("Authorization", "Token 9f8e7d"),
            ],
            "",
        );
        assert_eq!(spots[0].place.text(), "header authorization (Bearer)");
        assert!(spots[0].place.is_bearer());
        assert_eq!(
            (spots[1].value.as_str(), spots[1].range.clone()),
            ("9f8e7d", 6..12)
        );
        assert_eq!(spots[1].place.text(), "header authorization (Token)");
        assert!(!spots[1].place.is_bearer());
    }

    #[test]
    fn form_bodies() {
        let spots = all(
            "/login",
            &[("content-type", "application/x-www-form-urlencoded")],
            "username=al+ice&password=p%40ss",
        );
        let pw = spots
            .iter()
            .find(|s| s.place == Place::Form("password".into()))
            .unwrap();
        assert_eq!(pw.value, "p@ss");
        assert_eq!(pw.range, 25..31);
    }

    #[test]
    fn response_values() {
        let json: serde_json::Value = serde_json::from_str(
            r#"{"access_token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln","user":{"id":3,"ok":true},"items":[{"id":9}]}"#,
        )
        .unwrap();
        let headers = vec![
            (
                "Set-Cookie".to_string(),
                "sid=abcdef0123456789abcd; Path=/".to_string(),
            ),
            ("Location".to_string(), "/api/v1/posts/77".to_string()),
        ];
        let mut out = Vec::new();
        produced(&headers, Some(&json), &mut out);
        let texts: Vec<String> = out
            .iter()
            .map(|p| format!("{}={}", p.source.text(false), p.value))
            .collect();
        assert!(texts.contains(&"json $.user.id=3".to_string()), "{texts:?}");
        assert!(texts.contains(&"json $.items[0].id=9".to_string()));
        assert!(texts.contains(&"set-cookie sid=abcdef0123456789abcd".to_string()));
        assert!(texts.contains(&"location segment 3=77".to_string()));
        assert!(!texts.iter().any(|t| t.contains("user.ok")));
        for p in &out {
            assert_eq!(
                p.source.extract(&headers, Some(&json)).as_deref(),
                Some(p.value.as_str())
            );
        }
        assert!(out.iter().find(|p| p.value == "77").unwrap().id_named);
    }

    proptest::proptest! {
        /// Any text, JSON or not, ends the scan without a panic, and every
        /// visited range lies on character boundaries of the text.
        #[test]
        fn scanning_any_text_terminates(text in "[\\[\\]{}\":,a-z0-9\\\\ é@.-]{0,64}") {
            let mut ranges = Vec::new();
            scan_json(&text, &mut |_, r, _| ranges.push(r));
            for r in ranges {
                proptest::prop_assert!(text.get(r).is_some());
            }
            let mut out = Vec::new();
            spots("/a/b?c=d", &[("content-type".into(), "application/json".into())], &text, &mut out);
        }
    }

    #[test]
    fn malformed_json_ends_the_scan() {
        for text in ["[@]", "{\"a\":@}", "[1,", "{\"a", "\"\\"] {
            scan_json(text, &mut |_, _, _| {});
        }
    }

    #[test]
    fn json_paths_parse() {
        assert_eq!(
            parse_json_path("$.items[*].id"),
            Some(vec![
                Some(Step::Key("items".into())),
                None,
                Some(Step::Key("id".into()))
            ])
        );
        assert_eq!(
            parse_json_path("access_token"),
            Some(vec![Some(Step::Key("access_token".into()))])
        );
        assert_eq!(
            parse_json_path("$.a[2]"),
            Some(vec![Some(Step::Key("a".into())), Some(Step::Index(2))])
        );
        assert_eq!(parse_json_path("$.a[x]"), None);
    }
}
