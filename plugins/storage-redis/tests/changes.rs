//! The change feed (pub/sub), the notification log and leases, through the
//! store's own methods, on the local Redis under a fresh key prefix.

mod support;

use std::{
    sync::mpsc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use plugin_api::{
    storage::{MessageStore, NewMessage, NewSubscription, QueueRef},
    types::RVec,
};
use storage_redis::{changes::Change, RedisMessageStore};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

fn messages(bodies: &[&str]) -> RVec<NewMessage> {
    bodies
        .iter()
        .map(|b| NewMessage {
            ttl: 300,
            delay: 0,
            body: b.as_bytes().to_vec().into(),
        })
        .collect()
}

fn subscription(to: &str) -> NewSubscription {
    NewSubscription {
        subscriber: to.into(),
        ttl: 3600,
        options: b"{}".to_vec().into(),
    }
}

fn next(rx: &mpsc::Receiver<Change>) -> Change {
    rx.recv_timeout(Duration::from_secs(10))
        .expect("a change within 10 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_committed_change_reaches_every_watching_store() {
    let config = support::fresh_config();
    let _guard = support::guard(&config);
    let watcher = RedisMessageStore::open(&config).await.expect("opens");
    let writer = RedisMessageStore::open(&config).await.expect("opens");
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    watcher
        .watch_changes(move |c| {
            let _ = tx.lock().unwrap().send(c);
        })
        .await;
    // Give the subscriber a moment to subscribe (pub/sub keeps no backlog).
    tokio::time::sleep(Duration::from_millis(500)).await;

    let q = QueueRef::new("p", "q");
    writer
        .message_post(q.clone(), "c".into(), messages(&["1", "2"]), now())
        .await
        .unwrap();
    let c = next(&rx);
    assert_eq!(
        (c.kind, c.project.as_str(), c.queue.as_str(), c.last_seq),
        (0, "p", "q", 2)
    );

    let sub = writer
        .subscription_create(q.clone(), subscription("http://x/a"), now())
        .await
        .unwrap();
    let c = next(&rx);
    assert_eq!((c.kind, c.subscription.as_str()), (3, sub.id.as_str()));
    writer.message_purge(q.clone()).await.unwrap();
    assert_eq!(next(&rx).kind, 2);
    writer.queue_delete(q).await.unwrap();
    assert_eq!(next(&rx).kind, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumed_messages_stay_in_the_notification_log_until_every_cursor_passes() {
    let config = support::fresh_config();
    let _guard = support::guard(&config);
    let store = RedisMessageStore::open(&config).await.expect("opens");
    let q = QueueRef::new("p", "q");
    let t = now();
    // Posted before any subscription: not logged.
    store
        .message_post(q.clone(), "c".into(), messages(&["early"]), t)
        .await
        .unwrap();
    let a = store
        .subscription_create(q.clone(), subscription("http://x/a"), t)
        .await
        .unwrap();
    let b = store
        .subscription_create(q.clone(), subscription("http://x/b"), t)
        .await
        .unwrap();
    store
        .message_post(q.clone(), "c".into(), messages(&["2", "3"]), t)
        .await
        .unwrap();
    // Consumed at once.
    assert_eq!(store.message_pop(q.clone(), 10, t).await.unwrap().len(), 3);
    let logged = store.logged_messages(q.clone(), 0, 10, t).await.unwrap();
    let seqs: Vec<u64> = logged.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [2, 3]);
    assert_eq!(logged[0].body.as_slice(), b"2");
    assert_eq!(logged[0].client_id.as_str(), "c");
    assert_eq!(
        store
            .logged_messages(q.clone(), 2, 10, t)
            .await
            .unwrap()
            .len(),
        1
    );

    // One cursor past seq 2 is not enough; both are.
    store
        .subscription_advance(q.clone(), a.id.clone(), 2, t)
        .await
        .unwrap();
    assert_eq!(
        store
            .logged_messages(q.clone(), 0, 10, t)
            .await
            .unwrap()
            .len(),
        2
    );
    store
        .subscription_advance(q.clone(), b.id.clone(), 2, t)
        .await
        .unwrap();
    let left: Vec<u64> = store
        .logged_messages(q.clone(), 0, 10, t)
        .await
        .unwrap()
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(left, [3]);
    // Expired copies are not returned.
    assert!(store
        .logged_messages(q, 0, 10, t + 301_000)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_lease_has_one_holder_until_it_expires_or_is_released() {
    let config = support::fresh_config();
    let _guard = support::guard(&config);
    let store = RedisMessageStore::open(&config).await.expect("opens");
    let t = now();
    assert!(store
        .take_lease("sub-1", "host-a", 10_000, t)
        .await
        .unwrap());
    assert!(!store
        .take_lease("sub-1", "host-b", 10_000, t + 1)
        .await
        .unwrap());
    assert!(
        store
            .take_lease("sub-1", "host-a", 10_000, t + 2)
            .await
            .unwrap(),
        "renewal"
    );
    assert!(
        store
            .take_lease("sub-2", "host-b", 10_000, t)
            .await
            .unwrap(),
        "another key"
    );
    // Expired by the clock the host passes.
    assert!(store
        .take_lease("sub-1", "host-b", 10_000, t + 10_003)
        .await
        .unwrap());
    // Releasing someone else's lease does nothing; the holder's frees it.
    store.give_back_lease("sub-1", "host-a").await.unwrap();
    assert!(!store
        .take_lease("sub-1", "host-a", 10_000, t + 10_004)
        .await
        .unwrap());
    store.give_back_lease("sub-1", "host-b").await.unwrap();
    assert!(store
        .take_lease("sub-1", "host-a", 10_000, t + 10_005)
        .await
        .unwrap());
}

struct ChannelSink(std::sync::Mutex<mpsc::Sender<plugin_api::storage::QueueChange>>);

impl plugin_api::storage::ChangeSink for ChannelSink {
    fn changed(&self, change: plugin_api::storage::QueueChange) {
        let _ = self.0.lock().unwrap().send(change);
    }
}

/// The plugin-api 1.1 methods, called across the ABI boundary as the host
/// calls them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_api_methods_work_across_the_boundary() {
    use plugin_api::storage::{wrap_change_sink, wrap_message_store, QueueChange};
    let config = support::fresh_config();
    let _guard = support::guard(&config);
    let store = wrap_message_store(RedisMessageStore::open(&config).await.expect("opens"));
    let (tx, rx) = mpsc::channel();
    store
        .changes_watch(wrap_change_sink(ChannelSink(std::sync::Mutex::new(tx))))
        .await
        .expect("the feed starts");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let q = QueueRef::new("p", "q");
    let t = now();
    store
        .subscription_create(q.clone(), subscription("http://x/a"), t)
        .await
        .unwrap();
    store
        .message_post(q.clone(), "c".into(), messages(&["1"]), t)
        .await
        .unwrap();
    let changes: Vec<QueueChange> = (0..2)
        .map(|_| rx.recv_timeout(Duration::from_secs(10)).expect("a change"))
        .collect();
    assert_eq!(changes[1], QueueChange::messages(q.clone(), 1));
    store.message_pop(q.clone(), 1, t).await.unwrap();
    let logged = store.notification_log(q, 0, 10, t).await.unwrap();
    assert_eq!(logged.len(), 1);
    assert!(store
        .lease_acquire("k".into(), "h1".into(), 1000, t)
        .await
        .unwrap());
    assert!(!store
        .lease_acquire("k".into(), "h2".into(), 1000, t)
        .await
        .unwrap());
    store.lease_release("k".into(), "h1".into()).await.unwrap();
    assert!(store
        .lease_acquire("k".into(), "h2".into(), 1000, t)
        .await
        .unwrap());
}
