//! The session pool: journals read and grouped into sessions, each turned
//! into a script of steps (when, which endpoint, which target), with the
//! endpoint table, role pools, journal checksums and the production guard.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tapedeck_analyze::report::JournalRef;
use tapedeck_sessions::{
    group_sessions, EndpointNamer, Exchange, GroupOptions, Profile, SessionKey,
};

use crate::config::{normalize_origin, Target};
use crate::correlation::Session;
use crate::Error;

/// One request of a script.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// Offset from the session's first request, as recorded.
    pub offset: Duration,
    /// Index into [`Pool::endpoints`].
    pub endpoint: u32,
    /// Index into the replay's targets.
    pub target: u16,
    /// The recorded status, if a response was recorded.
    pub recorded_status: Option<u16>,
}

/// Sessions of one role.
#[derive(Debug, Clone)]
pub struct RolePool {
    /// Role name.
    pub role: String,
    /// Indices into [`Pool::sessions`], in recorded order.
    pub sessions: Vec<usize>,
}

/// Everything replay needs from the journals.
#[derive(Debug)]
pub struct Pool {
    /// Sessions in recorded order (the slice correlation discovers on).
    pub sessions: Vec<Session>,
    /// One script per session, same order.
    pub scripts: Vec<Vec<Step>>,
    /// Sessions by role, roles in first-seen order.
    pub roles: Vec<RolePool>,
    /// `(name, method)` per endpoint index.
    pub endpoints: Vec<(String, String)>,
    /// The journal files with checksums.
    pub journals: Vec<JournalRef>,
    /// Recorded upstreams (`host:port`).
    pub recorded_upstreams: Vec<String>,
    /// Things to tell the user before the run (damaged journals, ...).
    pub warnings: Vec<String>,
}

/// Grouping options passed through to the sessions crate.
#[derive(Debug, Clone, Default)]
pub struct Grouping {
    /// `--session-key`.
    pub session_key: Option<String>,
    /// `--idle-split`.
    pub idle_split: Option<Duration>,
}

impl Pool {
    /// Reads and groups `journals`, maps each exchange to a target.
    pub fn load(
        journals: &[PathBuf],
        targets: &[Target],
        profile: &Profile,
        grouping: &Grouping,
    ) -> Result<Pool, Error> {
        let files = tapedeck_sessions::expand_paths(journals)?;
        let read = tapedeck_sessions::read_all(&files)?;
        let mut warnings = read.warnings();
        let journal_refs = files
            .iter()
            .map(|p| {
                let data = std::fs::read(p).map_err(|source| Error::Io {
                    path: p.clone(),
                    source,
                })?;
                Ok(JournalRef {
                    path: p.display().to_string(),
                    sha256: hex_digest(&data),
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let default_upstream = read.upstream().unwrap_or_default().to_string();
        let mut recorded_upstreams: Vec<String> = Vec::new();
        for f in &read.files {
            if let Some(o) = normalize_origin(&f.header.upstream) {
                if !recorded_upstreams.contains(&o) {
                    recorded_upstreams.push(o);
                }
            }
        }
        for ex in &read.exchanges {
            if let Some(o) = ex.upstream.as_deref().and_then(normalize_origin) {
                if !recorded_upstreams.contains(&o) {
                    recorded_upstreams.push(o);
                }
            }
        }
        let sessions = group(read.exchanges, profile, grouping)?;
        if sessions.is_empty() {
            return Err(Error::Usage(format!(
                "{}: no recorded exchanges to replay",
                files
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let mut endpoints: Vec<(String, String)> = Vec::new();
        let mut endpoint_index: HashMap<(String, String), u32> = HashMap::new();
        let mut scripts = Vec::with_capacity(sessions.len());
        let mut unmapped: Vec<String> = Vec::new();
        let namer = EndpointNamer::new(profile);
        for s in &sessions {
            let first = s.exchanges.first().map(|e| e.started);
            let mut steps = Vec::with_capacity(s.exchanges.len());
            for ex in &s.exchanges {
                let name = namer.name(&ex.request.method, ex.path());
                let key = (name, ex.request.method.clone());
                let endpoint = *endpoint_index.entry(key.clone()).or_insert_with(|| {
                    endpoints.push(key);
                    (endpoints.len() - 1) as u32
                });
                let origin = ex.upstream.as_deref().unwrap_or(&default_upstream);
                let target = match pick_target(targets, origin) {
                    Some(t) => t,
                    None => {
                        if !unmapped.iter().any(|u| u == origin) {
                            unmapped.push(origin.to_string());
                        }
                        0
                    }
                };
                let offset = first
                    .and_then(|f| (ex.started - f).to_std().ok())
                    .unwrap_or_default();
                steps.push(Step {
                    offset,
                    endpoint,
                    target,
                    recorded_status: ex.status(),
                });
            }
            scripts.push(steps);
        }
        if !unmapped.is_empty() {
            return Err(Error::Usage(format!(
                "--target: no target for recorded origin {} (add --target ORIGIN=URL or a plain --target URL)",
                unmapped.join(", ")
            )));
        }
        let mut roles: Vec<RolePool> = Vec::new();
        for (i, s) in sessions.iter().enumerate() {
            match roles.iter_mut().find(|r| r.role == s.role) {
                Some(r) => r.sessions.push(i),
                None => roles.push(RolePool {
                    role: s.role.clone(),
                    sessions: vec![i],
                }),
            }
        }
        warnings.retain(|w| !w.is_empty());
        Ok(Pool {
            sessions,
            scripts,
            roles,
            endpoints,
            journals: journal_refs,
            recorded_upstreams,
            warnings,
        })
    }

    /// Refuses targets that point at a recorded upstream (production).
    pub fn guard(&self, targets: &[Target]) -> Result<(), Error> {
        for t in targets {
            let hp = format!("{}:{}", t.host.to_ascii_lowercase(), t.port);
            if self.recorded_upstreams.contains(&hp) {
                return Err(Error::Usage(format!(
                    "--target {}: this is the upstream the journals were recorded against; refusing to load-test it (pass --allow-recorded-host if you mean it)",
                    t.url()
                )));
            }
        }
        Ok(())
    }

    /// The role pool named `role`.
    pub fn role(&self, role: &str) -> Option<&RolePool> {
        self.roles.iter().find(|r| r.role == role)
    }
}

/// The target for exchanges recorded against `origin`: the one mapped to
/// that origin, else the one without an origin.
fn pick_target(targets: &[Target], origin: &str) -> Option<u16> {
    let norm = normalize_origin(origin);
    targets
        .iter()
        .position(|t| t.origin.is_some() && t.origin == norm)
        .or_else(|| targets.iter().position(|t| t.origin.is_none()))
        .map(|i| i as u16)
}

fn hex_digest(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Groups exchanges into sessions (sessions crate), as the correlation
/// module's session type.
fn group(
    exchanges: Vec<Exchange>,
    profile: &Profile,
    grouping: &Grouping,
) -> Result<Vec<Session>, Error> {
    let mut opts = GroupOptions::default();
    if let Some(key) = &grouping.session_key {
        opts.key = key.parse::<SessionKey>()?;
    }
    if let Some(idle) = grouping.idle_split {
        opts.idle_split = idle;
    }
    Ok(group_sessions(exchanges, &opts, profile)
        .into_iter()
        .map(|s| Session {
            id: s.id,
            role: s.role,
            user: s.user,
            exchanges: s.exchanges,
        })
        .collect())
}
