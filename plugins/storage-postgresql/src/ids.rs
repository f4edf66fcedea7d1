//! The ids handed to clients: 24 lowercase hex characters like Zaqar's
//! MongoDB ObjectIds, so clients that check their shape are happy.
//!
//! * Message id = 16 hex digits of the sequence number + 8 hex digits of a
//!   random tag: a lookup by id is a primary-key read `(project, queue,
//!   seq)`, and the tag makes guessed ids, and ids of a queue deleted and
//!   created again, miss.
//! * Claim id = 96 random bits.
//! * Subscription id = 12 hex digits of the creation time in ms + 48 random
//!   bits, so the stable listing order is roughly creation order.

fn random_u128() -> u128 {
    uuid::Uuid::new_v4().as_u128()
}

/// A new random message tag.
pub(crate) fn new_tag() -> u32 {
    random_u128() as u32
}

/// The id of message `seq` with `tag`.
pub(crate) fn message_id(seq: u64, tag: u32) -> String {
    format!("{seq:016x}{tag:08x}")
}

/// `(seq, tag)` of a message id, or `None` if it is not one of ours.
pub(crate) fn parse_message_id(id: &str) -> Option<(u64, u32)> {
    if id.len() != 24 || !is_lower_hex(id) {
        return None;
    }
    let seq = u64::from_str_radix(&id[..16], 16).ok()?;
    let tag = u32::from_str_radix(&id[16..], 16).ok()?;
    (seq <= i64::MAX as u64).then_some((seq, tag))
}

/// A new claim id.
pub(crate) fn new_claim_id() -> String {
    format!("{:024x}", random_u128() & ((1u128 << 96) - 1))
}

/// Whether `id` has the shape of our claim ids (others can never match).
pub(crate) fn is_claim_id(id: &str) -> bool {
    id.len() == 24 && is_lower_hex(id)
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
        assert!(a < b);
        assert_eq!(parse_message_id(&a).map(|p| p.0), Some(9));
    }

    #[test]
    fn foreign_ids_are_rejected() {
        for id in [
            "",
            "xyz",
            "0000000000000000000000zz",
            "ffffffffffffffff00000000",
        ] {
            assert_eq!(parse_message_id(id), None);
        }
        assert!(!is_claim_id("0000000000000000000000AA"));
        assert!(is_claim_id(&new_claim_id()));
    }
}
