//! Request validation with FastAPI's (pydantic v2's) error shape:
//! `{"detail": [{"type", "loc", "msg", "input"}]}` with status 422.

use serde_json::{json, Map, Value};

/// Collects the errors of one request; empty means valid.
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<Value>,
}

/// A parsed JSON object body, or the errors that stopped parsing it.
pub type Fields = Map<String, Value>;

impl Validator {
    /// A validator with no errors yet.
    pub fn new() -> Validator {
        Validator::default()
    }

    fn push(&mut self, kind: &str, loc: &[Value], msg: String, input: Value) {
        self.errors
            .push(json!({"type": kind, "loc": loc, "msg": msg, "input": input}));
    }

    /// The value of a required field; records pydantic's "Field required"
    /// and returns `None` when it is absent or null.
    fn required<'f>(&mut self, fields: &'f Fields, name: &str, loc: &[Value]) -> Option<&'f Value> {
        match fields.get(name) {
            None | Some(Value::Null) => {
                self.push(
                    "missing",
                    loc,
                    "Field required".into(),
                    Value::Object(fields.clone()),
                );
                None
            }
            Some(v) => Some(v),
        }
    }

    /// Parses `body` as a JSON object; records an error and returns `None`
    /// if it is not one.
    pub fn object(&mut self, body: &[u8]) -> Option<Fields> {
        if body.is_empty() {
            self.push(
                "missing",
                &[json!("body")],
                "Field required".into(),
                Value::Null,
            );
            return None;
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Some(map),
            Ok(other) => {
                self.push(
                    "model_attributes_type",
                    &[json!("body")],
                    "Input should be a valid dictionary or object to extract fields from".into(),
                    other,
                );
                None
            }
            Err(e) => {
                let position = byte_offset(body, e.line(), e.column());
                self.push(
                    "json_invalid",
                    &[json!("body"), json!(position)],
                    "JSON decode error".into(),
                    json!({}),
                );
                None
            }
        }
    }

    /// A required string field of `min..=max` characters.
    pub fn string(
        &mut self,
        fields: &Fields,
        name: &str,
        min: usize,
        max: usize,
    ) -> Option<String> {
        let loc = [json!("body"), json!(name)];
        match self.required(fields, name, &loc)? {
            Value::String(s) => {
                let chars = s.chars().count();
                if chars < min {
                    let unit = if min == 1 { "character" } else { "characters" };
                    self.push(
                        "string_too_short",
                        &loc,
                        format!("String should have at least {min} {unit}"),
                        json!(s),
                    );
                    None
                } else if chars > max {
                    self.push(
                        "string_too_long",
                        &loc,
                        format!("String should have at most {max} characters"),
                        json!(s),
                    );
                    None
                } else {
                    Some(s.clone())
                }
            }
            other => {
                self.push(
                    "string_type",
                    &loc,
                    "Input should be a valid string".into(),
                    other.clone(),
                );
                None
            }
        }
    }

    /// An optional string field: `default` when absent.
    pub fn string_or(
        &mut self,
        fields: &Fields,
        name: &str,
        default: &str,
        max: usize,
    ) -> Option<String> {
        match fields.get(name) {
            None | Some(Value::Null) => Some(default.to_string()),
            Some(_) => self.string(fields, name, 0, max),
        }
    }

    /// A required integer field in `min..=max`.
    pub fn integer(&mut self, fields: &Fields, name: &str, min: i64, max: i64) -> Option<i64> {
        let loc = [json!("body"), json!(name)];
        let value = self.required(fields, name, &loc)?;
        let n = match value {
            Value::Number(n) => n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            }),
            // pydantic's lax mode accepts numeric strings.
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        let Some(n) = n else {
            let (kind, msg) = if value.is_string() {
                (
                    "int_parsing",
                    "Input should be a valid integer, unable to parse string as an integer",
                )
            } else {
                ("int_type", "Input should be a valid integer")
            };
            self.push(kind, &loc, msg.into(), value.clone());
            return None;
        };
        self.range(&loc, n as f64, min as f64, max as f64, value)
            .then_some(n)
    }

    /// A required number field in `min..=max`.
    pub fn number(&mut self, fields: &Fields, name: &str, min: f64, max: f64) -> Option<f64> {
        let loc = [json!("body"), json!(name)];
        let value = self.required(fields, name, &loc)?;
        let n = match value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
            _ => None,
        };
        let Some(n) = n else {
            let (kind, msg) = if value.is_string() {
                (
                    "float_parsing",
                    "Input should be a valid number, unable to parse string as a number",
                )
            } else {
                ("float_type", "Input should be a valid number")
            };
            self.push(kind, &loc, msg.into(), value.clone());
            return None;
        };
        self.range(&loc, n, min, max, value).then_some(n)
    }

    fn range(&mut self, loc: &[Value], n: f64, min: f64, max: f64, input: &Value) -> bool {
        if n < min {
            self.push(
                "greater_than_equal",
                loc,
                format!(
                    "Input should be greater than or equal to {}",
                    trim_float(min)
                ),
                input.clone(),
            );
            false
        } else if n > max {
            self.push(
                "less_than_equal",
                loc,
                format!("Input should be less than or equal to {}", trim_float(max)),
                input.clone(),
            );
            false
        } else {
            true
        }
    }

    /// A query parameter that must be an integer in `min..=max`; `default`
    /// when absent.
    pub fn query_integer(
        &mut self,
        value: Option<&str>,
        name: &str,
        default: i64,
        min: i64,
        max: i64,
    ) -> i64 {
        let loc = [json!("query"), json!(name)];
        let Some(raw) = value else {
            return default;
        };
        match raw.parse::<i64>() {
            Ok(n) if self.range(&loc, n as f64, min as f64, max as f64, &json!(raw)) => n,
            Ok(_) => default,
            Err(_) => {
                self.push(
                    "int_parsing",
                    &loc,
                    "Input should be a valid integer, unable to parse string as an integer".into(),
                    json!(raw),
                );
                default
            }
        }
    }

    /// A path parameter that is not an integer.
    pub fn path_error(&mut self, name: &str, raw: &str) {
        self.push(
            "int_parsing",
            &[json!("path"), json!(name)],
            "Input should be a valid integer, unable to parse string as an integer".into(),
            json!(raw),
        );
    }

    /// A body field outside its allowed values.
    pub fn enum_error(&mut self, name: &str, expected: &str, input: &str) {
        self.push(
            "enum",
            &[json!("body"), json!(name)],
            format!("Input should be {expected}"),
            json!(input),
        );
    }

    /// A custom error on a body field.
    pub fn invalid(&mut self, name: &str, msg: &str, input: Value) {
        self.push(
            "value_error",
            &[json!("body"), json!(name)],
            format!("Value error, {msg}"),
            input,
        );
    }

    /// `Ok` if nothing was wrong, else the 422 body.
    pub fn finish(self) -> Result<(), Value> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(json!({"detail": self.errors}))
        }
    }
}

fn trim_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// serde_json reports line and column (1-based); FastAPI reports a byte
/// offset into the body.
fn byte_offset(body: &[u8], line: usize, column: usize) -> usize {
    let line_start: usize = body
        .split(|b| *b == b'\n')
        .take(line.saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum();
    (line_start + column.saturating_sub(1)).min(body.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(v: Value) -> Fields {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn missing_and_wrong_types_are_listed_with_locations() {
        let mut v = Validator::new();
        let f = fields(json!({"minutes": "abc", "calories": true}));
        assert_eq!(v.string(&f, "kind", 1, 40), None);
        assert_eq!(v.integer(&f, "minutes", 1, 600), None);
        assert_eq!(v.integer(&f, "calories", 0, 10_000), None);
        let detail = v.finish().unwrap_err();
        let errors = detail["detail"].as_array().unwrap();
        assert_eq!(errors.len(), 3);
        assert_eq!(errors[0]["type"], "missing");
        assert_eq!(errors[0]["loc"], json!(["body", "kind"]));
        assert_eq!(errors[1]["type"], "int_parsing");
        assert_eq!(errors[2]["type"], "int_type");
    }

    #[test]
    fn lax_numbers_and_ranges() {
        let mut v = Validator::new();
        let f = fields(json!({"a": "12", "b": 30.0, "c": -1, "d": "4.5"}));
        assert_eq!(v.integer(&f, "a", 0, 100), Some(12));
        assert_eq!(v.integer(&f, "b", 0, 100), Some(30));
        assert_eq!(v.number(&f, "d", 0.0, 10.0), Some(4.5));
        assert!(v.finish().is_ok());
        let mut v = Validator::new();
        assert_eq!(v.integer(&f, "c", 0, 100), None);
        let detail = v.finish().unwrap_err();
        assert_eq!(detail["detail"][0]["type"], "greater_than_equal");
        assert_eq!(
            detail["detail"][0]["msg"],
            "Input should be greater than or equal to 0"
        );
    }

    #[test]
    fn malformed_json_reports_byte_offset() {
        let mut v = Validator::new();
        assert!(v.object(b"{\"a\": 1,\n \"b\" }").is_none());
        let detail = v.finish().unwrap_err();
        assert_eq!(detail["detail"][0]["type"], "json_invalid");
        assert_eq!(detail["detail"][0]["loc"][0], "body");
        assert!(detail["detail"][0]["loc"][1].as_u64().unwrap() > 8);
        let mut v = Validator::new();
        assert!(v.object(b"[1,2]").is_none());
        assert_eq!(
            v.finish().unwrap_err()["detail"][0]["type"],
            "model_attributes_type"
        );
    }

    #[test]
    fn query_integers() {
        let mut v = Validator::new();
        assert_eq!(v.query_integer(None, "limit", 20, 1, 100), 20);
        assert_eq!(v.query_integer(Some("5"), "limit", 20, 1, 100), 5);
        assert!(v.finish().is_ok());
        let mut v = Validator::new();
        v.query_integer(Some("x"), "limit", 20, 1, 100);
        v.query_integer(Some("500"), "offset", 0, 0, 100);
        let detail = v.finish().unwrap_err();
        assert_eq!(detail["detail"][0]["loc"], json!(["query", "limit"]));
        assert_eq!(detail["detail"][1]["type"], "less_than_equal");
    }
}
