//! The embedded CoreVia-shaped sample API and the simulated mobile clients
//! that drive it.
//!
//! The testbed is the app tapedeck is tested and demonstrated against: the
//! capture proxy records [`simulate`](simulate::simulate) traffic through
//! it, the replayer replays that traffic against a fresh testbed, and
//! `tapedeck demo` compares release a with release b on it.
//!
//! ```no_run
//! use tapedeck_testbed::{start, Release, TestbedConfig};
//!
//! # async fn example() -> std::io::Result<()> {
//! let testbed = start("127.0.0.1:0".parse().unwrap(), TestbedConfig::new(Release::A)).await?;
//! println!("listening on {}", testbed.base_url());
//! testbed.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # The API
//!
//! Every endpoint of the CoreVia profile, JSON in and out, behaving like a
//! FastAPI backend: HS256 tokens (`sub`, `role`, `iat`, `exp`) from
//! `POST /api/v1/auth/login`; 401 for a missing, expired or forged token;
//! 403 for a student on a trainer endpoint; 422 with pydantic's `detail`
//! list for invalid bodies and parameters; 404 `{"detail":"Not Found"}` for
//! unknown routes and ids; 413 over 1 MiB; 409 for a taken username.
//!
//! The store is seeded from the seed: users `student1`..`student45` and
//! `trainer1`..`trainer5`, all with the password [`SEEDED_PASSWORD`]
//! (`corevia-pass`), 200 posts, 40 products and a week of workouts and
//! meals per user, so a recorded login replays against any fresh testbed.
//!
//! # The latency model
//!
//! Each endpoint costs a *wait* (an async sleep standing for database time;
//! median below, ±20 % uniform jitter, and 2 % of calls wait 2.5× as long)
//! plus *work* (real CPU: SHA-256 rounds on top of building the JSON), so
//! load queues on the runtime's workers without one endpoint's cost
//! spilling much into another's.
//!
//! | endpoint            | wait (ms) | work (units) | ≈ CPU (µs) |
//! |---------------------|-----------|--------------|------------|
//! | Register            | 6         | 900 + hash   | 140        |
//! | Login               | 5         | 900 + hash   | 140        |
//! | Social Feed         | 8         | 3200         | 150        |
//! | Create Post         | 4         | 650          | 30         |
//! | Like Post           | 2         | 200          | 10         |
//! | Add Comment         | 3         | 450          | 20         |
//! | Analytics Dashboard | 12        | 4200         | 200        |
//! | Marketplace Browse  | 6         | 2100         | 100        |
//! | Product Detail      | 3         | 450          | 20         |
//! | Create Product      | 4         | 650          | 30         |
//! | My Products         | 5         | 1300         | 60         |
//! | Create Workout      | 3         | 450          | 20         |
//! | Log Food            | 3         | 450          | 20         |
//! | User Profile        | 2         | 450          | 20         |
//! | Trainer Content     | 4         | 650          | 30         |
//!
//! A unit is one SHA-256 block (about 47 ns on an x86-64 core with SHA
//! extensions, which the CPU column assumes); a password hash is 1500
//! rounds of salted SHA-256 (about 100 µs). The work is a fixed count,
//! not a calibrated time, so both releases do exactly the same work on
//! any machine. Costs that would grow as a long run adds data are
//! bounded: the dashboard aggregates a user's newest 500 workouts and
//! meals, a marketplace search looks at the newest 1000 products.
//!
//! **Release b** is release a plus two changes and nothing else: Social
//! Feed's wait and work are 30 % larger ([`FEED_REGRESSION`]), and
//! Analytics Dashboard answers 500 on 2 % of calls
//! ([`DASHBOARD_FAILURE_RATE`]), drawn from the seeded sequence.
//!
//! # The simulator
//!
//! [`simulate()`] runs students and trainers (45 and 5 by default, the
//! profile's 9:1 mix) against a base URL, one keep-alive HTTP/1.1
//! connection and one seeded generator per user. A user logs in as a
//! seeded account (`student{n}`, `trainer{n}`) or, one in five, registers
//! `sim{seed}-{role}{n}` first; then it picks tasks by the profile's
//! weights and sleeps the profile's think time (times `think_scale`)
//! between them. Likes and comments target posts it saw in its feed or
//! created, product details products it saw while browsing, so recorded
//! traffic carries tokens and ids that come from responses.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cli;
mod duration;
mod error;
pub mod server;
pub mod simulate;

pub use duration::parse_duration;
pub use error::Error;
pub use server::{
    start, Release, Role, RunningTestbed, TestbedConfig, DASHBOARD_FAILURE_RATE, FEED_REGRESSION,
    SEEDED_PASSWORD,
};
pub use simulate::{simulate, EndpointCount, SimConfig, SimSummary};
