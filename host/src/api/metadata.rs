//! Queue metadata: the reserved keys (`_`-prefixed: their checks, their defaults,
//! and the typed policy message posts and claims read from them).

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::Limits;

use super::{body::int_value, validation::MIN_MESSAGE_TTL};

/// The reserved keys GET fills with defaults, in Zaqar's order.
pub const RESERVED_KEYS: [&str; 7] = [
    "_max_messages_post_size",
    "_default_message_ttl",
    "_default_message_delay",
    "_dead_letter_queue",
    "_dead_letter_queue_messages_ttl",
    "_max_claim_count",
    "_enable_encrypt_messages",
];

/// The metadata as GET shows it: stored keys first, then each reserved key
/// that is missing (or null) with its default.
pub fn with_defaults(mut metadata: Map<String, Value>, limits: &Limits) -> Map<String, Value> {
    for key in RESERVED_KEYS {
        if metadata.get(key).is_none_or(Value::is_null) {
            metadata.insert(key.to_string(), default_of(key, limits));
        }
    }
    metadata
}

fn default_of(key: &str, limits: &Limits) -> Value {
    match key {
        "_max_messages_post_size" => Value::from(limits.max_messages_post_size),
        "_default_message_ttl" => Value::from(limits.default_message_ttl),
        "_default_message_delay" => Value::from(limits.default_message_delay),
        "_enable_encrypt_messages" => Value::Bool(false),
        _ => Value::Null,
    }
}

/// Checks the reserved keys (Zaqar's `queue_metadata_putting`), with strict
/// types (stricter than Zaqar): integers must be JSON integers, `null` means unset.
/// Returns the validator's message; PUT reports it as an API error, PATCH as
/// a body error.
pub fn check_reserved(metadata: &Map<String, Value>, limits: &Limits) -> Result<(), String> {
    let max_ttl = limits.max_message_ttl;
    if let Some(ttl) = reserved_int(metadata, "_default_message_ttl")? {
        if !(MIN_MESSAGE_TTL..=i64::from(max_ttl)).contains(&ttl) {
            return Err(format!(
                "_default_message_ttl can not exceed {max_ttl} seconds, and must be at least {MIN_MESSAGE_TTL} seconds long."
            ));
        }
    }
    let max_post = limits.max_messages_post_size;
    if let Some(size) = reserved_int(metadata, "_max_messages_post_size")? {
        if size <= 0 || size as u64 > max_post {
            return Err(format!(
                "_max_messages_post_size can not exceed {max_post},  and must be at least greater than 0."
            ));
        }
    }
    if let Some(count) = reserved_int(metadata, "_max_claim_count")? {
        if count < 0 || count > i64::from(u32::MAX) {
            return Err("_max_claim_count must be integer.".into());
        }
    }
    if let Some(ttl) = reserved_int(metadata, "_dead_letter_queue_messages_ttl")? {
        if !(MIN_MESSAGE_TTL..=i64::from(max_ttl)).contains(&ttl) {
            return Err(format!(
                "The TTL for a message may not exceed {max_ttl} seconds, and must be at least {MIN_MESSAGE_TTL} seconds long."
            ));
        }
    }
    let max_delay = limits.max_message_delay;
    if let Some(delay) = reserved_int(metadata, "_default_message_delay")? {
        if !(0..=i64::from(max_delay)).contains(&delay) {
            return Err(format!(
                "The TTL can not exceed {max_delay} seconds, and must be at least 0 seconds long."
            ));
        }
    }
    match metadata.get("_enable_encrypt_messages") {
        None | Some(Value::Null) | Some(Value::Bool(_)) => {}
        Some(_) => return Err("_enable_encrypt_messages must be boolean.".into()),
    }
    // Zaqar does not check it; a dead-letter queue must be a queue name
    // the API would accept, or moved messages would land out of reach.
    match metadata.get("_dead_letter_queue") {
        None | Some(Value::Null) => {}
        Some(Value::String(name))
            if !name.is_empty()
                && name.len() <= super::validation::QUEUE_NAME_MAX_LEN
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')) => {}
        Some(_) => return Err("_dead_letter_queue must be a valid queue name.".into()),
    }
    check_retry_policy(metadata.get("_retry_policy"))
}

fn reserved_int(metadata: &Map<String, Value>, key: &str) -> Result<Option<i64>, String> {
    match metadata.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => int_value(value)
            .map(Some)
            .ok_or_else(|| format!("{key} must be integer.")),
    }
}

/// Zaqar's `_validate_retry_policy` (queue `_retry_policy` and subscription
/// `options._retry_policy`), with strict types.
pub fn check_retry_policy(policy: Option<&Value>) -> Result<(), String> {
    let policy = match policy {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(policy)) => policy,
        Some(_) => return Err("retry_policy must be a dict.".into()),
    };
    for key in [
        "retries_with_no_delay",
        "minimum_delay_retries",
        "minimum_delay",
        "maximum_delay",
        "maximum_delay_retries",
    ] {
        match policy.get(key) {
            None | Some(Value::Null) => {}
            Some(value) if int_value(value).is_some_and(|n| n >= 0) => {}
            Some(_) => return Err(format!("Retry policy: {key} must be a integer.")),
        }
    }
    match policy.get("retry_backoff_function") {
        None | Some(Value::Null) => {}
        Some(Value::String(name))
            if matches!(
                name.as_str(),
                "linear" | "arithmetic" | "exponential" | "geometric"
            ) => {}
        Some(Value::String(_)) => return Err("invalid retry_backoff_function.".into()),
        Some(_) => return Err("retry_backoff_function must be a string.".into()),
    }
    match policy.get("ignore_subscription_override") {
        None | Some(Value::Null) | Some(Value::Bool(_)) => {}
        Some(_) => return Err("ignore_subscription_override must be a boolean.".into()),
    }
    let min_delay = policy.get("minimum_delay").and_then(int_value).unwrap_or(5);
    let max_delay = policy
        .get("maximum_delay")
        .and_then(int_value)
        .unwrap_or(30);
    if max_delay < min_delay {
        return Err("minimum_delay must less than maximum_delay.".into());
    }
    if max_delay - min_delay < 10 {
        return Err("invalid minimum_delay and maximum_delay.".into());
    }
    Ok(())
}

/// The reserved keys message posts and claims act on, read from stored
/// metadata without building a document tree (one metadata read per post).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct QueuePolicy {
    #[serde(rename = "_default_message_ttl")]
    pub default_message_ttl: Option<i64>,
    #[serde(rename = "_default_message_delay")]
    pub default_message_delay: Option<i64>,
    #[serde(rename = "_max_messages_post_size")]
    pub max_messages_post_size: Option<i64>,
    #[serde(rename = "_max_claim_count")]
    pub max_claim_count: Option<i64>,
    #[serde(rename = "_dead_letter_queue")]
    pub dead_letter_queue: Option<String>,
    #[serde(rename = "_dead_letter_queue_messages_ttl")]
    pub dead_letter_queue_messages_ttl: Option<i64>,
}

impl QueuePolicy {
    /// Reads the policy of stored metadata (validated when it was stored);
    /// a missing queue has the default policy.
    pub fn from_stored(metadata: Option<&[u8]>) -> Self {
        metadata
            .and_then(|bytes| serde_json::from_slice(bytes).ok())
            .unwrap_or_default()
    }

    /// Whether messages of this queue may be delayed: Zaqar only lets
    /// listings hide delayed messages when the queue has a truthy
    /// `_default_message_delay`.
    pub fn has_default_delay(&self) -> bool {
        self.default_message_delay.is_some_and(|delay| delay > 0)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn defaults_follow_stored_keys_in_zaqars_order() {
        let shown = with_defaults(
            map(json!({"_default_message_ttl": 300, "description": "d"})),
            &Limits::default(),
        );
        let keys: Vec<&str> = shown.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "_default_message_ttl",
                "description",
                "_max_messages_post_size",
                "_default_message_delay",
                "_dead_letter_queue",
                "_dead_letter_queue_messages_ttl",
                "_max_claim_count",
                "_enable_encrypt_messages"
            ]
        );
        assert_eq!(shown["_max_messages_post_size"], json!(262144));
        assert_eq!(shown["_enable_encrypt_messages"], json!(false));
    }

    #[test]
    fn reserved_keys_are_range_checked_with_zaqars_messages() {
        let limits = Limits::default();
        let check = |value: Value| check_reserved(&map(value), &limits);
        assert_eq!(
            check(json!({"_default_message_ttl": 10})).unwrap_err(),
            "_default_message_ttl can not exceed 1209600 seconds, and must be at least 60 seconds long."
        );
        assert_eq!(
            check(json!({"_max_messages_post_size": 0})).unwrap_err(),
            "_max_messages_post_size can not exceed 262144,  and must be at least greater than 0."
        );
        assert_eq!(
            check(json!({"_default_message_delay": 901})).unwrap_err(),
            "The TTL can not exceed 900 seconds, and must be at least 0 seconds long."
        );
        assert!(
            check(json!({"_default_message_ttl": 60, "_default_message_delay": 0, "x": [1]}))
                .is_ok()
        );
    }

    #[test]
    fn reserved_keys_have_strict_types() {
        let limits = Limits::default();
        let check = |value: Value| check_reserved(&map(value), &limits);
        assert_eq!(
            check(json!({"_default_message_ttl": true})).unwrap_err(),
            "_default_message_ttl must be integer."
        );
        assert_eq!(
            check(json!({"_max_claim_count": "3"})).unwrap_err(),
            "_max_claim_count must be integer."
        );
        assert_eq!(
            check(json!({"_enable_encrypt_messages": 1})).unwrap_err(),
            "_enable_encrypt_messages must be boolean."
        );
        assert!(check(json!({"_dead_letter_queue": "bad name"})).is_err());
        assert!(check(json!({"_dead_letter_queue": "dlq", "_max_claim_count": 2})).is_ok());
    }

    #[test]
    fn retry_policy_is_checked() {
        assert_eq!(
            check_retry_policy(Some(&json!([]))).unwrap_err(),
            "retry_policy must be a dict."
        );
        assert_eq!(
            check_retry_policy(Some(&json!({"minimum_delay": 25}))).unwrap_err(),
            "invalid minimum_delay and maximum_delay."
        );
        assert_eq!(
            check_retry_policy(Some(&json!({"retry_backoff_function": "cubic"}))).unwrap_err(),
            "invalid retry_backoff_function."
        );
        assert!(check_retry_policy(Some(
            &json!({"retries_with_no_delay": 1, "retry_backoff_function": "linear"})
        ))
        .is_ok());
    }
}
