//! plugin-api 1.1 on PostgreSQL: the change feed across two store
//! instances (two hosts), its recovery after the listening connection is
//! killed, the notification log, and leases.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use plugin_api::{
    storage::{
        wrap_change_sink, ChangeKind, ChangeSink, MessageStore, NewMessage, NewSubscription,
        QueueChange, QueueRef,
    },
    types::RVec,
};
use storage_postgresql::PostgresMessageStore;
use support::TestDatabase;
use tokio::sync::mpsc;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn messages(n: usize) -> RVec<NewMessage> {
    (0..n)
        .map(|i| NewMessage {
            ttl: 300,
            delay: 0,
            body: format!("{{\"i\":{i}}}").into_bytes().into(),
        })
        .collect()
}

struct Collect(mpsc::UnboundedSender<QueueChange>);

impl ChangeSink for Collect {
    fn changed(&self, change: QueueChange) {
        let _ = self.0.send(change);
    }
}

/// The next change other than RESYNC, within 10 s.
async fn next_change(rx: &mut mpsc::UnboundedReceiver<QueueChange>) -> QueueChange {
    loop {
        let change = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a change within 10 s")
            .expect("the feed is open");
        if change.kind != ChangeKind::RESYNC {
            return change;
        }
    }
}

async fn watched(
    db: &TestDatabase,
) -> (PostgresMessageStore, mpsc::UnboundedReceiver<QueueChange>) {
    let store = PostgresMessageStore::open(&db.config()).await.unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    store
        .changes_watch(wrap_change_sink(Collect(tx)))
        .await
        .unwrap();
    (store, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_committed_through_one_host_reach_another() {
    let db = TestDatabase::create().await;
    let (_watcher, mut rx) = watched(&db).await;
    let writer = PostgresMessageStore::open(&db.config()).await.unwrap();
    let q = QueueRef::new("p.x", "q1");

    let posted = writer
        .message_post(q.clone(), "c".into(), messages(3), now())
        .await
        .unwrap();
    let change = next_change(&mut rx).await;
    assert_eq!(change.kind, ChangeKind::MESSAGES);
    assert_eq!(change.queue, q);
    assert_eq!(change.last_seq, posted[2].seq);

    let sub = writer
        .subscription_create(
            q.clone(),
            NewSubscription {
                subscriber: "http://example.com/".into(),
                ttl: 600,
                options: b"{}".to_vec().into(),
            },
            now(),
        )
        .await
        .unwrap();
    let change = next_change(&mut rx).await;
    assert_eq!(change.kind, ChangeKind::SUBSCRIPTIONS);
    assert_eq!(change.subscription, sub.id);

    writer.message_purge(q.clone()).await.unwrap();
    assert_eq!(next_change(&mut rx).await.kind, ChangeKind::QUEUE_PURGED);
    writer.queue_delete(q.clone()).await.unwrap();
    let change = next_change(&mut rx).await;
    assert_eq!(change.kind, ChangeKind::QUEUE_DELETED);
    assert_eq!(change.queue, q);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_feed_connection_comes_back_and_says_resync() {
    let db = TestDatabase::create().await;
    let (watcher, mut rx) = watched(&db).await;
    let first = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first.kind,
        ChangeKind::RESYNC,
        "the first listen says resync"
    );
    support::admin()
        .await
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND query ILIKE 'LISTEN%'",
            &[&db.name],
        )
        .await
        .unwrap();
    let again = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("the feed reconnects within 10 s")
        .unwrap();
    assert_eq!(again.kind, ChangeKind::RESYNC);
    let q = QueueRef::new("p", "after");
    watcher
        .message_post(q.clone(), "c".into(), messages(1), now())
        .await
        .unwrap();
    let change = next_change(&mut rx).await;
    assert_eq!((change.kind, change.queue), (ChangeKind::MESSAGES, q));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notification_log_keeps_consumed_messages_until_every_cursor_passed() {
    let db = TestDatabase::create().await;
    let store = PostgresMessageStore::open(&db.config()).await.unwrap();
    let q = QueueRef::new("p", "notified");
    let t = now();
    store
        .message_post(q.clone(), "c".into(), messages(2), t)
        .await
        .unwrap();
    assert!(
        store
            .notification_log(q.clone(), 0, 10, t)
            .await
            .unwrap()
            .is_empty(),
        "nothing is logged while the queue has no subscription"
    );
    let new_sub = |subscriber: &str| NewSubscription {
        subscriber: subscriber.into(),
        ttl: 600,
        options: b"{}".to_vec().into(),
    };
    let a = store
        .subscription_create(q.clone(), new_sub("http://a.example/"), t)
        .await
        .unwrap()
        .id;
    let b = store
        .subscription_create(q.clone(), new_sub("http://b.example/"), t)
        .await
        .unwrap()
        .id;
    let posted = store
        .message_post(q.clone(), "c".into(), messages(3), t)
        .await
        .unwrap();
    // Consumed before any notification went out.
    assert_eq!(store.message_pop(q.clone(), 10, t).await.unwrap().len(), 5);
    let seqs = |log: RVec<plugin_api::storage::StoredMessage>| -> Vec<u64> {
        log.iter().map(|m| m.seq).collect()
    };
    let all: Vec<u64> = posted.iter().map(|p| p.seq).collect();
    assert_eq!(
        seqs(store.notification_log(q.clone(), 2, 10, t).await.unwrap()),
        all
    );
    assert_eq!(
        seqs(store.notification_log(q.clone(), 2, 1, t).await.unwrap()),
        all[..1]
    );

    store
        .subscription_advance(q.clone(), a.clone(), all[2], t)
        .await
        .unwrap();
    // b has not passed them: still there.
    assert_eq!(
        seqs(store.notification_log(q.clone(), 0, 10, t).await.unwrap()),
        all
    );
    store
        .subscription_advance(q.clone(), b.clone(), all[1], t)
        .await
        .unwrap();
    assert_eq!(
        seqs(store.notification_log(q.clone(), 0, 10, t).await.unwrap()),
        all[2..]
    );
    store.subscription_delete(q.clone(), b).await.unwrap();
    assert!(store
        .notification_log(q.clone(), 0, 10, t)
        .await
        .unwrap()
        .is_empty());
    // Expired copies are hidden.
    store
        .message_post(q.clone(), "c".into(), messages(1), t)
        .await
        .unwrap();
    assert_eq!(
        store
            .notification_log(q.clone(), 0, 10, t)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store
        .notification_log(q, 0, 10, t + 301_000)
        .await
        .unwrap()
        .is_empty());
}

async fn acquire(
    store: &PostgresMessageStore,
    holder: &str,
    at: u64,
) -> plugin_api::PluginResult<bool> {
    store
        .lease_acquire("sub/1".into(), holder.into(), 10_000, at)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_has_one_live_holder_across_hosts() {
    let db = TestDatabase::create().await;
    let host_a = PostgresMessageStore::open(&db.config()).await.unwrap();
    let host_b = PostgresMessageStore::open(&db.config()).await.unwrap();
    let t = now();
    assert!(acquire(&host_a, "a", t).await.unwrap());
    assert!(!acquire(&host_b, "b", t + 1).await.unwrap());
    assert!(acquire(&host_a, "a", t + 5_000).await.unwrap(), "renewed");
    assert!(
        !acquire(&host_b, "b", t + 12_000).await.unwrap(),
        "renewal counts"
    );
    assert!(
        acquire(&host_b, "b", t + 15_000).await.unwrap(),
        "expired: taken over"
    );
    host_a
        .lease_release("sub/1".into(), "a".into())
        .await
        .unwrap();
    assert!(
        !acquire(&host_a, "a", t + 16_000).await.unwrap(),
        "not a's to release"
    );
    host_b
        .lease_release("sub/1".into(), "b".into())
        .await
        .unwrap();
    assert!(acquire(&host_a, "a", t + 16_000).await.unwrap(), "released");

    // Many hosts racing for one free lease: exactly one wins.
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let store = if i % 2 == 0 { &host_a } else { &host_b };
            store.lease_acquire("race".into(), format!("h{i}").into(), 10_000, t)
        })
        .collect();
    let won = futures_util::future::join_all(racers)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(won, 1);
}
