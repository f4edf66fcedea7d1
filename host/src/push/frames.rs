//! How pushes are encoded. A push is the message's notification document
//! with the subscription's id added as its last field, so every frame of a
//! fan-out is one part shared by all subscriptions of a format (encoded
//! once per message) followed by a short part that is the same for every
//! push of one subscription (encoded once when it subscribes). Sinks get
//! the two parts and write them without joining them.

use std::sync::OnceLock;

use plugin_api::storage::QueueRef;
use serde_json::Value;

use super::Format;
use crate::{
    api::{frame::json_to_msgpack, render::push_str},
    streams::options::Gap,
};

/// The part of every push of one subscription that follows the shared
/// part: `,"subscription_id":"…"}` in the subscription's format.
pub fn subscription_tail(format: Format, subscription_id: &str) -> Vec<u8> {
    match format {
        Format::Json => json_tail(subscription_id),
        Format::ServerSentEvent => {
            let mut tail = json_tail(subscription_id);
            tail.extend_from_slice(b"\n\n");
            tail
        }
        Format::MsgPack => {
            let mut tail = rmp_serde::to_vec("subscription_id").unwrap_or_default();
            tail.extend(rmp_serde::to_vec(subscription_id).unwrap_or_default());
            tail
        }
    }
}

fn json_tail(subscription_id: &str) -> Vec<u8> {
    let mut tail = Vec::with_capacity(subscription_id.len() + 24);
    tail.extend_from_slice(b",\"subscription_id\":");
    push_str(&mut tail, subscription_id);
    tail.push(b'}');
    tail
}

/// One message's push document, encoded at most once per format.
pub struct SharedPush<'a> {
    /// The notification document (a JSON object).
    document: &'a [u8],
    seq: u64,
    // Shared by the threads of a split fan-out.
    msgpack: OnceLock<Option<Vec<u8>>>,
    event: OnceLock<Vec<u8>>,
}

impl<'a> SharedPush<'a> {
    /// The push of the message with this document and seq.
    pub fn new(document: &'a [u8], seq: u64) -> Self {
        Self {
            document,
            seq,
            msgpack: OnceLock::new(),
            event: OnceLock::new(),
        }
    }

    /// The part every subscription in `format` receives before its tail;
    /// `None` if the document cannot be split there (the caller then
    /// encodes the whole frame with [`push_frame`]).
    pub fn shared(&self, format: Format) -> Option<&[u8]> {
        let open = &self.document[..self.document.len().checked_sub(1)?];
        match format {
            Format::Json => Some(open),
            Format::MsgPack => self
                .msgpack
                .get_or_init(|| msgpack_open_map(self.document))
                .as_deref(),
            // A document with line breaks is re-written whole, on one
            // line, tail included (see `one_line`).
            Format::ServerSentEvent if has_line_break(self.document) => None,
            Format::ServerSentEvent => Some(self.event.get_or_init(|| {
                let mut out = event_head(Some(self.seq), "message");
                out.extend_from_slice(open);
                out
            })),
        }
    }
}

/// The document as a MessagePack map with room for one more entry: the
/// map header counts the entry the tail appends.
fn msgpack_open_map(document: &[u8]) -> Option<Vec<u8>> {
    let mut packed = json_to_msgpack(document).ok()?;
    match *packed.first()? {
        header @ 0x80..=0x8e => packed[0] = header + 1,
        0xde => {
            let count = u16::from_be_bytes([*packed.get(1)?, *packed.get(2)?]).checked_add(1)?;
            packed[1..3].copy_from_slice(&count.to_be_bytes());
        }
        _ => return None,
    }
    Some(packed)
}

/// The push document with the subscription's id added, in the
/// subscription's format, as one piece.
pub fn push_frame(document: &[u8], seq: u64, format: Format, subscription_id: &str) -> Vec<u8> {
    let mut json = Vec::with_capacity(document.len() + 64);
    json.extend_from_slice(&document[..document.len() - 1]);
    json.extend_from_slice(b",\"subscription_id\":");
    push_str(&mut json, subscription_id);
    json.push(b'}');
    encode(json, format, Some(seq), "message")
}

/// `{"Message_Type":"Gap","queue_name","subscription_id","requested_seq",
/// "first_available_seq"}`; as a server-sent event, only the seqs.
pub fn gap_frame(queue: &QueueRef, format: Format, subscription_id: &str, gap: &Gap) -> Vec<u8> {
    if format == Format::ServerSentEvent {
        let data = format!("{{{}}}", gap.json_fields());
        return encode(data.into_bytes(), Format::ServerSentEvent, None, "gap");
    }
    let mut json = Vec::with_capacity(160);
    json.extend_from_slice(b"{\"Message_Type\":\"Gap\",\"queue_name\":");
    push_str(&mut json, &queue.name);
    json.extend_from_slice(b",\"subscription_id\":");
    push_str(&mut json, subscription_id);
    json.push(b',');
    json.extend_from_slice(gap.json_fields().as_bytes());
    json.push(b'}');
    encode(json, format, None, "gap")
}

fn encode(json: Vec<u8>, format: Format, id: Option<u64>, event: &str) -> Vec<u8> {
    match format {
        Format::Json => json,
        Format::MsgPack => json_to_msgpack(&json).unwrap_or_default(),
        Format::ServerSentEvent => {
            let json = one_line(json);
            let mut out = event_head(id, event);
            out.extend_from_slice(&json);
            out.extend_from_slice(b"\n\n");
            out
        }
    }
}

/// `id:` (if any), `event:` and the start of the `data:` line.
fn event_head(id: Option<u64>, event: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    if let Some(id) = id {
        out.extend_from_slice(format!("id: {id}\n").as_bytes());
    }
    out.extend_from_slice(format!("event: {event}\ndata: ").as_bytes());
    out
}

fn has_line_break(json: &[u8]) -> bool {
    json.iter().any(|b| matches!(b, b'\n' | b'\r'))
}

/// A `data:` line ends at a line break: JSON stored with line breaks is
/// re-written on one line.
fn one_line(json: Vec<u8>) -> Vec<u8> {
    if has_line_break(&json) {
        serde_json::from_slice::<Value>(&json)
            .and_then(|v| serde_json::to_vec(&v))
            .unwrap_or(json)
    } else {
        json
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCUMENT: &[u8] = b"{\"ttl\":300,\"body\":{\"event\":\"x\",\"lines\":\"a\\nb\",\"n\":[1,2]},\"Message_Type\":\"Notification\",\"queue_name\":\"q\",\"message_id\":\"m1\",\"sequence\":7}";
    /// Stored with a line break between two tokens.
    const BROKEN: &[u8] = b"{\"ttl\":300,\"body\":{\"n\":[1,\n2]},\"Message_Type\":\"Notification\",\"queue_name\":\"q\",\"message_id\":\"m1\",\"sequence\":7}";

    fn assert_parts_make_the_frame(document: &[u8], formats: &[Format]) {
        let push = SharedPush::new(document, 7);
        for &format in formats {
            for id in ["sub-1", "quote\"and\\slash", "ünïcödé"] {
                let mut parts = push.shared(format).expect("splittable").to_vec();
                parts.extend(subscription_tail(format, id));
                assert_eq!(
                    parts,
                    push_frame(document, 7, format, id),
                    "{format:?} {id}"
                );
            }
        }
    }

    #[test]
    fn shared_part_and_tail_make_the_whole_frame_in_every_format() {
        let all = [Format::Json, Format::MsgPack, Format::ServerSentEvent];
        assert_parts_make_the_frame(DOCUMENT, &all);
        assert_parts_make_the_frame(BROKEN, &[Format::Json, Format::MsgPack]);
        assert!(SharedPush::new(BROKEN, 7)
            .shared(Format::ServerSentEvent)
            .is_none());
    }

    #[test]
    fn the_msgpack_shared_part_decodes_with_the_tail_as_one_map() {
        let push = SharedPush::new(DOCUMENT, 7);
        let mut frame = push.shared(Format::MsgPack).unwrap().to_vec();
        frame.extend(subscription_tail(Format::MsgPack, "s"));
        let value: Value = rmp_serde::from_slice(&frame).unwrap();
        assert_eq!(value["subscription_id"], "s");
        assert_eq!(value["sequence"], 7);
        assert_eq!(value["body"]["n"][1], 2);
    }
}
