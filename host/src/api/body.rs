//! Reading JSON request bodies with Zaqar's errors (`transport/utils.py
//! read_json`, `transport/wsgi/utils.py deserialize/sanitize`).
//! Message posts have their own zero-copy reader in `post_body.rs`.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::errors::{ApiError, ApiResult};

/// `Request body can not be empty`.
pub fn empty_body() -> ApiError {
    ApiError::body("Request body can not be empty")
}

/// `Request body could not be parsed.`
pub fn unparsable() -> ApiError {
    ApiError::body("Request body could not be parsed.")
}

/// Reads JSON text as a `str`, after one UTF-8 check of the whole text
/// (which settles ASCII a word at a time) rather than serde_json's check of
/// each string and of each member kept raw. Bytes that are not UTF-8 are
/// read as bytes, for serde_json's own outcome and error.
pub fn from_json_bytes<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    }
}

/// Parses a mandatory body: an object or an array.
pub fn parse_document(body: Option<&[u8]>) -> ApiResult<Value> {
    let body = body.filter(|b| !b.is_empty()).ok_or_else(empty_body)?;
    let value: Value = from_json_bytes(body).map_err(|_| unparsable())?;
    if !value.is_object() && !value.is_array() {
        return Err(unparsable());
    }
    if has_oversized_integer(&value) {
        return Err(ApiError::body("JSON contains integer that is too large."));
    }
    Ok(value)
}

/// Parses a mandatory body that must be an object.
pub fn parse_object(body: Option<&[u8]>) -> ApiResult<Map<String, Value>> {
    match parse_document(body)? {
        Value::Object(fields) => Ok(fields),
        _ => Err(ApiError::DocumentTypeNotSupported),
    }
}

/// Parses an optional body that must be an object when present; an absent
/// or empty body is `{}`.
pub fn parse_optional_object(body: Option<&[u8]>) -> ApiResult<Map<String, Value>> {
    match body.filter(|b| !b.is_empty()) {
        None => Ok(Map::new()),
        some => parse_object(some),
    }
}

/// Zaqar rejects integers outside signed 64 bits anywhere in a document.
fn has_oversized_integer(value: &Value) -> bool {
    match value {
        Value::Number(number) => number.is_u64() && !number.is_i64(),
        Value::Array(items) => items.iter().any(has_oversized_integer),
        Value::Object(fields) => fields.values().any(has_oversized_integer),
        _ => false,
    }
}

/// An integer field of a body (Zaqar's `sanitize` spec `(name, int, default)`):
/// absent → `None`; present and not an integer → `The value of the "<name>"
/// field must be a int.` Booleans are not integers here (Python would take them).
pub fn int_field(fields: &Map<String, Value>, name: &str) -> ApiResult<Option<i64>> {
    match fields.get(name) {
        None => Ok(None),
        Some(value) => int_value(value).map(Some).ok_or_else(|| {
            ApiError::body(format!("The value of the \"{name}\" field must be a int."))
        }),
    }
}

/// A JSON integer as `i64` (values past `i64::MAX` saturate: they fail
/// every range check).
pub fn int_value(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) if number.is_i64() => number.as_i64(),
        Value::Number(number) if number.is_u64() => Some(i64::MAX),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_body_is_reported_as_empty() {
        assert_eq!(
            parse_document(None).unwrap_err().description().unwrap(),
            "Request body can not be empty"
        );
        assert_eq!(parse_document(Some(b"")).unwrap_err(), empty_body());
    }

    #[test]
    fn malformed_or_scalar_bodies_could_not_be_parsed() {
        for body in [&b"{not json"[..], b"42", b"\"text\"", b"\xff\xfe"] {
            assert_eq!(parse_document(Some(body)).unwrap_err(), unparsable());
        }
    }

    #[test]
    fn integers_beyond_64_bits_are_too_large() {
        let error = parse_document(Some(br#"{"a": [18446744073709551615]}"#)).unwrap_err();
        assert_eq!(
            error.description().unwrap(),
            "JSON contains integer that is too large."
        );
    }

    #[test]
    fn arrays_where_objects_are_expected_are_unsupported_documents() {
        assert_eq!(
            parse_object(Some(b"[]")).unwrap_err(),
            ApiError::DocumentTypeNotSupported
        );
    }

    #[test]
    fn integer_fields_reject_other_types() {
        let fields = parse_object(Some(br#"{"ttl": "60", "grace": true, "limit": 5}"#)).unwrap();
        assert_eq!(
            int_field(&fields, "ttl")
                .unwrap_err()
                .description()
                .unwrap(),
            "The value of the \"ttl\" field must be a int."
        );
        assert!(int_field(&fields, "grace").is_err());
        assert_eq!(int_field(&fields, "limit").unwrap(), Some(5));
        assert_eq!(int_field(&fields, "absent").unwrap(), None);
    }
}
