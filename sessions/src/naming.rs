//! Endpoint names: `METHOD /path/{id}` with ids templated, or the profile's
//! display name (`GET /api/v1/social/feed` → `Social Feed`).

use crate::profile::Profile;

/// One profile rule, pre-split into segments.
#[derive(Debug, Clone)]
struct Rule {
    name: String,
    method: String,
    /// `None` is a `{param}` segment.
    segments: Vec<Option<String>>,
    literals: usize,
}

/// Names endpoints from a profile. Build once, call per exchange.
#[derive(Debug, Clone)]
pub struct EndpointNamer {
    rules: Vec<Rule>,
}

impl EndpointNamer {
    /// A namer using `profile`'s endpoint rules.
    pub fn new(profile: &Profile) -> Self {
        let mut rules: Vec<Rule> = profile
            .endpoints
            .iter()
            .map(|r| {
                let segments: Vec<Option<String>> = split(&r.path)
                    .map(|s| {
                        if s.starts_with('{') && s.ends_with('}') {
                            None
                        } else {
                            Some(s.to_string())
                        }
                    })
                    .collect();
                Rule {
                    name: r.name.clone(),
                    method: r.method.to_ascii_uppercase(),
                    literals: segments.iter().filter(|s| s.is_some()).count(),
                    segments,
                }
            })
            .collect();
        // The most specific rule wins (`/products/mine` before `/products/{id}`);
        // the sort is stable, so equal rules keep the profile's order.
        rules.sort_by_key(|r| std::cmp::Reverse(r.literals));
        EndpointNamer { rules }
    }

    /// The display name of a request: the profile's name when a rule
    /// matches, else `METHOD /templated/path`.
    pub fn name(&self, method: &str, path: &str) -> String {
        let path = strip_origin_and_query(path);
        let segments: Vec<&str> = split(path).collect();
        let rule = self.rules.iter().find(|r| {
            r.method.eq_ignore_ascii_case(method)
                && r.segments.len() == segments.len()
                && r.segments
                    .iter()
                    .zip(&segments)
                    .all(|(rule, seg)| rule.as_deref().is_none_or(|lit| lit == *seg))
        });
        match rule {
            Some(r) => r.name.clone(),
            None => format!("{} {}", method.to_ascii_uppercase(), Self::template(path)),
        }
    }

    /// The path with ids templated: numbers, UUIDs and long hex strings
    /// become `{id}`; the query string is dropped.
    pub fn template(path: &str) -> String {
        let path = strip_origin_and_query(path);
        let mut out = String::with_capacity(path.len());
        for seg in split(path) {
            out.push('/');
            if is_id(seg) {
                out.push_str("{id}");
            } else {
                out.push_str(seg);
            }
        }
        if out.is_empty() {
            out.push('/');
        }
        out
    }

    /// Every display name the profile defines, in profile order, once each.
    pub fn names(profile: &Profile) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for r in &profile.endpoints {
            if !names.contains(&r.name) {
                names.push(r.name.clone());
            }
        }
        names
    }
}

/// Non-empty path segments (so `/a//b/` is `a`, `b`).
fn split(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

fn strip_origin_and_query(path: &str) -> &str {
    let path = match path.find("://") {
        Some(i) => {
            let rest = &path[i + 3..];
            rest.find('/').map_or("/", |j| &rest[j..])
        }
        None => path,
    };
    path.split(['?', '#']).next().unwrap_or("/")
}

/// Numbers, UUIDs and hex strings of 16+ characters with a digit.
fn is_id(seg: &str) -> bool {
    if seg.is_empty() {
        return false;
    }
    if seg.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    if is_uuid(seg) {
        return true;
    }
    seg.len() >= 16
        && seg.bytes().all(|b| b.is_ascii_hexdigit())
        && seg.bytes().any(|b| b.is_ascii_digit())
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_numbers_uuids_and_long_hex() {
        assert_eq!(
            EndpointNamer::template("/posts/42/like"),
            "/posts/{id}/like"
        );
        assert_eq!(
            EndpointNamer::template("/u/3f2504e0-4f89-11d3-9a0c-0305e82c3301?x=1"),
            "/u/{id}"
        );
        assert_eq!(
            EndpointNamer::template("/o/507f1f77bcf86cd799439011/items"),
            "/o/{id}/items"
        );
        // Short hex and plain words are not ids.
        assert_eq!(
            EndpointNamer::template("/cafe/beef/feed"),
            "/cafe/beef/feed"
        );
        assert_eq!(
            EndpointNamer::template("/deadbeefdeadbeefde"),
            "/deadbeefdeadbeefde"
        );
        assert_eq!(EndpointNamer::template("/"), "/");
        assert_eq!(EndpointNamer::template("https://h:1/a/7"), "/a/{id}");
    }

    #[test]
    fn profile_names_apply() {
        let n = EndpointNamer::new(&Profile::builtin());
        assert_eq!(n.name("GET", "/api/v1/social/feed?limit=20"), "Social Feed");
        assert_eq!(n.name("post", "/api/v1/social/posts/17/like"), "Like Post");
        assert_eq!(
            n.name("DELETE", "/api/v1/social/posts/17/like"),
            "Like Post"
        );
        assert_eq!(
            n.name("GET", "/api/v1/marketplace/products/9"),
            "Product Detail"
        );
        assert_eq!(
            n.name("GET", "/api/v1/marketplace/my-products"),
            "My Products"
        );
        assert_eq!(
            n.name("POST", "/api/v1/marketplace/products/"),
            "Create Product"
        );
        assert_eq!(n.name("GET", "/api/v1/posts/12"), "GET /api/v1/posts/{id}");
        assert_eq!(
            n.name("PUT", "/api/v1/social/feed"),
            "PUT /api/v1/social/feed"
        );
    }

    #[test]
    fn specific_rules_win_over_params() {
        let mut p = Profile::builtin();
        p.endpoints.clear();
        p.endpoints.push(crate::profile::EndpointRule {
            name: "Item".into(),
            method: "GET".into(),
            path: "/items/{id}".into(),
        });
        p.endpoints.push(crate::profile::EndpointRule {
            name: "Mine".into(),
            method: "GET".into(),
            path: "/items/mine".into(),
        });
        let n = EndpointNamer::new(&p);
        assert_eq!(n.name("GET", "/items/mine"), "Mine");
        assert_eq!(n.name("GET", "/items/3"), "Item");
    }
}
