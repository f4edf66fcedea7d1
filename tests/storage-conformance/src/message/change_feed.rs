//! The change feed (`changes_watch`, plugin-api 1.1): after a write commits,
//! the store announces it to the sink it was given, so every host attached
//! to the store learns of every other host's writes. The feed may be
//! asynchronous: tests wait for an announcement with a bounded timeout.

use std::time::Duration;

use plugin_api::{
    storage::{
        wrap_change_sink, ChangeKind, ChangeSink, MessageStore, NewSubscription, QueueChange,
        QueueRef, SubscriptionPatch,
    },
    types::ROption::{RNone, RSome},
};
use tokio::sync::mpsc;

use crate::support::*;

/// How long an announcement may take to arrive.
pub(crate) const FEED_TIMEOUT: Duration = Duration::from_secs(10);

/// A sink that forwards every change to a channel the test reads.
struct ChannelSink(mpsc::UnboundedSender<QueueChange>);

impl ChangeSink for ChannelSink {
    fn changed(&self, change: QueueChange) {
        let _ = self.0.send(change);
    }
}

/// The changes a store announced, as the test sees them.
pub(crate) struct Feed(mpsc::UnboundedReceiver<QueueChange>);

impl Feed {
    /// Waits for the first change matching `wanted`, skipping others;
    /// panics naming `rule` if none comes within [`FEED_TIMEOUT`].
    pub(crate) async fn expect(
        &mut self,
        rule: &str,
        wanted: impl Fn(&QueueChange) -> bool,
    ) -> QueueChange {
        let deadline = tokio::time::Instant::now() + FEED_TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, self.0.recv()).await {
                Ok(Some(change)) if wanted(&change) => return change,
                Ok(Some(_)) => continue,
                Ok(None) => panic!("{rule}: the store dropped its change sink"),
                Err(_) => panic!("{rule}: no such change announced within {FEED_TIMEOUT:?}"),
            }
        }
    }

    /// Waits for a `MESSAGES` change of `queue` announcing at least `seq`.
    pub(crate) async fn expect_messages(&mut self, rule: &str, queue: &QueueRef, seq: u64) {
        let change = self
            .expect(rule, |c| {
                c.kind == ChangeKind::MESSAGES && &c.queue == queue && c.last_seq >= seq
            })
            .await;
        assert_eq!(
            change.last_seq, seq,
            "{rule}: MESSAGES announces the queue's last seq after the commit"
        );
    }
}

/// Starts the store's change feed into a fresh [`Feed`]. A store without a
/// feed (`UNSUPPORTED`) fails here: the feed is part of the 1.1 contract.
pub(crate) async fn watch(s: &Store) -> Feed {
    let (sender, receiver) = mpsc::unbounded_channel();
    s.changes_watch(wrap_change_sink(ChannelSink(sender)))
        .await
        .expect("changes_watch succeeds (plugin-api 1.1: every store announces its changes)");
    Feed(receiver)
}

fn sub(subscriber: &str) -> NewSubscription {
    NewSubscription {
        subscriber: subscriber.into(),
        ttl: 600,
        options: b"{}".to_vec().into(),
    }
}

/// After a committed post the sink receives `MESSAGES` for the queue with
/// the queue's last sequence number, the batch's last.
pub async fn committed_post_announces_messages_with_the_queues_last_seq(s: Store) {
    let mut feed = watch(&s).await;
    let t = now();
    let posted = post(
        &s,
        &q("fed"),
        "c",
        &["{\"a\":1}", "{\"a\":2}", "{\"a\":3}"],
        t,
    )
    .await;
    let last = posted.last().expect("three posted").seq;
    feed.expect_messages(
        "a committed post announces MESSAGES with the last seq",
        &q("fed"),
        last,
    )
    .await;
    let again = post(&s, &q("fed"), "c", &["{\"a\":4}"], t).await;
    feed.expect_messages("every committed post is announced", &q("fed"), again[0].seq)
        .await;
}

/// Posts to one queue are announced in commit order: the announced last
/// seq never goes back.
pub async fn changes_of_one_queue_are_announced_in_commit_order(s: Store) {
    let mut feed = watch(&s).await;
    let t = now();
    let mut last = 0;
    for i in 0..20 {
        last = post(&s, &q("ordered"), "c", &[&format!("{{\"i\":{i}}}")], t).await[0].seq;
    }
    let mut seen = 0;
    while seen < last {
        let change = feed
            .expect("every post of the queue is announced", |c| {
                c.kind == ChangeKind::MESSAGES && c.queue == q("ordered")
            })
            .await;
        assert!(
            change.last_seq > seen,
            "announcements follow commit order: {} after {seen}",
            change.last_seq
        );
        seen = change.last_seq;
    }
    assert_eq!(seen, last, "the last announcement is the last post");
}

/// A message moved to a dead-letter queue is a post to that queue: the
/// dead-letter queue's `MESSAGES` is announced with its new last seq.
pub async fn dead_letter_move_announces_messages_on_the_dead_letter_queue(s: Store) {
    let t = now();
    post(&s, &q("work"), "c", &["{\"dead\":true}"], t).await;
    let first = claim(&s, &q("work"), claim_request(30, 0, 10), t).await;
    assert_eq!(first.messages.len(), 1);
    s.claim_delete(q("work"), first.id, t).await.unwrap();
    let mut feed = watch(&s).await;
    let request = claim_request_with_dlq(30, 10, 1, "dlq", None);
    claim(&s, &q("work"), request, t).await;
    let last = s.queue_last_seq(q("dlq")).await.unwrap();
    assert!(last > 0, "the message was moved to the dead-letter queue");
    feed.expect_messages(
        "a dead-letter move announces MESSAGES on the dead-letter queue",
        &q("dlq"),
        last,
    )
    .await;
}

/// Deleting a queue announces `QUEUE_DELETED` for it.
pub async fn queue_delete_announces_queue_deleted(s: Store) {
    let t = now();
    post(&s, &q("doomed"), "c", &["{}"], t).await;
    let mut feed = watch(&s).await;
    s.queue_delete(q("doomed")).await.unwrap();
    feed.expect("queue_delete announces QUEUE_DELETED", |c| {
        c.kind == ChangeKind::QUEUE_DELETED && c.queue == q("doomed")
    })
    .await;
}

/// Purging a queue announces `QUEUE_PURGED` for it.
pub async fn message_purge_announces_queue_purged(s: Store) {
    let t = now();
    post(&s, &q("purged"), "c", &["{}", "{}"], t).await;
    let mut feed = watch(&s).await;
    s.message_purge(q("purged")).await.unwrap();
    feed.expect("message_purge announces QUEUE_PURGED", |c| {
        c.kind == ChangeKind::QUEUE_PURGED && c.queue == q("purged")
    })
    .await;
}

/// Creating, updating, confirming and deleting a subscription each
/// announce `SUBSCRIPTIONS` for its queue, naming the subscription.
pub async fn subscription_changes_announce_subscriptions(s: Store) {
    let mut feed = watch(&s).await;
    let t = now();
    let queue = q("subscribed");
    let id = s
        .subscription_create(queue.clone(), sub("http://example.com/feed"), t)
        .await
        .unwrap()
        .id;
    let is_ours = |c: &QueueChange| {
        c.kind == ChangeKind::SUBSCRIPTIONS && c.queue == queue && c.subscription == id
    };
    feed.expect("subscription_create announces SUBSCRIPTIONS", is_ours)
        .await;
    let patch = SubscriptionPatch {
        subscriber: RNone,
        ttl: RSome(900),
        options: RNone,
    };
    s.subscription_update(queue.clone(), id.clone(), patch, t)
        .await
        .unwrap();
    feed.expect("subscription_update announces SUBSCRIPTIONS", is_ours)
        .await;
    s.subscription_confirm(queue.clone(), id.clone(), true, t)
        .await
        .unwrap();
    feed.expect("subscription_confirm announces SUBSCRIPTIONS", is_ours)
        .await;
    s.subscription_delete(queue.clone(), id.clone())
        .await
        .unwrap();
    feed.expect("subscription_delete announces SUBSCRIPTIONS", is_ours)
        .await;
}

/// Shared backends: a post through a second store instance on the same
/// backend (another host) is announced to the first instance's sink.
pub async fn changes_written_through_another_instance_are_announced(s: Store, other: Store) {
    let mut feed = watch(&s).await;
    let t = now();
    let posted = post(&other, &q("shared"), "c", &["{\"from\":\"other\"}"], t).await;
    feed.expect_messages(
        "a post through another instance of the store is announced",
        &q("shared"),
        posted[0].seq,
    )
    .await;
    let id = other
        .subscription_create(q("shared"), sub("http://example.com/other"), t)
        .await
        .unwrap()
        .id;
    feed.expect(
        "a subscription created through another instance is announced",
        |c| c.kind == ChangeKind::SUBSCRIPTIONS && c.queue == q("shared") && c.subscription == id,
    )
    .await;
    other.queue_delete(q("shared")).await.unwrap();
    feed.expect(
        "a queue deleted through another instance is announced",
        |c| c.kind == ChangeKind::QUEUE_DELETED && c.queue == q("shared"),
    )
    .await;
}
