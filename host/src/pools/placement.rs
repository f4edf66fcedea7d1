//! Which pool a new queue goes to: a choice proportional to the pools'
//! weights, as Zaqar's, but made by weighted rendezvous hashing of the
//! queue's project and name instead of a random draw. Over many queues each
//! pool gets its weight's share; for one queue every host computes the same
//! pool, so two hosts placing the same new queue at once agree (the
//! management store has no compare-and-set to settle a race otherwise).
//! A pool of weight 0 takes no new queues.

/// FNV-1a, 64 bits: stable across builds and hosts (std's hasher is not
/// promised to be).
fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0xff)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    // FNV's low bits mix poorly: finish with a 64-bit avalanche.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

/// The pool among `candidates` (name, weight) that `project`/`queue` goes
/// to; `None` when every weight is 0 (or there is no candidate).
pub fn choose<'a>(
    candidates: impl IntoIterator<Item = (&'a str, u32)>,
    project: &str,
    queue: &str,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .filter(|(_, weight)| *weight > 0)
        .map(|(name, weight)| {
            // u in (0, 1]; score = weight / -ln(u): the largest wins, each
            // with probability weight / total.
            let u = ((fnv1a(&[name, project, queue]) >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
            (name, f64::from(weight) / -u.ln().min(-f64::MIN_POSITIVE))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1).then_with(|| b.0.cmp(a.0)))
        .map(|(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_follow_weights_and_zero_takes_nothing() {
        let pools = [("a", 1), ("b", 3), ("off", 0)];
        let mut counts = std::collections::HashMap::new();
        for i in 0..4000 {
            let pool = choose(pools, "p", &format!("q{i}")).unwrap();
            *counts.entry(pool).or_insert(0) += 1;
        }
        assert_eq!(counts.get("off"), None);
        let a = counts["a"] as f64 / 4000.0;
        assert!((0.2..0.3).contains(&a), "pool a got {a} of the queues");
    }

    #[test]
    fn the_choice_is_the_same_every_time_and_needs_a_weight() {
        let pools = [("a", 10), ("b", 10)];
        assert_eq!(choose(pools, "p", "q"), choose(pools, "p", "q"));
        assert_eq!(choose([("a", 0)], "p", "q"), None);
        assert_eq!(choose([], "p", "q"), None);
    }
}
