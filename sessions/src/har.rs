//! HAR 1.2 import and export.
//!
//! Import accepts what browsers' devtools save (optional fields may be
//! missing; HTTP/2 pseudo-headers are dropped). Export writes one entry per
//! exchange; bodies that are not UTF-8 are base64 with `"encoding":"base64"`;
//! tapedeck's own fields (id, session, connection, client) ride in a
//! `_tapedeck` object so export → import round-trips them.

use std::path::Path;

use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use crate::keys::{SessionKey, SessionKeyer};
use crate::model::{header, Body, Exchange, RecordedRequest, RecordedResponse};
use crate::Error;

/// Exchanges read from a HAR file, and the origin of its first entry.
#[derive(Debug, Clone)]
pub struct HarImport {
    /// One exchange per entry, in entry order.
    pub exchanges: Vec<Exchange>,
    /// `scheme://host[:port]` of the first entry (the journal's upstream).
    pub upstream: String,
}

/// Reads a HAR file. A missing required field is an error naming the file
/// and the entry index; entries without a tapedeck session get one from
/// `key` (as the capture proxy would have assigned it).
pub fn import_har(path: &Path, key: &SessionKey) -> Result<HarImport, Error> {
    let text = std::fs::read(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let value: Value = serde_json::from_slice(&text).map_err(|e| Error::Invalid {
        path: path.to_path_buf(),
        what: format!("not a HAR file (not JSON: {e})"),
    })?;
    har_to_exchanges(&value, key).map_err(|what| Error::Invalid {
        path: path.to_path_buf(),
        what,
    })
}

/// Converts a parsed HAR document; the error says what is wrong and where.
pub fn har_to_exchanges(har: &Value, key: &SessionKey) -> Result<HarImport, String> {
    let entries = har
        .get("log")
        .ok_or("not a HAR file (no \"log\" object)")?
        .get("entries")
        .and_then(Value::as_array)
        .ok_or("not a HAR file (no \"log.entries\" array)")?;
    let mut keyer = SessionKeyer::new(key.clone());
    let mut exchanges = Vec::with_capacity(entries.len());
    let mut upstream = None;
    for (i, entry) in entries.iter().enumerate() {
        let (mut ex, origin) =
            entry_to_exchange(i, entry).map_err(|e| format!("entry {i}: {e}"))?;
        let first = upstream.get_or_insert_with(|| origin.clone());
        if *first != origin {
            ex.upstream = Some(origin);
        }
        if ex.session.is_empty() {
            ex.session = keyer.assign(&ex);
        }
        exchanges.push(ex);
    }
    Ok(HarImport {
        exchanges,
        upstream: upstream.unwrap_or_default(),
    })
}

fn req_str<'a>(v: &'a Value, path: &str) -> Result<&'a str, String> {
    lookup(v, path)
        .ok_or_else(|| format!("missing {path}"))?
        .as_str()
        .ok_or_else(|| format!("{path} is not a string"))
}

fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |cur, part| cur.get(part))
}

fn ms_to_us(v: Option<&Value>) -> Option<u64> {
    let ms = v?.as_f64()?;
    (ms >= 0.0).then(|| (ms * 1000.0).round() as u64)
}

fn headers_of(v: Option<&Value>) -> Result<Vec<(String, String)>, String> {
    let Some(list) = v.and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(list.len());
    for h in list {
        let name = h
            .get("name")
            .and_then(Value::as_str)
            .ok_or("a header has no name")?;
        let value = h.get("value").and_then(Value::as_str).unwrap_or("");
        // HTTP/2 pseudo-headers (`:method`, ...) are not real header fields.
        if !name.starts_with(':') {
            out.push((name.to_string(), value.to_string()));
        }
    }
    Ok(out)
}

fn body_of(
    text: Option<&Value>,
    encoding: Option<&Value>,
    size: Option<&Value>,
) -> Result<Body, String> {
    let data = match text.and_then(Value::as_str) {
        None => Vec::new(),
        Some(t) if encoding.and_then(Value::as_str) == Some("base64") => {
            base64::engine::general_purpose::STANDARD
                .decode(t.trim())
                .map_err(|e| format!("body is marked base64 but is not: {e}"))?
        }
        Some(t) => t.as_bytes().to_vec(),
    };
    let size = size
        .and_then(Value::as_i64)
        .filter(|s| *s >= 0)
        .map(|s| s as u64);
    let len = size.unwrap_or(data.len() as u64).max(data.len() as u64);
    Ok(Body {
        truncated: (data.len() as u64) < len,
        len,
        data,
    })
}

fn entry_to_exchange(i: usize, e: &Value) -> Result<(Exchange, String), String> {
    let started = parse_started(req_str(e, "startedDateTime")?)?;
    let method = req_str(e, "request.method")?.to_string();
    let url_text = req_str(e, "request.url")?;
    let url =
        url::Url::parse(url_text).map_err(|err| format!("request.url {url_text:?}: {err}"))?;
    let origin = url.origin().ascii_serialization();
    // The request target exactly as written (the URL parser would resolve
    // dot segments and re-encode characters, which replay must not do).
    let after_scheme = url_text
        .split_once("://")
        .map_or(url_text, |(_, rest)| rest);
    let target = after_scheme
        .find(['/', '?'])
        .map_or("", |i| &after_scheme[i..]);
    let target = target.split('#').next().unwrap_or("");
    let uri = match target.strip_prefix('?') {
        Some(_) => format!("/{target}"),
        None if target.is_empty() => "/".to_string(),
        None => target.to_string(),
    };
    let request = e.get("request").expect("checked by req_str above");
    let post = request.get("postData");
    let tapedeck = e.get("_tapedeck");
    // `bodySize` counts bytes on the wire (maybe compressed) and browsers fill
    // it loosely; the text is taken as the whole body unless tapedeck itself
    // recorded a truncated one.
    let req_body = body_of(
        post.and_then(|p| p.get("text")),
        post.and_then(|p| p.get("encoding")),
        tapedeck
            .and_then(|t| t.get("request_body_len"))
            .or_else(|| post.is_none().then(|| request.get("bodySize")).flatten()),
    )?;
    let response = e
        .get("response")
        .ok_or("missing response (write {\"status\":0} for none)")?;
    let status = response
        .get("status")
        .ok_or("missing response.status")?
        .as_u64()
        .ok_or("response.status is not a number")?;
    let error_text = tapedeck
        .and_then(|t| t.get("error"))
        .and_then(Value::as_str)
        .or_else(|| response.get("_error").and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let (response, error) = if status == 0 {
        (
            None,
            Some(error_text.unwrap_or_else(|| "no response".to_string())),
        )
    } else {
        let status = u16::try_from(status).map_err(|_| "response.status out of range")?;
        let content = response.get("content");
        let text = content.and_then(|c| c.get("text"));
        let body = body_of(
            text,
            content.and_then(|c| c.get("encoding")),
            tapedeck
                .and_then(|t| t.get("response_body_len"))
                .or_else(|| {
                    text.is_none()
                        .then(|| content.and_then(|c| c.get("size")))
                        .flatten()
                }),
        )?;
        (
            Some(RecordedResponse {
                status,
                headers: headers_of(response.get("headers"))?,
                body,
            }),
            error_text,
        )
    };
    let timings = e.get("timings");
    let ttfb_us = match timings {
        Some(t) => ["blocked", "dns", "connect", "send", "wait"]
            .iter()
            .filter_map(|k| ms_to_us(t.get(*k)))
            .fold(0u64, u64::saturating_add),
        None => 0,
    };
    let duration_us = ms_to_us(e.get("time")).unwrap_or(ttfb_us).max(ttfb_us);
    let t_u64 = |k: &str| tapedeck.and_then(|t| t.get(k)).and_then(Value::as_u64);
    let conn = t_u64("conn")
        .or_else(|| {
            e.get("connection")
                .and_then(Value::as_str)
                .and_then(|c| c.parse().ok())
        })
        .unwrap_or(0);
    let ex = Exchange {
        id: t_u64("id").unwrap_or(i as u64),
        session: tapedeck
            .and_then(|t| t.get("session"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        conn,
        started,
        upstream: None,
        client: tapedeck
            .and_then(|t| t.get("client"))
            .and_then(Value::as_str)
            .map(str::to_string),
        request: RecordedRequest {
            method,
            uri,
            version: request
                .get("httpVersion")
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .map_or_else(|| "HTTP/1.1".to_string(), normalize_version),
            headers: headers_of(request.get("headers"))?,
            body: req_body,
        },
        response,
        error,
        ttfb_us,
        duration_us,
    };
    Ok((ex, origin))
}

/// ISO 8601 with an offset; a time without one is taken as UTC.
fn parse_started(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = s.parse::<DateTime<chrono::FixedOffset>>() {
        return Ok(t.with_timezone(&Utc));
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|n| n.and_utc())
        .map_err(|err| format!("startedDateTime {s:?} is not ISO 8601: {err}"))
}

fn normalize_version(v: &str) -> String {
    match v.to_ascii_lowercase().as_str() {
        "h2" | "http/2" | "http/2.0" => "HTTP/2".to_string(),
        "h3" | "http/3" => "HTTP/3".to_string(),
        _ => v.to_ascii_uppercase(),
    }
}

/// The HAR text of a body: UTF-8 as is, anything else base64.
fn body_json(b: &Body) -> (String, Option<&'static str>) {
    match std::str::from_utf8(&b.data) {
        Ok(s) => (s.to_string(), None),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(&b.data),
            Some("base64"),
        ),
    }
}

fn us_to_ms(us: u64) -> Value {
    json!(us as f64 / 1000.0)
}

fn name_values(headers: &[(String, String)]) -> Value {
    Value::Array(
        headers
            .iter()
            .map(|(n, v)| json!({"name": n, "value": v}))
            .collect(),
    )
}

/// The absolute URL of an exchange, given the journal's upstream.
fn absolute_url(ex: &Exchange, upstream: &str) -> String {
    let uri = ex.request.uri.as_str();
    if uri.contains("://") {
        return uri.to_string();
    }
    let origin = ex
        .upstream
        .as_deref()
        .filter(|u| u.contains("://"))
        .or(Some(upstream).filter(|u| u.contains("://")))
        .map(|u| u.trim_end_matches('/').to_string())
        .unwrap_or_else(|| {
            let host = header(&ex.request.headers, "host").unwrap_or("unknown");
            format!("http://{host}")
        });
    format!("{origin}{uri}")
}

/// A HAR 1.2 document of `exchanges` (recorded in front of `upstream`).
pub fn exchanges_to_har(exchanges: &[Exchange], upstream: &str) -> Value {
    let entries: Vec<Value> = exchanges
        .iter()
        .map(|ex| entry_json(ex, upstream))
        .collect();
    json!({
        "log": {
            "version": "1.2",
            "creator": {"name": "tapedeck", "version": env!("CARGO_PKG_VERSION")},
            "pages": [],
            "entries": entries,
        }
    })
}

fn entry_json(ex: &Exchange, upstream: &str) -> Value {
    let url = absolute_url(ex, upstream);
    let query: Vec<Value> = url::Url::parse(&url)
        .map(|u| {
            u.query_pairs()
                .map(|(n, v)| json!({"name": n, "value": v}))
                .collect()
        })
        .unwrap_or_default();
    let mut request = Map::new();
    request.insert("method".into(), json!(ex.request.method));
    request.insert("url".into(), json!(url));
    request.insert("httpVersion".into(), json!(ex.request.version));
    request.insert("cookies".into(), json!([]));
    request.insert("headers".into(), name_values(&ex.request.headers));
    request.insert("queryString".into(), Value::Array(query));
    if !ex.request.body.data.is_empty() || ex.request.body.len > 0 {
        let (text, encoding) = body_json(&ex.request.body);
        let mime =
            header(&ex.request.headers, "content-type").unwrap_or("application/octet-stream");
        let mut post = json!({"mimeType": mime, "text": text});
        if let Some(enc) = encoding {
            post["encoding"] = json!(enc);
        }
        request.insert("postData".into(), post);
    }
    request.insert("headersSize".into(), json!(-1));
    request.insert("bodySize".into(), json!(ex.request.body.len));

    let response = match &ex.response {
        Some(r) => {
            let (text, encoding) = body_json(&r.body);
            let mime = header(&r.headers, "content-type").unwrap_or("");
            let mut content = json!({"size": r.body.len, "mimeType": mime, "text": text});
            if let Some(enc) = encoding {
                content["encoding"] = json!(enc);
            }
            json!({
                "status": r.status,
                "statusText": status_text(r.status),
                "httpVersion": ex.request.version,
                "cookies": [],
                "headers": name_values(&r.headers),
                "content": content,
                "redirectURL": header(&r.headers, "location").unwrap_or(""),
                "headersSize": -1,
                "bodySize": r.body.len,
            })
        }
        // Devtools' convention for a request that got no response.
        None => json!({
            "status": 0, "statusText": "", "httpVersion": "", "cookies": [], "headers": [],
            "content": {"size": 0, "mimeType": ""}, "redirectURL": "", "headersSize": -1,
            "bodySize": -1, "_error": ex.error.clone().unwrap_or_default(),
        }),
    };
    let receive = ex.duration_us.saturating_sub(ex.ttfb_us);
    let mut tapedeck = json!({"id": ex.id, "session": ex.session, "conn": ex.conn});
    if let Some(c) = &ex.client {
        tapedeck["client"] = json!(c);
    }
    if let Some(e) = &ex.error {
        tapedeck["error"] = json!(e);
    }
    if let Some(r) = ex.response.as_ref().filter(|r| r.body.truncated) {
        tapedeck["response_body_len"] = json!(r.body.len);
    }
    if ex.request.body.truncated {
        tapedeck["request_body_len"] = json!(ex.request.body.len);
    }
    json!({
        "startedDateTime": ex.started.to_rfc3339_opts(SecondsFormat::Nanos, true),
        "time": us_to_ms(ex.duration_us),
        "request": request,
        "response": response,
        "cache": {},
        "timings": {
            "blocked": -1, "dns": -1, "connect": -1, "ssl": -1,
            "send": 0, "wait": us_to_ms(ex.ttfb_us), "receive": us_to_ms(receive),
        },
        "connection": ex.conn.to_string(),
        "_tapedeck": tapedeck,
    })
}

fn status_text(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// Writes `exchanges` as a HAR file (0600).
pub fn export_har(path: &Path, exchanges: &[Exchange], upstream: &str) -> Result<(), Error> {
    let har = exchanges_to_har(exchanges, upstream);
    let text = serde_json::to_vec_pretty(&har).map_err(|e| Error::Invalid {
        path: path.to_path_buf(),
        what: format!("cannot encode HAR: {e}"),
    })?;
    crate::journal::write_private(path, &text)
}

#[cfg(test)]
mod tests;
