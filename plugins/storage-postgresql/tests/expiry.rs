//! The collector's count of expired messages (`messages_expired`, shown by
//! the host as `zaqar_messages_expired_total`), against the real PostgreSQL.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use plugin_api::{
    storage::{MessageStore, NewMessage, QueueRef},
    types::RVec,
};
use storage_postgresql::PostgresMessageStore;
use support::TestDatabase;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn messages(count: usize, ttl: u32) -> RVec<NewMessage> {
    (0..count)
        .map(|n| NewMessage {
            ttl,
            delay: 0,
            body: format!("{{\"n\":{n}}}").into_bytes().into(),
        })
        .collect::<Vec<_>>()
        .into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collector_counts_the_messages_it_deletes_because_their_ttl_ran_out() {
    let db = TestDatabase::create().await;
    let store = PostgresMessageStore::open(&db.config()).await.unwrap();
    let queue = QueueRef::new("p", "expiry");
    assert_eq!(store.messages_expired().await.unwrap(), 0);

    // Three messages posted two minutes ago with a 60 s ttl, two that live on.
    store
        .message_post(queue.clone(), "c".into(), messages(3, 60), now() - 120_000)
        .await
        .unwrap();
    store
        .message_post(queue.clone(), "c".into(), messages(2, 3600), now())
        .await
        .unwrap();
    // A deleted message is not an expired one.
    let deleted = store
        .message_post(queue.clone(), "c".into(), messages(1, 3600), now())
        .await
        .unwrap();
    store
        .message_delete(queue.clone(), deleted[0].id.clone(), None.into(), now())
        .await
        .unwrap();

    store.collect_expired(now(), 1000).await.unwrap();
    assert_eq!(store.messages_expired().await.unwrap(), 3);
    assert_eq!(
        store.queue_stats(queue.clone(), now()).await.unwrap().total,
        2
    );

    // A second pass finds nothing more to count.
    store.collect_expired(now(), 1000).await.unwrap();
    assert_eq!(store.messages_expired().await.unwrap(), 3);
}
