//! What one delivery sends: the body (the payload, or the `post_data`
//! template filled with it), the headers (`Content-Type`, `User-Agent`,
//! `post_headers`, the signature) — all decided once per delivery, before
//! the first byte goes out.

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{
    header::{HeaderName, HeaderValue, CONTENT_TYPE, USER_AGENT},
    HeaderMap,
};
use plugin_api::{ErrorCode, PluginError, PluginResult};
use serde_json::{Map, Value};
use sha2::Sha256;

/// The placeholder of `post_data`, quotes included (Zaqar's literal).
pub const PLACEHOLDER: &str = "\"$zaqar_message$\"";

/// The header carrying the body's HMAC-SHA256 when `options.secret` is set.
pub const SIGNATURE_HEADER: &str = "x-zaqar-signature";

/// Headers `post_headers` may not set: they frame the message or the
/// connection, which the client manages.
const RESERVED: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

fn permanent(message: impl Into<String>) -> PluginError {
    PluginError::new(ErrorCode::DELIVERY_PERMANENT, message)
}

/// The subscription options (a JSON object; empty bytes count as `{}`).
pub fn parse_options(raw: &[u8]) -> PluginResult<Map<String, Value>> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(raw) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(_) => Err(permanent("subscription options are not a JSON object")),
        Err(e) => Err(permanent(format!(
            "subscription options are not valid JSON: {e}"
        ))),
    }
}

/// The request body: the payload, or `options.post_data` with every
/// `"$zaqar_message$"` (quotes included) replaced by the payload JSON.
/// A `post_data` given as a JSON object or array is used as its JSON text.
pub fn body(payload: &[u8], options: &Map<String, Value>) -> PluginResult<Bytes> {
    let template = match options.get("post_data") {
        None | Some(Value::Null) => return Ok(Bytes::copy_from_slice(payload)),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    };
    if !template.contains(PLACEHOLDER) {
        return Ok(Bytes::from(template));
    }
    let payload = std::str::from_utf8(payload)
        .map_err(|_| permanent("the notification payload is not UTF-8 text"))?;
    Ok(Bytes::from(template.replace(PLACEHOLDER, payload)))
}

/// `sha256=<lowercase hex HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut text = String::with_capacity(7 + digest.len() * 2);
    text.push_str("sha256=");
    for byte in digest {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

/// The headers of every hop: `Content-Type: application/json`, the
/// `User-Agent`, then `post_headers` merged over both, then the signature
/// (which `post_headers` cannot override) when `options.secret` is a
/// non-empty string.
pub fn headers(
    user_agent: &HeaderValue,
    options: &Map<String, Value>,
    body: &[u8],
) -> PluginResult<HeaderMap> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(USER_AGENT, user_agent.clone());
    match options.get("post_headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(extra)) => {
            for (name, value) in extra {
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return Err(permanent(format!("post_headers.{name} must be a string"))),
                };
                let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    permanent(format!("post_headers: invalid header name {name:?}"))
                })?;
                if RESERVED.contains(&header.as_str()) || header.as_str() == SIGNATURE_HEADER {
                    continue;
                }
                let value = HeaderValue::from_str(&text).map_err(|_| {
                    permanent(format!("post_headers: invalid value for header {name}"))
                })?;
                headers.insert(header, value);
            }
        }
        Some(_) => return Err(permanent("post_headers must be an object of strings")),
    }
    match options.get("secret") {
        None | Some(Value::Null) => {}
        Some(Value::String(secret)) if secret.is_empty() => {}
        Some(Value::String(secret)) => {
            let value = HeaderValue::from_str(&signature(secret, body))
                .expect("a hex signature is a valid header value");
            headers.insert(HeaderName::from_static(SIGNATURE_HEADER), value);
        }
        Some(_) => return Err(permanent("the secret option must be a string")),
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn options(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn body_is_the_payload_without_post_data() {
        let b = body(br#"{"body":1}"#, &Map::new()).unwrap();
        assert_eq!(&b[..], br#"{"body":1}"#);
    }

    #[test]
    fn post_data_replaces_the_quoted_placeholder() {
        let o = options(json!({"post_data": "{\"event\": \"$zaqar_message$\", \"n\": 1}"}));
        let b = body(br#"{"body":1}"#, &o).unwrap();
        assert_eq!(&b[..], br#"{"event": {"body":1}, "n": 1}"#);
    }

    #[test]
    fn post_data_as_an_object_is_used_as_json() {
        let o = options(json!({"post_data": {"event": "$zaqar_message$"}}));
        let b = body(br#"{"body":1}"#, &o).unwrap();
        assert_eq!(&b[..], br#"{"event":{"body":1}}"#);
    }

    #[test]
    fn signature_matches_a_known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn post_headers_merge_over_defaults_but_not_framing_or_signature() {
        let ua = HeaderValue::from_static("zaqar-rs/test");
        let o = options(json!({
            "post_headers": {"Content-Type": "application/vnd.x+json", "X-Token": "t",
                             "Content-Length": "1", "X-Zaqar-Signature": "forged", "X-N": 5},
            "secret": "s"
        }));
        let h = headers(&ua, &o, b"{}").unwrap();
        assert_eq!(h["content-type"], "application/vnd.x+json");
        assert_eq!(h["x-token"], "t");
        assert_eq!(h["x-n"], "5");
        assert!(h.get("content-length").is_none());
        assert_eq!(h["x-zaqar-signature"], signature("s", b"{}").as_str());
    }

    #[test]
    fn bad_options_are_permanent() {
        let ua = HeaderValue::from_static("zaqar-rs/test");
        for o in [
            json!({"post_headers": "x"}),
            json!({"post_headers": {"X": {"a": 1}}}),
            json!({"post_headers": {"bad name": "v"}}),
            json!({"post_headers": {"X": "line\nbreak"}}),
            json!({"secret": 5}),
        ] {
            let err = headers(&ua, &options(o.clone()), b"{}").unwrap_err();
            assert_eq!(err.code, ErrorCode::DELIVERY_PERMANENT, "{o}");
        }
        assert_eq!(
            parse_options(b"[1]").unwrap_err().code,
            ErrorCode::DELIVERY_PERMANENT
        );
        assert!(parse_options(b"").unwrap().is_empty());
    }
}
