//! Queues: create, metadata, list, count, delete, lazy creation.

use plugin_api::{
    storage::{MessageStore, NewSubscription, QueueListQuery, QueueRef, SubscriptionListQuery},
    types::{
        ROption::{RNone, RSome},
        RString,
    },
    ErrorCode,
};

use crate::support::*;

fn names(entries: &[plugin_api::storage::QueueEntry]) -> Vec<String> {
    entries.iter().map(|e| e.name.to_string()).collect()
}

fn page(marker: Option<&str>, limit: u32, with_metadata: bool) -> QueueListQuery {
    QueueListQuery {
        marker: marker.map(RString::from).into(),
        limit,
        with_metadata,
    }
}

/// `queue_create` answers true, then false without touching the metadata.
pub async fn queue_create_returns_false_and_changes_nothing_when_queue_exists(s: Store) {
    let t = now();
    assert!(s
        .queue_create(q("a"), b"{\"k\":1}".to_vec().into(), t)
        .await
        .unwrap());
    assert!(!s
        .queue_create(q("a"), b"{\"k\":2}".to_vec().into(), t)
        .await
        .unwrap());
    let meta = s.queue_get_metadata(q("a")).await.unwrap();
    assert_eq!(meta.map(|m| compact(&m)), RSome(b"{\"k\":1}".to_vec()));
}

/// Metadata of a missing queue is `RNone`.
pub async fn missing_queue_has_no_metadata(s: Store) {
    assert_eq!(s.queue_get_metadata(q("nope")).await.unwrap(), RNone);
}

/// `queue_set_metadata` replaces the whole document.
pub async fn queue_set_metadata_replaces_metadata(s: Store) {
    s.queue_create(q("a"), b"{\"old\":1}".to_vec().into(), now())
        .await
        .unwrap();
    s.queue_set_metadata(q("a"), b"{\"new\":2}".to_vec().into())
        .await
        .unwrap();
    let meta = s.queue_get_metadata(q("a")).await.unwrap();
    assert_eq!(meta.map(|m| compact(&m)), RSome(b"{\"new\":2}".to_vec()));
}

/// `queue_set_metadata` on a missing queue is `QUEUE_NOT_FOUND` and creates nothing.
pub async fn queue_set_metadata_on_missing_queue_is_queue_not_found(s: Store) {
    assert_code(
        s.queue_set_metadata(q("nope"), b"{}".to_vec().into()).await,
        ErrorCode::QUEUE_NOT_FOUND,
    );
    assert_eq!(s.queue_get_metadata(q("nope")).await.unwrap(), RNone);
}

/// Listing is by ascending name; the marker excludes names up to and including it.
pub async fn queue_list_orders_by_name_and_pages_strictly_after_marker(s: Store) {
    let t = now();
    for name in ["c", "a", "e", "b", "d"] {
        s.queue_create(q(name), b"{}".to_vec().into(), t)
            .await
            .unwrap();
    }
    let p = PROJECT.into();
    let first = s
        .queue_list(PROJECT.into(), page(None, 2, false))
        .await
        .unwrap();
    assert_eq!(names(&first), ["a", "b"]);
    let second = s.queue_list(p, page(Some("b"), 2, false)).await.unwrap();
    assert_eq!(names(&second), ["c", "d"]);
    let last = s
        .queue_list(PROJECT.into(), page(Some("d"), 10, false))
        .await
        .unwrap();
    assert_eq!(names(&last), ["e"]);
    let beyond = s
        .queue_list(PROJECT.into(), page(Some("e"), 10, false))
        .await
        .unwrap();
    assert!(beyond.is_empty());
    // A marker need not be an existing name.
    let between = s
        .queue_list(PROJECT.into(), page(Some("bb"), 10, false))
        .await
        .unwrap();
    assert_eq!(names(&between), ["c", "d", "e"]);
}

/// Metadata is filled only when asked for.
pub async fn queue_list_includes_metadata_only_when_asked(s: Store) {
    s.queue_create(q("a"), b"{\"k\":1}".to_vec().into(), now())
        .await
        .unwrap();
    let bare = s
        .queue_list(PROJECT.into(), page(None, 10, false))
        .await
        .unwrap();
    assert!(bare[0].metadata.is_empty());
    let full = s
        .queue_list(PROJECT.into(), page(None, 10, true))
        .await
        .unwrap();
    assert_eq!(compact(&full[0].metadata), b"{\"k\":1}");
}

/// Listing and counting see only the given project's queues.
pub async fn queue_list_and_count_are_scoped_to_the_project(s: Store) {
    let t = now();
    s.queue_create(q("mine"), b"{}".to_vec().into(), t)
        .await
        .unwrap();
    s.queue_create(q("also-mine"), b"{}".to_vec().into(), t)
        .await
        .unwrap();
    for (project, name) in [
        ("other", "theirs"),
        ("conformance-projectx", "x"),
        ("", "empty"),
    ] {
        let other = plugin_api::storage::QueueRef::new(project, name);
        s.queue_create(other, b"{}".to_vec().into(), t)
            .await
            .unwrap();
    }
    let listed = s
        .queue_list(PROJECT.into(), page(None, 10, false))
        .await
        .unwrap();
    assert_eq!(names(&listed), ["also-mine", "mine"]);
    assert_eq!(s.queue_count(PROJECT.into()).await.unwrap(), 2);
    assert_eq!(s.queue_count("other".into()).await.unwrap(), 1);
    assert_eq!(s.queue_count("nobody".into()).await.unwrap(), 0);
}

/// The same name in two projects is two queues.
pub async fn same_queue_name_in_two_projects_is_two_queues(s: Store) {
    let t = now();
    let mine = q("shared");
    let theirs = plugin_api::storage::QueueRef::new("other", "shared");
    post(&s, &mine, "c", &["mine"], t).await;
    post(&s, &theirs, "c", &["theirs"], t).await;
    assert_eq!(bodies(&list(&s, &mine, everything(10), t).await), ["mine"]);
    assert_eq!(
        bodies(&list(&s, &theirs, everything(10), t).await),
        ["theirs"]
    );
    s.queue_delete(theirs.clone()).await.unwrap();
    assert_eq!(bodies(&list(&s, &mine, everything(10), t).await), ["mine"]);
}

/// Posting to a missing queue creates it with empty metadata.
pub async fn message_post_creates_the_queue_lazily(s: Store) {
    let t = now();
    post(&s, &q("lazy"), "c", &["1"], t).await;
    let meta = s.queue_get_metadata(q("lazy")).await.unwrap();
    assert_eq!(meta.map(|m| compact(&m)), RSome(b"{}".to_vec()));
    assert_eq!(s.queue_count(PROJECT.into()).await.unwrap(), 1);
    // Explicit creation afterwards finds it.
    assert!(!s
        .queue_create(q("lazy"), b"{}".to_vec().into(), t)
        .await
        .unwrap());
}

/// Deleting a missing queue succeeds.
pub async fn queue_delete_of_missing_queue_succeeds(s: Store) {
    s.queue_delete(q("nope")).await.unwrap();
}

/// Deleting a queue removes its messages, claims and subscriptions, even
/// when a queue of the same name is created again.
pub async fn queue_delete_removes_messages_claims_and_subscriptions(s: Store) {
    let t = now();
    let queue = q("doomed");
    post(&s, &queue, "c", &["1", "2", "3"], t).await;
    let c = claim(&s, &queue, claim_request(60, 0, 1), t).await;
    let sub = NewSubscription {
        subscriber: "http://example.com/hook".into(),
        ttl: 3600,
        options: b"{}".to_vec().into(),
    };
    let gone = s
        .subscription_create(queue.clone(), sub.clone(), t)
        .await
        .unwrap();
    s.queue_delete(queue.clone()).await.unwrap();

    assert_eq!(s.queue_get_metadata(queue.clone()).await.unwrap(), RNone);
    assert_eq!(s.queue_count(PROJECT.into()).await.unwrap(), 0);
    assert!(list(&s, &queue, everything(10), t).await.is_empty());
    assert_eq!(s.queue_stats(queue.clone(), t).await.unwrap().total, 0);

    s.queue_create(queue.clone(), b"{}".to_vec().into(), t)
        .await
        .unwrap();
    assert!(list(&s, &queue, everything(10), t).await.is_empty());
    assert_eq!(s.queue_stats(queue.clone(), t).await.unwrap().total, 0);
    assert_eq!(
        s.claim_get(queue.clone(), c.id.clone(), t).await.unwrap(),
        RNone
    );
    let subs = s
        .subscription_list(
            queue.clone(),
            SubscriptionListQuery {
                marker: RNone,
                limit: 10,
            },
            t,
        )
        .await
        .unwrap();
    assert!(subs.is_empty());
    // Its subscriber subscribes afresh to the queue of the same name.
    let again = s.subscription_create(queue, sub, t).await.unwrap();
    assert!(again.created && again.id != gone.id);
}

/// `queue_last_seq` is the seq of the last message ever posted to the queue:
/// 0 for a queue that never had one, the last posted seq after posts (also
/// once that message is gone), never smaller after a purge or a delete, and
/// the next post always gets a larger seq (sequence numbers are never
/// reused, also when a queue is deleted and created again).
pub async fn queue_last_seq_is_the_last_posted_seq_and_never_goes_back(s: Store) {
    let t = now();
    let last_seq = |name: &'static str| {
        let s = s.clone();
        async move { s.queue_last_seq(q(name)).await.unwrap() }
    };
    assert_eq!(last_seq("a").await, 0, "a missing queue");
    s.queue_create(q("a"), b"{}".to_vec().into(), t)
        .await
        .unwrap();
    assert_eq!(last_seq("a").await, 0, "a queue without messages");

    let first = post(&s, &q("a"), "c", &["1", "2", "3"], t).await;
    assert_eq!(last_seq("a").await, first[2].seq);
    let second = post(&s, &q("a"), "c", &["4", "5"], t).await;
    assert_eq!(last_seq("a").await, second[1].seq);
    // Per queue and per project.
    assert_eq!(last_seq("b").await, 0);
    let other = QueueRef::new("another-project", "a");
    assert_eq!(s.queue_last_seq(other).await.unwrap(), 0);

    // The last message gone (deleted, popped) still counts.
    s.message_delete(q("a"), second[1].id.clone(), RNone, t)
        .await
        .unwrap();
    assert_eq!(s.message_pop(q("a"), 1, t).await.unwrap().len(), 1);
    assert_eq!(last_seq("a").await, second[1].seq);

    let before = second[1].seq;
    s.message_purge(q("a")).await.unwrap();
    let after_purge = last_seq("a").await;
    assert!(after_purge >= before, "purge: {after_purge} < {before}");
    let next = post(&s, &q("a"), "c", &["after purge"], t).await;
    assert!(next[0].seq > after_purge);
    assert_eq!(last_seq("a").await, next[0].seq);

    let before = next[0].seq;
    s.queue_delete(q("a")).await.unwrap();
    let after_delete = last_seq("a").await;
    assert!(after_delete >= before, "delete: {after_delete} < {before}");
    let recreated = post(&s, &q("a"), "c", &["after delete"], t).await;
    assert!(
        recreated[0].seq > after_delete,
        "a queue created again continues its sequence numbers"
    );
    assert_eq!(last_seq("a").await, recreated[0].seq);
}

/// The store answers its health check.
pub async fn store_is_alive(s: Store) {
    assert!(s.is_alive().await.unwrap());
}
