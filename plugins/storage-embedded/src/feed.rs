//! The change feed: the sinks the message stores of this database handed
//! over with `changes_watch`, and the delivery of each commit's changes.
//!
//! Only one process opens a data directory, so every write to it passes
//! through this process's writer thread: the feed is in-process. Write
//! operations record what they changed in [`WriteTables::announce`]
//! (nothing at all while no sink is registered); once the batch's commit is
//! durable, the changes go, in the order the operations were applied
//! (commit order), to every sink, before the callers are answered: on the
//! journal's sync thread, or on the thread that committed a lone write (see
//! [`crate::journal_sync`]).
//! A sink never blocks (the contract says so: the host's sink only updates
//! in-memory state), so the next sync is not held up. A failed commit
//! announces nothing.
//!
//! [`WriteTables::announce`]: crate::group_commit::WriteTables::announce

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc, RwLock,
};

use plugin_api::storage::{ChangeSink, ChangeSinkBox, QueueChange};

/// The registered sinks, by registration id.
pub(crate) type Sinks = Arc<Vec<(u64, Arc<ChangeSinkBox>)>>;

/// The sinks of one open database.
#[derive(Default)]
pub(crate) struct Feed {
    /// Copied on write: the writer takes a snapshot per batch without
    /// holding the lock while it delivers.
    sinks: RwLock<Sinks>,
    next_id: AtomicU64,
}

impl Feed {
    /// Registers `sink`; returns the id that [`Feed::unwatch`] takes.
    pub(crate) fn watch(&self, sink: ChangeSinkBox) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut sinks = self.sinks.write().unwrap_or_else(|e| e.into_inner());
        let mut next = Vec::clone(&sinks);
        next.push((id, Arc::new(sink)));
        *sinks = Arc::new(next);
        id
    }

    /// Forgets the sink registered as `id`.
    pub(crate) fn unwatch(&self, id: u64) {
        let mut sinks = self.sinks.write().unwrap_or_else(|e| e.into_inner());
        let next: Vec<_> = sinks.iter().filter(|(i, _)| *i != id).cloned().collect();
        *sinks = Arc::new(next);
    }

    /// The sinks registered now.
    pub(crate) fn sinks(&self) -> Sinks {
        Arc::clone(&self.sinks.read().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Hands a committed batch's changes, in order, to every sink.
pub(crate) fn deliver(sinks: &Sinks, changes: Vec<QueueChange>) {
    let Some(((_, last), others)) = sinks.split_last() else {
        return;
    };
    for change in changes {
        for (_, sink) in others {
            sink.changed(change.clone());
        }
        last.changed(change);
    }
}
