//! The ids handed to clients, all 24 lowercase hex characters like
//! Zaqar's MongoDB ObjectIds, so clients that check their shape are happy.
//!
//! * Message id = 16 hex digits of the sequence number + 8 hex digits of
//!   random tag. Looking a message up by id is one key read `(qid, seq)`,
//!   and the tag makes ids of a queue deleted and created again (whose
//!   sequence numbers continue, see [`crate::schema::SEQ_FLOOR`]) and
//!   guessed ids fail the comparison.
//! * Claim id = 96 random bits.
//! * Subscription id = 12 hex digits of the creation time in ms + 48
//!   random bits, so the stable listing order is roughly creation order.

/// 128 random bits from uuid v4 (its `fast-rng`: a per-thread ChaCha
/// generator seeded from the operating system, no system call per id).
fn random_u128() -> u128 {
    uuid::Uuid::new_v4().as_u128()
}

/// The random tag of a new message id. Tags only need to differ, not to be
/// secret (the sequence number beside them is public), so they come from a
/// per-thread SplitMix64 seeded once from the OS instead of a system call
/// per message in the writer's hot loop.
pub(crate) fn new_tag() -> u32 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(random_u128() as u64);
    }
    STATE.with(|state| {
        let next = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        state.set(next);
        let mut z = next;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) as u32
    })
}

/// The id of message `seq` with `tag`. Built by hand: the writer makes one
/// per posted message, and `format!` cost ~1,600 instructions each (and
/// collecting the digits as chars ~1,000).
pub(crate) fn message_id(seq: u64, tag: u32) -> String {
    let mut id = [0u8; 24];
    push_hex(&mut id[..16], seq);
    push_hex(&mut id[16..], u64::from(tag));
    // Hex digits are ASCII: the check cannot fail.
    String::from(std::str::from_utf8(&id).unwrap_or_default())
}

/// Writes the low `out.len()` hex digits of `value`, most significant first.
fn push_hex(out: &mut [u8], mut value: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(value & 0xf) as usize];
        value >>= 4;
    }
}

/// `(seq, tag)` of a message id, or `None` if it is not one of ours.
pub(crate) fn parse_message_id(id: &str) -> Option<(u64, u32)> {
    if id.len() != 24 || !is_lower_hex(id) {
        return None;
    }
    let seq = u64::from_str_radix(&id[..16], 16).ok()?;
    let tag = u32::from_str_radix(&id[16..], 16).ok()?;
    Some((seq, tag))
}

/// A new claim id (96 random bits; zero is never produced so that it can
/// never be confused with "no claim").
pub(crate) fn new_claim() -> u128 {
    (random_u128() & ((1u128 << 96) - 1)) | 1
}

/// The text form of a claim id.
pub(crate) fn claim_id(claim: u128) -> String {
    format!("{claim:024x}")
}

/// The claim a claim id names, or `None` if it is not one of ours.
pub(crate) fn parse_claim_id(id: &str) -> Option<u128> {
    if id.len() != 24 || !is_lower_hex(id) {
        return None;
    }
    u128::from_str_radix(id, 16).ok()
}

/// A new subscription id created at `now_ms`.
pub(crate) fn new_subscription_id(now_ms: u64) -> String {
    let random = random_u128() & ((1u128 << 48) - 1);
    format!("{:012x}{random:012x}", now_ms & ((1u64 << 48) - 1))
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_round_trip_and_sort_by_sequence() {
        let a = message_id(9, new_tag());
        let b = message_id(10, new_tag());
        assert_eq!(a.len(), 24);
        assert!(a < b);
        assert_eq!(parse_message_id(&a).map(|p| p.0), Some(9));
    }

    #[test]
    fn message_ids_are_the_sequence_and_tag_in_lowercase_hex() {
        assert_eq!(message_id(0x1f, 0xdead_beef), "000000000000001fdeadbeef");
        assert_eq!(message_id(u64::MAX, u32::MAX), "ffffffffffffffffffffffff");
        for (seq, tag) in [(0, 0), (123_456_789, 42), (u64::MAX - 1, 0x0102_0304)] {
            let id = message_id(seq, tag);
            assert_eq!(id, format!("{seq:016x}{tag:08x}"));
            assert_eq!(parse_message_id(&id), Some((seq, tag)));
        }
    }

    #[test]
    fn foreign_ids_are_rejected() {
        for id in [
            "",
            "xyz",
            "0000000000000000000000zz",
            "0000000000000000000000AA",
        ] {
            assert_eq!(parse_message_id(id), None);
            assert_eq!(parse_claim_id(id), None);
        }
    }

    #[test]
    fn claim_ids_round_trip() {
        let c = new_claim();
        assert_eq!(parse_claim_id(&claim_id(c)), Some(c));
    }
}
