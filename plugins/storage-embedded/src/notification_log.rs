//! The notification log: a copy of each message posted while its queue had
//! a live subscription, kept until every live subscription's cursor has
//! passed it, the last subscription or the queue is deleted, or it expires.
//!
//! Entries live at `(project, queue, seq)` in [`schema::NOTIFICATION_LOG`]
//! (by name, so a purge, which gives the queue a new qid, keeps them) with
//! an expiry index for the sweeper. A post to a queue without subscriptions
//! pays two index seeks to find that out and writes nothing here.
//!
//! A host's own sockets (subscriber `websocket:...`) do not count: the host
//! pushes to them from the queue and never reads this log for them, and
//! their cursors, which it keeps in memory, never advance here. Counting
//! them made every post to a queue with a browser subscribed write a copy
//! nobody read, kept until the message expired.

use std::ops::ControlFlow;

use plugin_api::storage::{QueueRef, StoredMessage};
use redb::{ReadTransaction, ReadableTable};

use crate::{
    codec::MessageView, error::OpResult, group_commit::WriteTables, messages::to_stored, schema,
    subscriptions,
};

/// The cursors of the queue's live subscriptions that read the log (see
/// [`subscriptions::each_logged_of`]).
fn live_cursors(t: &WriteTables<'_>, q: &QueueRef, now_ms: u64) -> OpResult<Vec<u64>> {
    let mut cursors = Vec::new();
    subscriptions::each_logged_of(t, q, |_, r| {
        if r.expires_ms > now_ms {
            cursors.push(r.delivered_seq);
        }
        ControlFlow::Continue(())
    })?;
    Ok(cursors)
}

/// Whether posts to the queue are logged now, and until when at least:
/// the expiry of a live subscription that reads the log, `None` if it has
/// none. Asked for posts (see [`crate::post_target`]), so it stops at the
/// first live one; a host's socket subscriptions are skipped by the index
/// without being read (10,000 of them on a queue once made each post
/// decode 10,000 records), and a queue without subscriptions costs two
/// seeks.
pub(crate) fn live_until(t: &WriteTables<'_>, q: &QueueRef, now_ms: u64) -> OpResult<Option<u64>> {
    let mut until = None;
    subscriptions::each_logged_of(t, q, |_, r| {
        if r.expires_ms > now_ms {
            until = Some(r.expires_ms);
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })?;
    Ok(until)
}

/// Logs a message just posted (its record as stored).
pub(crate) fn record(
    t: &mut WriteTables<'_>,
    q: &QueueRef,
    seq: u64,
    message: &[u8],
    expires_ms: u64,
) -> OpResult<()> {
    let (p, n) = (q.project.as_str(), q.name.as_str());
    t.notification_log.insert((p, n, seq), message)?;
    t.notification_log_expiry
        .insert((expires_ms, p, n, seq), ())?;
    Ok(())
}

/// The logged messages after `after_seq` not yet expired, in seq order.
pub(crate) fn read(
    txn: &ReadTransaction,
    q: &QueueRef,
    after_seq: u64,
    limit: u32,
    now_ms: u64,
) -> OpResult<Vec<StoredMessage>> {
    let mut out = Vec::new();
    if limit == 0 || after_seq == u64::MAX {
        return Ok(out);
    }
    let log = txn.open_table(schema::NOTIFICATION_LOG)?;
    let (p, n) = (q.project.as_str(), q.name.as_str());
    for entry in log.range((p, n, after_seq + 1)..=(p, n, u64::MAX))? {
        let (k, v) = entry?;
        let m = MessageView::decode(v.value())?;
        if m.is_live(now_ms) {
            out.push(to_stored(k.value().2, &m));
            if out.len() >= limit as usize {
                break;
            }
        }
    }
    Ok(out)
}

/// Drops the entries no live subscription still needs: those at or below
/// the smallest live cursor, or all of them when no live subscription is
/// left. Run after a cursor moved or a subscription went.
pub(crate) fn prune(t: &mut WriteTables<'_>, q: &QueueRef, now_ms: u64) -> OpResult<()> {
    let upto = live_cursors(t, q, now_ms)?
        .into_iter()
        .min()
        .unwrap_or(u64::MAX);
    remove_upto(t, q, upto)
}

/// Drops every entry of the queue (queue delete).
pub(crate) fn drop_queue(t: &mut WriteTables<'_>, q: &QueueRef) -> OpResult<()> {
    remove_upto(t, q, u64::MAX)
}

fn remove_upto(t: &mut WriteTables<'_>, q: &QueueRef, upto: u64) -> OpResult<()> {
    let (p, n) = (q.project.as_str(), q.name.as_str());
    let mut gone = Vec::new();
    for entry in t.notification_log.range((p, n, 0)..=(p, n, upto))? {
        let (k, v) = entry?;
        gone.push((k.value().2, MessageView::decode(v.value())?.expires_ms));
    }
    for (seq, expires_ms) in gone {
        t.notification_log.remove((p, n, seq))?;
        t.notification_log_expiry.remove((expires_ms, p, n, seq))?;
    }
    Ok(())
}

/// Sweeper: removes at most `budget` entries expired at `now_ms`.
pub(crate) fn sweep_expired(
    t: &mut WriteTables<'_>,
    now_ms: u64,
    budget: usize,
) -> OpResult<usize> {
    let mut keys: Vec<(u64, String, String, u64)> = Vec::new();
    for entry in t
        .notification_log_expiry
        .range((0u64, "", "", 0u64)..)?
        .take(budget)
    {
        let (k, _) = entry?;
        let (expires_ms, p, n, seq) = k.value();
        if expires_ms > now_ms {
            break;
        }
        keys.push((expires_ms, p.to_owned(), n.to_owned(), seq));
    }
    for (expires_ms, p, n, seq) in &keys {
        t.notification_log_expiry
            .remove((*expires_ms, p.as_str(), n.as_str(), *seq))?;
        t.notification_log.remove((p.as_str(), n.as_str(), *seq))?;
    }
    Ok(keys.len())
}

#[cfg(test)]
mod tests {
    use plugin_api::storage::{MessageStore, NewMessage, NewSubscription, QueueRef};
    use redb::Database;

    use crate::{schema, EmbeddedConfig, EmbeddedMessageStore};

    /// Posts are logged while the queue has a live subscription, whichever
    /// of its subscriptions (in key order) is the live one, and not once
    /// every one has expired.
    #[tokio::test]
    async fn posts_are_logged_only_while_some_subscription_is_live() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_in(&dir);
        let q = QueueRef::new("p", "q");
        let t = crate::sweeper::now_ms();
        let logged = |at: u64| store.notification_log(q.clone(), 0, 10, at);
        // Expires at t + 1 s; it sorts first (ids grow with time).
        subscribe(&store, &q, "http://early.example/", 1, t)
            .await
            .unwrap();
        post_one(&store, &q, t + 100).await.unwrap();
        assert_eq!(logged(t + 100).await.unwrap().len(), 1, "live: logged");
        post_one(&store, &q, t + 2_000).await.unwrap();
        assert_eq!(
            logged(t + 2_000).await.unwrap().len(),
            1,
            "expired: not logged"
        );
        subscribe(&store, &q, "http://late.example/", 60, t + 3_000)
            .await
            .unwrap();
        post_one(&store, &q, t + 4_000).await.unwrap();
        assert_eq!(
            logged(t + 4_000).await.unwrap().len(),
            2,
            "a later live subscription behind an expired one: logged"
        );
    }

    /// A host's socket subscriptions neither have posts logged nor hold
    /// logged copies back; subscribers sorting before and after theirs in
    /// the index do both.
    #[tokio::test]
    async fn socket_subscriptions_neither_log_posts_nor_hold_copies_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_in(&dir);
        let q = QueueRef::new("p", "q");
        let t = crate::sweeper::now_ms();
        let logged = |at: u64| logged_seqs(&store, &q, at);

        subscribe(&store, &q, "websocket:host-1/c1", 3600, t)
            .await
            .unwrap();
        subscribe(&store, &q, "websocket:host-2/c9", 3600, t)
            .await
            .unwrap();
        post_one(&store, &q, t + 100).await.unwrap();
        assert_eq!(logged(t + 100).await, [] as [u64; 0], "sockets alone");

        // "wss" sorts after every "websocket:" subscriber, "http" before.
        let after = subscribe(&store, &q, "wss://after.example/", 3600, t + 200)
            .await
            .unwrap();
        post_one(&store, &q, t + 300).await.unwrap();
        assert_eq!(logged(t + 300).await, [2], "a subscriber after the sockets");
        let before = subscribe(&store, &q, "http://before.example/", 3600, t + 400)
            .await
            .unwrap();
        post_one(&store, &q, t + 500).await.unwrap();
        assert_eq!(logged(t + 500).await, [2, 3]);

        // Once both have passed every copy, the sockets' cursors (still at
        // 0 in the store) keep none of them.
        store
            .subscription_advance(q.clone(), after.id, 3, t + 600)
            .await
            .unwrap();
        assert_eq!(logged(t + 600).await, [3], "held back by the other only");
        store
            .subscription_advance(q.clone(), before.id, 3, t + 700)
            .await
            .unwrap();
        assert_eq!(logged(t + 700).await, [] as [u64; 0]);
    }

    fn open_in(dir: &tempfile::TempDir) -> EmbeddedMessageStore {
        let config = EmbeddedConfig {
            path: dir.path().join("data"),
            ..EmbeddedConfig::default()
        };
        EmbeddedMessageStore::open(&config).unwrap()
    }

    async fn subscribe(
        store: &EmbeddedMessageStore,
        q: &QueueRef,
        subscriber: &str,
        ttl: u32,
        at: u64,
    ) -> plugin_api::PluginResult<plugin_api::storage::SubscriptionCreated> {
        let subscription = NewSubscription {
            subscriber: subscriber.into(),
            ttl,
            options: b"{}".to_vec().into(),
        };
        store.subscription_create(q.clone(), subscription, at).await
    }

    /// Posts one message that lives 10 minutes.
    async fn post_one(
        store: &EmbeddedMessageStore,
        q: &QueueRef,
        at: u64,
    ) -> plugin_api::PluginResult<plugin_api::types::RVec<plugin_api::storage::PostedMessage>> {
        let message = NewMessage {
            ttl: 600,
            delay: 0,
            body: b"{}".to_vec().into(),
        };
        store
            .message_post(q.clone(), "c".into(), vec![message].into(), at)
            .await
    }

    async fn logged_seqs(store: &EmbeddedMessageStore, q: &QueueRef, at: u64) -> Vec<u64> {
        let log = store.notification_log(q.clone(), 0, 10, at).await.unwrap();
        log.iter().map(|m| m.seq).collect()
    }

    /// A directory written by a build without the notification log and
    /// lease tables (same format 2) opens and gains them.
    #[test]
    fn format_2_file_without_the_new_tables_opens_and_uses_them() {
        let (_dir, config, runtime) = crate::test_support::data_dir();
        {
            let db = Database::create(config.path.join(crate::DATABASE_FILE)).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut meta = txn.open_table(schema::META).unwrap();
                meta.insert(schema::META_FORMAT, 2).unwrap();
                meta.insert(schema::META_NEXT_QID, 1).unwrap();
            }
            txn.commit().unwrap();
        }
        runtime.block_on(async {
            let store = EmbeddedMessageStore::open(&config).unwrap();
            let q = QueueRef::new("p", "q");
            let t = crate::sweeper::now_ms();
            assert!(store
                .notification_log(q.clone(), 0, 10, t)
                .await
                .unwrap()
                .is_empty());
            subscribe(&store, &q, "http://example.com/", 60, t)
                .await
                .unwrap();
            post_one(&store, &q, t).await.unwrap();
            assert_eq!(store.notification_log(q, 0, 10, t).await.unwrap().len(), 1);
            assert!(store
                .lease_acquire("k".into(), "h".into(), 1000, t)
                .await
                .unwrap());
        });
    }
}
