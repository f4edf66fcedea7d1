//! JSON text written as MessagePack in one pass, for the texts answers and
//! pushes are made of: objects, arrays, strings without escapes, integers,
//! booleans and `null`. It writes the bytes the general transcoding
//! (serde_json read, rmp_serde written) writes, and gives up (`None`) on
//! anything else (floats, escapes, integers beyond 64 bits, deep nesting,
//! text that is not JSON), which the caller then transcodes the general
//! way. The general way costs a post's MessagePack answer about as much as
//! reading its frame.

/// Nesting past this is left to the general way (whose reader stops at 128).
const MAX_DEPTH: usize = 64;

/// Appends `text` (one JSON value, then only whitespace or nothing read)
/// as MessagePack; on `None`, `out` is as it was.
pub fn append(text: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let start = out.len();
    let mut writer = Writer { text, at: 0, out };
    let written = writer.value(0);
    if written.is_none() {
        out.truncate(start);
    }
    written
}

struct Writer<'a, 'o> {
    text: &'a [u8],
    at: usize,
    out: &'o mut Vec<u8>,
}

impl Writer<'_, '_> {
    /// The next byte that is not whitespace, consumed.
    fn next(&mut self) -> Option<u8> {
        while let Some(&byte) = self.text.get(self.at) {
            self.at += 1;
            if !matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
                return Some(byte);
            }
        }
        None
    }

    fn value(&mut self, depth: usize) -> Option<()> {
        match self.next()? {
            b'{' => self.container(depth, true),
            b'[' => self.container(depth, false),
            b'"' => self.string(),
            b't' => self.literal(b"rue", 0xc3),
            b'f' => self.literal(b"alse", 0xc2),
            b'n' => self.literal(b"ull", 0xc0),
            b'-' => self.integer(true),
            b'0'..=b'9' => {
                self.at -= 1;
                self.integer(false)
            }
            _ => None,
        }
    }

    fn literal(&mut self, rest: &[u8], marker: u8) -> Option<()> {
        self.text.get(self.at..)?.starts_with(rest).then_some(())?;
        self.at += rest.len();
        self.out.push(marker);
        Some(())
    }

    /// An object (`map`) or an array, its opening bracket read. Its length
    /// is known only at its end: a one-byte head is written first and
    /// widened, as rmp would have written it, if the count needs more.
    fn container(&mut self, depth: usize, map: bool) -> Option<()> {
        if depth >= MAX_DEPTH {
            return None;
        }
        let head = self.out.len();
        self.out.push(0);
        let close = if map { b'}' } else { b']' };
        let mut count = 0usize;
        loop {
            let byte = self.next()?;
            if byte == close && count == 0 {
                break;
            }
            if count > 0 {
                match byte {
                    b',' => {}
                    _ if byte == close => break,
                    _ => return None,
                }
            } else {
                self.at -= 1;
            }
            if map {
                (self.next()? == b'"').then_some(())?;
                self.string()?;
                (self.next()? == b':').then_some(())?;
            }
            self.value(depth + 1)?;
            count += 1;
        }
        if count < 16 {
            self.out[head] = if map { 0x80 } else { 0x90 } | count as u8;
            return Some(());
        }
        let len = u32::try_from(count).ok()?;
        let mut wide = Vec::with_capacity(5);
        // Writing into a Vec cannot fail.
        let _ = if map {
            rmp::encode::write_map_len(&mut wide, len)
        } else {
            rmp::encode::write_array_len(&mut wide, len)
        };
        self.out.splice(head..=head, wide);
        Some(())
    }

    /// A string, its opening quote read.
    fn string(&mut self) -> Option<()> {
        let rest = self.text.get(self.at..)?;
        let len = memchr::memchr2(b'"', b'\\', rest)?;
        let text = &rest[..len];
        // An escape is left to the general way, and so is what JSON does
        // not allow in a string: control characters, bytes not UTF-8.
        if rest[len] == b'\\' || text.iter().any(|&b| b < 0x20) {
            return None;
        }
        if !text.is_ascii() {
            std::str::from_utf8(text).ok()?;
        }
        let _ = rmp::encode::write_str_len(self.out, u32::try_from(len).ok()?);
        self.out.extend_from_slice(text);
        self.at += len + 1;
        Some(())
    }

    /// An integer, after its minus sign if `negative`: written in the
    /// fewest bytes, as rmp writes serde_json's `u64` (not negative) or
    /// `i64`. A fraction, an exponent, more than 64 bits or `-0` is a float
    /// to serde_json: `None`.
    fn integer(&mut self, negative: bool) -> Option<()> {
        let digits_start = self.at;
        let mut magnitude: u64 = 0;
        while let Some(&byte @ b'0'..=b'9') = self.text.get(self.at) {
            magnitude = magnitude
                .checked_mul(10)?
                .checked_add(u64::from(byte - b'0'))?;
            self.at += 1;
        }
        let digits = self.at - digits_start;
        let leading_zero = digits > 1 && self.text[digits_start] == b'0';
        if digits == 0 || leading_zero || matches!(self.text.get(self.at), Some(b'.' | b'e' | b'E'))
        {
            return None;
        }
        if negative {
            if magnitude == 0 {
                return None;
            }
            let value = 0i64.checked_sub_unsigned(magnitude)?;
            let _ = rmp::encode::write_sint(self.out, value);
        } else {
            let _ = rmp::encode::write_uint(self.out, magnitude);
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    /// The general transcoding [`append`] stands in for.
    fn transcoded(text: &[u8]) -> Option<Vec<u8>> {
        let mut deserializer = serde_json::Deserializer::from_slice(text);
        let mut out = Vec::new();
        let mut serializer = rmp_serde::Serializer::new(&mut out);
        serde_transcode::transcode(&mut deserializer, &mut serializer).ok()?;
        Some(out)
    }

    fn direct(text: &[u8]) -> Option<Vec<u8>> {
        let mut out = vec![0xaa];
        let written = append(text, &mut out);
        assert!(written.is_some() || out == [0xaa], "left bytes behind");
        written.map(|()| out[1..].to_vec())
    }

    /// A random JSON value, written with random whitespace.
    fn random_text(seed: &mut u64, out: &mut String, depth: usize) {
        let mut next = || {
            *seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = *seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let n = next();
        if n % 5 == 0 {
            out.push_str([" ", "\n", "\t ", "\r\n"][(n >> 8) as usize % 4]);
        }
        let pick = next() % if depth > 5 { 12 } else { 16 };
        let n = next();
        let strings = [
            "",
            "a",
            "message_ids",
            "é ü",
            "日本",
            "\\\"q\\\"",
            "tab\\t",
            "\\u00e9",
            "x".repeat(40).leak(),
            "y".repeat(300).leak(),
        ];
        match pick {
            0 => out.push_str("null"),
            1 => out.push_str(if n % 2 == 0 { "true" } else { "false" }),
            2 => out.push_str(&(n >> (n % 64)).to_string()),
            3 => out.push_str(&((n as i64) >> (n % 64)).to_string()),
            4 => out.push_str(
                [
                    "0",
                    "-0",
                    "18446744073709551615",
                    "18446744073709551616",
                    "-9223372036854775808",
                    "-9223372036854775809",
                    "127",
                    "128",
                    "-32",
                    "-33",
                    "255",
                    "256",
                    "65535",
                    "65536",
                ][n as usize % 14],
            ),
            5 => out.push_str(["1.5", "-0.0", "1e3", "2E-2", "0.1"][n as usize % 5]),
            6..=9 => {
                out.push('"');
                out.push_str(strings[n as usize % strings.len()]);
                out.push('"');
            }
            10 => out.push_str(
                [
                    "nul",
                    "tru",
                    "01",
                    "-",
                    "\"open",
                    "{\"a\" 1}",
                    "[1 2]",
                    "\"\u{1}\"",
                ][n as usize % 8],
            ),
            11 => out.push_str(["[]", "{}", "[ ]", "{ }"][n as usize % 4]),
            _ => {
                let map = pick % 2 == 0;
                let len = if n % 9 == 0 { 17 + n % 3 } else { n % 5 };
                out.push(if map { '{' } else { '[' });
                for index in 0..len {
                    if index > 0 {
                        out.push(',');
                    }
                    if map {
                        out.push('"');
                        out.push_str(strings[(n >> 16) as usize % 5]);
                        out.push_str(&index.to_string());
                        out.push_str("\" :");
                    }
                    random_text(seed, out, depth + 1);
                }
                out.push(if map { '}' } else { ']' });
            }
        }
    }

    #[test]
    fn the_bytes_are_the_general_transcodings() {
        let mut seed = 21;
        let mut written_directly = 0;
        for _ in 0..20_000 {
            let mut text = String::new();
            random_text(&mut seed, &mut text, 0);
            if let Some(bytes) = direct(text.as_bytes()) {
                written_directly += 1;
                assert_eq!(Some(bytes), transcoded(text.as_bytes()), "{text}");
            }
        }
        assert!(
            written_directly > 5_000,
            "only {written_directly} written directly"
        );
    }

    #[test]
    fn answers_take_the_direct_way_and_the_rest_the_general_one() {
        let answer = json!({"message_ids": ["6790f2b7c2d3a1e4f5a6b7c8", "6790f2b7c2d3a1e4f5a6b7c9"], "n": [0, -1, 300]});
        let text = serde_json::to_vec(&answer).unwrap();
        let bytes = direct(&text).unwrap();
        assert_eq!(rmp_serde::from_slice::<Value>(&bytes).unwrap(), answer);
        // Long arrays and maps get the wider heads.
        let long: Vec<u32> = (0..70_000).collect();
        let text = serde_json::to_vec(&json!({"long": long})).unwrap();
        assert_eq!(direct(&text), transcoded(&text));
        for general in [
            &b"1.5"[..],
            b"\"a\\nb\"",
            b"[1e2]",
            b"99999999999999999999",
            b"{\"a\":}",
        ] {
            assert_eq!(
                direct(general),
                None,
                "{}",
                String::from_utf8_lossy(general)
            );
        }
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(direct(deep.as_bytes()), None);
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(direct(deep.as_bytes()), transcoded(deep.as_bytes()));
    }
}
