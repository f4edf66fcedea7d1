//! What a post needs to know about its queue before it writes: the qid
//! (creating the queue if needed) and whether posts are logged for
//! notification now. Remembered for the next post of the same batch.
//!
//! Why: each post looked both up (a seek in `queues` by name, a seek in
//! `subscriptions` decoding the first live record), ~3,600 instructions of
//! the writer's ~33,000 per post (callgrind, 64 producers on one queue),
//! while a batch is mostly posts to a few busy queues.
//!
//! The remembered answer holds while neither table was written since it
//! was read (every write goes through [`LazyTable`]'s `DerefMut`, which
//! counts them) and, for "logged", until the live subscription it found
//! expires.
//!
//! [`LazyTable`]: crate::group_commit::LazyTable

use plugin_api::storage::QueueRef;

use crate::{error::OpResult, group_commit::WriteTables, notification_log, queues};

/// The last post's queue as this batch found it.
pub(crate) struct PostTarget {
    queue: QueueRef,
    qid: u64,
    /// Until when (ms) posts are logged: the expiry of a live subscription;
    /// `None` when the queue had none.
    logged_until: Option<u64>,
    /// The two tables' write counts when this was read.
    queues_written: u64,
    subscriptions_written: u64,
}

/// The queue's qid, creating the queue if needed, and whether posts to it
/// are logged at `now_ms`.
pub(crate) fn resolve(t: &mut WriteTables<'_>, q: &QueueRef, now_ms: u64) -> OpResult<(u64, bool)> {
    if let Some(known) = &t.post_target {
        if known.queue == *q
            && known.queues_written == t.queues.writes()
            && known.subscriptions_written == t.subscriptions.writes()
            && known.logged_until.is_none_or(|until| until > now_ms)
        {
            return Ok((known.qid, known.logged_until.is_some()));
        }
    }
    let qid = queues::ensure(t, q, now_ms)?;
    let logged_until = notification_log::live_until(t, q, now_ms)?;
    t.post_target = Some(PostTarget {
        queue: q.clone(),
        qid,
        logged_until,
        queues_written: t.queues.writes(),
        subscriptions_written: t.subscriptions.writes(),
    });
    Ok((qid, logged_until.is_some()))
}

#[cfg(test)]
mod tests {
    use plugin_api::storage::{NewMessage, NewSubscription, QueueRef};
    use redb::{Database, ReadableDatabase};

    use crate::{group_commit::WriteTables, messages, notification_log, subscriptions};

    #[test]
    fn posts_of_one_batch_see_the_subscriptions_and_queues_changed_between_them() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        let q = QueueRef::new("p", "q");
        let t0 = 1_000_000;
        let post = |t: &mut WriteTables<'_>, at: u64| {
            let message = NewMessage {
                ttl: 600,
                delay: 0,
                body: b"{}".to_vec().into(),
            };
            messages::post(t, &q, "c", &[message], at).unwrap()[0].seq
        };
        let txn = db.begin_write().unwrap();
        {
            let mut t = WriteTables::new(&txn);
            t.open_all().unwrap();
            post(&mut t, t0); // seq 1: no subscription
            let subscription = NewSubscription {
                subscriber: "http://example.com/".into(),
                ttl: 1,
                options: b"{}".to_vec().into(),
            };
            subscriptions::create(&mut t, &q, &subscription, t0).unwrap();
            post(&mut t, t0 + 100); // seq 2: logged
            post(&mut t, t0 + 200); // seq 3: logged, remembered
            post(&mut t, t0 + 1_500); // seq 4: the subscription expired
            t.finish().unwrap();
        }
        txn.commit().unwrap();

        let read = db.begin_read().unwrap();
        let logged: Vec<u64> = notification_log::read(&read, &q, 0, 10, t0)
            .unwrap()
            .iter()
            .map(|m| m.seq)
            .collect();
        assert_eq!(logged, [2, 3]);
    }
}
