//! The validation cache: what Keystone said about a token, reused until the
//! token expires or the configured maximum age passes, whichever is first.
//!
//! Keyed by the token's SHA-256, so the cache holds no usable credential.
//! Bounded: when full, expired entries go first, then the oldest inserted
//! (a token validated long ago is the one least likely to be in use).
//! Refusals are cached too: a token Keystone does not know never becomes
//! valid, and a flood of bad tokens should not become a flood on Keystone.

use std::collections::{HashMap, VecDeque};

use plugin_api::auth::Identity;
use sha2::{Digest, Sha256};

/// What Keystone answered about a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Valid, as this identity.
    Valid(Identity),
    /// Not a valid token (unknown, revoked, expired or not project-scoped).
    Refused,
}

struct Entry {
    verdict: Verdict,
    until_ms: u64,
    /// Which insertion this is, to tell the current entry from a stale
    /// position in `order`.
    generation: u64,
}

/// A bounded map from token hash to verdict.
pub struct ValidationCache {
    capacity: usize,
    entries: HashMap<[u8; 32], Entry>,
    /// Insertion order, oldest first; may hold stale positions.
    order: VecDeque<([u8; 32], u64)>,
    next_generation: u64,
}

/// The cache key of a token.
pub fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl ValidationCache {
    /// A cache of at most `capacity` entries (0: caches nothing).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: HashMap::new(),
            order: VecDeque::new(),
            next_generation: 0,
        }
    }

    /// The verdict on `key` if it is still fresh at `now_ms`.
    pub fn get(&mut self, key: &[u8; 32], now_ms: u64) -> Option<Verdict> {
        let entry = self.entries.get(key)?;
        if entry.until_ms > now_ms {
            return Some(entry.verdict.clone());
        }
        self.entries.remove(key);
        None
    }

    /// Remembers `verdict` on `key` until `until_ms`.
    pub fn insert(&mut self, key: [u8; 32], verdict: Verdict, until_ms: u64, now_ms: u64) {
        if self.capacity == 0 || until_ms <= now_ms {
            return;
        }
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            self.entries.retain(|_, e| e.until_ms > now_ms);
            while self.entries.len() >= self.capacity {
                let Some((oldest, generation)) = self.order.pop_front() else {
                    break;
                };
                if self.entries.get(&oldest).map(|e| e.generation) == Some(generation) {
                    self.entries.remove(&oldest);
                }
            }
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        self.entries.insert(
            key,
            Entry {
                verdict,
                until_ms,
                generation,
            },
        );
        self.order.push_back((key, generation));
        // Stale positions pile up as entries are replaced or expire; drop
        // them before `order` grows past twice the capacity.
        if self.order.len() > 2 * self.capacity {
            let entries = &self.entries;
            self.order
                .retain(|(k, g)| entries.get(k).map(|e| e.generation) == Some(*g));
        }
    }

    /// How many entries the cache holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use plugin_api::types::ROption;

    use super::*;

    fn identity(project: &str) -> Verdict {
        Verdict::Valid(Identity {
            project: project.into(),
            user: "u".into(),
            roles: Default::default(),
            expires_ms: ROption::RNone,
        })
    }

    #[test]
    fn a_verdict_is_reused_until_its_time_and_not_after() {
        let mut cache = ValidationCache::new(10);
        cache.insert(key("t"), identity("p"), 1000, 0);
        assert_eq!(cache.get(&key("t"), 999), Some(identity("p")));
        assert_eq!(cache.get(&key("t"), 1000), None);
        assert!(cache.is_empty(), "a stale entry is dropped when met");
    }

    #[test]
    fn a_full_cache_drops_expired_entries_then_the_oldest() {
        let mut cache = ValidationCache::new(3);
        cache.insert(key("a"), identity("a"), 100, 0);
        cache.insert(key("b"), Verdict::Refused, 1000, 0);
        cache.insert(key("c"), identity("c"), 1000, 0);
        cache.insert(key("d"), identity("d"), 1000, 200);
        assert_eq!(cache.len(), 3);
        assert_eq!(
            cache.get(&key("b"), 200),
            Some(Verdict::Refused),
            "a expired, b kept"
        );
        cache.insert(key("e"), identity("e"), 1000, 200);
        assert_eq!(cache.get(&key("b"), 200), None, "b was the oldest");
        for k in ["c", "d", "e"] {
            assert!(cache.get(&key(k), 200).is_some(), "{k}");
        }
    }

    #[test]
    fn replacing_an_entry_does_not_evict_it_early() {
        let mut cache = ValidationCache::new(2);
        cache.insert(key("a"), identity("a"), 1000, 0);
        cache.insert(key("b"), identity("b"), 1000, 0);
        cache.insert(key("a"), identity("a2"), 1000, 0);
        cache.insert(key("c"), identity("c"), 1000, 0);
        assert_eq!(cache.get(&key("a"), 0), Some(identity("a2")));
        assert_eq!(cache.get(&key("b"), 0), None);
        for round in 0..100 {
            cache.insert(key("a"), identity("a"), 1000, round);
        }
        assert!(cache.order.len() <= 4, "stale positions are compacted");
    }

    #[test]
    fn a_zero_capacity_or_past_time_caches_nothing() {
        let mut none = ValidationCache::new(0);
        none.insert(key("t"), identity("p"), 1000, 0);
        assert!(none.is_empty());
        let mut cache = ValidationCache::new(5);
        cache.insert(key("t"), identity("p"), 10, 10);
        assert!(cache.is_empty());
    }
}
