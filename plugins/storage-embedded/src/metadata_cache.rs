//! The queues' metadata, kept in memory so that a post (which needs the
//! queue's defaults) does not open a read transaction for them.
//!
//! Why it is correct: every write to this data directory goes through this
//! process's writer (redb locks the file against other processes, and the
//! stores of one directory share one engine), so the writer knows every
//! change. A write that creates, deletes or changes the metadata of a queue
//! names the queue ([`crate::group_commit::WriteTables::metadata_changed`]);
//! once its batch is committed, and before its caller is answered, the
//! writer forgets those entries and bumps the generation.
//!
//! A reader that missed fills the entry from a read transaction, but only if
//! no batch changed metadata since it looked ([`MetadataCache::generation`]
//! before the read, compared under the lock): otherwise its snapshot may be
//! older than a commit whose invalidation already ran, and it keeps its
//! answer to itself.
//!
//! The number of entries is bounded ([`MAX_ENTRIES`]); when full, the cache
//! starts over (metadata reads are cheap, only their per-post repetition
//! was not).

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use crate::journal_sync::Ticket;

/// At most this many queues are remembered (a few hundred bytes each).
pub(crate) const MAX_ENTRIES: usize = 16 * 1024;

/// A queue's metadata as stored, or `None`: the queue does not exist.
pub(crate) type Cached = Option<Arc<[u8]>>;

#[derive(Default)]
struct Entries {
    /// project → queue name → metadata.
    by_project: HashMap<String, HashMap<String, Cached>>,
    len: usize,
    /// Bumped after every committed batch that changed metadata.
    generation: u64,
}

/// See the module documentation.
#[derive(Default)]
pub(crate) struct MetadataCache {
    entries: Mutex<Entries>,
    /// The journal record of the last batch that changed metadata: what
    /// is served from here is durable once that is (see
    /// [`crate::journal_sync`]).
    changed_at: AtomicU64,
}

impl MetadataCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The remembered metadata of `(project, name)`, if any.
    pub(crate) fn get(&self, project: &str, name: &str) -> Option<Cached> {
        self.lock()
            .by_project
            .get(project)
            .and_then(|queues| queues.get(name))
            .cloned()
    }

    /// The generation to pass to [`MetadataCache::fill`]; read it before
    /// beginning the read transaction.
    pub(crate) fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Remembers what a read transaction begun at `generation` found,
    /// unless metadata changed since.
    pub(crate) fn fill(&self, generation: u64, project: &str, name: &str, value: Cached) {
        let mut guard = self.lock();
        let entries = &mut *guard;
        if entries.generation != generation {
            return;
        }
        if entries.len >= MAX_ENTRIES {
            entries.by_project.clear();
            entries.len = 0;
        }
        let queues = entries.by_project.entry(project.to_owned()).or_default();
        if queues.insert(name.to_owned(), value).is_none() {
            entries.len += 1;
        }
    }

    /// The journal record of the last batch that changed metadata.
    pub(crate) fn changed_at(&self) -> Ticket {
        self.changed_at.load(Ordering::Acquire)
    }

    /// Forgets the queues a committed (or failed) batch changed; called by
    /// the writer before it answers the batch's callers. `ticket` is the
    /// batch's journal record.
    pub(crate) fn invalidate(&self, changed: &[(String, String)], ticket: Ticket) {
        if changed.is_empty() {
            return;
        }
        self.changed_at.fetch_max(ticket, Ordering::AcqRel);
        let mut guard = self.lock();
        let entries = &mut *guard;
        entries.generation += 1;
        for (project, name) in changed {
            let Some(queues) = entries.by_project.get_mut(project) else {
                continue;
            };
            if queues.remove(name).is_some() {
                entries.len -= 1;
            }
            if queues.is_empty() {
                entries.by_project.remove(project);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fill_from_before_a_change_is_not_kept() {
        let cache = MetadataCache::default();
        let seen = cache.generation();
        cache.invalidate(&[("p".into(), "q".into())], 0);
        cache.fill(seen, "p", "q", Some(Arc::from(&b"{}"[..])));
        assert_eq!(cache.get("p", "q"), None);

        let seen = cache.generation();
        cache.fill(seen, "p", "q", None);
        assert_eq!(cache.get("p", "q"), Some(None));
        cache.invalidate(&[("p".into(), "q".into())], 0);
        assert_eq!(cache.get("p", "q"), None);
    }

    #[test]
    fn the_cache_starts_over_when_full() {
        let cache = MetadataCache::default();
        let generation = cache.generation();
        for i in 0..=MAX_ENTRIES {
            cache.fill(generation, "p", &i.to_string(), None);
        }
        assert_eq!(cache.get("p", "0"), None);
        assert_eq!(
            cache.get("p", &MAX_ENTRIES.to_string()),
            Some(None),
            "the newest entry is kept"
        );
    }
}
