//! Application profiles: endpoint names, role rules, behaviour mix and
//! latency targets. CoreVia's profile is built in and is the default.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Error;

/// The built-in default profile (CoreVia), as shipped.
pub const DEFAULT_PROFILE_JSON: &str = include_str!("../corevia-profile.json");

/// An application profile (`--profile FILE`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Short name, e.g. `corevia`.
    pub profile: String,
    /// One line about the application.
    #[serde(default)]
    pub about: String,
    /// Named endpoints: `METHOD path-template` → display name.
    #[serde(default)]
    pub endpoints: Vec<EndpointRule>,
    /// How sessions are given a role.
    #[serde(default)]
    pub roles: RoleRules,
    /// Expected behaviour per role (weights, think times, task mix).
    #[serde(default)]
    pub behaviour: BTreeMap<String, Behaviour>,
    /// Latency, throughput and error-rate targets.
    #[serde(default)]
    pub targets: Targets,
}

/// One named endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointRule {
    /// Display name, e.g. `Social Feed`. Several rules may share a name.
    pub name: String,
    /// HTTP method.
    pub method: String,
    /// Path template; `{name}` matches one path segment.
    pub path: String,
}

/// Role classification rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleRules {
    /// JWT claim holding the role.
    #[serde(default)]
    pub jwt_claim: Option<String>,
    /// Dotted path of the role field in a login response.
    #[serde(default)]
    pub login_response_field: Option<String>,
    /// A session calling any of these endpoint names is a trainer.
    #[serde(default)]
    pub trainer_if_any: Vec<String>,
    /// Role of sessions no rule classifies (DESIGN: unknown stays `other`
    /// when no profile default applies).
    #[serde(default = "default_role")]
    pub default: String,
}

fn default_role() -> String {
    "other".to_string()
}

impl Default for RoleRules {
    fn default() -> Self {
        RoleRules {
            jwt_claim: None,
            login_response_field: None,
            trainer_if_any: Vec::new(),
            default: default_role(),
        }
    }
}

/// Expected behaviour of one role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Behaviour {
    /// Relative share of users with this role.
    pub weight: f64,
    /// Think time range in seconds between two tasks.
    #[serde(default)]
    pub wait_s: [f64; 2],
    /// Task (endpoint name) → relative weight.
    #[serde(default)]
    pub tasks: BTreeMap<String, f64>,
}

/// A three-level target (lower is better).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Levels {
    /// What the team aims for.
    pub target: f64,
    /// Still shippable.
    pub acceptable: f64,
    /// Blocks a release.
    pub critical: f64,
}

/// Throughput or concurrency range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Range {
    /// Lowest acceptable.
    pub minimum: f64,
    /// What the team aims for.
    pub target: f64,
    /// Highest planned.
    pub maximum: f64,
}

/// All targets of a profile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Targets {
    /// p95 latency per endpoint name, in milliseconds.
    #[serde(default)]
    pub p95_ms: BTreeMap<String, Levels>,
    /// Requests per second.
    #[serde(default)]
    pub throughput_rps: Option<Range>,
    /// Failed requests / all requests.
    #[serde(default)]
    pub error_rate: Option<Levels>,
    /// Concurrent virtual users.
    #[serde(default)]
    pub concurrent_users: Option<Range>,
    /// A request slower than this is listed as slow.
    #[serde(default)]
    pub slow_request_ms: Option<u64>,
}

impl Profile {
    /// The built-in CoreVia profile.
    pub fn builtin() -> Profile {
        serde_json::from_str(DEFAULT_PROFILE_JSON).expect("the built-in profile is valid JSON")
    }

    /// Reads a profile file.
    pub fn from_file(path: &Path) -> Result<Profile, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        serde_json::from_str(&text).map_err(|e| Error::Invalid {
            path: path.to_path_buf(),
            what: format!("not a tapedeck profile: {e}"),
        })
    }

    /// `--profile FILE` if given, else the built-in profile.
    pub fn load(path: Option<&Path>) -> Result<Profile, Error> {
        match path {
            Some(p) => Profile::from_file(p),
            None => Ok(Profile::builtin()),
        }
    }

    /// The slow-request threshold in milliseconds (2000 unless the profile says).
    pub fn slow_request_ms(&self) -> u64 {
        self.targets.slow_request_ms.unwrap_or(2000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profile_parses() {
        let p = Profile::builtin();
        assert_eq!(p.profile, "corevia");
        assert_eq!(p.endpoints.len(), 16);
        assert_eq!(p.behaviour["student"].weight, 9.0);
        assert_eq!(p.targets.p95_ms["Social Feed"].target, 200.0);
        assert_eq!(p.roles.default, "student");
        assert_eq!(p.slow_request_ms(), 2000);
    }
}
