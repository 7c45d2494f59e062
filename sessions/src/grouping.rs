//! Grouping exchanges into sessions (one user's visit) and giving each
//! session a role and, when known, a user.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::keys::{
    bearer_token, claim_text, client_key, handed_out_tokens, is_client_key, jwt_claims, token_json,
};
use crate::model::Exchange;
use crate::naming::EndpointNamer;
use crate::profile::Profile;
use crate::SessionKey;

/// How [`group_sessions`] keys and splits sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOptions {
    /// Which credential identifies a session.
    pub key: SessionKey,
    /// A gap longer than this starts a new session.
    pub idle_split: Duration,
}

impl Default for GroupOptions {
    fn default() -> Self {
        GroupOptions {
            key: SessionKey::Recorded,
            idle_split: Duration::from_secs(30 * 60),
        }
    }
}

/// One user's visit.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// Stable id: the session key, with `#2`, `#3`, ... for later visits.
    pub id: String,
    /// `student`, `trainer`, ... or the profile default.
    pub role: String,
    /// The JWT `sub` or the login username, when known.
    pub user: Option<String>,
    /// The exchanges, ordered by `(started, id)`.
    pub exchanges: Vec<Exchange>,
}

// === impl Session ===

impl Session {
    /// When the first request arrived.
    pub fn start(&self) -> DateTime<Utc> {
        self.exchanges
            .first()
            .map_or(DateTime::UNIX_EPOCH, |e| e.started)
    }

    /// When the last response ended.
    pub fn end(&self) -> DateTime<Utc> {
        self.exchanges
            .iter()
            .map(exchange_end)
            .max()
            .unwrap_or_else(|| self.start())
    }

    /// From the first request to the end of the last response.
    pub fn span(&self) -> Duration {
        (self.end() - self.start()).to_std().unwrap_or_default()
    }

    /// Request and response body bytes recorded on the wire.
    pub fn bytes(&self) -> u64 {
        self.exchanges.iter().fold(0u64, |acc, e| {
            acc.saturating_add(e.request.body.len)
                .saturating_add(e.response.as_ref().map_or(0, |r| r.body.len))
        })
    }
}

fn exchange_end(e: &Exchange) -> DateTime<Utc> {
    e.ended()
}

/// Groups exchanges into sessions: keyed by `opts.key` (uncredentialed
/// requests before a login on the same connection join the session the login
/// hands out), split after `opts.idle_split` of inactivity, and classified by
/// `profile`. Sessions are ordered by their first request; no exchange is
/// dropped.
pub fn group_sessions(
    mut exchanges: Vec<Exchange>,
    opts: &GroupOptions,
    profile: &Profile,
) -> Vec<Session> {
    exchanges.sort_by_key(|e| (e.started, e.id));
    let keys = assign_keys(&exchanges, &opts.key);

    // Group by key, keeping first-seen order.
    let mut order: Vec<String> = Vec::new();
    let mut groups: HashMap<String, Vec<Exchange>> = HashMap::new();
    for (ex, key) in exchanges.into_iter().zip(keys) {
        groups
            .entry(key.clone())
            .or_insert_with(|| {
                order.push(key);
                Vec::new()
            })
            .push(ex);
    }

    let idle = chrono::Duration::from_std(opts.idle_split).unwrap_or(chrono::Duration::MAX);
    let namer = EndpointNamer::new(profile);
    let mut sessions = Vec::new();
    let mut used_ids: HashMap<String, u32> = HashMap::new();
    for key in order {
        let exs = groups.remove(&key).expect("every key in order has a group");
        let mut visit = 0u32;
        let mut current: Vec<Exchange> = Vec::new();
        let mut last_end: Option<DateTime<Utc>> = None;
        let mut flush = |current: &mut Vec<Exchange>, visit: u32, sessions: &mut Vec<Session>| {
            if current.is_empty() {
                return;
            }
            let mut id = if visit <= 1 {
                key.clone()
            } else {
                format!("{key}#{visit}")
            };
            // Ids must be unique even if a recorded key already ends in `#n`.
            let n = used_ids.entry(id.clone()).or_insert(0);
            *n += 1;
            if *n > 1 {
                id = format!("{id}~{n}");
            }
            let exchanges = std::mem::take(current);
            let (role, user) = classify(&exchanges, profile, &namer);
            sessions.push(Session {
                id,
                role,
                user,
                exchanges,
            });
        };
        for ex in exs {
            let gap_too_long = last_end.is_some_and(|end| ex.started - end > idle);
            if current.is_empty() || gap_too_long {
                flush(&mut current, visit, &mut sessions);
                visit += 1;
            }
            let end = exchange_end(&ex);
            last_end = Some(last_end.map_or(end, |l| l.max(end)));
            current.push(ex);
        }
        flush(&mut current, visit, &mut sessions);
    }
    sessions.sort_by(|a, b| {
        let fa = a.exchanges.first().map(|e| (e.started, e.id));
        let fb = b.exchanges.first().map(|e| (e.started, e.id));
        fa.cmp(&fb)
    });
    sessions
}

/// One key per exchange (same order), with login stitching applied.
fn assign_keys(exchanges: &[Exchange], key: &SessionKey) -> Vec<String> {
    let mut keys = Vec::with_capacity(exchanges.len());
    // Connection → key its last login handed out.
    let mut logins: HashMap<u64, String> = HashMap::new();
    // Connection → exchanges with a client key waiting for a login.
    let mut pending: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, ex) in exchanges.iter().enumerate() {
        let (k, hands_out) = match key {
            SessionKey::Recorded => {
                let k = if ex.session.is_empty() {
                    client_key(ex)
                } else {
                    ex.session.clone()
                };
                let hands_out = !is_client_key(&k) && SessionKey::Auto.handed_out(ex).is_some();
                (k, hands_out)
            }
            _ => {
                if let Some(k) = key.credential(ex) {
                    (k, false)
                } else if let Some(k) = key.handed_out(ex) {
                    (k, true)
                } else if let Some(k) = logins.get(&ex.conn) {
                    (k.clone(), false)
                } else {
                    (client_key(ex), false)
                }
            }
        };
        if hands_out {
            for j in pending.remove(&ex.conn).unwrap_or_default() {
                keys[j] = k.clone();
            }
            logins.insert(ex.conn, k.clone());
        } else if is_client_key(&k) {
            pending.entry(ex.conn).or_default().push(i);
        }
        keys.push(k);
    }
    keys
}

/// The role and user of a session (DESIGN "Sessions and roles").
fn classify(
    exchanges: &[Exchange],
    profile: &Profile,
    namer: &EndpointNamer,
) -> (String, Option<String>) {
    let claim = profile.roles.jwt_claim.as_deref().unwrap_or("role");
    let mut jwt_role = None;
    let mut login_role = None;
    let mut sub = None;
    let mut username = None;
    let mut last_bearer: Option<&str> = None;
    for ex in exchanges {
        let mut tokens: Vec<String> = Vec::new();
        if let Some(t) = bearer_token(&ex.request.headers) {
            // A session repeats one token; decode it once.
            if last_bearer != Some(t) {
                tokens.push(t.to_string());
                last_bearer = Some(t);
            }
        }
        let resp_json = ex
            .response
            .as_ref()
            .filter(|r| (200..400).contains(&r.status))
            .and_then(|r| token_json(&r.body));
        let handed: Vec<String> = resp_json
            .as_ref()
            .map(|b| {
                handed_out_tokens(b)
                    .into_iter()
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        tokens.extend(handed.iter().cloned());
        for claims in tokens.iter().filter_map(|t| jwt_claims(t)) {
            if jwt_role.is_none() {
                jwt_role = claim_text(&claims, claim);
            }
            if sub.is_none() {
                sub = claim_text(&claims, "sub");
            }
        }
        // A login: a response handing out a credential.
        if !handed.is_empty() || SessionKey::Auto.handed_out(ex).is_some() {
            if let Some(body) = &resp_json {
                if login_role.is_none() {
                    login_role = login_field(body, profile);
                }
                if username.is_none() {
                    username = dotted_text(body, "user.username")
                        .or_else(|| dotted_text(body, "username"));
                }
            }
            if username.is_none() {
                if let Some(req) = ex.request.body.json() {
                    username = ["username", "email", "login"]
                        .iter()
                        .find_map(|f| dotted_text(&req, f));
                }
            }
        }
    }
    let role = jwt_role.or(login_role).or_else(|| {
        let rules = &profile.roles.trainer_if_any;
        if rules.is_empty() {
            return None;
        }
        exchanges
            .iter()
            .any(|ex| rules.contains(&namer.name(&ex.request.method, ex.path())))
            .then(|| "trainer".to_string())
    });
    let role = role.unwrap_or_else(|| profile.roles.default.clone());
    (role, sub.or(username))
}

fn login_field(body: &Value, profile: &Profile) -> Option<String> {
    match profile.roles.login_response_field.as_deref() {
        Some(field) => dotted_text(body, field),
        None => dotted_text(body, "role").or_else(|| dotted_text(body, "user.role")),
    }
}

/// The text at a dotted path (`user.role`) of a JSON value.
fn dotted_text(v: &Value, path: &str) -> Option<String> {
    let mut cur = v;
    for part in path.split('.') {
        cur = cur.get(part)?;
    }
    match cur {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
