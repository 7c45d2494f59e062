//! Rule discovery: one pass over each recorded session, in order, matching
//! the values every response hands out against the values later requests
//! send, and turning every match into a hole in a per-request template.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use tapedeck_sessions::{EndpointNamer, Exchange};

use super::identity::{self, Field, RecordedJwt};
use super::rewrite::{BodyText, Fill, Hole, RequestPlan, SessionPlan, Text};
use super::rules_file::RulesFile;
use super::shape::{self, Strength};
use super::spots::{self, Area, Place, Produced, Source, Spot};
use super::{origin_form, Rule, RuleKind};

/// At most this many sources are tried for one sink at run time (the most
/// recent first).
const MAX_CANDIDATES: usize = 4;

/// What discovery needs besides the sessions.
pub(crate) struct Context<'a> {
    pub namer: &'a EndpointNamer,
    pub rules_file: Option<&'a RulesFile>,
    pub credentials: bool,
    pub jwt_secret: bool,
}

/// A rule's identity in the listing: kind, source endpoint, source, sink
/// endpoint, sink.
type RuleKey = (RuleKind, String, String, String, String);

/// Uses, sessions, an example value, and the last session counted.
type RuleCounts = (u64, u64, String, usize);

/// Rules aggregated over sessions, keyed for the listing.
#[derive(Default)]
pub(crate) struct RuleTable {
    rules: BTreeMap<RuleKey, RuleCounts>,
}

impl RuleTable {
    fn count(&mut self, kind: RuleKind, key: [&str; 4], session: usize, example: &str) {
        let entry = self
            .rules
            .entry((
                kind,
                key[0].to_string(),
                key[1].to_string(),
                key[2].to_string(),
                key[3].to_string(),
            ))
            .or_insert_with(|| (0, 0, example.to_string(), usize::MAX));
        entry.0 += 1;
        if entry.3 != session {
            entry.1 += 1;
            entry.3 = session;
        }
    }

    /// The rules, most used first.
    pub(crate) fn into_rules(self) -> Vec<Rule> {
        let mut rules: Vec<Rule> = self
            .rules
            .into_iter()
            .map(
                |((kind, se, s, ke, k), (uses, sessions, example, _))| Rule {
                    kind,
                    source_endpoint: se,
                    source: s,
                    sink_endpoint: ke,
                    sink: k,
                    uses,
                    sessions,
                    example: shorten(&example),
                },
            )
            .collect();
        rules.sort_by(|a, b| b.uses.cmp(&a.uses).then_with(|| a.kind.cmp(&b.kind)));
        rules
    }
}

fn shorten(v: &str) -> String {
    if v.chars().count() <= 24 {
        v.to_string()
    } else {
        let head: String = v.chars().take(20).collect();
        format!("{head}…")
    }
}

/// A value a response produced, as a candidate for later sinks.
struct Candidate {
    slot: u32,
    exchange: usize,
    strength: Strength,
    id_named: bool,
    forced: bool,
    depth: usize,
}

/// Builds the plan of one session and counts its rules into `table`.
pub(crate) fn session_plan(
    index: usize,
    exchanges: &[Exchange],
    cx: &Context<'_>,
    table: &mut RuleTable,
) -> SessionPlan {
    let names: Vec<String> = exchanges
        .iter()
        .map(|e| cx.namer.name(&e.request.method, e.path()))
        .collect();
    let mut slots: Vec<(usize, Source)> = Vec::new();
    let mut used: Vec<bool> = Vec::new();
    let mut producers: HashMap<String, Vec<Candidate>> = HashMap::new();
    let mut registered: Vec<String> = Vec::new();
    let mut jwts: Vec<RecordedJwt> = Vec::new();
    let mut jwt_index: HashMap<String, u32> = HashMap::new();
    let mut requests = Vec::with_capacity(exchanges.len());
    let mut redacted_login = false;
    let mut spots_buf = Vec::new();
    let mut produced_buf = Vec::new();

    for (e, ex) in exchanges.iter().enumerate() {
        let req = &ex.request;
        let uri = origin_form(&req.uri);
        let body_text = if req.body.truncated {
            None
        } else {
            std::str::from_utf8(&req.body.data).ok()
        };
        spots_buf.clear();
        spots::spots(uri, &req.headers, body_text.unwrap_or(""), &mut spots_buf);
        let path = ex.path();
        let has_password = spots_buf
            .iter()
            .any(|s| s.place.field().and_then(Field::of) == Some(Field::Password));
        let is_post = req.method.eq_ignore_ascii_case("POST");
        let login = is_post && has_password && identity::is_login_path(path);
        let register = is_post && has_password && identity::is_register_path(path);

        let mut holes: Vec<(Area, Hole)> = Vec::new();
        for spot in &spots_buf {
            let field = spot.place.field().and_then(Field::of);
            if let (true, Some(f)) = (register, field) {
                if f != Field::Password {
                    let i = registered_index(&mut registered, &spot.value);
                    holes.push(hole(spot, Fill::Registered(i)));
                    table.count(
                        RuleKind::Registration,
                        [
                            "",
                            "name made unique per VU and loop",
                            &names[e],
                            &spot.place.text(),
                        ],
                        index,
                        &spot.value,
                    );
                }
                continue;
            }
            if let (true, Some(f)) = (login, field) {
                if let Some(i) = registered.iter().position(|r| *r == spot.value) {
                    holes.push(hole(spot, Fill::Registered(i as u32)));
                    continue;
                }
                if f == Field::Password && registered_login(&spots_buf, &registered) {
                    continue;
                }
                if f == Field::Password && spot.value.starts_with("<redacted:") && !cx.credentials {
                    redacted_login = true;
                }
                if cx.credentials {
                    holes.push(hole(spot, Fill::Credential(f)));
                    table.count(
                        RuleKind::Credentials,
                        [
                            "",
                            &format!("{} of the VU's --credentials row", field_name(f)),
                            &names[e],
                            &spot.place.text(),
                        ],
                        index,
                        &spot.value,
                    );
                    continue;
                }
            }
            if let Some(cands) = producers.get(&spot.value) {
                let mut chosen: Vec<&Candidate> = cands
                    .iter()
                    .filter(|c| accepts(c, spot))
                    .filter(|c| {
                        let (pe, ps) = (
                            &names[slots[c.slot as usize].0],
                            slots[c.slot as usize].1.text(true),
                        );
                        let (se, sk) = (&names[e], spot.place.text());
                        let vetoed = cx.rules_file.is_some_and(|f| f.vetoes(pe, &ps, se, &sk));
                        let outside_add = c.forced
                            && c.strength == Strength::Weak
                            && !cx
                                .rules_file
                                .is_some_and(|f| f.add_allows(pe, &ps, se, &sk));
                        !vetoed && !outside_add
                    })
                    .collect();
                if !chosen.is_empty() {
                    // Sources whose field fits the sink best (`post_id` ->
                    // `post_id`, `id` -> `/posts/{id}`) beat accidental
                    // equals (`author_id` -> `/products/{id}`); then the
                    // most recent response, then the shallowest field.
                    let fit = |c: &Candidate| affinity(&slots[c.slot as usize].1, &spot.place);
                    let best_fit = chosen.iter().map(|c| fit(c)).max().unwrap_or(0);
                    chosen.retain(|c| fit(c) == best_fit);
                    chosen.sort_by(|a, b| b.exchange.cmp(&a.exchange).then(a.depth.cmp(&b.depth)));
                    chosen.truncate(MAX_CANDIDATES);
                    let best = chosen[0];
                    let (pe, ps) = (
                        &names[slots[best.slot as usize].0],
                        slots[best.slot as usize].1.text(true),
                    );
                    table.count(
                        RuleKind::Value,
                        [pe, &ps, &names[e], &spot.place.text()],
                        index,
                        &spot.value,
                    );
                    for c in &chosen {
                        used[c.slot as usize] = true;
                    }
                    let list = chosen.iter().map(|c| c.slot).collect();
                    holes.push(hole(spot, Fill::Learned(list)));
                    continue;
                }
            }
            if let Some(i) = registered.iter().position(|r| *r == spot.value) {
                holes.push(hole(spot, Fill::Registered(i as u32)));
                continue;
            }
            if cx.jwt_secret && spot.place.is_bearer() {
                if let Some(jwt) = RecordedJwt::parse(&spot.value) {
                    let next = jwts.len() as u32;
                    let i = *jwt_index.entry(spot.value.clone()).or_insert_with(|| {
                        jwts.push(jwt);
                        next
                    });
                    holes.push(hole(spot, Fill::Jwt(i)));
                    table.count(
                        RuleKind::Jwt,
                        [
                            "",
                            "recorded claims, fresh iat/exp, --jwt-secret",
                            &names[e],
                            &spot.place.text(),
                        ],
                        index,
                        &spot.value,
                    );
                }
            }
        }

        if let Some(resp) = ex.response.as_ref().filter(|r| r.status < 400) {
            let json = resp.body.json();
            produced_buf.clear();
            spots::produced(&resp.headers, json.as_ref(), &mut produced_buf);
            for p in produced_buf.drain(..) {
                let forced = cx
                    .rules_file
                    .is_some_and(|f| f.adds(&names[e], &p.source.text(true)));
                // A weak value from a field that does not name an object can
                // never match; do not spend a slot on it.
                if !forced
                    && (p.strength == Strength::Ignored
                        || (p.strength == Strength::Weak && !p.id_named))
                {
                    continue;
                }
                let Produced {
                    source,
                    value,
                    strength,
                    id_named,
                } = p;
                let slot = slots.len() as u32;
                let depth = match &source {
                    Source::Json(path) => path.len(),
                    _ => 0,
                };
                slots.push((e, source));
                used.push(false);
                producers.entry(value).or_default().push(Candidate {
                    slot,
                    exchange: e,
                    strength,
                    id_named,
                    forced,
                    depth,
                });
            }
        }
        requests.push(build_request(ex, uri, body_text, holes));
    }

    // Keep only the slots some sink reads, numbered densely.
    let mut remap = vec![u32::MAX; slots.len()];
    let mut next = 0u32;
    for (i, u) in used.iter().enumerate() {
        if *u {
            remap[i] = next;
            next += 1;
        }
    }
    for (i, (e, source)) in slots.into_iter().enumerate() {
        if remap[i] != u32::MAX {
            requests[e].learn.push((remap[i], source));
        }
    }
    for r in &mut requests {
        r.learn_json = r.learn.iter().any(|(_, s)| matches!(s, Source::Json(_)));
        r.remap(&remap);
    }
    SessionPlan {
        slots: next as usize,
        registered,
        jwts,
        requests,
        redacted_login,
    }
}

fn registered_index(registered: &mut Vec<String>, value: &str) -> u32 {
    match registered.iter().position(|r| r == value) {
        Some(i) => i as u32,
        None => {
            registered.push(value.to_string());
            (registered.len() - 1) as u32
        }
    }
}

/// A login of a name this session registered keeps its recorded password.
fn registered_login(spots: &[Spot], registered: &[String]) -> bool {
    spots.iter().any(|s| {
        matches!(
            s.place.field().and_then(Field::of),
            Some(Field::Username | Field::Email)
        ) && registered.contains(&s.value)
    })
}

fn field_name(f: Field) -> &'static str {
    match f {
        Field::Username => "username",
        Field::Email => "username (as email)",
        Field::Password => "password",
    }
}

/// How well a source's field fits a sink: 2 for the same name (or
/// `post_id` for a segment after `posts`), 1 for a plain `id` or a
/// non-field place, 0 for another id-named field.
fn affinity(source: &Source, sink: &Place) -> u8 {
    let Source::Json(path) = source else { return 1 };
    let Some(key) = path.iter().rev().find_map(|s| match s {
        spots::Step::Key(k) => Some(k.as_str()),
        spots::Step::Index(_) => None,
    }) else {
        return 1;
    };
    let plain = key.eq_ignore_ascii_case("id") || key.eq_ignore_ascii_case("uuid");
    let sink_key = match sink {
        Place::PathSegment { after: Some(c), .. } => {
            let one = c.strip_suffix('s').unwrap_or(c);
            let named = key.len() == one.len() + 3
                && key[..one.len()].eq_ignore_ascii_case(one)
                && (key.ends_with("_id") || key.ends_with("Id"));
            return if named { 2 } else { u8::from(plain) };
        }
        Place::Json(p) => p.iter().rev().find_map(|s| match s {
            spots::Step::Key(k) => Some(k.as_str()),
            spots::Step::Index(_) => None,
        }),
        Place::Query(k) | Place::Form(k) => Some(k.as_str()),
        _ => None,
    };
    match sink_key {
        Some(k) if k == key => 2,
        Some(_) => u8::from(plain || !shape::is_id_key(key)),
        None => 1,
    }
}

/// Strong values match anywhere; weak ones only from an id-named field
/// into a sink that names an object; forced ones (rules file) anywhere.
fn accepts(c: &Candidate, spot: &Spot) -> bool {
    match c.strength {
        Strength::Strong => true,
        Strength::Weak => c.forced || (c.id_named && spot.place.is_exact()),
        Strength::Ignored => c.forced,
    }
}

fn hole(spot: &Spot, fill: Fill) -> (Area, Hole) {
    (
        spot.area,
        Hole {
            range: spot.range.clone(),
            fill,
            encoding: spot.encoding,
        },
    )
}

fn build_request(
    ex: &Exchange,
    uri: &str,
    body_text: Option<&str>,
    holes: Vec<(Area, Hole)>,
) -> RequestPlan {
    let req = &ex.request;
    let mut uri_holes = Vec::new();
    let mut header_holes: Vec<Vec<Hole>> = vec![Vec::new(); req.headers.len()];
    let mut body_holes = Vec::new();
    for (area, h) in holes {
        match area {
            Area::Uri => uri_holes.push(h),
            Area::Header(i) => header_holes[i].push(h),
            Area::Body => body_holes.push(h),
        }
    }
    let headers = req
        .headers
        .iter()
        .zip(header_holes)
        .map(|((n, v), h)| (n.clone(), Text::new(v.clone(), h)))
        .collect();
    let body = match body_text {
        Some(text) if !body_holes.is_empty() => {
            BodyText::new(Bytes::from(text.to_string()), body_holes)
        }
        _ => BodyText::new(Bytes::copy_from_slice(&req.body.data), Vec::new()),
    };
    RequestPlan {
        method: req.method.clone(),
        uri: Text::new(uri.to_string(), uri_holes),
        headers,
        body,
        learn: Vec::new(),
        learn_json: false,
    }
}
