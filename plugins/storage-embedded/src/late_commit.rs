//! A lone post answered before its redb commit.
//!
//! A lone post is durable once its post-log record is synced (see
//! [`crate::post_log`]); its redb commit, without durability, only makes it
//! visible. That commit is ~60,000 instructions, a tenth of a lone post's
//! round trip, so the post is applied, answered, and committed after the
//! answer has gone out: by a task spawned for it, which the runtime runs
//! once the answering task yields.
//!
//! Nothing may see the store without the post once its caller has the
//! answer: every read and every write first finishes the commit left here
//! (whoever comes first commits it; the others wait on the lock until it is
//! done), so a client that reads after its post finds it, as before.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Mutex,
};

use redb::WriteTransaction;

use crate::{
    claim_cursor::ClaimCursors,
    feed::{self, Sinks},
    group_commit::Aftermath,
    journal_sync::{JournalSync, Ticket},
    metadata_cache::MetadataCache,
};

/// An applied and answered post's transaction, with what its commit tells
/// the rest of the store.
pub(crate) struct Uncommitted {
    pub(crate) txn: WriteTransaction,
    pub(crate) aftermath: Aftermath,
    pub(crate) sinks: Sinks,
    /// The journal ticket the post's record took.
    pub(crate) ticket: Ticket,
}

/// The commit left for after an answer, at most one.
#[derive(Default)]
pub(crate) struct LateCommit {
    /// Held while the commit is made, so that a reader that finds it taken
    /// waits for it to be visible.
    left: Mutex<Option<Uncommitted>>,
    /// Whether `left` may hold a commit: one load on every read instead of
    /// a lock.
    pending: AtomicBool,
}

impl LateCommit {
    /// Leaves `uncommitted` to [`LateCommit::finish`]. Called before the
    /// post is answered, with no commit left (the caller finished it before
    /// it began its transaction).
    pub(crate) fn leave(&self, uncommitted: Uncommitted) {
        let mut left = self.left.lock().unwrap_or_else(|e| e.into_inner());
        debug_assert!(left.is_none(), "one commit left at most");
        *left = Some(uncommitted);
        self.pending.store(true, Ordering::Release);
    }

    /// Commits what was left, if anything; returns once it is visible.
    /// A commit that fails stops the store's writing until restart: the
    /// post was answered, and only the post log, applied at the next open,
    /// still holds it.
    pub(crate) fn finish(
        &self,
        metadata: &MetadataCache,
        claim_cursors: &ClaimCursors,
        sync: &JournalSync,
    ) {
        if !self.pending.load(Ordering::Acquire) {
            return;
        }
        let mut left = self.left.lock().unwrap_or_else(|e| e.into_inner());
        let Some(uncommitted) = left.take() else {
            return;
        };
        let Uncommitted {
            txn,
            aftermath,
            sinks,
            ticket,
        } = uncommitted;
        let outcome = txn.commit();
        let announce = aftermath.settle(outcome.is_ok(), ticket, metadata, claim_cursors);
        if let Err(e) = outcome {
            sync.stop_writing(&format!(
                "the commit of an answered post failed ({e}); the next open applies it from the post log"
            ));
        }
        // Announced before `pending` clears and the lock is let go: whoever
        // comes next (a read, the next post, a batch) waits until this post
        // is announced, so that its own changes follow it (the change feed's
        // order is commit order). Announced after the lock was let go, the
        // next post's changes could overtake this one's. A sink never blocks
        // and never calls the store (see `crate::feed`), so it cannot come
        // to wait on this lock.
        if let Some(changes) = announce {
            feed::deliver(&sinks, changes);
        }
        self.pending.store(false, Ordering::Release);
        drop(left);
    }
}

#[cfg(test)]
mod tests {
    use plugin_api::{
        storage::{ClaimRequest, MessageStore, NewMessage, QueueRef},
        types::ROption::RNone,
    };

    use crate::{test_support, EmbeddedMessageStore};

    fn message(body: &str) -> NewMessage {
        NewMessage {
            ttl: 60,
            delay: 0,
            body: body.as_bytes().to_vec().into(),
        }
    }

    /// On a current-thread runtime the task that commits a lone post runs
    /// only once the caller yields: a read and a write made at once after
    /// the answer find the post all the same, because they commit it first.
    #[test]
    fn what_follows_a_lone_post_at_once_finds_it_before_its_commit_task_runs() {
        let (_dir, config, runtime) = test_support::data_dir();
        let store = EmbeddedMessageStore::open(&config).unwrap();
        let queue = QueueRef::new("p", "q");
        runtime.block_on(async {
            let posted = store
                .message_post(queue.clone(), "c".into(), vec![message("1")].into(), 10)
                .await
                .unwrap();
            let query = test_support::every_message();
            let listed = store.message_list(queue.clone(), query, 10).await.unwrap();
            assert_eq!(listed.len(), 1, "a read finds the answered post");
            assert_eq!(listed[0].id, posted[0].id);

            store
                .message_post(queue.clone(), "c".into(), vec![message("2")].into(), 11)
                .await
                .unwrap();
            let claim = ClaimRequest {
                ttl: 60,
                grace: 60,
                limit: 10,
                dead_letter: RNone,
            };
            let claimed = store.claim_create(queue.clone(), claim, 12).await.unwrap();
            assert_eq!(claimed.messages.len(), 2, "a write finds both posts");
            let stats = store.queue_stats(queue.clone(), 13).await.unwrap();
            assert_eq!(stats.claimed, 2);
        });
    }
}
