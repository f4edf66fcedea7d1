//! Store changes as the host reacts to them: one place that learns what
//! committed, from this host or any other attached to the same store.
//!
//! The message store announces each committed change through its change
//! feed (`MessageStore::changes_watch`): in-process for the embedded store,
//! through the database's notification channel for shared ones. A store
//! without a feed (a library built against plugin-api 1.0, or one that
//! chose not to offer it) is wrapped in [`local_feed::LocalFeed`], which
//! announces this host's own writes — right for a store no other host
//! shares.
//!
//! What listens:
//! * per-queue **tails** ([`Events::tail`]): the queue's last sequence
//!   number; socket pushes and notification workers wait on it and then
//!   read the store from their own cursor, so a missed wake-up costs
//!   latency, never a message;
//! * **changes** ([`Events::changes`]): queue deletions, purges,
//!   subscription changes and resyncs, for the notification dispatcher.
//!
//! A resync (the store's feed was lost and is back) wakes every tail, so
//! each listener re-reads from its cursor instead of trusting that it saw
//! every change.

pub mod local_feed;

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, MutexGuard, Weak,
    },
};

use plugin_api::storage::{
    wrap_change_sink, ChangeKind, ChangeSink, MessageStore, MessageStoreBox, QueueChange, QueueRef,
};
use tokio::sync::{broadcast, watch};

/// Changes other than posts buffered for slow listeners; a listener that
/// falls further behind gets a resync instead.
const CHANGE_BACKLOG: usize = 1024;

/// The host's view of what changed in the message store.
pub struct Events {
    tails: Mutex<HashMap<QueueRef, watch::Sender<u64>>>,
    changes: broadcast::Sender<QueueChange>,
    store_feed: AtomicBool,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("store_feed", &self.has_store_feed())
            .finish_non_exhaustive()
    }
}

impl Events {
    /// No listeners yet, no feed attached.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            tails: Mutex::new(HashMap::new()),
            changes: broadcast::channel(CHANGE_BACKLOG).0,
            store_feed: AtomicBool::new(false),
        })
    }

    fn tails(&self) -> MutexGuard<'_, HashMap<QueueRef, watch::Sender<u64>>> {
        // Every critical section completes without calling out, so the map
        // stays consistent even if a panic poisoned the lock.
        self.tails.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks the store for its change feed. False when it has none: the
    /// caller then wraps the store in a [`local_feed::LocalFeed`].
    pub async fn attach(self: &Arc<Self>, store: &MessageStoreBox) -> bool {
        let sink = wrap_change_sink(Sink(Arc::downgrade(self)));
        match store.changes_watch(sink).await {
            Ok(()) => {
                self.store_feed.store(true, Ordering::SeqCst);
                tracing::info!("message store change feed attached: changes from every host sharing the store reach this one");
                true
            }
            Err(error) if error.is_unsupported() => {
                tracing::info!("the message store has no change feed: this host announces its own writes (no other host may share the store)");
                false
            }
            Err(error) => {
                tracing::warn!(%error, "the message store's change feed failed to start: this host announces its own writes only");
                false
            }
        }
    }

    /// Whether changes come from the store's own feed.
    pub fn has_store_feed(&self) -> bool {
        self.store_feed.load(Ordering::SeqCst)
    }

    /// Takes one committed change.
    pub fn announce(&self, change: QueueChange) {
        match change.kind {
            ChangeKind::MESSAGES => self.advance(&change.queue, change.last_seq),
            ChangeKind::RESYNC => {
                self.wake_all();
                let _ = self.changes.send(change);
            }
            ChangeKind::QUEUE_DELETED | ChangeKind::QUEUE_PURGED | ChangeKind::SUBSCRIPTIONS => {
                // A deleted queue's listeners re-read and find nothing.
                if change.kind == ChangeKind::QUEUE_DELETED {
                    self.wake(&change.queue);
                }
                let _ = self.changes.send(change);
            }
            // A kind this host does not know: re-read that queue.
            _ => {
                self.wake(&change.queue);
                let _ = self.changes.send(QueueChange::resync());
            }
        }
    }

    /// The queue's tail: its last sequence number as announced (0 until the
    /// first announcement this host sees). Listeners compare it with their
    /// own cursor and read the store; a wake-up with no new value means
    /// "read again anyway".
    pub fn tail(&self, queue: &QueueRef) -> watch::Receiver<u64> {
        self.tails()
            .entry(queue.clone())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Changes other than posts.
    pub fn changes(&self) -> broadcast::Receiver<QueueChange> {
        self.changes.subscribe()
    }

    fn advance(&self, queue: &QueueRef, last_seq: u64) {
        let mut tails = self.tails();
        let Some(tail) = tails.get(queue) else {
            return; // nobody on this host listens to the queue
        };
        if tail.receiver_count() == 0 {
            tails.remove(queue);
            return;
        }
        tail.send_if_modified(|seen| {
            if last_seq > *seen {
                *seen = last_seq;
                true
            } else {
                false
            }
        });
    }

    fn wake(&self, queue: &QueueRef) {
        if let Some(tail) = self.tails().get(queue) {
            tail.send_modify(|_| {});
        }
    }

    fn wake_all(&self) {
        let mut tails = self.tails();
        tails.retain(|_, tail| tail.receiver_count() > 0);
        for tail in tails.values() {
            tail.send_modify(|_| {});
        }
    }
}

/// Where a store wrapped in [`local_feed::LocalFeed`] announces its writes.
pub trait Announce: Send + Sync {
    /// Takes one committed change.
    fn announce(&self, change: QueueChange);
}

impl Announce for Events {
    fn announce(&self, change: QueueChange) {
        Events::announce(self, change);
    }
}

/// Attaches `store` to a new [`Events`]: through its own change feed, or
/// wrapped in a [`local_feed::LocalFeed`] when it has none.
pub async fn attach(store: MessageStoreBox) -> (Arc<MessageStoreBox>, Arc<Events>) {
    let events = Events::new();
    let store = if events.attach(&store).await {
        store
    } else {
        plugin_api::storage::wrap_message_store(local_feed::LocalFeed::new(store, events.clone()))
    };
    (Arc::new(store), events)
}

/// What the store holds: a weak reference, so a store that outlives the
/// host's state (it never should) cannot keep it alive.
struct Sink(Weak<Events>);

impl ChangeSink for Sink {
    fn changed(&self, change: QueueChange) {
        if let Some(events) = self.0.upgrade() {
            events.announce(change);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(name: &str) -> QueueRef {
        QueueRef::new("p", name)
    }

    #[tokio::test]
    async fn a_post_advances_only_its_queues_tail_and_never_back() {
        let events = Events::new();
        let mut a = events.tail(&queue("a"));
        let b = events.tail(&queue("b"));
        events.announce(QueueChange::messages(queue("a"), 5));
        a.changed().await.unwrap();
        assert_eq!(*a.borrow_and_update(), 5);
        events.announce(QueueChange::messages(queue("a"), 3));
        assert!(
            !a.has_changed().unwrap(),
            "an older seq does not move the tail"
        );
        assert_eq!(*b.borrow(), 0);
    }

    #[tokio::test]
    async fn a_resync_wakes_every_tail_and_reaches_change_listeners() {
        let events = Events::new();
        let mut a = events.tail(&queue("a"));
        let mut changes = events.changes();
        events.announce(QueueChange::resync());
        assert!(a.has_changed().unwrap());
        a.changed().await.unwrap();
        assert_eq!(changes.recv().await.unwrap().kind, ChangeKind::RESYNC);
    }

    #[tokio::test]
    async fn tails_nobody_listens_to_are_forgotten() {
        let events = Events::new();
        drop(events.tail(&queue("gone")));
        events.announce(QueueChange::messages(queue("gone"), 1));
        assert!(events.tails().is_empty());
    }
}
