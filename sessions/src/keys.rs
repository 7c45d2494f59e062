//! Session keys: which credential identifies a user's visit, read from a
//! request (or handed out by a login response), and the capture-time keyer.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::model::{header, Exchange};
use crate::Error;

/// Prefix of keys derived from the client address and User-Agent, the
/// fallback for requests that carry no credential.
pub const CLIENT_KEY_PREFIX: &str = "client:";

/// How exchanges are grouped into sessions (`--session-key`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SessionKey {
    /// Use the key the capture proxy wrote (`Exchange::session`).
    #[default]
    Recorded,
    /// JWT `sub`, else bearer token, else session cookie, else client address + User-Agent.
    Auto,
    /// The value of this request header.
    Header(String),
    /// The value of this cookie.
    Cookie(String),
    /// This claim of the bearer JWT.
    Jwt(String),
}

impl FromStr for SessionKey {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::Usage(format!("--session-key {s:?}: {why}"));
        match s.split_once(':') {
            None if s == "recorded" => Ok(SessionKey::Recorded),
            None if s == "auto" => Ok(SessionKey::Auto),
            Some((kind, name)) => {
                if name.trim().is_empty() {
                    return Err(bad("the name after ':' is empty"));
                }
                let name = name.trim().to_string();
                match kind {
                    "header" => Ok(SessionKey::Header(name)),
                    "cookie" => Ok(SessionKey::Cookie(name)),
                    "jwt" => Ok(SessionKey::Jwt(name)),
                    _ => Err(bad(
                        "expected recorded, auto, header:NAME, cookie:NAME or jwt:CLAIM",
                    )),
                }
            }
            None => Err(bad(
                "expected recorded, auto, header:NAME, cookie:NAME or jwt:CLAIM",
            )),
        }
    }
}

impl std::fmt::Display for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionKey::Recorded => f.write_str("recorded"),
            SessionKey::Auto => f.write_str("auto"),
            SessionKey::Header(n) => write!(f, "header:{n}"),
            SessionKey::Cookie(n) => write!(f, "cookie:{n}"),
            SessionKey::Jwt(n) => write!(f, "jwt:{n}"),
        }
    }
}

/// Decodes a JWT's claims without verifying it; `None` if `token` is not a
/// JWT with a JSON object payload.
pub fn jwt_claims(token: &str) -> Option<Map<String, Value>> {
    let mut parts = token.trim().split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || payload.is_empty() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// The bearer token of a request, if any.
pub fn bearer_token(headers: &[(String, String)]) -> Option<&str> {
    let v = header(headers, "authorization")?.trim();
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// A claim as text (strings as is, numbers and booleans printed).
pub fn claim_text(claims: &Map<String, Value>, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Cookie names that usually carry a session.
fn is_session_cookie(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("sess") || n == "sid" || n.ends_with(".sid") || n.contains("token") || n == "auth"
}

/// `name=value` pairs of the request's `Cookie` headers.
fn request_cookies(headers: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| v.split(';'))
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.trim(), v.trim()))
        })
}

/// `name=value` of each `Set-Cookie` header of a response.
fn set_cookies(headers: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .filter_map(|(_, v)| {
            let first = v.split(';').next()?;
            let (k, v) = first.split_once('=')?;
            Some((k.trim(), v.trim()))
        })
}

/// A short stable label for a secret value: its SHA-256 prefix.
pub fn fingerprint(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    hex::encode(&digest[..6])
}

/// Values that are short and plain are shown as they are; anything that
/// might be a secret is fingerprinted.
fn label(value: &str) -> String {
    let plain = value.len() <= 24
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b));
    if plain {
        value.to_string()
    } else {
        fingerprint(value)
    }
}

/// Token-like string fields of a login response (`access_token`, `token`,
/// ..., at the top level or one object down).
pub fn handed_out_tokens(body: &Value) -> Vec<&str> {
    const NAMES: [&str; 7] = [
        "access_token",
        "accessToken",
        "token",
        "id_token",
        "jwt",
        "session_token",
        "sessionToken",
    ];
    let mut out = Vec::new();
    let Value::Object(top) = body else {
        return out;
    };
    let nested = top.values().filter_map(Value::as_object);
    for obj in std::iter::once(top).chain(nested) {
        for name in NAMES {
            if let Some(Value::String(s)) = obj.get(name) {
                if !s.is_empty() {
                    out.push(s.as_str());
                }
            }
        }
    }
    out
}

/// The body as JSON if it may hold a token field. Most responses cannot,
/// and skipping their parse keeps grouping fast on large journals.
pub fn token_json(body: &crate::model::Body) -> Option<Value> {
    let d = &body.data;
    let may =
        memchr::memmem::find(d, b"oken\"").is_some() || memchr::memmem::find(d, b"jwt\"").is_some();
    if may {
        body.json()
    } else {
        None
    }
}

/// The key an auto-keyed token gives: its JWT `sub`, else its fingerprint.
fn token_key(token: &str) -> String {
    match jwt_claims(token).and_then(|c| claim_text(&c, "sub")) {
        Some(sub) => format!("sub:{sub}"),
        None => format!("token:{}", fingerprint(token)),
    }
}

impl SessionKey {
    /// The key of the credential a request carries, if it carries one.
    pub fn credential(&self, ex: &Exchange) -> Option<String> {
        let headers = &ex.request.headers;
        match self {
            SessionKey::Recorded => None,
            SessionKey::Auto => {
                if let Some(token) = bearer_token(headers) {
                    return Some(token_key(token));
                }
                request_cookies(headers)
                    .find(|(n, v)| is_session_cookie(n) && !v.is_empty())
                    .map(|(n, v)| format!("cookie:{n}:{}", fingerprint(v)))
            }
            SessionKey::Header(name) => header(headers, name)
                .filter(|v| !v.is_empty())
                .map(|v| format!("header:{name}:{}", label(v))),
            SessionKey::Cookie(name) => request_cookies(headers)
                .find(|(n, v)| n == name && !v.is_empty())
                .map(|(_, v)| format!("cookie:{name}:{}", label(v))),
            SessionKey::Jwt(claim) => bearer_token(headers)
                .and_then(jwt_claims)
                .and_then(|c| claim_text(&c, claim))
                .map(|v| format!("{claim}:{}", label(&v))),
        }
    }

    /// The key of a credential the response hands out (a login), if any.
    pub fn handed_out(&self, ex: &Exchange) -> Option<String> {
        let resp = ex.response.as_ref()?;
        if !(200..400).contains(&resp.status) {
            return None;
        }
        match self {
            SessionKey::Recorded => None,
            SessionKey::Auto => {
                if let Some(body) = token_json(&resp.body) {
                    if let Some(t) = handed_out_tokens(&body).first() {
                        return Some(token_key(t));
                    }
                }
                set_cookies(&resp.headers)
                    .find(|(n, v)| is_session_cookie(n) && !v.is_empty())
                    .map(|(n, v)| format!("cookie:{n}:{}", fingerprint(v)))
            }
            SessionKey::Header(name) => header(&resp.headers, name)
                .filter(|v| !v.is_empty())
                .map(|v| format!("header:{name}:{}", label(v))),
            SessionKey::Cookie(name) => set_cookies(&resp.headers)
                .find(|(n, v)| n == name && !v.is_empty())
                .map(|(_, v)| format!("cookie:{name}:{}", label(v))),
            SessionKey::Jwt(claim) => {
                let body = token_json(&resp.body)?;
                handed_out_tokens(&body)
                    .into_iter()
                    .filter_map(jwt_claims)
                    .find_map(|c| claim_text(&c, claim))
                    .map(|v| format!("{claim}:{}", label(&v)))
            }
        }
    }
}

/// The fallback key: client address (without port) and User-Agent.
pub fn client_key(ex: &Exchange) -> String {
    let addr = ex.client.as_deref().unwrap_or("unknown");
    // `ip:port` or `[v6]:port`: the port changes per connection, the user does not.
    let ip = match addr.rsplit_once(':') {
        Some((ip, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !ip.is_empty() => ip,
        _ => addr,
    };
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    let ua = header(&ex.request.headers, "user-agent").unwrap_or("");
    format!("{CLIENT_KEY_PREFIX}{ip}:{}", &fingerprint(ua)[..8])
}

/// True for keys made by [`client_key`].
pub fn is_client_key(key: &str) -> bool {
    key.starts_with(CLIENT_KEY_PREFIX)
}

/// Assigns session keys at capture time, once each response is known.
///
/// It remembers, per client connection, the credential a login handed out,
/// so later uncredentialed requests on that connection stay in the session;
/// with [`with_idle_split`](Self::with_idle_split) a key idle for longer than
/// the split gets a `#2`, `#3`, ... suffix (a new visit).
#[derive(Debug, Clone)]
pub struct SessionKeyer {
    key: SessionKey,
    idle_split: Option<Duration>,
    /// Connection → the key its last login handed out.
    logins: HashMap<u64, String>,
    /// Key → (last activity, visit number).
    visits: HashMap<String, (DateTime<Utc>, u32)>,
}

/// Bound on remembered connections and keys: a long capture must not grow
/// without limit; forgetting old entries only loses stitching for them.
const KEYER_MEMORY: usize = 200_000;

impl SessionKeyer {
    /// A keyer for `key` (`Recorded` behaves like `Auto` at capture time).
    pub fn new(key: SessionKey) -> Self {
        let key = match key {
            SessionKey::Recorded => SessionKey::Auto,
            k => k,
        };
        SessionKeyer {
            key,
            idle_split: None,
            logins: HashMap::new(),
            visits: HashMap::new(),
        }
    }

    /// Also split a key's exchanges into visits after `idle` without activity.
    pub fn with_idle_split(mut self, idle: Duration) -> Self {
        self.idle_split = Some(idle);
        self
    }

    /// The session key of `ex`.
    pub fn assign(&mut self, ex: &Exchange) -> String {
        let base = if let Some(k) = self.key.credential(ex) {
            k
        } else if let Some(k) = self.key.handed_out(ex) {
            if self.logins.len() >= KEYER_MEMORY {
                self.logins.clear();
            }
            self.logins.insert(ex.conn, k.clone());
            k
        } else if let Some(k) = self.logins.get(&ex.conn) {
            k.clone()
        } else {
            client_key(ex)
        };
        let Some(idle) = self.idle_split else {
            return base;
        };
        let end = ex.ended();
        if self.visits.len() >= KEYER_MEMORY && !self.visits.contains_key(&base) {
            self.visits.clear();
        }
        let idle = chrono::Duration::from_std(idle).unwrap_or(chrono::Duration::MAX);
        let entry = self.visits.entry(base.clone()).or_insert((end, 1));
        if ex.started - entry.0 > idle {
            entry.1 += 1;
        }
        entry.0 = entry.0.max(end);
        if entry.1 == 1 {
            base
        } else {
            format!("{base}#{}", entry.1)
        }
    }
}
