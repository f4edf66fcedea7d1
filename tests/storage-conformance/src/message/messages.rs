//! Messages: post, list, get, delete, pop, purge, stats, ttl and delay.

use std::collections::HashSet;

use plugin_api::{
    storage::{MessageListQuery, MessageStore, NewSubscription, SubscriptionListQuery},
    types::{
        ROption::{RNone, RSome},
        RString, RVec,
    },
};

use crate::support::*;

/// A post returns one id per message with consecutive, increasing
/// sequence numbers; ids are unique.
pub async fn message_post_assigns_consecutive_sequence_numbers_and_unique_ids(s: Store) {
    let t = now();
    let first = post(&s, &q("a"), "c", &["1", "2", "3"], t).await;
    let second = post(&s, &q("a"), "c", &["4", "5"], t).await;
    let all: Vec<_> = first.iter().chain(&second).collect();
    for pair in all.windows(2) {
        assert!(
            pair[1].seq > pair[0].seq,
            "sequence numbers increase: {all:?}"
        );
    }
    for batch in [&first, &second] {
        for pair in batch.windows(2) {
            assert_eq!(pair[1].seq, pair[0].seq + 1, "consecutive within a batch");
        }
    }
    let unique: HashSet<_> = all.iter().map(|m| m.id.to_string()).collect();
    assert_eq!(unique.len(), 5);
}

/// A listed message carries everything that was posted and derived.
pub async fn listed_message_carries_body_client_times_and_no_claim(s: Store) {
    let t = now();
    let posted = post_messages(
        &s,
        &q("a"),
        "client-1",
        vec![msg(120, 0, "{\"x\":[1,2]}")].into(),
        t,
    )
    .await;
    let listed = list(&s, &q("a"), everything(10), t).await;
    assert_eq!(listed.len(), 1);
    let m = &listed[0];
    assert_eq!(m.id, posted[0].id);
    assert_eq!(m.seq, posted[0].seq);
    assert_eq!(m.body.as_slice(), b"{\"x\":[1,2]}");
    assert_eq!(m.client_id.as_str(), "client-1");
    assert_eq!(m.created_ms, t);
    assert_eq!(m.expires_ms, t + secs(120));
    assert_eq!(m.ttl, 120);
    assert_eq!(m.visible_ms, t);
    assert_eq!(m.claim, RNone);
    assert_eq!(m.claim_count, 0);
}

/// Listing is in sequence order and `after_seq` pages through it.
pub async fn message_list_pages_in_sequence_order_after_a_sequence_number(s: Store) {
    let t = now();
    let posted = post(&s, &q("a"), "c", &["1", "2", "3", "4", "5"], t).await;
    let page1 = list(&s, &q("a"), everything(2), t).await;
    assert_eq!(bodies(&page1), ["1", "2"]);
    let after = MessageListQuery {
        after_seq: RSome(page1[1].seq),
        ..everything(2)
    };
    let page2 = list(&s, &q("a"), after, t).await;
    assert_eq!(bodies(&page2), ["3", "4"]);
    let last = MessageListQuery {
        after_seq: RSome(posted[4].seq),
        ..everything(2)
    };
    assert!(list(&s, &q("a"), last, t).await.is_empty());
}

/// Listing a missing queue gives nothing (and does not create it).
pub async fn message_list_of_missing_queue_is_empty(s: Store) {
    assert!(list(&s, &q("nope"), everything(10), now()).await.is_empty());
    assert_eq!(s.queue_get_metadata(q("nope")).await.unwrap(), RNone);
}

/// `exclude_client` leaves out the messages that client posted (echo=false).
pub async fn message_list_excludes_the_given_client(s: Store) {
    let t = now();
    post(&s, &q("a"), "me", &["mine"], t).await;
    post(&s, &q("a"), "you", &["yours"], t).await;
    let query = MessageListQuery {
        exclude_client: RSome("me".into()),
        ..everything(10)
    };
    assert_eq!(bodies(&list(&s, &q("a"), query, t).await), ["yours"]);
    assert_eq!(
        bodies(&list(&s, &q("a"), everything(10), t).await),
        ["mine", "yours"]
    );
}

/// Messages under a live claim are listed only with `include_claimed`.
pub async fn message_list_hides_claimed_messages_unless_asked(s: Store) {
    let t = now();
    post(&s, &q("a"), "c", &["1", "2"], t).await;
    claim(&s, &q("a"), claim_request(60, 0, 1), t).await;
    assert_eq!(bodies(&list(&s, &q("a"), defaults(10), t).await), ["2"]);
    assert_eq!(
        bodies(&list(&s, &q("a"), everything(10), t).await),
        ["1", "2"]
    );
    // Once the claim expires the message is listed again.
    assert_eq!(
        bodies(&list(&s, &q("a"), defaults(10), t + secs(61)).await),
        ["1", "2"]
    );
}

/// A delayed message is listed only with `include_delayed` until its delay passes.
pub async fn message_list_hides_delayed_messages_until_the_delay_passes(s: Store) {
    let t = now();
    let messages: RVec<_> = vec![msg(300, 30, "late"), msg(300, 0, "now")].into();
    post_messages(&s, &q("a"), "c", messages, t).await;
    let listed = list(&s, &q("a"), everything(10), t).await;
    assert_eq!(bodies(&listed), ["late", "now"]);
    assert_eq!(listed[0].visible_ms, t + secs(30));
    assert_eq!(bodies(&list(&s, &q("a"), defaults(10), t).await), ["now"]);
    assert_eq!(
        bodies(&list(&s, &q("a"), defaults(10), t + secs(30)).await),
        ["late", "now"]
    );
}

/// A message is gone for every read once `now_ms` reaches its expiry.
pub async fn expired_messages_are_invisible_to_every_read(s: Store) {
    let t = now();
    let posted = post_messages(
        &s,
        &q("a"),
        "c",
        vec![msg(60, 0, "short"), msg(600, 0, "long")].into(),
        t,
    )
    .await;
    let later = t + secs(60);
    assert_eq!(
        bodies(&list(&s, &q("a"), everything(10), later - 1).await),
        ["short", "long"]
    );
    assert_eq!(
        bodies(&list(&s, &q("a"), everything(10), later).await),
        ["long"]
    );
    assert!(get_one(&s, &q("a"), &posted[0].id, later).await.is_none());
    let stats = s.queue_stats(q("a"), later).await.unwrap();
    assert_eq!((stats.total, stats.free), (1, 1));
    let c = claim(&s, &q("a"), claim_request(30, 0, 10), later).await;
    assert_eq!(bodies(&c.messages), ["long"]);
    s.claim_delete(q("a"), c.id, later).await.unwrap();
    let popped = s.message_pop(q("a"), 10, later).await.unwrap();
    assert_eq!(bodies(&popped), ["long"]);
}

/// The reported ttl is the lifetime from creation to expiry.
pub async fn reported_ttl_is_lifetime_from_creation_to_expiry(s: Store) {
    let t = now();
    post_messages(&s, &q("a"), "c", vec![msg(3600, 0, "x")].into(), t).await;
    let m = &list(&s, &q("a"), everything(1), t + secs(100)).await[0];
    assert_eq!(m.ttl, 3600);
    assert_eq!(m.expires_ms - m.created_ms, secs(3600));
}

/// Get by ids returns live messages (claimed and delayed too) in sequence
/// order and skips unknown and malformed ids.
pub async fn message_get_many_returns_live_messages_in_sequence_order(s: Store) {
    let t = now();
    let messages: RVec<_> =
        vec![msg(300, 0, "1"), msg(300, 60, "delayed"), msg(300, 0, "3")].into();
    let posted = post_messages(&s, &q("a"), "c", messages, t).await;
    claim(&s, &q("a"), claim_request(60, 0, 1), t).await;
    let other = post(&s, &q("b"), "c", &["elsewhere"], t).await;
    let wanted = [
        posted[2].id.as_str(),
        "not-an-id",
        posted[0].id.as_str(),
        other[0].id.as_str(),
        posted[1].id.as_str(),
    ];
    let got = get_many(&s, &q("a"), &wanted, t).await;
    let expected: Vec<String> = posted.iter().map(|p| p.id.to_string()).collect();
    assert_eq!(ids(&got), expected);
    assert!(
        claim_of(&got[0]).is_some(),
        "the claimed message shows its claim"
    );
}

/// Get by ids on a missing queue gives nothing.
pub async fn message_get_many_of_missing_queue_is_empty(s: Store) {
    let posted = post(&s, &q("a"), "c", &["1"], now()).await;
    assert!(get_many(&s, &q("nope"), &[&posted[0].id], now())
        .await
        .is_empty());
}

/// An unclaimed message is deleted without a claim id.
pub async fn unclaimed_message_is_deleted_without_claim_id(s: Store) {
    let t = now();
    let posted = post(&s, &q("a"), "c", &["1", "2"], t).await;
    s.message_delete(q("a"), posted[0].id.clone(), RNone, t)
        .await
        .unwrap();
    assert_eq!(bodies(&list(&s, &q("a"), everything(10), t).await), ["2"]);
    assert!(get_one(&s, &q("a"), &posted[0].id, t).await.is_none());
}

/// Deleting an unknown, malformed or already deleted message succeeds,
/// with or without a claim id, on existing and missing queues.
pub async fn deleting_a_missing_message_succeeds(s: Store) {
    let t = now();
    let posted = post(&s, &q("a"), "c", &["1"], t).await;
    let id = posted[0].id.clone();
    s.message_delete(q("a"), id.clone(), RNone, t)
        .await
        .unwrap();
    s.message_delete(q("a"), id.clone(), RNone, t)
        .await
        .unwrap();
    s.message_delete(q("a"), id.clone(), RSome("whatever".into()), t)
        .await
        .unwrap();
    s.message_delete(q("a"), "garbage".into(), RNone, t)
        .await
        .unwrap();
    s.message_delete(q("nope"), id, RNone, t).await.unwrap();
}

/// Deleting many removes claimed and unclaimed messages and ignores unknown ids.
pub async fn message_delete_many_removes_claimed_and_unclaimed_and_ignores_unknown(s: Store) {
    let t = now();
    let posted = post(&s, &q("a"), "c", &["1", "2", "3", "4"], t).await;
    claim(&s, &q("a"), claim_request(60, 0, 1), t).await;
    let doomed: RVec<RString> = vec![
        posted[0].id.clone(),
        posted[2].id.clone(),
        "unknown".into(),
        RString::from("ffffffffffffffffffffffff"),
    ]
    .into();
    s.message_delete_many(q("a"), doomed, t).await.unwrap();
    assert_eq!(
        bodies(&list(&s, &q("a"), everything(10), t).await),
        ["2", "4"]
    );
    s.message_delete_many(q("nope"), vec![posted[1].id.clone()].into(), t)
        .await
        .unwrap();
}

/// Pop removes and returns the oldest visible messages not under a live claim.
pub async fn message_pop_takes_oldest_visible_unclaimed_messages(s: Store) {
    let t = now();
    let messages: RVec<_> = vec![
        msg(300, 0, "claimed"),
        msg(300, 60, "delayed"),
        msg(300, 0, "3"),
        msg(300, 0, "4"),
        msg(300, 0, "5"),
    ]
    .into();
    post_messages(&s, &q("a"), "c", messages, t).await;
    claim(&s, &q("a"), claim_request(60, 0, 1), t).await;
    let popped = s.message_pop(q("a"), 2, t).await.unwrap();
    assert_eq!(bodies(&popped), ["3", "4"]);
    assert_eq!(
        bodies(&list(&s, &q("a"), everything(10), t).await),
        ["claimed", "delayed", "5"]
    );
    let rest = s.message_pop(q("a"), 10, t).await.unwrap();
    assert_eq!(bodies(&rest), ["5"]);
}

/// Popping a missing or empty queue gives nothing.
pub async fn message_pop_of_missing_queue_is_empty(s: Store) {
    assert!(s.message_pop(q("nope"), 5, now()).await.unwrap().is_empty());
}

/// Purge deletes every message and claim but keeps the queue, its metadata
/// and subscriptions; later posts continue the sequence.
pub async fn message_purge_empties_the_queue_but_keeps_it(s: Store) {
    let t = now();
    s.queue_create(q("a"), b"{\"k\":1}".to_vec().into(), t)
        .await
        .unwrap();
    let before = post(&s, &q("a"), "c", &["1", "2", "3"], t).await;
    let c = claim(&s, &q("a"), claim_request(60, 0, 2), t).await;
    let sub = NewSubscription {
        subscriber: "http://example.com/".into(),
        ttl: 600,
        options: b"{}".to_vec().into(),
    };
    s.subscription_create(q("a"), sub, t).await.unwrap();
    s.message_purge(q("a")).await.unwrap();

    assert!(list(&s, &q("a"), everything(10), t).await.is_empty());
    assert_eq!(s.claim_get(q("a"), c.id, t).await.unwrap(), RNone);
    let meta = s.queue_get_metadata(q("a")).await.unwrap();
    assert_eq!(meta.map(|m| compact(&m)), RSome(b"{\"k\":1}".to_vec()));
    let subs = s
        .subscription_list(
            q("a"),
            SubscriptionListQuery {
                marker: RNone,
                limit: 10,
            },
            t,
        )
        .await
        .unwrap();
    assert_eq!(subs.len(), 1);
    let after = post(&s, &q("a"), "c", &["4"], t).await;
    assert!(
        after[0].seq > before[2].seq,
        "sequence numbers never go back"
    );
    assert_eq!(bodies(&list(&s, &q("a"), everything(10), t).await), ["4"]);
    s.message_purge(q("nope")).await.unwrap();
}

/// Stats count claimed, free (delayed included) and total live messages,
/// with the oldest and newest by sequence.
pub async fn queue_stats_count_live_messages_with_oldest_and_newest(s: Store) {
    let t = now();
    let messages: RVec<_> = vec![
        msg(30, 0, "expires-soon"),
        msg(300, 0, "2"),
        msg(300, 0, "3"),
        msg(300, 100, "delayed"),
        msg(300, 0, "5"),
    ]
    .into();
    let posted = post_messages(&s, &q("a"), "c", messages, t).await;
    let later = t + secs(30);
    claim(&s, &q("a"), claim_request(60, 0, 2), later).await;
    let stats = s.queue_stats(q("a"), later).await.unwrap();
    assert_eq!((stats.claimed, stats.free, stats.total), (2, 2, 4));
    let oldest = stats.oldest.clone().unwrap();
    let newest = stats.newest.clone().unwrap();
    assert_eq!(oldest.id, posted[1].id);
    assert_eq!(oldest.created_ms, t);
    assert_eq!(newest.id, posted[4].id);
}

/// Stats of a missing or empty queue are zeros.
pub async fn queue_stats_of_missing_queue_are_zeros(s: Store) {
    let stats = s.queue_stats(q("nope"), now()).await.unwrap();
    assert_eq!((stats.claimed, stats.free, stats.total), (0, 0, 0));
    assert_eq!((stats.oldest, stats.newest), (RNone, RNone));
    s.queue_create(q("empty"), b"{}".to_vec().into(), now())
        .await
        .unwrap();
    let stats = s.queue_stats(q("empty"), now()).await.unwrap();
    assert_eq!((stats.total, stats.oldest), (0, RNone));
}
