//! The cost model: what each endpoint costs, and release b's regression.
//!
//! A request's cost has two parts. The *wait* stands for database time: an
//! async sleep, so it costs no CPU and does not slow other requests. The
//! *work* is real CPU (SHA-256 rounds over a small buffer, on top of the
//! JSON the handler really builds), so under load requests queue for the
//! two runtime workers the way they queue on a real backend. Jitter comes
//! from a counter-based generator seeded by `--seed`: lock-free, and the
//! n-th request of a run gets the same draw in every run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::server::Release;

/// Endpoints with a cost of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /auth/register`.
    Register,
    /// `POST /auth/login`.
    Login,
    /// `GET /social/feed`.
    SocialFeed,
    /// `POST /social/posts`.
    CreatePost,
    /// `POST|DELETE /social/posts/{id}/like`.
    LikePost,
    /// `POST /social/posts/{id}/comments`.
    AddComment,
    /// `GET /analytics/dashboard`.
    AnalyticsDashboard,
    /// `GET /marketplace/products`.
    MarketplaceBrowse,
    /// `GET /marketplace/products/{id}`.
    ProductDetail,
    /// `POST /marketplace/products`.
    CreateProduct,
    /// `GET /marketplace/my-products`.
    MyProducts,
    /// `POST /workouts`.
    CreateWorkout,
    /// `POST /food-logs`.
    LogFood,
    /// `GET /users/me`.
    UserProfile,
    /// `POST /trainer/content`.
    TrainerContent,
}

/// Cost of one endpoint in release a.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    /// Median database wait, milliseconds.
    pub wait_ms: f64,
    /// CPU work units: one unit is one SHA-256 block (64 bytes), about
    /// 47 ns on an x86-64 core with SHA extensions, 0.2 µs without.
    pub work_units: u32,
}

impl Endpoint {
    /// The release-a cost of this endpoint.
    pub fn cost(self) -> Cost {
        let (wait_ms, work_units) = match self {
            Endpoint::Register => (6.0, 900),
            Endpoint::Login => (5.0, 900),
            Endpoint::SocialFeed => (8.0, 3200),
            Endpoint::CreatePost => (4.0, 650),
            Endpoint::LikePost => (2.0, 200),
            Endpoint::AddComment => (3.0, 450),
            Endpoint::AnalyticsDashboard => (12.0, 4200),
            Endpoint::MarketplaceBrowse => (6.0, 2100),
            Endpoint::ProductDetail => (3.0, 450),
            Endpoint::CreateProduct => (4.0, 650),
            Endpoint::MyProducts => (5.0, 1300),
            Endpoint::CreateWorkout => (3.0, 450),
            Endpoint::LogFood => (3.0, 450),
            Endpoint::UserProfile => (2.0, 450),
            Endpoint::TrainerContent => (4.0, 650),
        };
        Cost {
            wait_ms,
            work_units,
        }
    }

    /// The cost in `release`: release b's Social Feed waits and works 30 %
    /// more; every other endpoint costs the same in both releases.
    pub fn cost_in(self, release: Release) -> Cost {
        let base = self.cost();
        match (release, self) {
            (Release::B, Endpoint::SocialFeed) => Cost {
                wait_ms: base.wait_ms * FEED_REGRESSION,
                work_units: (f64::from(base.work_units) * FEED_REGRESSION).round() as u32,
            },
            _ => base,
        }
    }
}

/// Release b's Social Feed cost factor.
pub const FEED_REGRESSION: f64 = 1.3;
/// Share of release b's Analytics Dashboard calls that answer 500.
pub const DASHBOARD_FAILURE_RATE: f64 = 0.02;

/// Per-request draws from a seeded, lock-free sequence.
#[derive(Debug)]
pub struct Jitter {
    seed: u64,
    counter: AtomicU64,
}

/// What the model decided for one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Draw {
    /// How long to wait.
    pub wait: Duration,
    /// CPU units to spend.
    pub work_units: u32,
    /// Release b's dashboard fails this call.
    pub fail: bool,
}

impl Jitter {
    /// A sequence seeded with `seed`.
    pub fn new(seed: u64) -> Jitter {
        Jitter {
            seed,
            counter: AtomicU64::new(0),
        }
    }

    /// The next uniform number in [0, 1).
    fn next_unit(&self) -> f64 {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let bits = splitmix64(self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        (bits >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Draws the wait, the work and the failure of one call of `endpoint`.
    ///
    /// The wait is the median × a uniform factor in [0.8, 1.2], and 2 % of
    /// calls (a slow query) wait 2.5× as long; the failure draw is made on
    /// every call of every release so that the sequence of waits is the
    /// same in a and b.
    pub fn draw(&self, endpoint: Endpoint, release: Release) -> Draw {
        let cost = endpoint.cost_in(release);
        let spread = 0.8 + 0.4 * self.next_unit();
        let tail = if self.next_unit() < 0.02 { 2.5 } else { 1.0 };
        let fail_draw = self.next_unit();
        let fail = release == Release::B
            && endpoint == Endpoint::AnalyticsDashboard
            && fail_draw < DASHBOARD_FAILURE_RATE;
        Draw {
            wait: Duration::from_secs_f64(cost.wait_ms * spread * tail / 1000.0),
            work_units: cost.work_units,
            fail,
        }
    }
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Input of [`work`]: zeros, hashed in slices of up to 1024 blocks.
static WORK_INPUT: [u8; 64 * 1024] = [0u8; 64 * 1024];

/// Spends `units` SHA-256 block compressions of CPU; returns a byte of
/// the digest so the work cannot be optimised away. The block loop runs
/// inside `sha2`, so the cost is the same whatever this crate's
/// optimisation level.
pub fn work(units: u32) -> u8 {
    let mut hasher = Sha256::new();
    let mut left = units as usize;
    while left > 0 {
        let blocks = left.min(WORK_INPUT.len() / 64);
        hasher.update(&WORK_INPUT[..blocks * 64]);
        left -= blocks;
    }
    std::hint::black_box(hasher.finalize()[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_b_differs_only_on_feed_cost() {
        for e in [
            Endpoint::Login,
            Endpoint::LikePost,
            Endpoint::AnalyticsDashboard,
            Endpoint::MarketplaceBrowse,
        ] {
            assert_eq!(e.cost_in(Release::A), e.cost_in(Release::B));
        }
        let a = Endpoint::SocialFeed.cost_in(Release::A);
        let b = Endpoint::SocialFeed.cost_in(Release::B);
        assert!((b.wait_ms / a.wait_ms - 1.3).abs() < 1e-9);
        assert!(b.work_units > a.work_units);
    }

    #[test]
    fn dashboard_fails_about_two_percent_in_b_only() {
        let j = Jitter::new(42);
        let n = 20_000;
        let fails = (0..n)
            .filter(|_| j.draw(Endpoint::AnalyticsDashboard, Release::B).fail)
            .count();
        let rate = fails as f64 / n as f64;
        assert!((0.01..0.03).contains(&rate), "rate {rate}");
        let j = Jitter::new(42);
        assert!(!(0..n).any(|_| j.draw(Endpoint::AnalyticsDashboard, Release::A).fail));
        assert!(!(0..n).any(|_| j.draw(Endpoint::SocialFeed, Release::B).fail));
    }

    #[test]
    fn equal_seeds_draw_equal_waits() {
        let a = Jitter::new(3);
        let b = Jitter::new(3);
        for _ in 0..100 {
            assert_eq!(
                a.draw(Endpoint::SocialFeed, Release::A),
                b.draw(Endpoint::SocialFeed, Release::A)
            );
        }
        let w = Jitter::new(3).draw(Endpoint::LikePost, Release::A).wait;
        assert!(w >= Duration::from_micros(1_600) && w <= Duration::from_millis(6));
    }
}
