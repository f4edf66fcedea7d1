//! MessagePack frames as bytes: where a frame's `action`, `headers` and
//! `body` members lie in the payload the client sent, so that the answer's
//! envelope echoes them as they arrived instead of transcoding them back
//! from the JSON text the frame was decoded through (half of a MessagePack
//! post's transcoding was that echo: the posted messages travel back).

/// The byte spans of a MessagePack frame's members (`None`: absent).
#[derive(Debug, Default, PartialEq)]
pub struct PackedFrame<'a> {
    pub action: Option<&'a [u8]>,
    pub headers: Option<&'a [u8]>,
    pub body: Option<&'a [u8]>,
}

/// Finds the members of a frame that is a MessagePack map; `None` if the
/// payload is not one well-formed map (a repeated member keeps its last
/// value, as the JSON decoder does).
pub fn members(payload: &[u8]) -> Option<PackedFrame<'_>> {
    let mut reader = Reader {
        bytes: payload,
        at: 0,
    };
    let entries = reader.map_len()?;
    let mut frame = PackedFrame::default();
    for _ in 0..entries {
        let key = reader.str()?;
        let start = reader.at;
        reader.skip_value()?;
        let value = Some(&payload[start..reader.at]);
        match key {
            Some(b"action") => frame.action = value,
            Some(b"headers") => frame.headers = value,
            Some(b"body") => frame.body = value,
            _ => {}
        }
    }
    (reader.at == payload.len()).then_some(frame)
}

/// Whether a value's bytes are a MessagePack map.
pub fn is_map(value: &[u8]) -> bool {
    matches!(value.first(), Some(0x80..=0x8f | 0xde | 0xdf))
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
    let mut deserializer = serde_json::Deserializer::from_slice(result);
    let mut serializer = rmp_serde::Serializer::new(&mut *out);
    serde_transcode::transcode(&mut deserializer, &mut serializer).map_err(|e| e.to_string())?;
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

/// A cursor over MessagePack bytes that checks every length against what
/// is left.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
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

    fn map_len(&mut self) -> Option<usize> {
        match self.byte()? {
            marker @ 0x80..=0x8f => Some(usize::from(marker & 0x0f)),
            0xde => self.length(2),
            0xdf => self.length(4),
            _ => None,
        }
    }

    /// A key: its bytes if it is a string, `None` inside `Some` if it is
    /// another value (skipped).
    fn str(&mut self) -> Option<Option<&'a [u8]>> {
        let len = match self.bytes.get(self.at)? {
            marker @ 0xa0..=0xbf => {
                self.at += 1;
                usize::from(marker & 0x1f)
            }
            0xd9 => {
                self.at += 1;
                self.length(1)?
            }
            0xda => {
                self.at += 1;
                self.length(2)?
            }
            0xdb => {
                self.at += 1;
                self.length(4)?
            }
            _ => {
                self.skip_value()?;
                return Some(None);
            }
        };
        Some(Some(self.take(len)?))
    }

    /// Moves past one value, however deeply nested, without recursing:
    /// `pending` counts the values still to be skipped.
    fn skip_value(&mut self) -> Option<()> {
        let mut pending: usize = 1;
        while pending > 0 {
            pending -= 1;
            let marker = self.byte()?;
            let (skip, values) = match marker {
                0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
                0x80..=0x8f => (0, 2 * usize::from(marker & 0x0f)),
                0x90..=0x9f => (0, usize::from(marker & 0x0f)),
                0xa0..=0xbf => (usize::from(marker & 0x1f), 0),
                0xc4 | 0xd9 => (self.length(1)?, 0),
                0xc5 | 0xda => (self.length(2)?, 0),
                0xc6 | 0xdb => (self.length(4)?, 0),
                0xc7 => (self.length(1)? + 1, 0),
                0xc8 => (self.length(2)? + 1, 0),
                0xc9 => (self.length(4)?.checked_add(1)?, 0),
                0xca => (4, 0),
                0xcb => (8, 0),
                0xcc | 0xd0 => (1, 0),
                0xcd | 0xd1 => (2, 0),
                0xce | 0xd2 => (4, 0),
                0xcf | 0xd3 => (8, 0),
                0xd4 => (2, 0),
                0xd5 => (3, 0),
                0xd6 => (5, 0),
                0xd7 => (9, 0),
                0xd8 => (17, 0),
                0xdc => (0, self.length(2)?),
                0xdd => (0, self.length(4)?),
                0xde => (0, self.length(2)?.checked_mul(2)?),
                0xdf => (0, self.length(4)?.checked_mul(2)?),
                // 0xc1 is never used.
                _ => return None,
            };
            self.take(skip)?;
            pending = pending.checked_add(values)?;
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
    fn what_is_not_one_whole_map_has_no_members() {
        assert_eq!(members(&packed(&json!([1, 2]))), None);
        let whole = packed(&json!({"action": "x", "body": {"a": [1, 2, 3]}}));
        for cut in 0..whole.len() {
            assert_eq!(members(&whole[..cut]), None, "cut at {cut}");
        }
        let mut trailing = whole.clone();
        trailing.push(0xc0);
        assert_eq!(members(&trailing), None);
        // An array that claims four billion items in a few bytes.
        assert_eq!(
            members(&[0x81, 0xa1, b'a', 0xdd, 0xff, 0xff, 0xff, 0xff]),
            None
        );
        assert_eq!(members(&[0x81, 0xa1, b'a', 0xc1]), None);
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
