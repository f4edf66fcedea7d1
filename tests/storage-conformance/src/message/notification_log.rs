//! The notification log (`notification_log`, plugin-api 1.1): a store keeps
//! a copy of every message posted while its queue has a subscription, until
//! every subscription's `delivered_seq` has passed it or it expired, so a
//! message consumed before its first notification attempt is still notified.

use plugin_api::{
    storage::{MessageStore, NewSubscription, QueueRef, StoredMessage},
    types::{ROption::RNone, RString, RVec},
};

use crate::support::*;

/// The log of `queue` after `after_seq`; a store without it (`UNSUPPORTED`)
/// fails here: the log is part of the 1.1 contract.
pub(crate) async fn log(
    s: &Store,
    queue: &QueueRef,
    after_seq: u64,
    limit: u32,
    now_ms: u64,
) -> Vec<StoredMessage> {
    s.notification_log(queue.clone(), after_seq, limit, now_ms)
        .await
        .expect("notification_log succeeds (plugin-api 1.1: every store keeps the log)")
        .into_vec()
}

fn seqs(messages: &[StoredMessage]) -> Vec<u64> {
    messages.iter().map(|m| m.seq).collect()
}

async fn subscribe(s: &Store, queue: &QueueRef, subscriber: &str, t: u64) -> RString {
    let created = s
        .subscription_create(
            queue.clone(),
            NewSubscription {
                subscriber: subscriber.into(),
                ttl: 3600,
                options: b"{}".to_vec().into(),
            },
            t,
        )
        .await
        .unwrap();
    assert!(created.created);
    created.id
}

/// Messages posted while the queue has a subscription are in the log, in
/// seq order, with their ids and bodies, even after they were deleted,
/// claimed, popped or purged.
pub async fn notification_log_keeps_messages_consumed_before_notification(s: Store) {
    let t = now();
    let queue = q("consumed");
    subscribe(&s, &queue, "http://example.com/n", t).await;
    let bodies_posted = [
        "{\"n\":1}",
        "{\"n\":2}",
        "{\"n\":3}",
        "{\"n\":4}",
        "{\"n\":5}",
    ];
    let posted = post(&s, &queue, "poster", &bodies_posted, t).await;
    // 1 deleted, 2 claimed, 3 popped; then everything purged.
    s.message_delete(queue.clone(), posted[0].id.clone(), RNone, t)
        .await
        .unwrap();
    let claimed = claim(&s, &queue, claim_request(60, 0, 1), t).await;
    assert_eq!(claimed.messages[0].seq, posted[1].seq);
    let popped = s.message_pop(queue.clone(), 1, t).await.unwrap();
    assert_eq!(popped[0].seq, posted[2].seq);
    let ids: RVec<RString> = vec![posted[3].id.clone()].into();
    s.message_delete_many(queue.clone(), ids, t).await.unwrap();
    s.message_purge(queue.clone()).await.unwrap();
    assert!(list(&s, &queue, everything(10), t).await.is_empty());

    let logged = log(&s, &queue, 0, 100, t).await;
    assert_eq!(
        seqs(&logged),
        seqs_of(&posted),
        "the log keeps every message posted while subscribed, consumed or not, in seq order"
    );
    assert_eq!(
        bodies(&logged),
        bodies_posted,
        "the log keeps each message's body"
    );
    for (m, p) in logged.iter().zip(&posted) {
        assert_eq!(m.id, p.id, "the log keeps each message's id");
        assert_eq!(
            m.client_id.as_str(),
            "poster",
            "the log keeps the poster's client id"
        );
        assert_eq!(m.created_ms, t, "the log keeps the creation time");
        assert_eq!(m.expires_ms, t + secs(300), "the log keeps the expiry");
    }
}

fn seqs_of(posted: &[plugin_api::storage::PostedMessage]) -> Vec<u64> {
    posted.iter().map(|p| p.seq).collect()
}

/// The log pages: only seqs after `after_seq`, at most `limit`, in order.
pub async fn notification_log_pages_after_seq_up_to_limit(s: Store) {
    let t = now();
    let queue = q("paged");
    subscribe(&s, &queue, "http://example.com/p", t).await;
    let posted = post(&s, &queue, "c", &["{}"; 6], t).await;
    let all = seqs_of(&posted);
    assert_eq!(
        seqs(&log(&s, &queue, 0, 3, t).await),
        all[..3],
        "the log returns at most `limit`, oldest first"
    );
    assert_eq!(
        seqs(&log(&s, &queue, all[2], 100, t).await),
        all[3..],
        "the log returns only seqs after `after_seq`"
    );
    assert!(
        log(&s, &queue, all[5], 100, t).await.is_empty(),
        "nothing after the last seq"
    );
    assert!(
        log(&s, &queue, 0, 0, t).await.is_empty(),
        "limit 0 returns nothing"
    );
}

/// A queue that never had a subscription has an empty log; messages
/// posted before the first subscription are not in it.
pub async fn notification_log_holds_only_messages_posted_while_subscribed(s: Store) {
    let t = now();
    let queue = q("late");
    post(&s, &queue, "c", &["{\"before\":1}", "{\"before\":2}"], t).await;
    assert!(
        log(&s, &queue, 0, 100, t).await.is_empty(),
        "a queue without subscriptions has an empty log"
    );
    assert!(
        log(&s, &q("never-posted"), 0, 100, t).await.is_empty(),
        "a missing queue has an empty log"
    );
    subscribe(&s, &queue, "http://example.com/late", t).await;
    let after = post(&s, &queue, "c", &["{\"after\":1}"], t).await;
    assert_eq!(
        seqs(&log(&s, &queue, 0, 100, t).await),
        seqs_of(&after),
        "only messages posted while the queue has a subscription are logged"
    );
    // Another queue's subscription does not make this one logged.
    post(&s, &q("unsubscribed"), "c", &["{}"], t).await;
    assert!(log(&s, &q("unsubscribed"), 0, 100, t).await.is_empty());
}

/// Entries go once every subscription's `delivered_seq` has passed them:
/// advancing one of two subscriptions keeps them, advancing both drops
/// everything up to the smaller cursor.
pub async fn notification_log_drops_entries_every_subscription_has_passed(s: Store) {
    let t = now();
    let queue = q("advanced");
    let a = subscribe(&s, &queue, "http://example.com/a", t).await;
    let b = subscribe(&s, &queue, "http://example.com/b", t).await;
    let posted = seqs_of(&post(&s, &queue, "c", &["{}"; 5], t).await);
    s.subscription_advance(queue.clone(), a.clone(), posted[3], t)
        .await
        .unwrap();
    assert_eq!(
        seqs(&log(&s, &queue, 0, 100, t).await),
        posted,
        "entries stay while one subscription has not passed them"
    );
    s.subscription_advance(queue.clone(), b.clone(), posted[1], t)
        .await
        .unwrap();
    assert_eq!(
        seqs(&log(&s, &queue, 0, 100, t).await),
        posted[2..],
        "entries every subscription's delivered_seq has passed are dropped"
    );
    s.subscription_advance(queue.clone(), b, posted[4], t)
        .await
        .unwrap();
    assert_eq!(
        seqs(&log(&s, &queue, 0, 100, t).await),
        posted[4..],
        "the smallest cursor decides what stays"
    );
}

/// An entry is gone once its message's expiry has passed.
pub async fn notification_log_drops_expired_entries(s: Store) {
    let t = now();
    let queue = q("expiring");
    subscribe(&s, &queue, "http://example.com/e", t).await;
    let short = post_messages(&s, &queue, "c", vec![msg(60, 0, "{\"short\":1}")].into(), t).await;
    let long = post_messages(&s, &queue, "c", vec![msg(600, 0, "{\"long\":1}")].into(), t).await;
    assert_eq!(
        seqs(&log(&s, &queue, 0, 100, t + secs(59)).await),
        vec![short[0].seq, long[0].seq]
    );
    assert_eq!(
        seqs(&log(&s, &queue, 0, 100, t + secs(60)).await),
        vec![long[0].seq],
        "an entry whose message expired is dropped"
    );
    assert!(
        log(&s, &queue, 0, 100, t + secs(601)).await.is_empty(),
        "every expired entry is dropped"
    );
}

/// Without subscriptions nothing is pending: deleting the queue's last
/// subscription, or the queue, drops its log.
pub async fn notification_log_drops_entries_when_no_subscription_is_left(s: Store) {
    let t = now();
    let queue = q("unsubscribed-later");
    let a = subscribe(&s, &queue, "http://example.com/a", t).await;
    let b = subscribe(&s, &queue, "http://example.com/b", t).await;
    post(&s, &queue, "c", &["{}", "{}"], t).await;
    s.subscription_delete(queue.clone(), a).await.unwrap();
    assert_eq!(
        log(&s, &queue, 0, 100, t).await.len(),
        2,
        "entries stay while a subscription has not passed them"
    );
    s.subscription_delete(queue.clone(), b).await.unwrap();
    assert!(
        log(&s, &queue, 0, 100, t).await.is_empty(),
        "deleting the last subscription drops the log"
    );

    let deleted = q("deleted-with-log");
    subscribe(&s, &deleted, "http://example.com/d", t).await;
    post(&s, &deleted, "c", &["{}", "{}"], t).await;
    s.queue_delete(deleted.clone()).await.unwrap();
    assert!(
        log(&s, &deleted, 0, 100, t).await.is_empty(),
        "deleting the queue drops its log"
    );
    post(&s, &deleted, "c", &["{}"], t).await;
    assert!(
        log(&s, &deleted, 0, 100, t).await.is_empty(),
        "a queue created again under the name starts without subscriptions, so without a log"
    );
}
