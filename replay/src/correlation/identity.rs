//! Identity per virtual user: credential pools, unique registration names
//! and re-signed JWTs.
//!
//! Choices, so every VU is its own user where the server allows it:
//! - `--credentials users.csv` (`username,password,role` header row): the
//!   login body of a VU's session (`username`/`email`/`password` fields) is
//!   rewritten to a row of the VU's role. The k-th VU of a role takes row
//!   `k mod pool` (k counted in this process, or over the whole run when
//!   the engine passes it, so shards do not share rows); with fewer rows
//!   than VUs, rows are shared and a warning is printed once per role.
//! - Registration bodies get `_vu{N}_{loop}` appended to the username (and
//!   to the local part of the email), deterministic from the global VU
//!   number and the VU's loop counter, so no two VUs and no two loops of one
//!   VU register the same name. A later login of the registered name in the
//!   same session uses the suffixed name too.
//! - `--jwt-secret S`: a bearer token the session never obtained from a
//!   replayed response (the login happened before the recording) is
//!   re-signed with S, keeping the recorded claims (so `sub` still names a
//!   user the server knows) with a fresh `iat` and an `exp` as far after it
//!   as the recorded token's lifetime (one hour if it had none). A per-VU
//!   `sub` would have to be a user id the server issued, which only a
//!   replayed login can provide: give sessions with a login and
//!   `--credentials` for distinct users.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::Error;

/// One row of a credentials file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Credential {
    /// Login name (or email).
    pub username: String,
    /// Password.
    pub password: String,
}

/// Credential rows by role, and how many VUs of each role took one.
#[derive(Debug, Default)]
pub(crate) struct Pools {
    by_role: BTreeMap<String, Pool>,
}

#[derive(Debug, Default)]
struct Pool {
    rows: Vec<Credential>,
    taken: AtomicU64,
    warned: AtomicBool,
}

impl Pools {
    /// Reads `username,password,role` rows (header row first).
    pub(crate) fn load(path: &Path) -> Result<Pools, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Credentials {
            path: path.to_path_buf(),
            what: e.to_string(),
        })?;
        Pools::parse(&text).map_err(|what| Error::Credentials {
            path: path.to_path_buf(),
            what,
        })
    }

    /// Parses the CSV text; the error says which line is wrong.
    pub(crate) fn parse(text: &str) -> Result<Pools, String> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let (_, header) = lines
            .next()
            .ok_or("empty file (expected a username,password,role header row)")?;
        let columns: Vec<String> = header
            .split(',')
            .map(|c| c.trim().to_ascii_lowercase())
            .collect();
        let col = |name: &str| {
            columns.iter().position(|c| c == name).ok_or_else(|| {
                format!("line 1: no `{name}` column (expected username,password,role)")
            })
        };
        let (u, p, r) = (col("username")?, col("password")?, col("role")?);
        let mut pools = Pools::default();
        for (i, line) in lines {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            if fields.len() != columns.len() {
                return Err(format!(
                    "line {}: {} fields, the header has {}",
                    i + 1,
                    fields.len(),
                    columns.len()
                ));
            }
            if fields[u].is_empty() || fields[r].is_empty() {
                return Err(format!("line {}: empty username or role", i + 1));
            }
            pools
                .by_role
                .entry(fields[r].to_string())
                .or_default()
                .rows
                .push(Credential {
                    username: fields[u].to_string(),
                    password: fields[p].to_string(),
                });
        }
        if pools.by_role.is_empty() {
            return Err("no credential rows after the header".into());
        }
        Ok(pools)
    }

    /// The row for the next VU of `role` in this process; `None` when the
    /// file has no row of that role.
    pub(crate) fn take(&self, role: &str) -> Option<Credential> {
        let pool = self.by_role.get(role)?;
        let k = pool.taken.fetch_add(1, Ordering::Relaxed);
        self.row(role, k)
    }

    /// The row of the `k`-th VU of `role` (row `k mod rows`); warns once
    /// per role when rows have to be shared.
    pub(crate) fn row(&self, role: &str, k: u64) -> Option<Credential> {
        let pool = self.by_role.get(role)?;
        let n = pool.rows.len() as u64;
        if k >= n && !pool.warned.swap(true, Ordering::Relaxed) {
            eprintln!(
                "tapedeck: warning: credentials pool of role {role} ({n} rows) is smaller than its VUs: rows are shared"
            );
        }
        Some(pool.rows[(k % n) as usize].clone())
    }

    /// Rows per role, for the start-up summary.
    pub(crate) fn sizes(&self) -> impl Iterator<Item = (&str, usize)> {
        self.by_role.iter().map(|(r, p)| (r.as_str(), p.rows.len()))
    }
}

/// The name a VU registers instead of `recorded`: unique per VU and loop.
pub(crate) fn registered_name(recorded: &str, vu: u64, round: u64) -> String {
    match recorded.split_once('@') {
        Some((local, domain)) => format!("{local}_vu{vu}_{round}@{domain}"),
        None => format!("{recorded}_vu{vu}_{round}"),
    }
}

/// The last path segment of a login endpoint.
pub(crate) fn is_login_path(path: &str) -> bool {
    let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    matches!(
        last.to_ascii_lowercase().as_str(),
        "login" | "signin" | "sign-in" | "sign_in" | "token" | "authenticate"
    )
}

/// The last path segment of a registration endpoint.
pub(crate) fn is_register_path(path: &str) -> bool {
    let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    matches!(
        last.to_ascii_lowercase().as_str(),
        "register" | "signup" | "sign-up" | "sign_up" | "registration"
    )
}

/// Identity fields of login and registration bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Field {
    /// `username`, `user`, `login`.
    Username,
    /// `email`.
    Email,
    /// `password`.
    Password,
}

impl Field {
    /// The identity field a body field name stands for.
    pub(crate) fn of(name: &str) -> Option<Field> {
        match name.to_ascii_lowercase().as_str() {
            "username" | "user" | "login" | "user_name" => Some(Field::Username),
            "email" | "mail" | "email_address" => Some(Field::Email),
            "password" | "pass" | "passwd" => Some(Field::Password),
            _ => None,
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

/// A recorded HS256 token, decoded once before the run.
#[derive(Debug, Clone)]
pub(crate) struct RecordedJwt {
    header_b64: String,
    claims: serde_json::Map<String, serde_json::Value>,
    lifetime_s: i64,
}

impl RecordedJwt {
    /// Decodes `token` if it is an HS256 JWT with a JSON object payload.
    pub(crate) fn parse(token: &str) -> Option<RecordedJwt> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
        if header.get("alg")?.as_str()? != "HS256" {
            return None;
        }
        let claims: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()?;
        let lifetime_s = match (
            claims.get("iat").and_then(serde_json::Value::as_i64),
            claims.get("exp").and_then(serde_json::Value::as_i64),
        ) {
            (Some(iat), Some(exp)) if exp > iat => exp - iat,
            _ => 3600,
        };
        Some(RecordedJwt {
            header_b64: h.to_string(),
            claims,
            lifetime_s,
        })
    }

    /// The token re-signed with `secret`, issued at `now` (Unix seconds).
    pub(crate) fn resign(&self, secret: &[u8], now: i64) -> String {
        let mut claims = self.claims.clone();
        if claims.contains_key("iat") {
            claims.insert("iat".into(), now.into());
        }
        claims.insert("exp".into(), (now + self.lifetime_s).into());
        let payload = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&claims).expect("a JSON object always serializes"));
        let input = format!("{}.{payload}", self.header_b64);
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
        mac.update(input.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{input}.{sig}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_rotate_per_role() {
        let pools = Pools::parse("username,password,role\nstudent1,pw,student\nstudent2,pw,student\ntrainer1,pw,trainer\n").unwrap();
        let names: Vec<String> = (0..3)
            .map(|_| pools.take("student").unwrap().username)
            .collect();
        assert_eq!(names, ["student1", "student2", "student1"]);
        assert_eq!(pools.take("trainer").unwrap().username, "trainer1");
        assert!(pools.take("other").is_none());
    }

    #[test]
    fn bad_credentials_name_the_line() {
        assert!(Pools::parse("").unwrap_err().contains("empty"));
        assert!(Pools::parse("user,pw\n").unwrap_err().contains("username"));
        let e = Pools::parse("username,password,role\na,b\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
    }

    #[test]
    fn registered_names_are_unique() {
        assert_eq!(registered_name("bob", 3, 0), "bob_vu3_0");
        assert_eq!(registered_name("bob@x.io", 3, 1), "bob_vu3_1@x.io");
        assert_ne!(registered_name("bob", 1, 11), registered_name("bob", 11, 1));
    }

    #[test]
    fn resigned_tokens_verify_with_the_new_secret() {
        let claims = r#"{"sub":"7","role":"student","iat":1000,"exp":4600}"#;
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
        let token = format!("{header}.{}.c2ln", URL_SAFE_NO_PAD.encode(claims));
        let jwt = RecordedJwt::parse(&token).unwrap();
        let fresh = jwt.resign(b"s3cret", 2_000_000_000);
        let (input, sig) = fresh.rsplit_once('.').unwrap();
        let mut mac = HmacSha256::new_from_slice(b"s3cret").unwrap();
        mac.update(input.as_bytes());
        assert_eq!(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()), sig);
        let payload: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(input.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(payload["sub"], "7");
        assert_eq!(payload["iat"], 2_000_000_000i64);
        assert_eq!(payload["exp"], 2_000_003_600i64);
        assert!(RecordedJwt::parse("a.b.c").is_none());
    }

    #[test]
    fn endpoint_kinds() {
        assert!(is_login_path("/api/v1/auth/login"));
        assert!(is_register_path("/api/v1/auth/register/"));
        assert!(!is_login_path("/api/v1/social/feed"));
    }
}
