//! Run-time substitution: per-request templates with holes, filled from a
//! VU's live values.
//!
//! Everything that can be decided before the run is: which bytes of which
//! header, URI or body are replaced, from which slot, with which encoding.
//! `rewrite` copies the recorded text around the holes; `learn` reads the
//! sources a later hole needs from the live response.

use std::ops::Range;

use bytes::Bytes;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::identity::{Credential, Field, RecordedJwt};
use super::spots::{scan_json, unescape_inner, Encoding, Source};

/// Characters escaped in a path segment (RFC 3986 `pchar` keeps the rest).
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');
/// Characters escaped in a query or form value.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Everything precomputed for one recorded session.
#[derive(Debug, Default)]
pub(crate) struct SessionPlan {
    /// Live values a VU keeps for this session.
    pub slots: usize,
    /// Names the session registers (recorded values).
    pub registered: Vec<String>,
    /// Recorded tokens to re-sign.
    pub jwts: Vec<RecordedJwt>,
    /// One plan per exchange.
    pub requests: Vec<RequestPlan>,
    /// A login sends a password the capture redacted (and no
    /// `--credentials` replaces it): that login will fail.
    pub redacted_login: bool,
}

/// One request: templates and what to learn from its response.
#[derive(Debug)]
pub(crate) struct RequestPlan {
    pub method: String,
    pub uri: Text,
    pub headers: Vec<(String, Text)>,
    pub body: BodyText,
    /// Slots filled from this request's response.
    pub learn: Vec<(u32, Source)>,
    /// Some source is in the JSON body (parse it once).
    pub learn_json: bool,
}

impl RequestPlan {
    /// Renumbers learned slots after unused ones were dropped.
    pub(crate) fn remap(&mut self, remap: &[u32]) {
        let texts = std::iter::once(&mut self.uri.holes)
            .chain(self.headers.iter_mut().map(|(_, t)| &mut t.holes))
            .chain(std::iter::once(&mut self.body.holes));
        for holes in texts {
            for h in holes {
                if let Fill::Learned(list) = &mut h.fill {
                    for s in list.iter_mut() {
                        *s = remap[*s as usize];
                    }
                }
            }
        }
    }

    /// Whether anything in this request is substituted.
    pub(crate) fn has_holes(&self) -> bool {
        !self.uri.holes.is_empty()
            || !self.body.holes.is_empty()
            || self.headers.iter().any(|(_, t)| !t.holes.is_empty())
    }
}

/// Recorded text with holes.
#[derive(Debug)]
pub(crate) struct Text {
    pub recorded: String,
    pub holes: Vec<Hole>,
}

impl Text {
    /// Sorts holes and drops overlapping ones (the first wins).
    pub(crate) fn new(recorded: String, holes: Vec<Hole>) -> Text {
        let holes = disjoint(&recorded, holes);
        Text { recorded, holes }
    }
}

/// A recorded body with holes (only UTF-8 bodies have any).
#[derive(Debug)]
pub(crate) struct BodyText {
    pub recorded: Bytes,
    pub holes: Vec<Hole>,
}

impl BodyText {
    /// Like [`Text::new`]; holes need `recorded` to be UTF-8.
    pub(crate) fn new(recorded: Bytes, holes: Vec<Hole>) -> BodyText {
        let holes = match std::str::from_utf8(&recorded) {
            Ok(text) => disjoint(text, holes),
            Err(_) => Vec::new(),
        };
        BodyText { recorded, holes }
    }
}

/// Sorts holes and drops overlapping or out-of-range ones (the first
/// wins), so rendering can copy the text between them in one pass.
fn disjoint(text: &str, mut holes: Vec<Hole>) -> Vec<Hole> {
    holes.sort_by_key(|h| h.range.start);
    let mut end = 0;
    holes.retain(|h| {
        let keep = h.range.start >= end
            && h.range.end <= text.len()
            && text.is_char_boundary(h.range.start)
            && text.is_char_boundary(h.range.end);
        if keep {
            end = h.range.end;
        }
        keep
    });
    holes
}

/// One substituted value.
#[derive(Debug, Clone)]
pub(crate) struct Hole {
    pub range: Range<usize>,
    pub fill: Fill,
    pub encoding: Encoding,
}

/// Where a hole's live value comes from.
#[derive(Debug, Clone)]
pub(crate) enum Fill {
    /// Slots learned from live responses, most recent source first.
    Learned(Box<[u32]>),
    /// The VU's credentials row.
    Credential(Field),
    /// A name this session registers, made unique per VU and loop.
    Registered(u32),
    /// A recorded token, re-signed.
    Jwt(u32),
}

/// What a VU knows while replaying one session.
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub slots: Vec<Option<String>>,
    pub registered: Vec<String>,
    pub jwts: Vec<Option<String>>,
}

/// The fills a hole can draw on besides learned slots.
pub(crate) struct Identity<'a> {
    pub credential: Option<&'a Credential>,
    pub jwt_secret: Option<&'a [u8]>,
    pub jwts: &'a [RecordedJwt],
}

/// Counters of one rendering.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub substituted: u32,
    pub uncorrelated: u32,
}

/// Renders `text` with its holes filled.
pub(crate) fn render(
    recorded: &str,
    holes: &[Hole],
    live: &mut Live,
    id: &Identity<'_>,
    counts: &mut Counts,
) -> String {
    let mut out = String::with_capacity(recorded.len() + 64 * holes.len());
    let mut at = 0;
    for h in holes {
        out.push_str(&recorded[at..h.range.start]);
        at = h.range.end;
        let original = &recorded[h.range.clone()];
        match value(&h.fill, live, id) {
            Some(v) if safe(h.encoding, v) => {
                counts.substituted += 1;
                encode(&mut out, h.encoding, v);
            }
            Some(_) => out.push_str(original),
            None => {
                if matches!(h.fill, Fill::Learned(_)) {
                    counts.uncorrelated += 1;
                }
                out.push_str(original);
            }
        }
    }
    out.push_str(&recorded[at..]);
    out
}

fn value<'l>(fill: &Fill, live: &'l mut Live, id: &Identity<'l>) -> Option<&'l str> {
    match fill {
        Fill::Learned(list) => {
            let i = list
                .iter()
                .find(|&&s| live.slots.get(s as usize).is_some_and(Option::is_some))?;
            live.slots[*i as usize].as_deref()
        }
        Fill::Credential(f) => {
            let c = id.credential?;
            Some(match f {
                Field::Username | Field::Email => &c.username,
                Field::Password => &c.password,
            })
        }
        Fill::Registered(i) => live.registered.get(*i as usize).map(String::as_str),
        Fill::Jwt(i) => {
            let i = *i as usize;
            let secret = id.jwt_secret?;
            if live.jwts.len() <= i {
                live.jwts.resize(i + 1, None);
            }
            if live.jwts[i].is_none() {
                let now = chrono::Utc::now().timestamp();
                live.jwts[i] = Some(id.jwts.get(i)?.resign(secret, now));
            }
            live.jwts[i].as_deref()
        }
    }
}

/// Header values must not gain line breaks from a live value.
fn safe(encoding: Encoding, v: &str) -> bool {
    encoding != Encoding::Raw || !v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

fn encode(out: &mut String, encoding: Encoding, v: &str) {
    match encoding {
        Encoding::Raw => out.push_str(v),
        Encoding::PathSegment => out.extend(utf8_percent_encode(v, PATH_SEGMENT)),
        Encoding::Component => out.extend(utf8_percent_encode(v, COMPONENT)),
        Encoding::JsonString => push_json_inner(out, v),
        Encoding::JsonNumber => {
            if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
                out.push_str(v);
            } else {
                out.push('"');
                push_json_inner(out, v);
                out.push('"');
            }
        }
    }
}

fn push_json_inner(out: &mut String, v: &str) {
    if v.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push_str(v);
    } else {
        let quoted = serde_json::to_string(v).expect("a string always serializes");
        out.push_str(&quoted[1..quoted.len() - 1]);
    }
}

/// Fills the slots `plan` learns from a live response. JSON sources are
/// read in one scan of the body, without building a tree.
pub(crate) fn learn(
    plan: &RequestPlan,
    live: &mut Live,
    headers: &[(String, String)],
    body: &[u8],
) {
    if plan.learn_json {
        if let Ok(text) = std::str::from_utf8(body) {
            let slots = &mut live.slots;
            scan_json(text, &mut |path, range, string| {
                for (slot, source) in &plan.learn {
                    let Source::Json(p) = source else { continue };
                    if p.as_slice() != path {
                        continue;
                    }
                    let raw = &text[range.clone()];
                    let value = if string {
                        unescape_inner(raw)
                    } else {
                        Some(raw.to_string())
                    };
                    if let (Some(v), Some(s)) = (value, slots.get_mut(*slot as usize)) {
                        *s = Some(v);
                    }
                }
            });
        }
    }
    for (slot, source) in &plan.learn {
        if matches!(source, Source::Json(_)) {
            continue;
        }
        if let (Some(v), Some(s)) = (
            source.extract(headers, None),
            live.slots.get_mut(*slot as usize),
        ) {
            *s = Some(v);
        }
    }
}
