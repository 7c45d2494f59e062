//! HS256 JSON Web Tokens, as a FastAPI backend with `python-jose` issues
//! them: `sub` (user id as a string), `role`, `iat`, `exp`.
//!
//! Only HS256 is accepted; a token whose header names another algorithm
//! (including `none`) is rejected before its signature is looked at.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use super::store::Role;

type HmacSha256 = Hmac<Sha256>;

/// How long an issued token stays valid.
pub const TOKEN_LIFETIME_S: i64 = 24 * 3600;

/// The claims the testbed issues and reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claims {
    /// User id, as a decimal string.
    pub sub: String,
    /// `student` or `trainer`.
    pub role: Role,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
}

/// Why a token was refused (all of these answer 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Not three base64url parts of JSON.
    Malformed,
    /// Header names another algorithm than HS256.
    Algorithm,
    /// The signature does not match the secret.
    Signature,
    /// `exp` is in the past.
    Expired,
}

impl Rejection {
    /// The FastAPI-style `detail` text.
    pub fn detail(self) -> &'static str {
        match self {
            Rejection::Expired => "Token has expired",
            _ => "Could not validate credentials",
        }
    }
}

const HEADER_JSON: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// Signs `claims` with `secret`.
pub fn sign(claims: &Claims, secret: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(HEADER_JSON);
    let payload = URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(claims).expect("claims always serialize to JSON"));
    let signing_input = format!("{header}.{payload}");
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// Checks the algorithm, signature and expiry of `token` at time `now`
/// (Unix seconds) and returns its claims.
pub fn verify(token: &str, secret: &[u8], now: i64) -> Result<Claims, Rejection> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejection::Malformed);
    };
    let header: serde_json::Value = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or(Rejection::Malformed)?;
    if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
        return Err(Rejection::Algorithm);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| Rejection::Malformed)?;
    let signing_input_len = token.len() - signature_part_len(token);
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(&token.as_bytes()[..signing_input_len]);
    // Constant-time comparison, so the secret cannot be probed by timing.
    mac.verify_slice(&signature)
        .map_err(|_| Rejection::Signature)?;
    let payload: serde_json::Value = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|p| serde_json::from_slice(&p).ok())
        .ok_or(Rejection::Malformed)?;
    let claims = claims_of(&payload).ok_or(Rejection::Malformed)?;
    if claims.exp <= now {
        return Err(Rejection::Expired);
    }
    Ok(claims)
}

/// Reads claims the way common JWT libraries write them: `sub` as a
/// string or a number, `iat`/`exp` as integers or floats, `role` absent
/// for a student.
fn claims_of(payload: &serde_json::Value) -> Option<Claims> {
    let sub = match &payload["sub"] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.as_u64()?.to_string(),
        _ => return None,
    };
    let role = match payload["role"].as_str() {
        None | Some("student") => Role::Student,
        Some("trainer") => Role::Trainer,
        Some(_) => return None,
    };
    let seconds = |v: &serde_json::Value| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64));
    Some(Claims {
        sub,
        role,
        iat: seconds(&payload["iat"]).unwrap_or(0),
        exp: seconds(&payload["exp"])?,
    })
}

/// Length of `.signature` at the end of a token with three parts.
fn signature_part_len(token: &str) -> usize {
    token.rfind('.').map(|i| token.len() - i).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "17".into(),
            role: Role::Student,
            iat: 1_000,
            exp,
        }
    }

    #[test]
    fn sign_then_verify_is_identity() {
        let token = sign(&claims(2_000), b"k");
        assert_eq!(verify(&token, b"k", 1_500), Ok(claims(2_000)));
    }

    #[test]
    fn wrong_secret_expired_and_garbage_are_rejected() {
        let token = sign(&claims(2_000), b"k");
        assert_eq!(verify(&token, b"other", 1_500), Err(Rejection::Signature));
        assert_eq!(verify(&token, b"k", 2_000), Err(Rejection::Expired));
        assert_eq!(verify("a.b", b"k", 0), Err(Rejection::Malformed));
        assert_eq!(verify("a.b.c.d", b"k", 0), Err(Rejection::Malformed));
        assert_eq!(verify("", b"k", 0), Err(Rejection::Malformed));
    }

    #[test]
    fn numeric_sub_and_missing_role_are_read() {
        let header = URL_SAFE_NO_PAD.encode(HEADER_JSON);
        let payload = URL_SAFE_NO_PAD.encode(r#"{"sub":17,"exp":2000.5}"#);
        let input = format!("{header}.{payload}");
        let mut mac = HmacSha256::new_from_slice(b"k").unwrap();
        mac.update(input.as_bytes());
        let token = format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        );
        let claims = verify(&token, b"k", 1_500).unwrap();
        assert_eq!(claims.sub, "17");
        assert_eq!(claims.role, Role::Student);
        assert_eq!(claims.exp, 2_000);
    }

    #[test]
    fn alg_none_is_refused() {
        let token = sign(&claims(2_000), b"k");
        let mut parts: Vec<&str> = token.split('.').collect();
        let none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        parts[0] = &none;
        assert_eq!(
            verify(&parts.join("."), b"k", 1_500),
            Err(Rejection::Algorithm)
        );
    }

    #[test]
    fn tampered_payload_is_refused() {
        let token = sign(&claims(2_000), b"k");
        let parts: Vec<&str> = token.split('.').collect();
        let mut forged = claims(2_000);
        forged.role = Role::Trainer;
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        let forged = format!("{}.{}.{}", parts[0], payload, parts[2]);
        assert_eq!(verify(&forged, b"k", 1_500), Err(Rejection::Signature));
    }
}
