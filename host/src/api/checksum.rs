//! Zaqar's message checksum (`[DEFAULT] enable_checksum`): `"MD5:" +
//! md5_hex(json.dumps(body))`, where `json.dumps` is Python's with default
//! settings: `", "` and `": "` separators, keys in document order, and
//! `ensure_ascii` (every non-ASCII character as a lowercase `\uXXXX`).

use md5::{Digest, Md5};
use serde_json::Value;

/// The checksum of a stored body, or `None` when the body does not parse
/// (it always does: the host validated it before storing).
pub fn checksum(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    // Zaqar's get_checksum returns '' for a null body.
    if value.is_null() {
        return Some(String::new());
    }
    let mut text = String::with_capacity(body.len() + 16);
    python_dumps(&value, &mut text);
    Some(format!("MD5:{}", hex::encode(Md5::digest(text.as_bytes()))))
}

/// Writes `value` as Python's `json.dumps(value)` would.
fn python_dumps(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => match number.as_f64() {
            Some(float) if !number.is_i64() && !number.is_u64() => {
                out.push_str(&python_float_repr(float))
            }
            _ => out.push_str(&number.to_string()),
        },
        Value::String(text) => python_string(text, out),
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                python_dumps(item, out);
            }
            out.push(']');
        }
        Value::Object(fields) => {
            out.push('{');
            for (index, (key, item)) in fields.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                python_string(key, out);
                out.push_str(": ");
                python_dumps(item, out);
            }
            out.push('}');
        }
    }
}

/// A JSON string with `ensure_ascii=True` escaping.
fn python_string(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

/// Python's `repr(float)`: the shortest round-tripping digits, scientific
/// notation below 1e-4 and from 1e16 on, `.0` on integral values.
fn python_float_repr(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    // `{:e}` gives the shortest round-tripping digits as d.ddde±x.
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if !(-4..16).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    let plain = format!("{value}");
    if plain.contains('.') {
        plain
    } else {
        format!("{plain}.0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_match_zaqars_observed_values() {
        assert_eq!(
            checksum(br#"{"event":"a"}"#).unwrap(),
            "MD5:e4db62ac1fe774afdcf38f2ef1a78efd"
        );
        assert_eq!(
            checksum(br#""b""#).unwrap(),
            "MD5:5010cec3765a37ce4f516b0154a26baf"
        );
    }

    #[test]
    fn python_dumps_uses_spaced_separators_and_ascii_escapes() {
        let value: Value = serde_json::from_str(r#"{"b":[1,2.5,true,null],"a":"é😀\n"}"#).unwrap();
        let mut text = String::new();
        python_dumps(&value, &mut text);
        assert_eq!(
            text,
            r#"{"b": [1, 2.5, true, null], "a": "\u00e9\ud83d\ude00\n"}"#
        );
    }

    #[test]
    fn floats_print_like_python_repr() {
        assert_eq!(python_float_repr(1.0), "1.0");
        assert_eq!(python_float_repr(0.1), "0.1");
        assert_eq!(python_float_repr(1e16), "1e+16");
        assert_eq!(python_float_repr(1.5e-5), "1.5e-05");
        assert_eq!(python_float_repr(123456.789), "123456.789");
    }
}
