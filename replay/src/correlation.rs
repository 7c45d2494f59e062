//! Correlation: recorded values that must be replaced by live ones.
//!
//! A recorded session is full of values the server handed out: the token
//! from login, the id of the post just created, the ids of the feed items
//! the user then liked. Sent verbatim to another server (or as many copies
//! of the same user) they are wrong, and the replay would report 401s and
//! 404s that are not regressions. This module makes them right without a
//! script:
//!
//! - **Discovery** ([`Correlation::discover`]), before the run: each
//!   session is walked in order; every value a response hands out (JSON
//!   strings and integers of a telling shape: tokens, UUIDs, long hex, large
//!   numbers; `Set-Cookie` values; `Location` headers and their segments)
//!   that reappears in a later request of the same session (a header,
//!   inside `Bearer ...`, a cookie, a path segment, a query value, a JSON or
//!   form body field) becomes a rule. Small numbers and short strings match
//!   by accident, so they count only on an exact location match: an
//!   id-named field (`id`, `post_id`) feeding a path segment after a
//!   collection name (`/posts/17`) or an id-named field. Array elements
//!   map by position: the like of the 4th post of a recorded feed goes to
//!   the 4th post of the live feed.
//! - **Run time**: each VU keeps its own live values, learned from its own
//!   responses at the positions the rules name ([`Correlation::learn`]),
//!   and [`Correlation::rewrite`] splices them into precomputed templates.
//!   A value whose live counterpart is missing (the producing request
//!   failed) is sent as recorded and counted in [`Outgoing::uncorrelated`].
//! - **Identity** per VU (`--credentials`, registration suffixes,
//!   `--jwt-secret`): see the `identity` module's notes, repeated in
//!   [`IDENTITY_HELP`].
//! - **Rules file** (`--correlation FILE`) adds and vetoes rules; its format
//!   is [`RULES_FILE_HELP`].

use std::path::PathBuf;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tapedeck_sessions::{Outcome, Profile, RecordedRequest};

use crate::Error;

/// The `--correlation FILE` format, for `--help` texts.
macro_rules! rules_file_format {
    () => {
        concat!(
            "Rules file (--correlation FILE), JSON:\n",
            "  {\"add\":  [{\"source_endpoint\": \"Login\", \"source\": \"json $.user.username\"}],\n",
            "   \"veto\": [{\"source\": \"json $.items[*].author_id\", \"sink\": \"path segment 4\"},\n",
            "            {\"sink_endpoint\": \"Log Food\"}]}\n",
            "Fields: source_endpoint, source, sink_endpoint, sink; absent or \"*\" matches anything;\n",
            "array indices match any element. `add` correlates every value of a source whatever\n",
            "its shape; `veto` drops every discovered rule it matches. Sources and sinks are\n",
            "written as `tapedeck sessions correlations` prints them."
        )
    };
}

/// The `--correlation FILE` format (for the `--help` of commands taking it).
pub const RULES_FILE_HELP: &str = rules_file_format!();

mod discover;
mod identity;
mod rewrite;
mod rules_file;
mod shape;
mod spots;

use identity::{Credential, Pools};
use rewrite::{Counts, Identity, Live, SessionPlan};
use rules_file::RulesFile;

/// How replay gives each VU its own identity (for the `--help` of `tapedeck replay`).
pub const IDENTITY_HELP: &str = "Identity per VU: --credentials users.csv (username,password,role) rewrites login \
bodies to a row of the VU's role (the k-th VU of a role takes row k mod rows; fewer rows than VUs: rows are \
shared, with a warning); registration bodies get _vu{N}_{loop} appended to username and email local part; \
--jwt-secret S re-signs recorded HS256 bearer tokens the session did not obtain from a replayed login, keeping \
the recorded claims (sub must be a user the server knows) with fresh iat/exp.";

/// A recorded user session, as grouped by the sessions crate.
pub use tapedeck_sessions::Session;

/// What correlation does during a replay.
#[derive(Debug, Clone, Default)]
pub struct CorrelationOptions {
    /// False with `--no-correlation`: requests go out exactly as recorded.
    pub enabled: bool,
    /// `--correlation FILE`: rules to add or veto (JSON).
    pub rules_file: Option<PathBuf>,
    /// `--credentials users.csv` (`username,password,role`).
    pub credentials: Option<PathBuf>,
    /// `--jwt-secret S`: re-sign recorded HS256 tokens.
    pub jwt_secret: Option<String>,
}

/// Rules and per-request plans for one replay, shared by all VUs.
#[derive(Debug, Default)]
pub struct Correlation {
    plans: Vec<SessionPlan>,
    rules: Vec<Rule>,
    warnings: Vec<String>,
    pools: Option<Pools>,
    jwt_secret: Option<Vec<u8>>,
}

/// Where a request sits: session index into the replayed slice, exchange
/// index within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Index into the sessions given to [`Correlation::discover`].
    pub session: usize,
    /// Index into that session's exchanges.
    pub exchange: usize,
}

/// A live response as the engine received it.
#[derive(Debug, Clone, Copy)]
pub struct LiveResponse<'a> {
    /// Status code; 0 on transport error.
    pub status: u16,
    /// Header fields in order.
    pub headers: &'a [(String, String)],
    /// The body.
    pub body: &'a [u8],
}

/// A request ready to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Method.
    pub method: String,
    /// Origin-form `path?query` (absolute-form recorded URIs reduced).
    pub uri: String,
    /// Recorded headers after substitution; the engine drops hop-by-hop
    /// headers and sets `Host` and `Content-Length` for the target.
    pub headers: Vec<(String, String)>,
    /// Body after substitution.
    pub body: Bytes,
    /// Values replaced in this request.
    pub substituted: u32,
    /// Recorded values with no live value yet (sent as recorded).
    pub uncorrelated: u32,
}

/// What kind of substitution a rule makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    /// A value a response handed out, carried to a later request.
    Value,
    /// A login field from the VU's `--credentials` row.
    Credentials,
    /// A registration name made unique per VU and loop.
    Registration,
    /// A recorded token re-signed with `--jwt-secret`.
    Jwt,
}

/// One correlation rule, aggregated over the sessions it was found in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// What kind of substitution.
    pub kind: RuleKind,
    /// The endpoint whose response hands out the value (empty for identity
    /// rules).
    pub source_endpoint: String,
    /// Where in that response, e.g. `json $.access_token`.
    pub source: String,
    /// The endpoint whose requests carry it.
    pub sink_endpoint: String,
    /// Where in those requests, e.g. `header authorization (Bearer)`.
    pub sink: String,
    /// Recorded requests with a value substituted by this rule.
    pub uses: u64,
    /// Sessions the rule was found in.
    pub sessions: u64,
    /// One recorded value, shortened.
    pub example: String,
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let from = match self.kind {
            RuleKind::Value => format!("{}: {}", self.source_endpoint, self.source),
            RuleKind::Credentials => format!("credentials: {}", self.source),
            RuleKind::Registration => format!("registration: {}", self.source),
            RuleKind::Jwt => format!("re-signed: {}", self.source),
        };
        write!(
            f,
            "{:>6} uses {:>4} sessions  {from}  ->  {}: {}  (e.g. {})",
            self.uses, self.sessions, self.sink_endpoint, self.sink, self.example
        )
    }
}

/// Per-VU state: identity and the live values of the session it replays.
#[derive(Debug)]
pub struct VuState {
    vu: u64,
    credential: Option<Credential>,
    /// Sessions started so far (the loop counter of registration names).
    rounds: u64,
    session: Option<usize>,
    live: Live,
}

impl Correlation {
    /// Discovers rules from the sessions that will be replayed (same slice
    /// and order as the engine's pool: [`Position::session`] indexes it).
    /// Fails on an unreadable or invalid rules or credentials file.
    pub fn discover(sessions: &[Session], opts: &CorrelationOptions) -> Result<Self, Error> {
        Self::discover_with(sessions, opts, &Profile::builtin())
    }

    /// [`Correlation::discover`] naming endpoints with `profile`.
    pub fn discover_with(
        sessions: &[Session],
        opts: &CorrelationOptions,
        profile: &Profile,
    ) -> Result<Self, Error> {
        if !opts.enabled {
            return Ok(Correlation::default());
        }
        let rules_file = opts
            .rules_file
            .as_deref()
            .map(RulesFile::load)
            .transpose()?;
        let pools = opts.credentials.as_deref().map(Pools::load).transpose()?;
        let mut warnings = Vec::new();
        if let Some(pools) = &pools {
            for role in sessions.iter().map(|s| s.role.as_str()) {
                if pools.sizes().all(|(r, _)| r != role) {
                    let w = format!(
                        "credentials file has no row of role {role}: its VUs log in as recorded"
                    );
                    if !warnings.contains(&w) {
                        warnings.push(w);
                    }
                }
            }
        }
        let namer = tapedeck_sessions::EndpointNamer::new(profile);
        let cx = discover::Context {
            namer: &namer,
            rules_file: rules_file.as_ref(),
            credentials: pools.is_some(),
            jwt_secret: opts.jwt_secret.is_some(),
        };
        let mut table = discover::RuleTable::default();
        let plans: Vec<SessionPlan> = sessions
            .iter()
            .enumerate()
            .map(|(i, s)| discover::session_plan(i, &s.exchanges, &cx, &mut table))
            .collect();
        let redacted = plans.iter().filter(|p| p.redacted_login).count();
        if redacted > 0 {
            warnings.push(format!(
                "{redacted} sessions log in with a password the capture redacted: give --credentials users.csv (username,password,role) or their logins fail"
            ));
        }
        Ok(Correlation {
            plans,
            rules: table.into_rules(),
            warnings,
            pools,
            jwt_secret: opts.jwt_secret.as_ref().map(|s| s.as_bytes().to_vec()),
        })
    }

    /// The rules, most used first.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Warnings to show before the run.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Per-VU state for global VU number `vu` of role `role`; the k-th VU
    /// of a role created in this process takes credentials row `k mod rows`.
    pub fn new_vu(&self, vu: u64, role: &str) -> VuState {
        VuState {
            vu,
            credential: self.pools.as_ref().and_then(|p| p.take(role)),
            rounds: 0,
            session: None,
            live: Live::default(),
        }
    }

    /// Like [`Correlation::new_vu`], for the `nth` VU of `role` counted over
    /// the whole run (all shards): its credentials row is `nth mod rows`, so
    /// shards of one run never hand out the same row while rows last.
    pub fn new_vu_nth(&self, vu: u64, role: &str, nth: u64) -> VuState {
        VuState {
            vu,
            credential: self.pools.as_ref().and_then(|p| p.row(role, nth)),
            rounds: 0,
            session: None,
            live: Live::default(),
        }
    }

    /// A VU starts replaying session `session` (new or repeated): its live
    /// values of the previous session are forgotten.
    pub fn start_session(&self, vu: &mut VuState, session: usize) {
        let round = vu.rounds;
        vu.rounds += 1;
        vu.session = Some(session);
        let live = &mut vu.live;
        live.slots.clear();
        live.registered.clear();
        live.jwts.clear();
        if let Some(plan) = self.plans.get(session) {
            live.slots.resize(plan.slots, None);
            live.registered.extend(
                plan.registered
                    .iter()
                    .map(|r| identity::registered_name(r, vu.vu, round)),
            );
        }
    }

    /// The request to send for the recorded request `req` at `at`.
    pub fn rewrite(&self, vu: &mut VuState, at: Position, req: &RecordedRequest) -> Outgoing {
        let Some(plan) = self
            .plans
            .get(at.session)
            .and_then(|p| p.requests.get(at.exchange))
        else {
            return pass_through(req);
        };
        if vu.session != Some(at.session) {
            self.start_session(vu, at.session);
        }
        let id = Identity {
            credential: vu.credential.as_ref(),
            jwt_secret: self.jwt_secret.as_deref(),
            jwts: &self.plans[at.session].jwts,
        };
        let mut counts = Counts::default();
        let live = &mut vu.live;
        let uri = if plan.uri.holes.is_empty() {
            plan.uri.recorded.clone()
        } else {
            rewrite::render(&plan.uri.recorded, &plan.uri.holes, live, &id, &mut counts)
        };
        let headers = plan
            .headers
            .iter()
            .map(|(name, text)| {
                let value = if text.holes.is_empty() {
                    text.recorded.clone()
                } else {
                    rewrite::render(&text.recorded, &text.holes, live, &id, &mut counts)
                };
                (name.clone(), value)
            })
            .collect();
        let body = if plan.body.holes.is_empty() {
            plan.body.recorded.clone()
        } else {
            let text = std::str::from_utf8(&plan.body.recorded)
                .expect("bodies with holes are UTF-8 (checked when the plan was built)");
            Bytes::from(rewrite::render(
                text,
                &plan.body.holes,
                live,
                &id,
                &mut counts,
            ))
        };
        Outgoing {
            method: plan.method.clone(),
            uri,
            headers,
            body,
            substituted: counts.substituted,
            uncorrelated: counts.uncorrelated,
        }
    }

    /// Learns live values from the response to the request at `at` (also
    /// called for failed requests: nothing is learned from those).
    pub fn learn(&self, vu: &mut VuState, at: Position, live: &LiveResponse<'_>) {
        if vu.session != Some(at.session) || live.status == 0 || live.status >= 400 {
            return;
        }
        if let Some(plan) = self
            .plans
            .get(at.session)
            .and_then(|p| p.requests.get(at.exchange))
        {
            if !plan.learn.is_empty() {
                rewrite::learn(plan, &mut vu.live, live.headers, live.body);
            }
        }
    }

    /// Whether the request at `at` has anything substituted (for tests and
    /// the listing).
    pub fn substitutes(&self, at: Position) -> bool {
        self.plans
            .get(at.session)
            .and_then(|p| p.requests.get(at.exchange))
            .is_some_and(|r| r.has_holes())
    }
}

fn pass_through(req: &RecordedRequest) -> Outgoing {
    Outgoing {
        method: req.method.clone(),
        uri: origin_form(&req.uri).to_string(),
        headers: req.headers.clone(),
        body: Bytes::copy_from_slice(&req.body.data),
        substituted: 0,
        uncorrelated: 0,
    }
}

/// The origin-form part (`/path?query`) of a recorded URI.
fn origin_form(uri: &str) -> &str {
    match uri.find("://") {
        Some(i) => {
            let rest = &uri[i + 3..];
            rest.find('/').map_or("/", |j| &rest[j..])
        }
        None => uri,
    }
}

// === tapedeck sessions correlations ===

/// Flags of `tapedeck sessions correlations`.
#[derive(Debug, clap::Args)]
#[command(after_help = concat!(
    "Examples:\n",
    "  tapedeck sessions correlations journals/\n",
    "  tapedeck sessions correlations journals/*.jsonl.zst --json > rules.json\n",
    "  tapedeck sessions correlations journals/ --correlation my-rules.json\n\n",
    rules_file_format!()
))]
pub struct CorrelationsArgs {
    /// Journal files or directories of journals.
    #[arg(required = true, value_name = "JOURNAL")]
    pub journals: Vec<PathBuf>,
    /// Rules to add or veto (JSON, format below).
    #[arg(long = "correlation", value_name = "FILE")]
    pub correlation: Option<PathBuf>,
    /// Print the rules as JSON.
    #[arg(long)]
    pub json: bool,
    /// Application profile naming endpoints (default: the built-in CoreVia one).
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
}

/// Prints the correlation rules replay would apply to the journals.
pub fn run_correlations(args: CorrelationsArgs) -> Result<Outcome, Error> {
    // A bad rules file is reported before journals are read.
    if let Some(path) = &args.correlation {
        RulesFile::load(path)?;
    }
    let profile = Profile::load(args.profile.as_deref())?;
    let sessions = load_sessions(&args.journals, &profile)?;
    let opts = CorrelationOptions {
        enabled: true,
        rules_file: args.correlation.clone(),
        credentials: None,
        jwt_secret: None,
    };
    let correlation = Correlation::discover_with(&sessions, &opts, &profile)?;
    for w in correlation.warnings() {
        eprintln!("tapedeck: warning: {w}");
    }
    let exchanges: usize = sessions.iter().map(|s| s.exchanges.len()).sum();
    let substituted = sessions
        .iter()
        .enumerate()
        .map(|(s, sess)| {
            (0..sess.exchanges.len())
                .filter(|&e| {
                    correlation.substitutes(Position {
                        session: s,
                        exchange: e,
                    })
                })
                .count()
        })
        .sum::<usize>();
    let mut text = String::new();
    if args.json {
        let out = serde_json::json!({
            "sessions": sessions.len(),
            "exchanges": exchanges,
            "rewritten_requests": substituted,
            "rules": correlation.rules(),
        });
        text.push_str(&serde_json::to_string_pretty(&out).expect("rules always serialize"));
        text.push('\n');
    } else {
        text.push_str(&format!(
            "{} rules over {} sessions: {substituted} of {exchanges} requests get live values\n",
            correlation.rules().len(),
            sessions.len()
        ));
        for rule in correlation.rules() {
            text.push_str(&format!("{rule}\n"));
        }
    }
    // A closed pipe (`| head`) is the reader's choice, not an error.
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(Error::Usage(format!("writing the rules to stdout: {e}"))),
    }
    Ok(Outcome::Success)
}

/// Reads journals and groups their exchanges into sessions the way replay
/// does (recorded session keys, default idle split, roles from `profile`).
fn load_sessions(paths: &[PathBuf], profile: &Profile) -> Result<Vec<Session>, Error> {
    let files = tapedeck_sessions::expand_paths(paths)?;
    let journals = tapedeck_sessions::read_all(&files)?;
    for w in journals.warnings() {
        eprintln!("tapedeck: warning: {w}");
    }
    Ok(tapedeck_sessions::group_sessions(
        journals.exchanges,
        &tapedeck_sessions::GroupOptions::default(),
        profile,
    ))
}

#[cfg(test)]
mod tests;
