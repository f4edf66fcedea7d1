//! The message-post body reader: one pass over `{"messages": [...]}` that
//! validates the whole document and borrows each message body as raw JSON,
//! so bodies are never parsed into trees nor re-serialized. What Zaqar
//! checks afterwards (shape, field types) is recorded during the pass and
//! judged in Zaqar's order by [`read_post`].

use std::{borrow::Cow, fmt, ops::Range};

use serde::{
    de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor},
    Deserialize, Deserializer,
};
use serde_json::value::RawValue;

use super::{
    body::{empty_body, from_json_bytes, unparsable},
    errors::{ApiError, ApiResult},
};

/// One message of a post, with its fields checked for type (not range).
#[derive(Debug, PartialEq)]
pub struct IncomingMessage<'a> {
    /// The body, as received (JSON text).
    pub body: &'a str,
    /// `ttl`, if given.
    pub ttl: Option<i64>,
    /// `delay`, if given.
    pub delay: Option<i64>,
}

/// Reads a post body, reporting what Zaqar reports, in its order:
/// unparsable → no `messages` → `messages` not a list → empty list → per
/// message: not an object, `ttl` type, missing `body`, `delay` type.
pub fn read_post(body: Option<&[u8]>) -> ApiResult<Vec<IncomingMessage<'_>>> {
    let body = body.filter(|b| !b.is_empty()).ok_or_else(empty_body)?;
    let document: PostDocument<'_> = from_json_bytes(body).map_err(|_| unparsable())?;
    judge(document.messages)
}

/// A WebSocket frame's `messages` field as JSON text; for a list that has
/// the shape of a post, also each message as it was read while the text
/// was written (a MessagePack frame) or while the frame's body was read (a
/// JSON frame, whose `text` is then that whole body), so the text is not
/// parsed again.
#[derive(Debug)]
pub struct MessagesText<'a> {
    pub text: Cow<'a, str>,
    pub read: Option<Vec<ReadMessage>>,
}

impl<'a> MessagesText<'a> {
    /// A JSON frame's field, as received.
    pub fn json(text: &'a str) -> Self {
        MessagesText {
            text: Cow::Borrowed(text),
            read: None,
        }
    }
}

/// Reads a JSON frame's `messages` value in the same pass as the rest of
/// the frame's body, `base`, which the value lies in: each message's body
/// is then a span of `base`. `None` when the list does not have a post's
/// shape (every member an object with a `body`): the caller then keeps the
/// value's text for [`read_post_messages`], whose errors stay its own.
pub struct MessagesIn<'a> {
    pub base: &'a str,
}

impl<'de> DeserializeSeed<'de> for MessagesIn<'de> {
    type Value = Option<MessagesText<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        let MessagesField::List(documents) = MessagesField::deserialize(deserializer)? else {
            return Ok(None);
        };
        let base = self.base.as_ptr() as usize;
        let read = documents
            .into_iter()
            .map(|document| match document {
                MessageDocument::Object {
                    body: Some(body),
                    ttl,
                    delay,
                } => {
                    // A borrowed body lies inside `base`; anything else
                    // reads the general way.
                    let start = (body.as_ptr() as usize).checked_sub(base)?;
                    let end = start + body.len();
                    (end <= self.base.len()).then_some(ReadMessage {
                        body: start..end,
                        ttl,
                        delay,
                    })
                }
                _ => None,
            })
            .collect::<Option<Vec<_>>>();
        Ok(read.map(|read| MessagesText {
            text: Cow::Borrowed(self.base),
            read: Some(read),
        }))
    }
}

/// A message of a list read as it was written as JSON text: where its
/// body lies in that text, and its integer fields as [`IntField`] reads
/// them.
#[derive(Debug)]
pub struct ReadMessage {
    pub body: Range<usize>,
    pub ttl: Option<IntField>,
    pub delay: Option<IntField>,
}

/// Reads the `messages` field of a WebSocket frame (`None`: absent) with
/// the same rules as [`read_post`]: the frame was already decoded, so its
/// messages parse.
pub fn read_post_messages<'a>(
    messages: Option<&'a MessagesText<'_>>,
) -> ApiResult<Vec<IncomingMessage<'a>>> {
    let messages = match messages {
        Some(MessagesText {
            text,
            read: Some(read),
        }) => Some(MessagesField::List(
            read.iter()
                .map(|message| MessageDocument::Object {
                    body: text.get(message.body.clone()),
                    ttl: message.ttl,
                    delay: message.delay,
                })
                .collect(),
        )),
        Some(MessagesText { text, read: None }) => {
            Some(serde_json::from_str::<MessagesField<'_>>(text).map_err(|_| unparsable())?)
        }
        None => None,
    };
    judge(messages)
}

/// Zaqar's checks on the `messages` field, in its order.
fn judge(messages: Option<MessagesField<'_>>) -> ApiResult<Vec<IncomingMessage<'_>>> {
    let messages = match messages {
        None => return Err(ApiError::api("No messages were found in the request body.")),
        Some(MessagesField::NotAList) => return Err(ApiError::DocumentTypeNotSupported),
        Some(MessagesField::List(messages)) => messages,
    };
    if messages.is_empty() {
        return Err(ApiError::api("No messages to enqueu."));
    }
    let too_large = |field: &IntField| matches!(field, IntField::TooLarge);
    if messages.iter().any(|m| matches!(m, MessageDocument::Object { ttl, delay, .. } if ttl.as_ref().is_some_and(too_large) || delay.as_ref().is_some_and(too_large))) {
        return Err(ApiError::body("JSON contains integer that is too large."));
    }
    messages
        .into_iter()
        .map(|message| {
            let MessageDocument::Object { body, ttl, delay } = message else {
                return Err(ApiError::DocumentTypeNotSupported);
            };
            let ttl = int_field(ttl, "ttl")?;
            let body = body.ok_or_else(|| ApiError::body("Missing \"body\" field."))?;
            let delay = int_field(delay, "delay")?;
            check_body(body)?;
            Ok(IncomingMessage { body, ttl, delay })
        })
        .collect()
}

/// How deep a message body may nest arrays and objects.
pub const MAX_BODY_DEPTH: usize = 100;

/// Refuses a message body that some transport could not carry faithfully:
/// nesting deeper than [`MAX_BODY_DEPTH`] (JSON readers stop at ~128
/// levels), a `\u` escape of a lone UTF-16 surrogate (no Unicode text,
/// so no MessagePack string, holds one), or an integer literal beyond 64
/// bits (MessagePack and most JSON readers would turn it into a float) or
/// a number beyond the range of a 64-bit float.
/// One pass over the raw text, no allocation.
fn check_body(raw: &str) -> ApiResult<()> {
    let bytes = raw.as_bytes();
    let mut depth = 0usize;
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_BODY_DEPTH {
                    return Err(ApiError::body(format!(
                        "A message body may not nest arrays and objects more than {MAX_BODY_DEPTH} levels deep."
                    )));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'"' => index = check_string(bytes, index + 1)?,
            b'-' | b'0'..=b'9' => {
                let start = index;
                while index + 1 < bytes.len()
                    && matches!(
                        bytes[index + 1],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    index += 1;
                }
                let token = &raw[start..=index];
                let integer = !token.contains(['.', 'e', 'E']);
                if integer && token.parse::<i64>().is_err() && token.parse::<u64>().is_err() {
                    return Err(ApiError::body("JSON contains integer that is too large."));
                }
                if !integer && !token.parse::<f64>().is_ok_and(f64::is_finite) {
                    return Err(ApiError::body(
                        "A message body may not hold a number beyond the range of a 64-bit float.",
                    ));
                }
            }
            _ => {}
        }
        index += 1;
    }
    Ok(())
}

/// Checks the `\u` escapes of a string starting after its opening quote;
/// returns the index of its closing quote.
fn check_string(bytes: &[u8], mut index: usize) -> ApiResult<usize> {
    let lone = || {
        ApiError::body(
            "A message body may not hold a lone UTF-16 surrogate escape (\\ud800 to \\udfff without its pair).",
        )
    };
    let hex = |at: usize| {
        bytes
            .get(at..at + 4)
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .and_then(|digits| u16::from_str_radix(digits, 16).ok())
    };
    // Most of a body is string text: jump from quote or backslash to the
    // next one (memchr's vector search) instead of looking at every byte.
    while let Some(found) = memchr::memchr2(b'"', b'\\', &bytes[index.min(bytes.len())..]) {
        index += found;
        match bytes[index] {
            b'"' => return Ok(index),
            b'\\' if bytes.get(index + 1) == Some(&b'u') => {
                let unit = hex(index + 2).unwrap_or(0);
                index += 6;
                match unit {
                    0xD800..=0xDBFF => {
                        let low = (bytes.get(index) == Some(&b'\\')
                            && bytes.get(index + 1) == Some(&b'u'))
                        .then(|| hex(index + 2))
                        .flatten();
                        if !matches!(low, Some(0xDC00..=0xDFFF)) {
                            return Err(lone());
                        }
                        index += 6;
                    }
                    0xDC00..=0xDFFF => return Err(lone()),
                    _ => {}
                }
                continue;
            }
            _ => index += 2,
        }
    }
    Ok(bytes.len())
}

fn int_field(field: Option<IntField>, name: &str) -> ApiResult<Option<i64>> {
    match field {
        None => Ok(None),
        Some(IntField::Int(value)) => Ok(Some(value)),
        Some(_) => Err(ApiError::body(format!(
            "The value of the \"{name}\" field must be a int."
        ))),
    }
}

/// The top level of a post body.
struct PostDocument<'a> {
    /// `None` when the body has no `messages` key or is not an object.
    messages: Option<MessagesField<'a>>,
}

enum MessagesField<'a> {
    List(Vec<MessageDocument<'a>>),
    NotAList,
}

enum MessageDocument<'a> {
    Object {
        /// JSON text.
        body: Option<&'a str>,
        ttl: Option<IntField>,
        delay: Option<IntField>,
    },
    NotAnObject,
}

/// An integer field as Zaqar's `sanitize` sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum IntField {
    Int(i64),
    TooLarge,
    WrongType,
}

impl<'de> Deserialize<'de> for PostDocument<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(PostVisitor)
    }
}

struct PostVisitor;

impl<'de> Visitor<'de> for PostVisitor {
    type Value = PostDocument<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object or array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut messages = None;
        while let Some(key) = map.next_key::<Key>()? {
            if key == Key::Messages {
                messages = Some(map.next_value::<MessagesField<'de>>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(PostDocument { messages })
    }

    // A bare list is a document without `messages` (Zaqar's observed answer).
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(PostDocument { messages: None })
    }
}

impl<'de> Deserialize<'de> for MessagesField<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MessagesVisitor)
    }
}

struct MessagesVisitor;

impl<'de> Visitor<'de> for MessagesVisitor {
    type Value = MessagesField<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of messages")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut messages = Vec::with_capacity(seq.size_hint().unwrap_or(4));
        while let Some(message) = seq.next_element::<MessageDocument<'de>>()? {
            messages.push(message);
        }
        Ok(MessagesField::List(messages))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map)?;
        Ok(MessagesField::NotAList)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(MessagesField::NotAList)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(MessagesField::NotAList)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(MessagesField::NotAList)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(MessagesField::NotAList)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(MessagesField::NotAList)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(MessagesField::NotAList)
    }
}

impl<'de> Deserialize<'de> for MessageDocument<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MessageVisitor)
    }
}

struct MessageVisitor;

impl<'de> Visitor<'de> for MessageVisitor {
    type Value = MessageDocument<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut body, mut ttl, mut delay) = (None, None, None);
        // A repeated key keeps its last value, as Python's json does.
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Body => body = Some(map.next_value::<&'de RawValue>()?.get()),
                Key::Ttl => ttl = Some(map.next_value::<IntField>()?),
                Key::Delay => delay = Some(map.next_value::<IntField>()?),
                Key::Messages | Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(MessageDocument::Object { body, ttl, delay })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(MessageDocument::NotAnObject)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(MessageDocument::NotAnObject)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(MessageDocument::NotAnObject)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(MessageDocument::NotAnObject)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(MessageDocument::NotAnObject)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(MessageDocument::NotAnObject)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(MessageDocument::NotAnObject)
    }
}

impl<'de> Deserialize<'de> for IntField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(IntVisitor)
    }
}

struct IntVisitor;

impl<'de> Visitor<'de> for IntVisitor {
    type Value = IntField;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer")
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        Ok(IntField::Int(value))
    }
    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(value)
            .map(IntField::Int)
            .unwrap_or(IntField::TooLarge))
    }
    // Booleans are not integers here (Python's isinstance would take them).
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(IntField::WrongType)
    }
    // serde_json reads integers beyond 64 bits as floats; an integral float
    // that large is taken for such an integer.
    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
        if value.fract() == 0.0 && value.abs() >= 9.223_372_036_854_776e18 {
            Ok(IntField::TooLarge)
        } else {
            Ok(IntField::WrongType)
        }
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(IntField::WrongType)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(IntField::WrongType)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(IntField::WrongType)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map)?;
        Ok(IntField::WrongType)
    }
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_key::<IgnoredAny>()?.is_some() {
        map.next_value::<IgnoredAny>()?;
    }
    Ok(())
}

/// The keys the reader cares about, matched without allocating.
#[derive(PartialEq, Eq)]
enum Key {
    Messages,
    Body,
    Ttl,
    Delay,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(match key {
            "messages" => Key::Messages,
            "body" => Key::Body,
            "ttl" => Key::Ttl,
            "delay" => Key::Delay,
            _ => Key::Other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(body: &str) -> String {
        read_post(Some(body.as_bytes()))
            .unwrap_err()
            .description()
            .unwrap()
    }

    #[test]
    fn message_bodies_are_borrowed_verbatim() {
        let body = br#"{"messages": [{"ttl": 300, "body": {"b": [1, 2]}, "x": 1}, {"body": "s", "delay": 5}]}"#;
        let messages = read_post(Some(body)).unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].body, r#"{"b": [1, 2]}"#);
        assert_eq!((messages[0].ttl, messages[0].delay), (Some(300), None));
        assert_eq!((messages[1].ttl, messages[1].delay), (None, Some(5)));
    }

    #[test]
    fn null_body_is_a_body() {
        let messages = read_post(Some(br#"{"messages": [{"body": null}]}"#)).unwrap();
        assert_eq!(messages[0].body, "null");
    }

    #[test]
    fn shape_errors_follow_zaqars_wording() {
        assert_eq!(error(""), "Request body can not be empty");
        assert_eq!(
            error(r#"{"messages": [{"ttl": 300, "body": "#),
            "Request body could not be parsed."
        );
        assert_eq!(error("12"), "Request body could not be parsed.");
        assert_eq!(
            error(r#"[{"ttl": 300, "body": 1}]"#),
            "No messages were found in the request body."
        );
        assert_eq!(
            error(r#"{"other": 1}"#),
            "No messages were found in the request body."
        );
        assert_eq!(
            error(r#"{"messages": {"body": 1}}"#),
            "Document type not supported."
        );
        assert_eq!(error(r#"{"messages": []}"#), "No messages to enqueu.");
        assert_eq!(
            error(r#"{"messages": [1]}"#),
            "Document type not supported."
        );
        assert_eq!(
            error(r#"{"messages": [{"ttl": 300}]}"#),
            "Missing \"body\" field."
        );
        assert_eq!(
            error(r#"{"messages": [{"ttl": "300", "body": 1}]}"#),
            "The value of the \"ttl\" field must be a int."
        );
        assert_eq!(
            error(r#"{"messages": [{"ttl": true, "body": 1}]}"#),
            "The value of the \"ttl\" field must be a int."
        );
        assert_eq!(
            error(r#"{"messages": [{"delay": 1.5, "body": 1}]}"#),
            "The value of the \"delay\" field must be a int."
        );
        assert_eq!(
            error(r#"{"messages": [{"ttl": 99999999999999999999, "body": 1}]}"#),
            "JSON contains integer that is too large."
        );
    }

    #[test]
    fn a_syntax_error_anywhere_wins_over_shape_errors() {
        assert_eq!(
            error(r#"{"messages": [1], "x": }"#),
            "Request body could not be parsed."
        );
    }

    #[test]
    fn bodies_no_transport_could_carry_are_refused() {
        let deep = format!("{}1{}", "[".repeat(101), "]".repeat(101));
        assert_eq!(
            error(&format!(r#"{{"messages": [{{"body": {deep}}}]}}"#)),
            "A message body may not nest arrays and objects more than 100 levels deep."
        );
        let fine = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        assert!(read_post(Some(
            format!(r#"{{"messages": [{{"body": {fine}}}]}}"#).as_bytes()
        ))
        .is_ok());
        for lone in [
            r#""\ud800""#,
            r#""a\udc00b""#,
            r#""\ud800\u0041""#,
            r#"{"\ud83d": 1}"#,
        ] {
            assert!(
                error(&format!(r#"{{"messages": [{{"body": {lone}}}]}}"#)).contains("surrogate"),
                "{lone}"
            );
        }
        assert_eq!(
            error(r#"{"messages": [{"body": {"n": [18446744073709551616]}}]}"#),
            "JSON contains integer that is too large."
        );
        assert_eq!(
            error(r#"{"messages": [{"body": -9223372036854775809}]}"#),
            "JSON contains integer that is too large."
        );
        assert!(error(r#"{"messages": [{"body": [1e400]}]}"#).contains("64-bit float"));
        let carried = br#"{"messages": [{"body": ["\ud83d\ude00", "[{\"", 18446744073709551615, -9223372036854775808, 1e300, 2.5]}]}"#;
        assert!(read_post(Some(carried)).is_ok());
        // A string's end is found past escaped backslashes and quotes, and
        // what follows it is still checked.
        for (body, refused) in [
            (r#"["a\\", 99999999999999999999]"#, true),
            (r#"["a\\\"b", 99999999999999999999]"#, true),
            (r#"["\\ud800", "x"]"#, false),
            (r#"["\\", "\ud800"]"#, true),
            (r#"["\\\ud800"]"#, true),
        ] {
            let document = format!(r#"{{"messages": [{{"body": {body}}}]}}"#);
            let result = read_post(Some(document.as_bytes()));
            assert_eq!(result.is_err(), refused, "{body}");
        }
    }

    #[test]
    fn escaped_keys_are_recognised() {
        let messages = read_post(Some(br#"{"me\u0073sages": [{"b\u006fdy": 1}]}"#)).unwrap();
        assert_eq!(messages[0].body, "1");
    }
}
