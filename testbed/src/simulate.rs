//! Simulated CoreVia mobile clients: students and trainers that log in,
//! then use the app as the profile's `behaviour` describes.
//!
//! Each simulated user owns one keep-alive HTTP/1.1 connection, logs in
//! as a seeded user (most of them) or registers a fresh account and logs
//! in with it, then loops until the run time is over: pick a task by the
//! role's weights, run it, think. Likes and comments go to post ids the
//! user saw in its own feed (or posts it created), product details to ids
//! it saw while browsing, so the traffic carries values that come from
//! responses, as a real app's does. Every choice is drawn from a generator
//! seeded by `--seed` and the user's index.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, USER_AGENT};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rand::distributions::WeightedIndex;
use rand::prelude::Distribution;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tapedeck_sessions::profile::{Behaviour, Profile};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::server::{SEEDED_PASSWORD, SEEDED_STUDENTS, SEEDED_TRAINERS};
use crate::Error;

/// How long one request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a TCP connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Share of simulated users who register a fresh account.
const REGISTER_SHARE: f64 = 0.2;
/// Login attempts before a user gives up.
const LOGIN_ATTEMPTS: u32 = 3;
/// Pause after a transport failure before the next request.
const TRANSPORT_BACKOFF: Duration = Duration::from_millis(100);
/// Post and product ids a user remembers.
const MEMORY: usize = 100;

const USER_AGENTS: &[&str] = &[
    "CoreVia/2.3 (iPhone; iOS 17.1)",
    "CoreVia/2.3 (iPhone; iOS 16.6)",
    "CoreVia/2.3 (Android 14; Pixel 7)",
    "CoreVia/2.3 (Android 13; SM-S911B)",
];

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Base URL of the API, e.g. `http://127.0.0.1:8000`.
    pub target: String,
    /// Simulated students.
    pub students: u32,
    /// Simulated trainers.
    pub trainers: u32,
    /// How long the users keep working.
    pub run_time: Duration,
    /// Seed of every choice.
    pub seed: u64,
    /// Factor on the profile's think times (1.0 = as in the profile;
    /// tests use small factors to get many requests quickly).
    pub think_scale: f64,
}

impl SimConfig {
    /// The profile's default mix (45 students, 5 trainers) for 60 s.
    pub fn new(target: impl Into<String>) -> SimConfig {
        SimConfig {
            target: target.into(),
            students: 45,
            trainers: 5,
            run_time: Duration::from_secs(60),
            seed: 1,
            think_scale: 1.0,
        }
    }
}

/// Requests and errors (transport failures and statuses ≥ 400) of one
/// endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointCount {
    /// Requests sent.
    pub requests: u64,
    /// Of which failed.
    pub errors: u64,
}

/// What a simulation did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimSummary {
    /// Endpoint name → counts.
    pub per_endpoint: BTreeMap<String, EndpointCount>,
    /// Users started.
    pub users: u32,
    /// Users that logged in and worked.
    pub logged_in: u32,
    /// Users that registered a fresh account.
    pub registered: u32,
    /// Wall time of the whole run.
    pub elapsed: Duration,
}

impl SimSummary {
    /// Requests over all endpoints.
    pub fn requests(&self) -> u64 {
        self.per_endpoint.values().map(|c| c.requests).sum()
    }

    /// Errors over all endpoints.
    pub fn errors(&self) -> u64 {
        self.per_endpoint.values().map(|c| c.errors).sum()
    }
}

impl fmt::Display for SimSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} users ({} logged in, {} registered) in {:.1} s",
            self.users,
            self.logged_in,
            self.registered,
            self.elapsed.as_secs_f64()
        )?;
        writeln!(f, "{:<22} {:>9} {:>7}", "endpoint", "requests", "errors")?;
        for (name, count) in &self.per_endpoint {
            writeln!(f, "{:<22} {:>9} {:>7}", name, count.requests, count.errors)?;
        }
        write!(
            f,
            "{:<22} {:>9} {:>7}",
            "total",
            self.requests(),
            self.errors()
        )
    }
}

/// Where requests go.
#[derive(Debug, Clone)]
struct Target {
    /// `host:port` to connect to.
    connect: String,
    /// `Host` header value.
    authority: String,
    /// Path prefix of the base URL, without a trailing slash.
    prefix: String,
}

impl Target {
    fn parse(target: &str) -> Result<Target, Error> {
        let bad = |what: &str| Error::Target {
            target: target.to_string(),
            what: what.to_string(),
        };
        let url = url::Url::parse(target).map_err(|e| bad(&format!("not a URL ({e})")))?;
        if url.scheme() != "http" {
            return Err(bad("only http:// targets are supported"));
        }
        let host = url.host_str().ok_or_else(|| bad("no host"))?;
        let port = url.port_or_known_default().unwrap_or(80);
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        Ok(Target {
            connect: format!("{host}:{port}"),
            authority,
            prefix: url.path().trim_end_matches('/').to_string(),
        })
    }
}

/// One finished request, sent to the collector.
#[derive(Debug)]
struct Tick {
    endpoint: &'static str,
    failed: bool,
}

/// Runs `cfg.students + cfg.trainers` simulated users against
/// `cfg.target` for `cfg.run_time` and counts what they did.
pub async fn simulate(cfg: SimConfig) -> Result<SimSummary, Error> {
    if !(cfg.think_scale.is_finite() && cfg.think_scale >= 0.0) {
        return Err(Error::Usage(format!(
            "--think-scale {}: must be a number ≥ 0",
            cfg.think_scale
        )));
    }
    let target = Target::parse(&cfg.target)?;
    // Fail fast, with one clear line, when nothing listens.
    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&target.connect)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            return Err(Error::Target {
                target: cfg.target.clone(),
                what: e.to_string(),
            })
        }
        Err(_) => {
            return Err(Error::Target {
                target: cfg.target.clone(),
                what: "connect timed out".into(),
            })
        }
    }
    let profile = Profile::builtin();
    let started = Instant::now();
    let deadline = started + cfg.run_time;
    let (ticks, mut collected) = mpsc::unbounded_channel();
    let mut users = Vec::new();
    let total = cfg.students + cfg.trainers;
    for index in 0..total {
        let role = if index < cfg.students {
            SimRole::Student(index)
        } else {
            SimRole::Trainer(index - cfg.students)
        };
        let behaviour = profile
            .behaviour
            .get(role.name())
            .cloned()
            .unwrap_or_else(|| Behaviour {
                weight: 1.0,
                wait_s: [1.0, 3.0],
                tasks: BTreeMap::new(),
            });
        let rng = SmallRng::seed_from_u64(
            cfg.seed ^ u64::from(index + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let user = VirtualUser {
            role,
            seed: cfg.seed,
            think_scale: cfg.think_scale,
            behaviour,
            rng,
            target: target.clone(),
            sender: None,
            token: None,
            user_agent: USER_AGENTS[index as usize % USER_AGENTS.len()],
            seen_posts: Vec::new(),
            liked_posts: Vec::new(),
            seen_products: Vec::new(),
            ticks: ticks.clone(),
            deadline,
        };
        let stagger_max = (cfg.run_time / 10).min(Duration::from_secs(1));
        users.push(tokio::spawn(user.run(stagger_max)));
    }
    drop(ticks);
    let mut summary = SimSummary {
        users: total,
        ..SimSummary::default()
    };
    // Every request is bounded by REQUEST_TIMEOUT, so users end shortly
    // after the deadline; the margin covers one request in flight.
    let hard_stop = deadline + REQUEST_TIMEOUT + CONNECT_TIMEOUT + Duration::from_secs(1);
    for user in &mut users {
        match tokio::time::timeout_at(hard_stop, user).await {
            Ok(Ok(start)) => {
                summary.logged_in += u32::from(start.logged_in);
                summary.registered += u32::from(start.registered);
            }
            Ok(Err(_)) => {}
            Err(_) => break,
        }
    }
    // Past the hard stop nobody is waited for; aborting a finished task
    // does nothing.
    for user in &users {
        user.abort();
    }
    while let Ok(tick) = collected.try_recv() {
        let count = summary
            .per_endpoint
            .entry(tick.endpoint.to_string())
            .or_default();
        count.requests += 1;
        count.errors += u64::from(tick.failed);
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Role and index within the role.
#[derive(Debug, Clone, Copy)]
enum SimRole {
    Student(u32),
    Trainer(u32),
}

impl SimRole {
    fn name(self) -> &'static str {
        match self {
            SimRole::Student(_) => "student",
            SimRole::Trainer(_) => "trainer",
        }
    }
}

/// How a user's start went.
#[derive(Debug, Clone, Copy, Default)]
struct Start {
    logged_in: bool,
    registered: bool,
}

/// A response: status and parsed JSON (`Null` if the body was not JSON).
type Answer = Option<(StatusCode, Value)>;

/// One simulated app instance.
struct VirtualUser {
    role: SimRole,
    seed: u64,
    think_scale: f64,
    behaviour: Behaviour,
    rng: SmallRng,
    target: Target,
    sender: Option<SendRequest<Full<Bytes>>>,
    token: Option<String>,
    user_agent: &'static str,
    seen_posts: Vec<u64>,
    liked_posts: Vec<u64>,
    seen_products: Vec<u64>,
    ticks: mpsc::UnboundedSender<Tick>,
    deadline: Instant,
}

const POST_TEXTS: &[&str] = &[
    "Just finished my workout!",
    "Who else is training today?",
    "New PR on squats",
    "Rest day, but still walked 10k steps",
    "Trying the new meal plan this week",
];
const WORKOUTS: &[&str] = &["run", "cycling", "strength", "yoga", "swim", "hiit"];
const FOODS: &[&str] = &["oatmeal", "salad", "chicken rice", "smoothie", "eggs"];
const SEARCHES: &[&str] = &["plan", "running", "kettlebell", "meal"];

impl VirtualUser {
    async fn run(mut self, stagger_max: Duration) -> Start {
        let stagger = if stagger_max.is_zero() {
            Duration::ZERO
        } else {
            stagger_max.mul_f64(self.rng.gen::<f64>())
        };
        tokio::time::sleep_until((Instant::now() + stagger).min(self.deadline)).await;
        let mut start = Start::default();
        for _ in 0..LOGIN_ATTEMPTS {
            if Instant::now() >= self.deadline {
                return start;
            }
            if self.log_in(&mut start).await {
                start.logged_in = true;
                break;
            }
            self.think().await;
        }
        if !start.logged_in {
            return start;
        }
        let tasks: Vec<(String, f64)> = self
            .behaviour
            .tasks
            .iter()
            .filter(|(name, weight)| is_known_task(name) && **weight > 0.0)
            .map(|(name, weight)| (name.clone(), *weight))
            .collect();
        let Ok(choose) = WeightedIndex::new(tasks.iter().map(|(_, w)| *w)) else {
            return start;
        };
        // The app opens on the feed.
        if matches!(self.role, SimRole::Student(_)) {
            self.feed().await;
        }
        while Instant::now() < self.deadline {
            let task = tasks[choose.sample(&mut self.rng)].0.clone();
            self.run_task(&task).await;
            self.think().await;
        }
        start
    }

    /// Logs in as a seeded user or registers (then logs in); true once a
    /// token is held.
    async fn log_in(&mut self, start: &mut Start) -> bool {
        let (role, index, seeded) = match self.role {
            SimRole::Student(i) => ("student", i, SEEDED_STUDENTS),
            SimRole::Trainer(i) => ("trainer", i, SEEDED_TRAINERS),
        };
        let register = self.rng.gen_bool(REGISTER_SHARE);
        let (username, password) = if register {
            let name = format!("sim{}-{role}{index}", self.seed);
            let body = json!({
                "username": name,
                "email": format!("{name}@sim.corevia.test"),
                "password": SIM_PASSWORD,
                "role": role,
            });
            let answer = self
                .request(
                    "Register",
                    Method::POST,
                    "/api/v1/auth/register",
                    Some(body),
                )
                .await;
            match answer {
                // 409: an earlier run with this seed registered it; its
                // password is ours, so logging in works.
                Some((status, _)) if status.is_success() || status == StatusCode::CONFLICT => {
                    start.registered = status.is_success();
                }
                _ => return false,
            }
            (name, SIM_PASSWORD.to_string())
        } else {
            (
                format!("{role}{}", index % seeded + 1),
                SEEDED_PASSWORD.to_string(),
            )
        };
        let body = json!({"username": username, "password": password});
        let answer = self
            .request("Login", Method::POST, "/api/v1/auth/login", Some(body))
            .await;
        match answer {
            Some((status, body)) if status.is_success() => {
                self.token = body["access_token"].as_str().map(str::to_string);
                self.token.is_some()
            }
            _ => false,
        }
    }

    async fn run_task(&mut self, task: &str) {
        match task {
            "Social Feed" => self.feed().await,
            "Like Post" => self.like().await,
            "Add Comment" => {
                if let Some(post) = self.pick(&self.seen_posts.clone()) {
                    let text = POST_TEXTS[self.rng.gen_range(0..POST_TEXTS.len())];
                    let path = format!("/api/v1/social/posts/{post}/comments");
                    self.request(
                        "Add Comment",
                        Method::POST,
                        &path,
                        Some(json!({"text": text})),
                    )
                    .await;
                }
            }
            "Create Post" => {
                let text = POST_TEXTS[self.rng.gen_range(0..POST_TEXTS.len())];
                let answer = self
                    .request(
                        "Create Post",
                        Method::POST,
                        "/api/v1/social/posts",
                        Some(json!({"text": text})),
                    )
                    .await;
                if let Some(id) = created_id(&answer) {
                    remember(&mut self.seen_posts, [id]);
                }
            }
            "Analytics Dashboard" => {
                self.request(
                    "Analytics Dashboard",
                    Method::GET,
                    "/api/v1/analytics/dashboard",
                    None,
                )
                .await;
            }
            "Marketplace Browse" => self.browse().await,
            "Product Detail" => {
                if self.seen_products.is_empty() {
                    self.browse().await;
                }
                if let Some(id) = self.pick(&self.seen_products.clone()) {
                    let path = format!("/api/v1/marketplace/products/{id}");
                    self.request("Product Detail", Method::GET, &path, None)
                        .await;
                }
            }
            "Create Workout" => {
                let kind = WORKOUTS[self.rng.gen_range(0..WORKOUTS.len())];
                let minutes = self.rng.gen_range(10..90);
                let calories = minutes * self.rng.gen_range(5..12);
                let body = json!({"kind": kind, "minutes": minutes, "calories": calories});
                self.request(
                    "Create Workout",
                    Method::POST,
                    "/api/v1/workouts",
                    Some(body),
                )
                .await;
            }
            "Log Food" => {
                let food = FOODS[self.rng.gen_range(0..FOODS.len())];
                let body = json!({"food": food, "calories": self.rng.gen_range(150..900)});
                self.request("Log Food", Method::POST, "/api/v1/food-logs", Some(body))
                    .await;
            }
            "User Profile" => {
                self.request("User Profile", Method::GET, "/api/v1/users/me", None)
                    .await;
            }
            "Create Product" => {
                let title = format!("Coaching plan {}", self.rng.gen_range(1..1000));
                let price = f64::from(self.rng.gen_range(5..200u32)) - 0.01;
                let body = json!({"title": title, "price": price, "description": "Weekly plan with video calls"});
                self.request(
                    "Create Product",
                    Method::POST,
                    "/api/v1/marketplace/products",
                    Some(body),
                )
                .await;
            }
            "Trainer Content" => {
                let body = json!({"title": "Form tips", "body": "Keep your back straight and breathe out on the way up."});
                self.request(
                    "Trainer Content",
                    Method::POST,
                    "/api/v1/trainer/content",
                    Some(body),
                )
                .await;
            }
            "My Products" => {
                self.request(
                    "My Products",
                    Method::GET,
                    "/api/v1/marketplace/my-products",
                    None,
                )
                .await;
            }
            _ => {}
        }
    }

    async fn feed(&mut self) {
        let offset = if self.rng.gen_bool(0.8) {
            0
        } else {
            20 * self.rng.gen_range(1..3)
        };
        let path = format!("/api/v1/social/feed?limit=20&offset={offset}");
        let answer = self.request("Social Feed", Method::GET, &path, None).await;
        remember(&mut self.seen_posts, item_ids(&answer));
    }

    async fn browse(&mut self) {
        let path = if self.rng.gen_bool(0.3) {
            let q = SEARCHES[self.rng.gen_range(0..SEARCHES.len())];
            format!("/api/v1/marketplace/products?limit=20&q={q}")
        } else {
            "/api/v1/marketplace/products?limit=20&offset=0".to_string()
        };
        let answer = self
            .request("Marketplace Browse", Method::GET, &path, None)
            .await;
        remember(&mut self.seen_products, item_ids(&answer));
    }

    async fn like(&mut self) {
        // Now and then take back an earlier like, as people do.
        if !self.liked_posts.is_empty() && self.rng.gen_bool(0.2) {
            let index = self.rng.gen_range(0..self.liked_posts.len());
            let post = self.liked_posts.swap_remove(index);
            let path = format!("/api/v1/social/posts/{post}/like");
            self.request("Like Post", Method::DELETE, &path, None).await;
            return;
        }
        if let Some(post) = self.pick(&self.seen_posts.clone()) {
            let path = format!("/api/v1/social/posts/{post}/like");
            let answer = self.request("Like Post", Method::POST, &path, None).await;
            if answer.is_some_and(|(s, _)| s.is_success()) && !self.liked_posts.contains(&post) {
                remember(&mut self.liked_posts, [post]);
            }
        }
    }

    fn pick(&mut self, ids: &[u64]) -> Option<u64> {
        if ids.is_empty() {
            None
        } else {
            Some(ids[self.rng.gen_range(0..ids.len())])
        }
    }

    async fn think(&mut self) {
        let [low, high] = self.behaviour.wait_s;
        let (low, high) = (low.max(0.0), high.max(low.max(0.0)));
        let seconds = if high > low {
            self.rng.gen_range(low..high)
        } else {
            low
        };
        let pause = Duration::from_secs_f64(seconds * self.think_scale);
        tokio::time::sleep_until((Instant::now() + pause).min(self.deadline)).await;
    }

    /// Sends one request on this user's connection (opening it if
    /// needed), reports it to the collector and returns the answer;
    /// `None` on a transport failure or timeout.
    async fn request(
        &mut self,
        endpoint: &'static str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(method, path, body))
            .await
            .ok()
            .flatten();
        if answer.is_none() {
            // The connection may be broken; open a new one next time, after
            // a pause so a target that went away is not hammered.
            self.sender = None;
            let pause = Instant::now() + TRANSPORT_BACKOFF;
            tokio::time::sleep_until(pause.min(self.deadline)).await;
        }
        let failed = answer
            .as_ref()
            .is_none_or(|(status, _)| status.is_client_error() || status.is_server_error());
        let _ = self.ticks.send(Tick { endpoint, failed });
        answer
    }

    async fn exchange(&mut self, method: Method, path: &str, body: Option<Value>) -> Answer {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.sender = Some(self.connect().await?);
        }
        let sender = self.sender.as_mut().expect("connected just above");
        sender.ready().await.ok()?;
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.target.prefix))
            .header(HOST, &self.target.authority)
            .header(USER_AGENT, self.user_agent)
            .header(ACCEPT, "application/json");
        if let Some(token) = &self.token {
            builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let bytes = match body {
            Some(value) => {
                builder = builder.header(CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(&value).expect("a Value always serializes"))
            }
            None => Bytes::new(),
        };
        let request = builder.body(Full::new(bytes)).ok()?;
        let response = sender.send_request(request).await.ok()?;
        let status = response.status();
        let body = response.into_body().collect().await.ok()?.to_bytes();
        let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        Some((status, value))
    }

    async fn connect(&self) -> Option<SendRequest<Full<Bytes>>> {
        let stream =
            tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.target.connect))
                .await
                .ok()?
                .ok()?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.ok()?;
        tokio::spawn(async move {
            // Ends when the sender is dropped or the server closes.
            let _ = connection.await;
        });
        Some(sender)
    }
}

/// Password of accounts the simulator registers.
const SIM_PASSWORD: &str = "sim-pass-2023";

fn is_known_task(name: &str) -> bool {
    matches!(
        name,
        "Social Feed"
            | "Like Post"
            | "Add Comment"
            | "Create Post"
            | "Analytics Dashboard"
            | "Marketplace Browse"
            | "Product Detail"
            | "Create Workout"
            | "Log Food"
            | "User Profile"
            | "Create Product"
            | "Trainer Content"
            | "My Products"
    )
}

fn item_ids(answer: &Answer) -> Vec<u64> {
    match answer {
        Some((status, body)) if status.is_success() => body["items"]
            .as_array()
            .map(|items| items.iter().filter_map(|i| i["id"].as_u64()).collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn created_id(answer: &Answer) -> Option<u64> {
    match answer {
        Some((status, body)) if status.is_success() => body["id"].as_u64(),
        _ => None,
    }
}

/// Adds ids to a bounded memory, newest last, without duplicates.
fn remember(memory: &mut Vec<u64>, ids: impl IntoIterator<Item = u64>) {
    for id in ids {
        if let Some(position) = memory.iter().position(|m| *m == id) {
            memory.remove(position);
        }
        memory.push(id);
    }
    if memory.len() > MEMORY {
        let excess = memory.len() - MEMORY;
        memory.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        let t = Target::parse("http://127.0.0.1:8000").unwrap();
        assert_eq!(t.connect, "127.0.0.1:8000");
        assert_eq!(t.authority, "127.0.0.1:8000");
        assert_eq!(t.prefix, "");
        let t = Target::parse("http://localhost/base/").unwrap();
        assert_eq!(t.connect, "localhost:80");
        assert_eq!(t.authority, "localhost");
        assert_eq!(t.prefix, "/base");
        assert!(Target::parse("https://x").is_err());
        assert!(Target::parse("not a url")
            .unwrap_err()
            .to_string()
            .contains("not a URL"));
    }

    #[test]
    fn memory_is_bounded_and_deduplicated() {
        let mut m = Vec::new();
        remember(&mut m, [1, 2, 3]);
        remember(&mut m, [1]);
        assert_eq!(m, vec![2, 3, 1]);
        remember(&mut m, 10..300);
        assert_eq!(m.len(), MEMORY);
        assert_eq!(*m.last().unwrap(), 299);
    }

    #[test]
    fn every_profile_task_is_known() {
        let profile = Profile::builtin();
        for behaviour in profile.behaviour.values() {
            for task in behaviour.tasks.keys() {
                assert!(is_known_task(task), "{task}");
            }
        }
    }
}
