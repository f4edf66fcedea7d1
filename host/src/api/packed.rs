//! MessagePack frames as bytes: where a frame's `action`, `headers` and
//! `body` members lie in the payload the client sent, so that the answer's
//! envelope echoes them as they arrived instead of transcoding them back
//! from the JSON text the frame was decoded through (half of a MessagePack
//! post's transcoding was that echo: the posted messages travel back); and
//! the frame's JSON text written in one pass over it for the values frames
//! are made of, where a generic transcode through serde costs a third of a
//! MessagePack post's request path.

use std::borrow::Cow;

use super::{
    frame::MAX_FRAME_DEPTH,
    post_body::{IntField, MessagesText, ReadMessage},
    render::push_int,
};

/// The byte spans of a MessagePack frame's members (`None`: absent).
#[derive(Debug, Default, PartialEq)]
pub struct PackedFrame<'a> {
    pub action: Option<&'a [u8]>,
    pub headers: Option<&'a [u8]>,
    pub body: Option<&'a [u8]>,
}

/// Finds the members of a frame that is a MessagePack map; `None` if the
/// payload does not start with one well-formed map. A repeated member
/// keeps its last value and bytes after the map are ignored, as they are
/// when the frame is read as JSON.
pub fn members(payload: &[u8]) -> Option<PackedFrame<'_>> {
    let mut frame = PackedFrame::default();
    each_entry(payload, |key, value| match key {
        Some(b"action") => frame.action = Some(value),
        Some(b"headers") => frame.headers = Some(value),
        Some(b"body") => frame.body = Some(value),
        _ => {}
    })?;
    Some(frame)
}

/// A MessagePack value made only of the values [`to_json`] writes
/// directly, every string in it found to be UTF-8 by [`check_plain`]. Only
/// [`plain_members`] makes one, so its strings are read without being
/// checked again (a post's frame had each string checked four times).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plain<'a>(&'a [u8]);

/// The members of a frame that is a plain MessagePack map.
#[derive(Debug, Default, PartialEq)]
pub struct PlainFrame<'a> {
    pub action: Option<Plain<'a>>,
    pub headers: Option<Plain<'a>>,
    pub body: Option<Plain<'a>>,
}

impl<'a> PlainFrame<'a> {
    /// Where its members lie, for the answer's echo.
    pub fn spans(&self) -> PackedFrame<'a> {
        PackedFrame {
            action: self.action.map(Plain::bytes),
            headers: self.headers.map(Plain::bytes),
            body: self.body.map(Plain::bytes),
        }
    }
}

impl<'a> Plain<'a> {
    /// Its MessagePack bytes.
    pub fn bytes(self) -> &'a [u8] {
        self.0
    }

    /// Its text if it is a string.
    pub fn as_str(self) -> Option<&'a str> {
        let mut reader = Reader::new(self.0);
        let marker = reader.byte()?;
        match reader.head(marker)? {
            Head::Str(len) => Some(checked_str(reader.take(len)?)),
            _ => None,
        }
    }

    /// Calls `visit` with each entry if it is a map (every key of a plain
    /// map is a string).
    pub fn each_entry(self, mut visit: impl FnMut(&'a str, Plain<'a>)) {
        let _ = each_entry(self.0, |key, value| {
            if let Some(key) = key {
                visit(checked_str(key), Plain(value));
            }
        });
    }

    /// Its JSON text (what [`to_json`] writes).
    pub fn to_json_text(self) -> String {
        let mut reader = Reader::new(self.0);
        let mut out = Vec::with_capacity(self.0.len() + self.0.len() / 2);
        if write_json(&mut reader, &mut out, 0, Strings::Checked).is_none() {
            return "null".into();
        }
        written_text(out)
    }

    /// A post's `messages` as JSON text; if it is a list of maps that
    /// each have a `body`, with each message read on the way (the last of
    /// a repeated key counts, as when the text is parsed). Any other shape
    /// is left to the post reader to parse and judge.
    pub fn messages_text(self) -> MessagesText<'static> {
        let mut out = Vec::with_capacity(self.0.len() + self.0.len() / 2);
        let Some(read) = write_messages(&mut Reader::new(self.0), &mut out) else {
            return MessagesText {
                text: Cow::Owned(self.to_json_text()),
                read: None,
            };
        };
        MessagesText {
            text: Cow::Owned(written_text(out)),
            read: Some(read),
        }
    }
}

/// The JSON text [`write_json`] wrote from a [`Plain`] value's bytes.
fn written_text(out: Vec<u8>) -> String {
    debug_assert!(std::str::from_utf8(&out).is_ok());
    // SAFETY: `write_json` writes ASCII and the value's strings, which
    // `check_plain` found to be UTF-8.
    unsafe { String::from_utf8_unchecked(out) }
}

/// Writes a list of messages as [`write_json`] would, reading each
/// message's body span and its `ttl` and `delay` (as the post reader reads
/// them) on the way; `None` (`out` then
/// holds part of the text) if the list does not have a post's shape.
fn write_messages(reader: &mut Reader<'_>, out: &mut Vec<u8>) -> Option<Vec<ReadMessage>> {
    let marker = reader.byte()?;
    let Head::Array(len) = reader.head(marker)? else {
        return None;
    };
    let mut read = Vec::with_capacity(len.min(64));
    out.push(b'[');
    for index in 0..len {
        if index > 0 {
            out.push(b',');
        }
        let marker = reader.byte()?;
        let Head::Map(entries) = reader.head(marker)? else {
            return None;
        };
        let mut message = ReadMessage {
            body: 0..0,
            ttl: None,
            delay: None,
        };
        let mut has_body = false;
        out.push(b'{');
        for entry in 0..entries {
            if entry > 0 {
                out.push(b',');
            }
            let key = reader.str()??;
            push_json_str(out, key, Strings::Checked)?;
            out.push(b':');
            match key {
                b"body" => {
                    let start = out.len();
                    write_json(reader, out, 2, Strings::Checked)?;
                    message.body = start..out.len();
                    has_body = true;
                }
                b"ttl" | b"delay" => {
                    let start = out.len();
                    write_json(reader, out, 2, Strings::Checked)?;
                    // Read from the text just written, by the post
                    // reader's own rule for an integer field.
                    let value = serde_json::from_slice::<IntField>(&out[start..]).ok()?;
                    *(if key == b"ttl" {
                        &mut message.ttl
                    } else {
                        &mut message.delay
                    }) = Some(value);
                }
                _ => write_json(reader, out, 2, Strings::Checked)?,
            }
        }
        out.push(b'}');
        has_body.then_some(())?;
        read.push(message);
    }
    out.push(b']');
    Some(read)
}

/// Whether a string is UTF-8: the short ASCII strings frames are made of
/// are settled without the general check, which costs them several times
/// as much.
fn is_utf8(bytes: &[u8]) -> bool {
    bytes.is_ascii() || std::str::from_utf8(bytes).is_ok()
}

/// A string already found to be UTF-8: one of a [`Plain`] value, which
/// [`check_plain`] checked, or one just checked.
fn checked_str(bytes: &[u8]) -> &str {
    debug_assert!(std::str::from_utf8(bytes).is_ok());
    // SAFETY: only called on the strings of a `Plain` value, each of which
    // `check_plain` validated as UTF-8 before the value was made, and on
    // strings `push_json_str` has just validated.
    unsafe { std::str::from_utf8_unchecked(bytes) }
}

/// The members of a frame that is a MessagePack map made only of the
/// values [`to_json`] writes directly, found in the same pass that checks
/// it: such a frame is served from its bytes, each member read where it
/// lies, and reads exactly as its JSON text would. `None` for any other
/// frame, which is transcoded whole. A repeated member keeps its last
/// value and bytes after the map are ignored, as in [`members`].
pub fn plain_members(payload: &[u8]) -> Option<PlainFrame<'_>> {
    let mut reader = Reader::new(payload);
    let entries = reader.map_len()?;
    if entries > payload.len() - reader.at {
        return None;
    }
    let mut frame = PlainFrame::default();
    for _ in 0..entries {
        let key = reader.str()??;
        is_utf8(key).then_some(())?;
        let start = reader.at;
        check_plain(&mut reader, 1)?;
        let value = Some(Plain(&payload[start..reader.at]));
        match key {
            b"action" => frame.action = value,
            b"headers" => frame.headers = value,
            b"body" => frame.body = value,
            _ => {}
        }
    }
    Some(frame)
}

/// Calls `visit` with each entry of the map `bytes` starts with: the key's
/// bytes (`None`: not a string) and the value's. `None` if `bytes` does
/// not start with a whole map.
pub fn each_entry<'a>(
    bytes: &'a [u8],
    mut visit: impl FnMut(Option<&'a [u8]>, &'a [u8]),
) -> Option<()> {
    let mut reader = Reader::new(bytes);
    let entries = reader.map_len()?;
    for _ in 0..entries {
        let key = reader.str()?;
        let start = reader.at;
        reader.skip_value()?;
        visit(key, &bytes[start..reader.at]);
    }
    Some(())
}

/// Whether a value is nil, or a float JSON writes as `null` (not finite).
pub fn is_null(value: &[u8]) -> bool {
    match value.first() {
        Some(0xc0) => true,
        Some(0xca | 0xcb) => to_json(value).is_some_and(|text| text == b"null"),
        _ => false,
    }
}

/// Checks, without writing anything, that [`write_json`] would write the
/// value under the cursor.
fn check_plain(reader: &mut Reader<'_>, depth: usize) -> Option<()> {
    let marker = reader.byte()?;
    match reader.head(marker)? {
        Head::Str(len) => is_utf8(reader.take(len)?).then_some(())?,
        head @ (Head::Array(len) | Head::Map(len)) => {
            if depth >= MAX_FRAME_DEPTH || len > reader.bytes.len() - reader.at {
                return None;
            }
            for _ in 0..len {
                if matches!(head, Head::Map(_)) {
                    is_utf8(reader.str()??).then_some(())?;
                }
                check_plain(reader, depth + 1)?;
            }
        }
        // Nil, booleans, integers and floats; not binary or extensions.
        Head::Other => match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 | 0xca..=0xd3 => {
                reader.nested(marker, Head::Other)?;
            }
            _ => return None,
        },
    }
    Some(())
}

/// Whether a value's bytes are a MessagePack map.
pub fn is_map(value: &[u8]) -> bool {
    matches!(value.first(), Some(0x80..=0x8f | 0xde | 0xdf))
}

/// What a marker starts: a string, an array or a map of this many bytes,
/// items or entries, or another value.
#[derive(Clone, Copy)]
enum Head {
    Str(usize),
    Array(usize),
    Map(usize),
    Other,
}

/// Writes Zaqar's answer envelope in MessagePack, the same document
/// `websocket::envelope` writes as JSON: `{"request": {"action", "body",
/// "headers", "api": "v2"}, "body": <result>, "headers": {"status"}}`,
/// the request's members as the client sent them (`hide` leaves out its
/// headers and body; a member that is not a map is echoed as an empty
/// one), `result` (JSON text) transcoded.
pub fn envelope(
    out: &mut Vec<u8>,
    frame: &PackedFrame<'_>,
    hide: bool,
    result: &[u8],
    status: u16,
) -> Result<(), String> {
    fn member(value: Option<&[u8]>, hide: bool) -> &[u8] {
        const EMPTY_MAP: &[u8] = &[0x80];
        value.filter(|v| !hide && is_map(v)).unwrap_or(EMPTY_MAP)
    }
    const NIL: &[u8] = &[0xc0];
    write_map_len(out, 3);
    write_str(out, "request");
    write_map_len(out, 4);
    write_str(out, "action");
    out.extend_from_slice(frame.action.unwrap_or(NIL));
    write_str(out, "body");
    out.extend_from_slice(member(frame.body, hide));
    write_str(out, "headers");
    out.extend_from_slice(member(frame.headers, hide));
    write_str(out, "api");
    write_str(out, "v2");
    write_str(out, "body");
    super::frame::append_json_as_msgpack(result, out)?;
    write_str(out, "headers");
    write_map_len(out, 1);
    write_str(out, "status");
    rmp::encode::write_uint(out, u64::from(status)).map_err(|e| e.to_string())?;
    Ok(())
}

fn write_map_len(out: &mut Vec<u8>, len: u32) {
    // Writing into a Vec cannot fail.
    let _ = rmp::encode::write_map_len(out, len);
}

fn write_str(out: &mut Vec<u8>, text: &str) {
    let _ = rmp::encode::write_str(out, text);
}

/// The JSON text of a MessagePack value made only of nil, booleans,
/// integers, floats, UTF-8 strings, arrays and maps with string keys,
/// nested at most [`MAX_FRAME_DEPTH`] deep: the same text serde's
/// transcoding writes. `None` for anything else (binary, extension types,
/// other keys, deeper nesting, bytes cut short), which the caller
/// transcodes the general way, errors included. Like that transcoding, it
/// reads the first value and ignores what follows.
pub fn to_json(payload: &[u8]) -> Option<Vec<u8>> {
    let mut reader = Reader::new(payload);
    let mut out = Vec::with_capacity(payload.len() + payload.len() / 2);
    write_json(&mut reader, &mut out, 0, Strings::Unchecked)?;
    Some(out)
}

/// Whether the strings of a value were already found to be UTF-8.
#[derive(Clone, Copy, PartialEq)]
enum Strings {
    Checked,
    Unchecked,
}

fn write_json(
    reader: &mut Reader<'_>,
    out: &mut Vec<u8>,
    depth: usize,
    strings: Strings,
) -> Option<()> {
    let marker = reader.byte()?;
    match marker {
        0x00..=0x7f => push_int(out, marker),
        0xe0..=0xff => push_int(out, marker as i8),
        0xc0 => out.extend_from_slice(b"null"),
        0xc2 => out.extend_from_slice(b"false"),
        0xc3 => out.extend_from_slice(b"true"),
        0xcc => push_int(out, reader.length(1)? as u8),
        0xcd => push_int(out, reader.length(2)? as u16),
        0xce => push_int(out, reader.length(4)? as u32),
        0xcf => push_int(out, u64::from_be_bytes(reader.take(8)?.try_into().ok()?)),
        0xd0 => push_int(out, reader.length(1)? as u8 as i8),
        0xd1 => push_int(out, reader.length(2)? as u16 as i16),
        0xd2 => push_int(out, reader.length(4)? as u32 as i32),
        0xd3 => push_int(out, i64::from_be_bytes(reader.take(8)?.try_into().ok()?)),
        // serde_json's own number formatting (and `null` where not finite).
        0xca => {
            let value = f32::from_be_bytes(reader.take(4)?.try_into().ok()?);
            serde_json::to_writer(&mut *out, &value).ok()?;
        }
        0xcb => {
            let value = f64::from_be_bytes(reader.take(8)?.try_into().ok()?);
            serde_json::to_writer(&mut *out, &value).ok()?;
        }
        _ => match reader.head(marker)? {
            Head::Str(len) => push_json_str(out, reader.take(len)?, strings)?,
            head @ (Head::Array(len) | Head::Map(len)) => {
                if depth >= MAX_FRAME_DEPTH {
                    return None;
                }
                let map = matches!(head, Head::Map(_));
                out.push(if map { b'{' } else { b'[' });
                for index in 0..len {
                    if index > 0 {
                        out.push(b',');
                    }
                    if map {
                        push_json_str(out, reader.str()??, strings)?;
                        out.push(b':');
                    }
                    write_json(reader, out, depth + 1, strings)?;
                }
                out.push(if map { b'}' } else { b']' });
            }
            Head::Other => return None,
        },
    }
    Some(())
}

/// A MessagePack string as a JSON string, escaped as serde_json escapes;
/// `None` if it is not UTF-8.
fn push_json_str(out: &mut Vec<u8>, bytes: &[u8], strings: Strings) -> Option<()> {
    if strings == Strings::Unchecked {
        is_utf8(bytes).then_some(())?;
    }
    if super::render::needs_escaping(bytes) {
        serde_json::to_writer(&mut *out, checked_str(bytes)).ok()?;
    } else {
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
    }
    Some(())
}

/// A cursor over MessagePack bytes that checks every length against what
/// is left.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(len)?;
        let taken = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(taken)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    /// A big-endian length of `width` bytes.
    fn length(&mut self, width: usize) -> Option<usize> {
        let bytes = self.take(width)?;
        let value = bytes.iter().fold(0u64, |n, &b| n << 8 | u64::from(b));
        usize::try_from(value).ok()
    }

    /// What `marker` (just read) starts, its length read from the bytes
    /// after it where it has one there.
    fn head(&mut self, marker: u8) -> Option<Head> {
        Some(match marker {
            0xa0..=0xbf => Head::Str(usize::from(marker & 0x1f)),
            0xd9 => Head::Str(self.length(1)?),
            0xda => Head::Str(self.length(2)?),
            0xdb => Head::Str(self.length(4)?),
            0x90..=0x9f => Head::Array(usize::from(marker & 0x0f)),
            0xdc => Head::Array(self.length(2)?),
            0xdd => Head::Array(self.length(4)?),
            0x80..=0x8f => Head::Map(usize::from(marker & 0x0f)),
            0xde => Head::Map(self.length(2)?),
            0xdf => Head::Map(self.length(4)?),
            _ => Head::Other,
        })
    }

    fn map_len(&mut self) -> Option<usize> {
        let marker = self.byte()?;
        match self.head(marker)? {
            Head::Map(len) => Some(len),
            _ => None,
        }
    }

    /// A key: its bytes if it is a string, `None` inside `Some` if it is
    /// another value (skipped).
    fn str(&mut self) -> Option<Option<&'a [u8]>> {
        let marker = self.byte()?;
        match self.head(marker)? {
            Head::Str(len) => Some(Some(self.take(len)?)),
            head => {
                let nested = self.nested(marker, head)?;
                self.skip_values(nested)?;
                Some(None)
            }
        }
    }

    /// Moves past one value, however deeply nested.
    fn skip_value(&mut self) -> Option<()> {
        self.skip_values(1)
    }

    /// Moves past the rest of a value whose marker and head were just read
    /// (a string's bytes, a number's, ...); returns how many values it
    /// holds, still to be skipped.
    fn nested(&mut self, marker: u8, head: Head) -> Option<usize> {
        let skip = match head {
            Head::Str(len) => len,
            Head::Array(len) => return Some(len),
            Head::Map(len) => return len.checked_mul(2),
            Head::Other => match marker {
                0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => 0,
                0xc4 => self.length(1)?,
                0xc5 => self.length(2)?,
                0xc6 => self.length(4)?,
                0xc7 => self.length(1)? + 1,
                0xc8 => self.length(2)? + 1,
                0xc9 => self.length(4)?.checked_add(1)?,
                0xca => 4,
                0xcb => 8,
                0xcc | 0xd0 => 1,
                0xcd | 0xd1 => 2,
                0xce | 0xd2 => 4,
                0xcf | 0xd3 => 8,
                0xd4 => 2,
                0xd5 => 3,
                0xd6 => 5,
                0xd7 => 9,
                0xd8 => 17,
                // 0xc1 is never used.
                _ => return None,
            },
        };
        self.take(skip)?;
        Some(0)
    }

    /// Moves past `pending` values, however deeply nested, without
    /// recursing: `pending` counts the values still to be skipped.
    fn skip_values(&mut self, mut pending: usize) -> Option<()> {
        while pending > 0 {
            pending -= 1;
            let marker = self.byte()?;
            let head = self.head(marker)?;
            pending = pending.checked_add(self.nested(marker, head)?)?;
            // Every value takes at least one byte: more pending than bytes
            // left cannot be a whole frame.
            if pending > self.bytes.len() - self.at {
                return None;
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn packed(value: &Value) -> Vec<u8> {
        rmp_serde::to_vec_named(value).unwrap()
    }

    #[test]
    fn members_are_found_as_sent_and_others_skipped() {
        let frame = json!({
            "other": {"deep": [1, [2, [3, {"x": null}]], -5, 3.5, "s", true]},
            "action": "message_post",
            "headers": {"Client-ID": "a", "X-Project-ID": "p"},
            "body": {"queue_name": "q", "messages": [{"ttl": 300, "body": {"n": 70000}}]},
        });
        let bytes = packed(&frame);
        let members = members(&bytes).unwrap();
        let decode = |span: Option<&[u8]>| rmp_serde::from_slice::<Value>(span.unwrap()).unwrap();
        assert_eq!(decode(members.action), frame["action"]);
        assert_eq!(decode(members.headers), frame["headers"]);
        assert_eq!(decode(members.body), frame["body"]);
    }

    #[test]
    fn absent_members_and_a_repeated_one() {
        // {"body": 1, "body": {}} by hand: a map of two with one key twice.
        let bytes = [
            0x82, 0xa4, b'b', b'o', b'd', b'y', 0x01, 0xa4, b'b', b'o', b'd', b'y', 0x80,
        ];
        let members = members(&bytes).unwrap();
        assert_eq!(members.body, Some(&[0x80][..]));
        assert_eq!((members.action, members.headers), (None, None));
    }

    #[test]
    fn what_does_not_start_with_a_whole_map_has_no_members() {
        assert_eq!(members(&packed(&json!([1, 2]))), None);
        let whole = packed(&json!({"action": "x", "body": {"a": [1, 2, 3]}}));
        for cut in 0..whole.len() {
            assert_eq!(members(&whole[..cut]), None, "cut at {cut}");
        }
        let mut trailing = whole.clone();
        trailing.push(0xc0);
        assert_eq!(members(&trailing), members(&whole));
        // An array that claims four billion items in a few bytes.
        assert_eq!(
            members(&[0x81, 0xa1, b'a', 0xdd, 0xff, 0xff, 0xff, 0xff]),
            None
        );
        assert_eq!(members(&[0x81, 0xa1, b'a', 0xc1]), None);
    }

    /// The general transcoding `to_json` stands in for.
    fn transcoded(payload: &[u8]) -> Result<Vec<u8>, String> {
        let mut deserializer = rmp_serde::Deserializer::from_read_ref(payload);
        let mut out = Vec::new();
        let mut serializer = serde_json::Serializer::new(&mut out);
        serde_transcode::transcode(&mut deserializer, &mut serializer)
            .map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// A random MessagePack value drawn from every marker there is.
    fn random_value(seed: &mut u64, out: &mut Vec<u8>, depth: usize) {
        let mut next = || {
            *seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = *seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let pick = next() % if depth > 4 { 14 } else { 18 };
        let n = next();
        let text = [
            "",
            "a",
            "queue_name",
            "é ü",
            "\"q\"",
            "\\",
            "line\nbreak",
            "\u{8}\u{c}\u{1}",
            "日本",
        ];
        let _ = match pick {
            0 => rmp::encode::write_nil(out).ok().map(drop),
            1 => rmp::encode::write_bool(out, n % 2 == 0).ok().map(drop),
            2 => rmp::encode::write_uint(out, n >> (n % 64)).ok().map(drop),
            3 => rmp::encode::write_sint(out, (n as i64) >> (n % 64))
                .ok()
                .map(drop),
            4 => rmp::encode::write_u8(out, n as u8).ok().map(drop),
            5 => rmp::encode::write_i64(out, n as i64).ok().map(drop),
            6 => rmp::encode::write_f32(out, f32::from_bits(n as u32))
                .ok()
                .map(drop),
            7 => rmp::encode::write_f64(out, [1.5, -0.0, 1e300, f64::NAN, 3.0][n as usize % 5])
                .ok()
                .map(drop),
            8 | 9 => rmp::encode::write_str(out, text[n as usize % text.len()])
                .ok()
                .map(drop),
            10 => rmp::encode::write_bin(out, &n.to_be_bytes()[..(n % 8) as usize])
                .ok()
                .map(drop),
            11 => rmp::encode::write_ext_meta(out, 2, 5)
                .ok()
                .map(|_| out.extend_from_slice(b"\x01\x02")),
            12 => {
                // A string that is not UTF-8.
                let _ = rmp::encode::write_str_len(out, 2);
                out.extend_from_slice(&[0xff, 0xfe]);
                Some(())
            }
            13 => rmp::encode::write_f64(out, f64::from_bits(n))
                .ok()
                .map(drop),
            14 | 15 => {
                let len = n % 5;
                let _ = rmp::encode::write_array_len(out, len as u32);
                for _ in 0..len {
                    random_value(seed, out, depth + 1);
                }
                Some(())
            }
            _ => {
                let len = n % 4;
                let _ = rmp::encode::write_map_len(out, len as u32);
                for index in 0..len {
                    if (n >> (8 + index)) % 7 == 0 {
                        random_value(seed, out, depth + 1); // a key of another kind
                    } else {
                        let _ = rmp::encode::write_str(out, text[(n >> 16) as usize % text.len()]);
                    }
                    random_value(seed, out, depth + 1);
                }
                Some(())
            }
        };
    }

    #[test]
    fn the_json_text_is_the_general_transcodings() {
        let mut seed = 18;
        let mut direct = 0;
        for round in 0..20_000 {
            let mut bytes = Vec::new();
            random_value(&mut seed, &mut bytes, 0);
            if round % 3 == 0 {
                bytes.truncate(bytes.len().saturating_sub((seed % 3) as usize));
                // cut short, maybe
            }
            let mut reader = Reader::new(&bytes);
            assert_eq!(
                check_plain(&mut reader, 0).is_some(),
                to_json(&bytes).is_some(),
                "plain and written directly differ: {bytes:x?}"
            );
            if let Some(text) = to_json(&bytes) {
                direct += 1;
                let general = transcoded(&bytes).unwrap_or_else(|e| panic!("{e}: {bytes:x?}"));
                assert_eq!(
                    String::from_utf8_lossy(&text),
                    String::from_utf8_lossy(&general),
                    "{bytes:x?}"
                );
            }
        }
        assert!(direct > 5_000, "only {direct} values were written directly");
        // A frame as clients send it takes the direct way.
        let frame = json!({"action": "message_post", "headers": {"Client-ID": "c"},
                           "body": {"queue_name": "q", "messages": [{"ttl": 60, "body": [1.5, -2, null]}]}});
        assert_eq!(
            to_json(&packed(&frame)).map(|t| serde_json::from_slice::<Value>(&t).unwrap()),
            Some(frame)
        );
        // Nesting past the frame limit is left to the general way.
        let mut deep = vec![0x91; MAX_FRAME_DEPTH];
        deep.push(0xc0);
        assert!(to_json(&deep).is_some());
        deep.insert(0, 0x91);
        assert_eq!(to_json(&deep), None);
    }

    #[test]
    fn the_envelope_is_the_json_one_in_messagepack() {
        let frame = json!({"action": "queue_get", "headers": {"Client-ID": "c"}, "body": {"queue_name": "q"}});
        let bytes = packed(&frame);
        let mut out = Vec::new();
        envelope(
            &mut out,
            &members(&bytes).unwrap(),
            false,
            br#"{"a":[1,-2,"x"]}"#,
            201,
        )
        .unwrap();
        let answer: Value = rmp_serde::from_slice(&out).unwrap();
        assert_eq!(
            answer,
            json!({
                "request": {"action": "queue_get", "body": {"queue_name": "q"},
                            "headers": {"Client-ID": "c"}, "api": "v2"},
                "body": {"a": [1, -2, "x"]},
                "headers": {"status": 201},
            })
        );
        let mut hidden = Vec::new();
        envelope(&mut hidden, &members(&bytes).unwrap(), true, b"{}", 200).unwrap();
        let answer: Value = rmp_serde::from_slice(&hidden).unwrap();
        assert_eq!(
            answer["request"],
            json!({"action": "queue_get", "body": {}, "headers": {}, "api": "v2"})
        );
        let mut bare = Vec::new();
        envelope(&mut bare, &PackedFrame::default(), false, b"{}", 400).unwrap();
        let answer: Value = rmp_serde::from_slice(&bare).unwrap();
        assert_eq!(
            answer["request"],
            json!({"action": null, "body": {}, "headers": {}, "api": "v2"})
        );
    }
}
