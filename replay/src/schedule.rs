//! Who plays what, and how many at a time: role assignment of VU numbers,
//! user-count plans (fixed with a spawn rate, or k6/Locust-style stages).
//!
//! Everything here is a pure function of VU numbers and elapsed time, so
//! shards that each take `n % N == I-1` of the VU numbers together run
//! exactly the VUs one process would.

use std::time::Duration;

use crate::config::Stage;

/// Smooth weighted round robin (nginx's): a deterministic role sequence in
/// which every prefix is as close to the weights as whole users allow.
#[derive(Debug, Clone)]
pub struct RoleSequence {
    weights: Vec<f64>,
    current: Vec<f64>,
    total: f64,
    ordinals: Vec<u64>,
}

impl RoleSequence {
    /// A sequence over roles `0..weights.len()`; roles of weight 0 never come.
    pub fn new(weights: &[f64]) -> Self {
        RoleSequence {
            weights: weights.to_vec(),
            current: vec![0.0; weights.len()],
            total: weights.iter().sum(),
            ordinals: vec![0; weights.len()],
        }
    }
}

impl Iterator for RoleSequence {
    /// `(role, ordinal)`: the role and how many earlier items had that role.
    type Item = (usize, u64);

    fn next(&mut self) -> Option<(usize, u64)> {
        if self.total <= 0.0 {
            return None;
        }
        let mut best = None::<usize>;
        for (i, w) in self.weights.iter().enumerate() {
            if *w <= 0.0 {
                continue;
            }
            self.current[i] += w;
            if best.is_none_or(|b| self.current[i] > self.current[b]) {
                best = Some(i);
            }
        }
        let b = best?;
        self.current[b] -= self.total;
        let ordinal = self.ordinals[b];
        self.ordinals[b] += 1;
        Some((b, ordinal))
    }
}

/// How many users should be running at a point of the run.
#[derive(Debug, Clone, PartialEq)]
pub enum UserPlan {
    /// A fixed count, started at `spawn_rate` per second (all at once when `None`).
    Fixed {
        /// Users.
        users: u64,
        /// Users started per second.
        spawn_rate: Option<f64>,
    },
    /// Linear ramps from the previous level (0 at the start) to each stage's.
    Stages(Vec<Stage>),
}

impl UserPlan {
    /// Target user count `t` after the start.
    pub fn users_at(&self, t: Duration) -> u64 {
        match self {
            UserPlan::Fixed { users, spawn_rate } => match spawn_rate {
                None => *users,
                // One user right away, then one per 1/rate seconds.
                Some(rate) => (*users).min(1 + (t.as_secs_f64() * rate).floor() as u64),
            },
            UserPlan::Stages(stages) => {
                let mut from = 0u64;
                let mut start = Duration::ZERO;
                for st in stages {
                    let end = start + st.duration;
                    if t < end {
                        let frac = (t - start).as_secs_f64() / st.duration.as_secs_f64();
                        let v = from as f64 + (st.users as f64 - from as f64) * frac;
                        return v.round().max(0.0) as u64;
                    }
                    from = st.users;
                    start = end;
                }
                from
            }
        }
    }

    /// When user `v` is due to start, for plans that start users one by one
    /// at a rate (so VUs start evenly spread rather than in bursts).
    pub fn start_of(&self, v: u64) -> Option<Duration> {
        match self {
            UserPlan::Fixed {
                spawn_rate: Some(rate),
                ..
            } => Some(Duration::from_secs_f64(v as f64 / rate)),
            _ => None,
        }
    }

    /// The highest user count the plan reaches.
    pub fn max_users(&self) -> u64 {
        match self {
            UserPlan::Fixed { users, .. } => *users,
            UserPlan::Stages(stages) => stages.iter().map(|s| s.users).max().unwrap_or(0),
        }
    }

    /// Length of a stage plan (`None` for a fixed count).
    pub fn duration(&self) -> Option<Duration> {
        match self {
            UserPlan::Fixed { .. } => None,
            UserPlan::Stages(stages) => Some(stages.iter().map(|s| s.duration).sum()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_sequence_follows_weights_in_every_prefix() {
        let seq: Vec<(usize, u64)> = RoleSequence::new(&[9.0, 1.0]).take(20).collect();
        let trainers = seq.iter().filter(|(r, _)| *r == 1).count();
        assert_eq!(trainers, 2);
        // The first ten hold exactly one trainer.
        assert_eq!(seq[..10].iter().filter(|(r, _)| *r == 1).count(), 1);
        // Ordinals count per role.
        let student_ordinals: Vec<u64> = seq
            .iter()
            .filter(|(r, _)| *r == 0)
            .map(|(_, o)| *o)
            .collect();
        assert_eq!(student_ordinals, (0..18).collect::<Vec<_>>());
        assert!(RoleSequence::new(&[0.0, 2.0]).take(5).all(|(r, _)| r == 1));
        assert_eq!(RoleSequence::new(&[0.0]).next(), None);
    }

    #[test]
    fn stage_plan_ramps_linearly() {
        let plan = UserPlan::Stages(vec![
            Stage {
                duration: Duration::from_secs(10),
                users: 10,
            },
            Stage {
                duration: Duration::from_secs(10),
                users: 10,
            },
            Stage {
                duration: Duration::from_secs(10),
                users: 0,
            },
        ]);
        assert_eq!(plan.users_at(Duration::ZERO), 0);
        assert_eq!(plan.users_at(Duration::from_secs(5)), 5);
        assert_eq!(plan.users_at(Duration::from_secs(15)), 10);
        assert_eq!(plan.users_at(Duration::from_secs(25)), 5);
        assert_eq!(plan.users_at(Duration::from_secs(60)), 0);
        assert_eq!(plan.max_users(), 10);
        assert_eq!(plan.duration(), Some(Duration::from_secs(30)));
        let fixed = UserPlan::Fixed {
            users: 10,
            spawn_rate: Some(2.0),
        };
        assert_eq!(fixed.users_at(Duration::ZERO), 1);
        assert_eq!(fixed.users_at(Duration::from_millis(2600)), 6);
        assert_eq!(fixed.users_at(Duration::from_secs(100)), 10);
        assert_eq!(fixed.start_of(3), Some(Duration::from_millis(1500)));
        assert_eq!(plan.start_of(3), None);
    }
}
