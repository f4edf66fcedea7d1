//! JSON output, written straight into the response buffer: message bodies
//! and stored documents are spliced in as the bytes they were stored as,
//! never parsed again. Compact separators throughout (Zaqar's Python spacing
//! is not significant to clients).
//!
//! Also the HTTP representations: messages with `href` (and `?claim_id=`
//! while a claim is recorded), pagination links.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use plugin_api::storage::{StoredMessage, SubscriptionRecord};
use serde_json::Value;

use super::{action::PageQuery, checksum::checksum};

/// Characters falcon's `encode_value` escapes in query values: everything
/// but RFC 3986's unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Appends `text` as a JSON string.
pub fn push_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    push_escaped(out, text);
    out.push(b'"');
}

/// Whether a JSON string's bytes hold a quote, a backslash or a control
/// character. Every byte is looked at, without stopping at the first hit,
/// so that the compiler turns the scan into vector instructions (with an
/// early exit it goes byte by byte, several times slower).
pub fn needs_escaping(bytes: &[u8]) -> bool {
    let hits = bytes.iter().fold(0u8, |hits, &b| {
        hits | u8::from(b < 0x20) | u8::from(b == b'"') | u8::from(b == b'\\')
    });
    hits != 0
}

/// Appends `text` escaped for a JSON string, without quotes.
fn push_escaped(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    // Ids, names and hrefs almost never need escaping: one scan, then one
    // copy.
    if !needs_escaping(bytes) {
        out.extend_from_slice(bytes);
        return;
    }
    let mut start = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..index]);
        if escape.is_empty() {
            out.extend_from_slice(format!("\\u{byte:04x}").as_bytes());
        } else {
            out.extend_from_slice(escape);
        }
        start = index + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Appends the concatenation of `parts` as one JSON string (hrefs are
/// assembled this way, without an intermediate `String`).
pub fn push_str_parts(out: &mut Vec<u8>, parts: &[&str]) {
    out.push(b'"');
    for part in parts {
        push_escaped(out, part);
    }
    out.push(b'"');
}

/// Appends `"key":`.
pub fn push_key(out: &mut Vec<u8>, key: &str) {
    push_str(out, key);
    out.push(b':');
}

/// Appends a JSON value.
pub fn push_value(out: &mut Vec<u8>, value: &Value) {
    // A Value holds no NaN, so serializing it into memory cannot fail.
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.extend_from_slice(b"null");
    }
}

/// Appends a stored JSON document verbatim (`{}` if the store gave none).
pub fn push_raw(out: &mut Vec<u8>, document: &[u8]) {
    if document.is_empty() {
        out.extend_from_slice(b"{}");
    } else {
        out.extend_from_slice(document);
    }
}

/// Whole seconds elapsed from `since_ms` to `now_ms` (0 if in the future).
pub fn age_seconds(now_ms: u64, since_ms: u64) -> u64 {
    now_ms.saturating_sub(since_ms) / 1000
}

/// `/v2/queues/{q}/messages/{id}` (+ `?claim_id=` while a claim is recorded).
pub fn push_message_href(out: &mut Vec<u8>, queue: &str, message: &StoredMessage) {
    match message.claim.as_ref().into_option() {
        Some(claim) => push_str_parts(
            out,
            &[
                "/v2/queues/",
                queue,
                "/messages/",
                &message.id,
                "?claim_id=",
                &claim.id,
            ],
        ),
        None => push_str_parts(out, &["/v2/queues/", queue, "/messages/", &message.id]),
    }
}

/// How much of a message to show.
#[derive(Debug, Clone, Copy)]
pub struct MessageView<'a> {
    /// The queue name, for hrefs.
    pub queue: &'a str,
    /// The current time.
    pub now_ms: u64,
    /// Whether to add `checksum` (`enable_checksum`).
    pub checksum: bool,
}

/// The HTTP message representation:
/// `{"id","href","ttl","age","body"[,"checksum"]}`.
pub fn push_message(out: &mut Vec<u8>, view: MessageView<'_>, message: &StoredMessage) {
    out.push(b'{');
    push_key(out, "id");
    push_str(out, &message.id);
    out.push(b',');
    push_key(out, "href");
    push_message_href(out, view.queue, message);
    push_ttl_age_body(out, view, message);
    out.push(b'}');
}

/// `,"ttl":..,"age":..,"body":..[,"checksum":..]`, shared by every
/// message shape.
pub fn push_ttl_age_body(out: &mut Vec<u8>, view: MessageView<'_>, message: &StoredMessage) {
    out.extend_from_slice(b",\"ttl\":");
    push_int(out, message.ttl);
    out.extend_from_slice(b",\"age\":");
    push_int(out, age_seconds(view.now_ms, message.created_ms));
    out.extend_from_slice(b",\"body\":");
    push_body(out, &message.body);
    push_checksum(out, view, &message.body);
}

/// An integer as JSON text, written without `format!` (answers write
/// several per message).
pub fn push_int(out: &mut Vec<u8>, value: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// A message body as stored (`null` if empty, which the host never stores).
pub fn push_body(out: &mut Vec<u8>, body: &[u8]) {
    if body.is_empty() {
        out.extend_from_slice(b"null");
    } else {
        out.extend_from_slice(body);
    }
}

/// `,"checksum":"MD5:..."` when enabled.
pub fn push_checksum(out: &mut Vec<u8>, view: MessageView<'_>, body: &[u8]) {
    if !view.checksum {
        return;
    }
    if let Some(sum) = checksum(body) {
        out.extend_from_slice(b",\"checksum\":");
        push_str(out, &sum);
    }
}

/// `[<message>,...]` in the HTTP representation.
pub fn push_messages(out: &mut Vec<u8>, view: MessageView<'_>, messages: &[StoredMessage]) {
    out.push(b'[');
    for (index, message) in messages.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        push_message(out, view, message);
    }
    out.push(b']');
}

/// The subscription representation (HTTP and WebSocket alike):
/// `{"id","source","subscriber","ttl","age","options","confirmed"}`.
pub fn push_subscription(out: &mut Vec<u8>, now_ms: u64, subscription: &SubscriptionRecord) {
    out.push(b'{');
    push_key(out, "id");
    push_str(out, &subscription.id);
    out.push(b',');
    push_key(out, "source");
    push_str(out, &subscription.queue);
    out.push(b',');
    push_key(out, "subscriber");
    push_str(out, &subscription.subscriber);
    out.extend_from_slice(b",\"ttl\":");
    push_int(out, subscription.ttl);
    out.extend_from_slice(b",\"age\":");
    push_int(out, age_seconds(now_ms, subscription.created_ms));
    out.extend_from_slice(b",\"options\":");
    push_raw(out, &subscription.options);
    out.extend_from_slice(if subscription.confirmed {
        b",\"confirmed\":true}"
    } else {
        b",\"confirmed\":false}"
    });
}

/// `"links":[...]`: a `next` link whenever the page is non-empty,
/// built from the request path and the listing's parameters, with `marker`
/// set to the page's last marker.
pub fn push_links(out: &mut Vec<u8>, path: &str, page: &PageQuery, last_marker: Option<&str>) {
    push_key(out, "links");
    let Some(marker) = last_marker else {
        out.extend_from_slice(b"[]");
        return;
    };
    out.extend_from_slice(b"[{\"rel\":\"next\",\"href\":");
    push_str(out, &next_href(path, page, marker));
    out.extend_from_slice(b"}]");
}

/// `<path>?<params>` with the new marker.
pub fn next_href(path: &str, page: &PageQuery, marker: &str) -> String {
    let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(page.pairs.len() + 1);
    if page.marker_first {
        pairs.push(("marker", marker));
    }
    pairs.extend(
        page.pairs
            .iter()
            .map(|(name, value)| (*name, value.as_str())),
    );
    if !page.marker_first {
        pairs.push(("marker", marker));
    }
    let query: Vec<String> = pairs
        .iter()
        .map(|(name, value)| format!("{name}={}", utf8_percent_encode(value, QUERY_VALUE)))
        .collect();
    format!("{path}?{}", query.join("&"))
}

#[cfg(test)]
mod tests {
    use plugin_api::{
        storage::ClaimStamp,
        types::{ROption, RVec},
    };

    use super::*;

    fn message(claim: Option<&str>) -> StoredMessage {
        StoredMessage {
            id: "m1".into(),
            seq: 1,
            created_ms: 1_000,
            expires_ms: 301_000,
            ttl: 300,
            visible_ms: 1_000,
            client_id: "c".into(),
            claim: match claim {
                Some(id) => ROption::RSome(ClaimStamp {
                    id: id.into(),
                    expires_ms: 61_000,
                }),
                None => ROption::RNone,
            },
            claim_count: 0,
            body: RVec::from(br#"{"event": "a"}"#.to_vec()),
        }
    }

    #[test]
    fn message_is_rendered_with_href_age_and_the_body_bytes_verbatim() {
        let mut out = Vec::new();
        let view = MessageView {
            queue: "q",
            now_ms: 3_500,
            checksum: false,
        };
        push_message(&mut out, view, &message(None));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"id":"m1","href":"/v2/queues/q/messages/m1","ttl":300,"age":2,"body":{"event": "a"}}"#
        );
    }

    #[test]
    fn claimed_message_href_carries_the_claim_id_and_checksum_when_enabled() {
        let mut out = Vec::new();
        let view = MessageView {
            queue: "q",
            now_ms: 1_000,
            checksum: true,
        };
        push_message(&mut out, view, &message(Some("c1")));
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(r#""href":"/v2/queues/q/messages/m1?claim_id=c1""#),
            "{text}"
        );
        assert!(
            text.ends_with(r#""checksum":"MD5:e4db62ac1fe774afdcf38f2ef1a78efd"}"#),
            "{text}"
        );
    }

    #[test]
    fn parts_make_one_escaped_string() {
        let mut out = Vec::new();
        push_str_parts(&mut out, &["/v2/", "q\"", "", "/x"]);
        assert_eq!(String::from_utf8(out).unwrap(), "\"/v2/q\\\"/x\"");
    }

    #[test]
    fn strings_are_escaped() {
        let mut out = Vec::new();
        push_str(&mut out, "a\"b\\c\n\u{1}é");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a\\\"b\\\\c\\n\\u0001é\""
        );
    }

    #[test]
    fn next_link_appends_marker_last_unless_the_request_had_one() {
        let page = PageQuery {
            pairs: vec![("limit", "1".into()), ("detailed", "true".into())],
            marker_first: false,
        };
        assert_eq!(
            next_href("/v2/queues", &page, "q1"),
            "/v2/queues?limit=1&detailed=true&marker=q1"
        );
        let page = PageQuery {
            pairs: vec![("limit", "1".into())],
            marker_first: true,
        };
        assert_eq!(
            next_href("/v2/queues", &page, "q 2"),
            "/v2/queues?marker=q%202&limit=1"
        );
    }

    #[test]
    fn empty_page_has_no_links() {
        let mut out = Vec::new();
        push_links(&mut out, "/v2/queues", &PageQuery::default(), None);
        assert_eq!(out, br#""links":[]"#);
    }
}
