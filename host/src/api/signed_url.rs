//! Pre-signed URLs: creating them (`queue_share`) and verifying requests
//! that carry `URL-Signature`.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::{
    action::{Caller, Reply},
    body::parse_object,
    clock::{format_utc, parse_iso8601},
    errors::{ApiError, ApiResult},
    validation::QueueName,
    Api,
};

/// The default lifetime of a pre-signed URL: one day.
const DEFAULT_LIFETIME_MS: i64 = 86_400_000;

/// A created pre-signed URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedUrlDocument {
    /// The signed paths, sorted.
    pub paths: Vec<String>,
    /// The signed methods, sorted.
    pub methods: Vec<String>,
    /// The project.
    pub project: String,
    /// Expiry, `YYYY-MM-DDTHH:MM:SS` UTC.
    pub expires: String,
    /// Lowercase hex HMAC-SHA256.
    pub signature: String,
}

/// `queue_share`: signs access to the queue's messages, subscriptions
/// and/or claims.
pub async fn create(
    api: &Api,
    caller: &Caller,
    queue: &QueueName,
    body: Option<&[u8]>,
) -> ApiResult<Reply> {
    // An array body is an unsupported document (Zaqar fails with a 500).
    let mut document = parse_object(body)?;
    let unknown: Vec<&String> = document
        .keys()
        .filter(|key| !matches!(key.as_str(), "methods" | "paths" | "expires"))
        .collect();
    if !unknown.is_empty() {
        // Zaqar's sentence, with a JSON list where Zaqar prints a Python set.
        return Err(ApiError::api(format!(
            "Unknown keys: {}",
            json_list(unknown)
        )));
    }
    let base = format!("/v2/queues/{queue}");
    let paths = match document.remove("paths") {
        None | Some(Value::Null) => vec![format!("{base}/messages")],
        Some(Value::Array(items)) if items.is_empty() => vec![format!("{base}/messages")],
        Some(Value::Array(items)) => {
            let invalid: Vec<&Value> = items
                .iter()
                .filter(|item| {
                    !matches!(item.as_str(), Some("messages" | "subscriptions" | "claims"))
                })
                .collect();
            if !invalid.is_empty() {
                return Err(ApiError::api(format!(
                    "Invalid paths: {}",
                    Value::from(invalid.into_iter().cloned().collect::<Vec<_>>())
                )));
            }
            items
                .iter()
                .filter_map(Value::as_str)
                .map(|path| format!("{base}/{path}"))
                .collect()
        }
        Some(other) => return Err(ApiError::api(format!("Invalid paths: {other}"))),
    };
    let key = api
        .signing_key
        .as_deref()
        .ok_or_else(|| ApiError::api("The `key` can't be None"))?;
    let methods = match document.remove("methods") {
        None | Some(Value::Null) => vec!["GET".to_string()],
        Some(Value::Array(items)) if items.is_empty() => vec!["GET".to_string()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ApiError::api("`methods` should be a list"))?,
        Some(_) => return Err(ApiError::api("`methods` should be a list")),
    };
    let now = api.now_ms() as i64;
    let expires_ms = match document.remove("expires") {
        None | Some(Value::Null) => now + DEFAULT_LIFETIME_MS,
        Some(value) => parse_expires(&value)?,
    };
    if expires_ms <= now {
        return Err(ApiError::api("`expires` is lower than the current time"));
    }
    let project = caller.project.as_str();
    Ok(Reply::SignedUrl(sign(
        key,
        paths,
        methods,
        project,
        &format_utc(expires_ms),
    )))
}

fn json_list(items: Vec<&String>) -> String {
    Value::from(items.into_iter().cloned().collect::<Vec<_>>()).to_string()
}

/// Zaqar's expiry rules: a non-zero integer (or digit string) is refused
/// with its own message; otherwise ISO 8601.
fn parse_expires(value: &Value) -> ApiResult<i64> {
    let text = match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    if let Ok(number) = text.trim().parse::<i64>() {
        if number != 0 {
            return Err(ApiError::api(format!(
                "`expires` should be date format, for example 2016-01-01T00:00:00, not integer value: {number}"
            )));
        }
    }
    parse_iso8601(&text)
        .ok_or_else(|| ApiError::api(format!("Unable to parse date string '{text}'")))
}

/// Signs sorted paths and methods. The separators are the two
/// characters `\` `n`: Zaqar's template is a Python raw string.
pub fn sign(
    key: &str,
    mut paths: Vec<String>,
    mut methods: Vec<String>,
    project: &str,
    expires: &str,
) -> SignedUrlDocument {
    paths.sort();
    methods.sort();
    let signature = signature(key, &paths, &methods, project, expires);
    SignedUrlDocument {
        paths,
        methods,
        project: project.to_string(),
        expires: expires.to_string(),
        signature,
    }
}

fn mac(
    key: &str,
    paths: &[String],
    methods: &[String],
    project: &str,
    expires: &str,
) -> Hmac<Sha256> {
    let text = format!(
        "{}\\n{}\\n{project}\\n{expires}",
        paths.join(","),
        methods.join(",")
    );
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(text.as_bytes());
    mac
}

fn signature(
    key: &str,
    paths: &[String],
    methods: &[String],
    project: &str,
    expires: &str,
) -> String {
    hex::encode(
        mac(key, paths, methods, project, expires)
            .finalize()
            .into_bytes(),
    )
}

/// The headers of a request that claims a pre-signed URL.
#[derive(Debug, Clone, Copy)]
pub struct SignedHeaders<'a> {
    /// `URL-Signature`.
    pub signature: &'a str,
    /// `URL-Methods` (comma separated).
    pub methods: Option<&'a str>,
    /// `URL-Paths` (comma separated).
    pub paths: Option<&'a str>,
    /// `URL-Expires`.
    pub expires: Option<&'a str>,
    /// `X-Project-ID`.
    pub project: Option<&'a str>,
}

/// Whether a request may use the pre-signed URL it presents: the method is
/// signed, a signed path covers the request path (an exact prefix ending at
/// a segment boundary, where Zaqar matches an unanchored pattern), the URL
/// has not expired and the signature matches.
pub fn verify(
    key: Option<&str>,
    method: &str,
    path: &str,
    headers: SignedHeaders<'_>,
    now_ms: u64,
) -> bool {
    let Some(key) = key else {
        return false;
    };
    let methods: Vec<String> = headers
        .methods
        .unwrap_or("")
        .split(',')
        .map(str::to_string)
        .collect();
    if !methods.iter().any(|m| m == method) {
        return false;
    }
    let Some(paths) = headers.paths else {
        return false;
    };
    let paths: Vec<String> = paths.split(',').map(str::to_string).collect();
    let covered = |signed: &String| {
        !signed.is_empty()
            && path
                .strip_prefix(signed.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    if !paths.iter().any(covered) {
        return false;
    }
    let Some(expires_ms) = headers
        .expires
        .and_then(|e| parse_expires(&Value::String(e.to_string())).ok())
    else {
        return false;
    };
    if expires_ms <= now_ms as i64 {
        return false;
    }
    let Ok(expected) = hex::decode(headers.signature) else {
        return false;
    };
    let (mut paths, mut methods) = (paths, methods);
    paths.sort();
    methods.sort();
    let project = headers.project.unwrap_or("None");
    // verify_slice compares in constant time.
    mac(key, &paths, &methods, project, &format_utc(expires_ms))
        .verify_slice(&expected)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_zaqars_observed_value() {
        let document = sign(
            "test",
            vec!["/v2/queues/shq/messages".into()],
            vec!["GET".into()],
            "proj1",
            "2026-11-24T08:43:01",
        );
        assert_eq!(
            document.signature,
            "43913e0e66feaf0c68c323474259966007dd0996c8434317bc7bc4a3b502cde3"
        );
    }

    fn headers<'a>(signature: &'a str, methods: &'a str, paths: &'a str) -> SignedHeaders<'a> {
        SignedHeaders {
            signature,
            methods: Some(methods),
            paths: Some(paths),
            expires: Some("2026-11-24T08:43:01"),
            project: Some("proj1"),
        }
    }

    const SIG: &str = "43913e0e66feaf0c68c323474259966007dd0996c8434317bc7bc4a3b502cde3";
    const BEFORE_EXPIRY: u64 = 1_795_500_000_000;

    #[test]
    fn a_valid_signature_covers_the_path_and_its_items() {
        let h = headers(SIG, "GET", "/v2/queues/shq/messages");
        assert!(verify(
            Some("test"),
            "GET",
            "/v2/queues/shq/messages",
            h,
            BEFORE_EXPIRY
        ));
        assert!(verify(
            Some("test"),
            "GET",
            "/v2/queues/shq/messages/abc",
            h,
            BEFORE_EXPIRY
        ));
    }

    #[test]
    fn signed_paths_are_prefixes_not_patterns() {
        let h = headers(SIG, "GET", "/v2/queues/shq/messages");
        assert!(!verify(
            Some("test"),
            "GET",
            "/v2/queues/shq/messages2",
            h,
            BEFORE_EXPIRY
        ));
        assert!(!verify(
            Some("test"),
            "GET",
            "/x/v2/queues/shq/messages",
            h,
            BEFORE_EXPIRY
        ));
    }

    #[test]
    fn wrong_method_key_signature_or_expiry_fail() {
        let h = headers(SIG, "GET", "/v2/queues/shq/messages");
        assert!(!verify(
            Some("test"),
            "POST",
            "/v2/queues/shq/messages",
            h,
            BEFORE_EXPIRY
        ));
        assert!(!verify(
            Some("other"),
            "GET",
            "/v2/queues/shq/messages",
            h,
            BEFORE_EXPIRY
        ));
        assert!(!verify(
            None,
            "GET",
            "/v2/queues/shq/messages",
            h,
            BEFORE_EXPIRY
        ));
        assert!(!verify(
            Some("test"),
            "GET",
            "/v2/queues/shq/messages",
            h,
            1_900_000_000_000
        ));
        let forged = headers("00", "GET", "/v2/queues/shq/messages");
        assert!(!verify(
            Some("test"),
            "GET",
            "/v2/queues/shq/messages",
            forged,
            BEFORE_EXPIRY
        ));
    }

    #[test]
    fn expires_rejects_integers_and_garbage_with_zaqars_messages() {
        assert_eq!(
            parse_expires(&Value::from(1_700_000_000)).unwrap_err().description().unwrap(),
            "`expires` should be date format, for example 2016-01-01T00:00:00, not integer value: 1700000000"
        );
        assert_eq!(
            parse_expires(&Value::from("garbage"))
                .unwrap_err()
                .description()
                .unwrap(),
            "Unable to parse date string 'garbage'"
        );
    }
}
