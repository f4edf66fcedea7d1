//! Filters on message bodies, one syntax for every kind of stream
//! (WebSocket subscriptions, server-sent events, long-poll).
//!
//! A filter is a list of conditions that must all hold. A condition is
//! `path==value` (equality) or `path^=prefix` (string prefix). The path is
//! dot-separated keys into the message body; an all-digit segment indexes
//! an array. The value is read as JSON when it is valid JSON (`42`, `true`,
//! `null`, `"quoted"`), otherwise as a bare string (`kind==deploy`).
//! Evaluated here, never in a store's query language, so every store
//! filters alike.

use serde_json::Value;

/// Conditions one filter may hold: enough for any dashboard, small enough
/// that evaluating a filter stays cheap for every pushed message.
pub const MAX_CONDITIONS: usize = 16;
/// Longest condition accepted, in bytes.
pub const MAX_CONDITION_LEN: usize = 512;

/// A parsed filter; the empty filter matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter(Vec<Condition>);

#[derive(Debug, Clone, PartialEq)]
struct Condition {
    path: Vec<String>,
    test: Test,
}

#[derive(Debug, Clone, PartialEq)]
enum Test {
    Equals(Value),
    Prefix(String),
}

impl Filter {
    /// Parses conditions; the error says which one is malformed and why.
    pub fn parse<S: AsRef<str>>(conditions: &[S]) -> Result<Self, String> {
        if conditions.len() > MAX_CONDITIONS {
            return Err(format!(
                "A filter may have at most {MAX_CONDITIONS} conditions."
            ));
        }
        conditions
            .iter()
            .map(|c| Condition::parse(c.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Whether nothing is filtered out.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a message body (JSON text as stored) passes every
    /// condition. A body that is not JSON matches no condition.
    pub fn matches(&self, body: &[u8]) -> bool {
        if self.0.is_empty() {
            return true;
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(body) => self.matches_value(&body),
            Err(_) => false,
        }
    }

    /// Whether a parsed body passes every condition.
    pub fn matches_value(&self, body: &Value) -> bool {
        self.0.iter().all(|condition| condition.holds(body))
    }
}

impl Condition {
    fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_CONDITION_LEN {
            return Err(format!(
                "Filter condition is longer than {MAX_CONDITION_LEN} bytes."
            ));
        }
        let equals = text.find("==");
        let prefix = text.find("^=");
        let (at, is_prefix) = match (equals, prefix) {
            (Some(e), Some(p)) if p < e => (p, true),
            (Some(e), _) => (e, false),
            (None, Some(p)) => (p, true),
            (None, None) => {
                return Err(format!(
                    "Malformed filter {text:?}: expected path==value or path^=prefix."
                ))
            }
        };
        let (path, value) = (text[..at].trim(), &text[at + 2..]);
        if path.is_empty() || path.split('.').any(|segment| segment.trim().is_empty()) {
            return Err(format!(
                "Malformed filter {text:?}: the path must be dot-separated keys of the message body."
            ));
        }
        let path = path.split('.').map(|s| s.trim().to_string()).collect();
        let parsed = serde_json::from_str::<Value>(value.trim()).ok();
        let test = if is_prefix {
            match parsed {
                Some(Value::String(prefix)) => Test::Prefix(prefix),
                _ => Test::Prefix(value.to_string()),
            }
        } else {
            Test::Equals(parsed.unwrap_or_else(|| Value::String(value.to_string())))
        };
        Ok(Self { path, test })
    }

    fn holds(&self, body: &Value) -> bool {
        let mut at = body;
        for segment in &self.path {
            let next = match at {
                Value::Object(map) => map.get(segment),
                Value::Array(items) if segment.bytes().all(|b| b.is_ascii_digit()) => {
                    segment.parse::<usize>().ok().and_then(|i| items.get(i))
                }
                _ => None,
            };
            match next {
                Some(value) => at = value,
                None => return false,
            }
        }
        match &self.test {
            Test::Equals(expected) => json_equal(at, expected),
            Test::Prefix(prefix) => at.as_str().is_some_and(|s| s.starts_with(prefix.as_str())),
        }
    }
}

/// JSON equality where `1` equals `1.0`.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn passes(conditions: &[&str], body: Value) -> bool {
        Filter::parse(conditions).unwrap().matches_value(&body)
    }

    #[test]
    fn equality_reads_json_values_or_bare_strings() {
        let body = json!({"kind": "deploy", "n": 42, "ok": true, "none": null, "s": "42"});
        assert!(passes(&["kind==deploy"], body.clone()));
        assert!(passes(&["kind==\"deploy\""], body.clone()));
        assert!(passes(&["n==42"], body.clone()));
        assert!(passes(&["ok==true", "none==null"], body.clone()));
        assert!(
            !passes(&["s==42"], body.clone()),
            "42 is a number, not \"42\""
        );
        assert!(passes(&["s==\"42\""], body.clone()));
        assert!(!passes(&["kind==deploy", "n==41"], body), "all must hold");
    }

    #[test]
    fn paths_go_into_objects_and_arrays() {
        let body = json!({"instance": {"state": "running", "tags": ["a", "blue"]}});
        assert!(passes(&["instance.state==running"], body.clone()));
        assert!(passes(&["instance.tags.1==blue"], body.clone()));
        assert!(passes(&["instance.state^=run"], body.clone()));
        assert!(!passes(&["instance.state^=stop"], body.clone()));
        assert!(!passes(&["instance.missing==x"], body.clone()));
        assert!(!passes(&["instance.tags.9==blue"], body));
    }

    #[test]
    fn malformed_conditions_are_refused() {
        for bad in ["kind", "==x", ".a==1", "a..b==1", "a.==1", "^=x"] {
            assert!(Filter::parse(&[bad]).is_err(), "{bad}");
        }
        let too_many: Vec<String> = (0..=MAX_CONDITIONS).map(|i| format!("a=={i}")).collect();
        assert!(Filter::parse(&too_many).is_err());
    }

    #[test]
    fn a_body_that_is_not_json_matches_nothing_but_the_empty_filter() {
        assert!(Filter::default().matches(b"not json"));
        assert!(!Filter::parse(&["a==1"]).unwrap().matches(b"not json"));
    }
}
