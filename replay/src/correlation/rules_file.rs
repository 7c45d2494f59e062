//! `--correlation FILE`: rules a user adds or vetoes.
//!
//! The file is JSON with two optional lists; every field of an entry is
//! optional except `source` in `add`, and an absent field or `"*"` matches
//! anything:
//!
//! ```json
//! {
//!   "add":  [{"source_endpoint": "Login", "source": "json $.user.username"}],
//!   "veto": [{"source": "json $.items[*].author_id", "sink": "path segment 4"},
//!            {"sink_endpoint": "Log Food"}]
//! }
//! ```
//!
//! `source` and `sink` are written as `tapedeck sessions correlations`
//! prints them (`json $.access_token`, `set-cookie sid`, `header location`,
//! `location segment 3`; `header authorization (Bearer)`, `path segment 4`,
//! `query q`, `json $.post_id`, `form field`, `cookie sid`); array indices
//! match any element. An `add` entry makes every value of that source
//! correlate wherever it reappears later in the session, whatever its shape
//! (a short string, a small number). A `veto` entry removes every
//! discovered rule it matches.

use std::path::Path;

use serde::Deserialize;

use super::spots::{json_path_text, parse_json_path};
use crate::Error;

/// The parsed file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RulesFile {
    #[serde(default)]
    add: Vec<Pattern>,
    #[serde(default)]
    veto: Vec<Pattern>,
}

/// One entry; `None` matches anything.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Pattern {
    #[serde(default)]
    source_endpoint: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    sink_endpoint: Option<String>,
    #[serde(default)]
    sink: Option<String>,
}

impl RulesFile {
    /// Reads and checks the file.
    pub(crate) fn load(path: &Path) -> Result<RulesFile, Error> {
        let bad = |what: String| Error::RulesFile {
            path: path.to_path_buf(),
            what,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        RulesFile::parse(&text).map_err(bad)
    }

    /// Parses the JSON text.
    pub(crate) fn parse(text: &str) -> Result<RulesFile, String> {
        let mut file: RulesFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        for (i, p) in file.add.iter().enumerate() {
            if p.source.as_deref().is_none_or(|s| s == "*") {
                return Err(format!("add[{i}]: needs a `source`"));
            }
        }
        for p in file.add.iter_mut().chain(file.veto.iter_mut()) {
            for field in [&mut p.source, &mut p.sink] {
                if let Some(text) = field.as_deref() {
                    *field = Some(normalize(text));
                }
            }
        }
        Ok(file)
    }

    /// Whether a value of `source` at `source_endpoint` is forced in.
    pub(crate) fn adds(&self, source_endpoint: &str, source: &str) -> bool {
        self.add
            .iter()
            .any(|p| matches(&p.source_endpoint, source_endpoint) && matches(&p.source, source))
    }

    /// Whether an `add` entry restricts where its values may go and this
    /// sink is outside it.
    pub(crate) fn add_allows(
        &self,
        source_endpoint: &str,
        source: &str,
        sink_endpoint: &str,
        sink: &str,
    ) -> bool {
        self.add.iter().any(|p| {
            matches(&p.source_endpoint, source_endpoint)
                && matches(&p.source, source)
                && matches(&p.sink_endpoint, sink_endpoint)
                && matches(&p.sink, sink)
        })
    }

    /// Whether a discovered rule is vetoed.
    pub(crate) fn vetoes(
        &self,
        source_endpoint: &str,
        source: &str,
        sink_endpoint: &str,
        sink: &str,
    ) -> bool {
        self.veto.iter().any(|p| {
            matches(&p.source_endpoint, source_endpoint)
                && matches(&p.source, source)
                && matches(&p.sink_endpoint, sink_endpoint)
                && matches(&p.sink, sink)
        })
    }
}

fn matches(pattern: &Option<String>, text: &str) -> bool {
    match pattern.as_deref() {
        None | Some("*") => true,
        Some(p) => p.eq_ignore_ascii_case(text),
    }
}

/// `$.a[0].b` and `json $.a[0].b` both become `json $.a[*].b`.
fn normalize(text: &str) -> String {
    let text = text.trim();
    let json = text
        .strip_prefix("json ")
        .map(str::trim)
        .or_else(|| text.starts_with('$').then_some(text));
    if let Some(path) = json {
        if let Some(steps) = parse_json_path(path) {
            let steps: Vec<_> = steps
                .into_iter()
                .map(|s| s.unwrap_or(super::spots::Step::Index(0)))
                .collect();
            return format!("json {}", json_path_text(&steps, true));
        }
    }
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_and_veto_match_listing_texts() {
        let f = RulesFile::parse(
            r#"{"add":[{"source_endpoint":"Login","source":"$.user.username"}],
                "veto":[{"source":"json $.items[3].author_id","sink":"path segment 4"},{"sink_endpoint":"Log Food"}]}"#,
        )
        .unwrap();
        assert!(f.adds("Login", "json $.user.username"));
        assert!(!f.adds("Register", "json $.user.username"));
        assert!(f.add_allows("Login", "json $.user.username", "User Profile", "query u"));
        assert!(f.vetoes(
            "Social Feed",
            "json $.items[*].author_id",
            "Like Post",
            "path segment 4"
        ));
        assert!(f.vetoes(
            "Login",
            "json $.access_token",
            "Log Food",
            "header authorization (Bearer)"
        ));
        assert!(!f.vetoes(
            "Login",
            "json $.access_token",
            "Social Feed",
            "header authorization (Bearer)"
        ));
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        assert!(RulesFile::parse("{").is_err());
        assert!(RulesFile::parse(r#"{"ad":[]}"#)
            .unwrap_err()
            .contains("unknown field"));
        assert!(RulesFile::parse(r#"{"add":[{"sink":"query q"}]}"#)
            .unwrap_err()
            .contains("add[0]"));
        assert!(RulesFile::parse("{}").is_ok());
    }
}
