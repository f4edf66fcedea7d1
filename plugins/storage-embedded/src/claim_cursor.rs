//! Where a claim's scan for takeable messages may start.
//!
//! A claim takes the oldest messages that are live, visible and not under a
//! live claim. With many consumers on one queue the oldest hundreds of
//! messages are all under other consumers' claims, and every claim scanned
//! and decoded them again (at 64 consumers, a third of the writer's
//! instructions). So the store remembers, per queue, the sequence number
//! below which no message can be taken, and until when that holds: the
//! earliest moment one of the messages it passed could become takeable (a
//! claim on it expiring, its delay ending). Messages only become takeable
//! sooner when a claim is released or updated, or the queue is deleted or
//! purged, and those forget the queue's cursor.
//!
//! A batch notes its cursor changes beside its transaction; they reach the
//! shared map only once the batch is committed, so a batch rolled back
//! leaves no cursor past messages it did not claim.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
};

/// More queues than this with a cursor: forget them all (a cursor only
/// saves work, and the map must not grow with every queue ever claimed from).
const MAX_QUEUES: usize = 100_000;

/// No message of the queue below `from` can be taken before `valid_until_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub from: u64,
    pub valid_until_ms: u64,
}

/// The committed cursors, by queue id.
#[derive(Default)]
pub(crate) struct ClaimCursors {
    by_queue: Mutex<HashMap<u64, Cursor>>,
}

impl ClaimCursors {
    fn map(&self) -> MutexGuard<'_, HashMap<u64, Cursor>> {
        self.by_queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies what a committed batch changed.
    pub(crate) fn apply(&self, changes: HashMap<u64, Option<Cursor>>) {
        if changes.is_empty() {
            return;
        }
        let mut map = self.map();
        for (qid, cursor) in changes {
            match cursor {
                Some(cursor) => map.insert(qid, cursor),
                None => map.remove(&qid),
            };
        }
        if map.len() > MAX_QUEUES {
            map.clear();
        }
    }

    /// Forgets every cursor (after a commit whose outcome is unknown).
    pub(crate) fn clear(&self) {
        self.map().clear();
    }
}

/// One batch's view: the committed cursors plus the batch's own changes.
pub(crate) struct BatchCursors<'c> {
    committed: Option<&'c ClaimCursors>,
    changes: HashMap<u64, Option<Cursor>>,
}

impl<'c> BatchCursors<'c> {
    /// A batch reading and changing `committed` (none: no cursors, as for
    /// the schema upgrade).
    pub(crate) fn new(committed: Option<&'c ClaimCursors>) -> Self {
        Self {
            committed,
            changes: HashMap::new(),
        }
    }

    /// Where a claim on queue `qid` may start scanning at `now_ms`.
    pub(crate) fn start(&self, qid: u64, now_ms: u64) -> Option<Cursor> {
        let cursor = match self.changes.get(&qid) {
            Some(changed) => *changed,
            None => self.committed?.map().get(&qid).copied(),
        };
        cursor.filter(|c| now_ms < c.valid_until_ms)
    }

    /// Sets queue `qid`'s cursor.
    pub(crate) fn set(&mut self, qid: u64, cursor: Cursor) {
        if self.committed.is_some() {
            self.changes.insert(qid, Some(cursor));
        }
    }

    /// Forgets queue `qid`'s cursor: some of its messages may be takeable
    /// sooner than it says.
    pub(crate) fn forget(&mut self, qid: u64) {
        if self.committed.is_some() {
            self.changes.insert(qid, None);
        }
    }

    /// The batch's changes, for [`ClaimCursors::apply`] once committed.
    pub(crate) fn take_changes(&mut self) -> HashMap<u64, Option<Cursor>> {
        std::mem::take(&mut self.changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: Cursor = Cursor {
        from: 10,
        valid_until_ms: 1_000,
    };

    #[test]
    fn a_cursor_counts_once_committed_and_only_until_it_lapses() {
        let committed = ClaimCursors::default();
        let mut batch = BatchCursors::new(Some(&committed));
        batch.set(1, AT);
        assert_eq!(batch.start(1, 999), Some(AT), "the batch sees its own");
        assert_eq!(BatchCursors::new(Some(&committed)).start(1, 0), None);
        committed.apply(batch.take_changes());
        let next = BatchCursors::new(Some(&committed));
        assert_eq!(next.start(1, 999), Some(AT));
        assert_eq!(next.start(1, 1_000), None, "lapsed");
        assert_eq!(next.start(2, 0), None);
    }

    #[test]
    fn forgetting_hides_the_committed_cursor_and_removes_it_on_commit() {
        let committed = ClaimCursors::default();
        committed.apply(HashMap::from([(1, Some(AT))]));
        let mut batch = BatchCursors::new(Some(&committed));
        batch.forget(1);
        assert_eq!(batch.start(1, 0), None);
        committed.apply(batch.take_changes());
        assert_eq!(BatchCursors::new(Some(&committed)).start(1, 0), None);
    }

    #[test]
    fn without_a_shared_map_nothing_is_kept() {
        let mut batch = BatchCursors::new(None);
        batch.set(1, AT);
        assert_eq!(batch.start(1, 0), None);
        assert!(batch.take_changes().is_empty());
    }
}
