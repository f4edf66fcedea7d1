//! Subscriptions: create (one per subscriber), list, get, update, confirm,
//! delete, expiry; the delivery cursor and the scan over every subscription
//! (used by the notification dispatcher).

use std::collections::{HashMap, HashSet};

use plugin_api::{
    storage::{
        MessageStore, NewSubscription, QueueRef, SubscriptionListQuery, SubscriptionPatch,
        SubscriptionRecord, SubscriptionScanPage,
    },
    types::{
        ROption::{RNone, RSome},
        RString,
    },
    ErrorCode,
};

use crate::support::*;

fn sub(subscriber: &str, ttl: u32) -> NewSubscription {
    NewSubscription {
        subscriber: subscriber.into(),
        ttl,
        options: b"{\"k\":\"v\"}".to_vec().into(),
    }
}

async fn create(s: &Store, queue: &QueueRef, subscriber: &str, ttl: u32, t: u64) -> String {
    let created = s
        .subscription_create(queue.clone(), sub(subscriber, ttl), t)
        .await
        .unwrap();
    assert!(created.created, "a new subscription for {subscriber}");
    created.id.to_string()
}

async fn list_page(
    s: &Store,
    queue: &QueueRef,
    marker: Option<&str>,
    limit: u32,
    t: u64,
) -> Vec<SubscriptionRecord> {
    let query = SubscriptionListQuery {
        marker: marker.map(RString::from).into(),
        limit,
    };
    s.subscription_list(queue.clone(), query, t)
        .await
        .unwrap()
        .into_vec()
}

fn no_change() -> SubscriptionPatch {
    SubscriptionPatch {
        subscriber: RNone,
        ttl: RNone,
        options: RNone,
    }
}

/// A new subscription is unconfirmed and reads back as created.
pub async fn subscription_create_then_get_round_trips(s: Store) {
    let t = now();
    let created = s
        .subscription_create(q("a"), sub("http://example.com/a", 600), t)
        .await
        .unwrap();
    assert!(created.created);
    assert!(!created.confirmed);
    let got = s
        .subscription_get(q("a"), created.id.clone(), t)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.id, created.id);
    assert_eq!(got.queue.as_str(), "a");
    assert_eq!(got.subscriber.as_str(), "http://example.com/a");
    assert_eq!(
        (got.ttl, got.created_ms, got.expires_ms),
        (600, t, t + secs(600))
    );
    assert_eq!(compact(&got.options), b"{\"k\":\"v\"}");
    assert!(!got.confirmed);
    assert_eq!(
        s.subscription_get(q("a"), "unknown".into(), t)
            .await
            .unwrap(),
        RNone
    );
    assert_eq!(
        s.subscription_get(q("b"), created.id, t).await.unwrap(),
        RNone
    );
}

/// Subscribing the same subscriber again returns the live subscription
/// (`created: false`, its confirmed flag) and writes nothing.
pub async fn duplicate_subscriber_gets_the_existing_subscription(s: Store) {
    let t = now();
    let id = create(&s, &q("a"), "mailto:x@example.com", 600, t).await;
    let again = s
        .subscription_create(q("a"), sub("mailto:x@example.com", 9999), t + 5)
        .await
        .unwrap();
    assert_eq!(
        (again.id.to_string(), again.created, again.confirmed),
        (id.clone(), false, false)
    );
    s.subscription_confirm(q("a"), id.clone().into(), true, t)
        .await
        .unwrap();
    let confirmed = s
        .subscription_create(q("a"), sub("mailto:x@example.com", 1), t)
        .await
        .unwrap();
    assert_eq!(
        (
            confirmed.id.to_string(),
            confirmed.created,
            confirmed.confirmed
        ),
        (id.clone(), false, true)
    );
    let got = s
        .subscription_get(q("a"), id.into(), t)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.ttl, 600, "nothing was written");
    assert_eq!(list_page(&s, &q("a"), None, 10, t).await.len(), 1);
    // The same subscriber on another queue is another subscription.
    create(&s, &q("b"), "mailto:x@example.com", 600, t).await;
}

/// Listing is in a stable order and pages with the last id as marker.
pub async fn subscription_list_pages_in_a_stable_order(s: Store) {
    let t = now();
    let mut made = HashSet::new();
    for i in 0..5 {
        made.insert(create(&s, &q("a"), &format!("http://example.com/{i}"), 600, t + i).await);
    }
    create(&s, &q("other"), "http://example.com/other", 600, t).await;
    let full: Vec<String> = list_page(&s, &q("a"), None, 10, t)
        .await
        .iter()
        .map(|r| r.id.to_string())
        .collect();
    assert_eq!(full.len(), 5);
    assert_eq!(full.iter().cloned().collect::<HashSet<_>>(), made);
    let mut paged = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = list_page(&s, &q("a"), marker.as_deref(), 2, t).await;
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        marker = Some(last.id.to_string());
        paged.extend(page.iter().map(|r| r.id.to_string()));
    }
    assert_eq!(paged, full, "pages follow the listing order");
    assert!(list_page(&s, &q("a"), None, 10, t)
        .await
        .iter()
        .all(|r| r.queue.as_str() == "a"));
}

/// An update changes only the given fields; a new ttl counts from now.
pub async fn subscription_update_changes_given_fields_and_restarts_ttl(s: Store) {
    let t = now();
    let id = create(&s, &q("a"), "http://example.com/old", 600, t).await;
    let later = t + secs(100);
    let patch = SubscriptionPatch {
        subscriber: RSome("http://example.com/new".into()),
        ttl: RSome(50),
        options: RSome(b"{\"n\":1}".to_vec().into()),
    };
    s.subscription_update(q("a"), id.clone().into(), patch, later)
        .await
        .unwrap();
    let got = s
        .subscription_get(q("a"), id.clone().into(), later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.subscriber.as_str(), "http://example.com/new");
    assert_eq!(
        (got.ttl, got.created_ms, got.expires_ms),
        (50, t, later + secs(50))
    );
    assert_eq!(compact(&got.options), b"{\"n\":1}");
    s.subscription_update(q("a"), id.clone().into(), no_change(), later)
        .await
        .unwrap();
    let same = s
        .subscription_get(q("a"), id.clone().into(), later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(same, got);
    // The new ttl rules expiry.
    assert_eq!(
        s.subscription_get(q("a"), id.into(), later + secs(50))
            .await
            .unwrap(),
        RNone
    );
}

/// Changing the subscriber to one another live subscription of the queue
/// has is `CONFLICT`; keeping its own subscriber is fine.
pub async fn subscription_update_to_a_taken_subscriber_is_conflict(s: Store) {
    let t = now();
    let a = create(&s, &q("a"), "http://example.com/a", 600, t).await;
    create(&s, &q("a"), "http://example.com/b", 600, t).await;
    let to_b = SubscriptionPatch {
        subscriber: RSome("http://example.com/b".into()),
        ..no_change()
    };
    assert_code(
        s.subscription_update(q("a"), a.clone().into(), to_b, t)
            .await,
        ErrorCode::CONFLICT,
    );
    let got = s
        .subscription_get(q("a"), a.clone().into(), t)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.subscriber.as_str(), "http://example.com/a");
    let to_self = SubscriptionPatch {
        subscriber: RSome("http://example.com/a".into()),
        ..no_change()
    };
    s.subscription_update(q("a"), a.into(), to_self, t)
        .await
        .unwrap();
}

/// Updating or confirming a missing or expired subscription is `SUBSCRIPTION_NOT_FOUND`.
pub async fn subscription_update_or_confirm_of_missing_is_not_found(s: Store) {
    let t = now();
    let id = create(&s, &q("a"), "http://example.com/a", 60, t).await;
    assert_code(
        s.subscription_update(q("a"), "unknown".into(), no_change(), t)
            .await,
        ErrorCode::SUBSCRIPTION_NOT_FOUND,
    );
    assert_code(
        s.subscription_confirm(q("a"), "unknown".into(), true, t)
            .await,
        ErrorCode::SUBSCRIPTION_NOT_FOUND,
    );
    let expired = t + secs(60);
    assert_code(
        s.subscription_update(q("a"), id.clone().into(), no_change(), expired)
            .await,
        ErrorCode::SUBSCRIPTION_NOT_FOUND,
    );
    assert_code(
        s.subscription_confirm(q("a"), id.into(), true, expired)
            .await,
        ErrorCode::SUBSCRIPTION_NOT_FOUND,
    );
}

/// Confirming sets the flag, and it can be cleared again.
pub async fn subscription_confirm_sets_and_clears_the_flag(s: Store) {
    let t = now();
    let id = create(&s, &q("a"), "http://example.com/a", 600, t).await;
    s.subscription_confirm(q("a"), id.clone().into(), true, t)
        .await
        .unwrap();
    assert!(
        s.subscription_get(q("a"), id.clone().into(), t)
            .await
            .unwrap()
            .unwrap()
            .confirmed
    );
    s.subscription_confirm(q("a"), id.clone().into(), false, t)
        .await
        .unwrap();
    assert!(
        !s.subscription_get(q("a"), id.into(), t)
            .await
            .unwrap()
            .unwrap()
            .confirmed
    );
}

/// Deleting removes the subscription; deleting a missing one succeeds.
pub async fn subscription_delete_removes_it_and_missing_delete_succeeds(s: Store) {
    let t = now();
    let id = create(&s, &q("a"), "http://example.com/a", 600, t).await;
    s.subscription_delete(q("a"), id.clone().into())
        .await
        .unwrap();
    assert_eq!(
        s.subscription_get(q("a"), id.clone().into(), t)
            .await
            .unwrap(),
        RNone
    );
    assert!(list_page(&s, &q("a"), None, 10, t).await.is_empty());
    s.subscription_delete(q("a"), id.into()).await.unwrap();
    s.subscription_delete(q("nope"), "unknown".into())
        .await
        .unwrap();
    // The subscriber may subscribe again.
    create(&s, &q("a"), "http://example.com/a", 600, t).await;
}

/// An expired subscription is invisible and no longer blocks its subscriber.
pub async fn expired_subscription_is_invisible_and_subscriber_can_subscribe_again(s: Store) {
    let t = now();
    let old = create(&s, &q("a"), "http://example.com/a", 60, t).await;
    let later = t + secs(60);
    assert!(s
        .subscription_get(q("a"), old.clone().into(), later - 1)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        s.subscription_get(q("a"), old.clone().into(), later)
            .await
            .unwrap(),
        RNone
    );
    assert!(list_page(&s, &q("a"), None, 10, later).await.is_empty());
    let again = s
        .subscription_create(q("a"), sub("http://example.com/a", 60), later)
        .await
        .unwrap();
    assert!(again.created);
    assert_ne!(again.id.to_string(), old);
    let listed = list_page(&s, &q("a"), None, 10, later).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, again.id);
    // With the expired one still stored beside it, the new one is the
    // subscriber's subscription.
    let once_more = s
        .subscription_create(q("a"), sub("http://example.com/a", 60), later + 1)
        .await
        .unwrap();
    assert_eq!((once_more.id, once_more.created), (again.id, false));
}

/// An update that changes the subscriber frees the old one and takes the
/// new one: creating the old subscriber makes a new subscription, creating
/// the new one finds the updated subscription.
pub async fn subscription_update_moves_its_subscriber(s: Store) {
    let t = now();
    let id = create(&s, &q("a"), "http://example.com/old", 600, t).await;
    let to_new = SubscriptionPatch {
        subscriber: RSome("http://example.com/new".into()),
        ..no_change()
    };
    s.subscription_update(q("a"), id.clone().into(), to_new, t)
        .await
        .unwrap();
    let new = s
        .subscription_create(q("a"), sub("http://example.com/new", 600), t)
        .await
        .unwrap();
    assert_eq!((new.id.to_string(), new.created), (id.clone(), false));
    let old = s
        .subscription_create(q("a"), sub("http://example.com/old", 600), t)
        .await
        .unwrap();
    assert!(old.created, "the old subscriber is free again");
    assert_ne!(old.id.to_string(), id);
    // And the moved subscription can be deleted and its subscriber reused.
    s.subscription_delete(q("a"), id.clone().into())
        .await
        .unwrap();
    let again = s
        .subscription_create(q("a"), sub("http://example.com/new", 600), t)
        .await
        .unwrap();
    assert!(again.created && again.id.as_str() != id);
}

/// The subscription's delivery cursor, read with `subscription_get`.
async fn cursor(s: &Store, queue: &QueueRef, id: &str, t: u64) -> u64 {
    s.subscription_get(queue.clone(), id.into(), t)
        .await
        .unwrap()
        .unwrap()
        .delivered_seq
}

/// A new subscription starts at the queue's last sequence number (0 for a
/// queue that never had a message): every message posted after it is
/// pending for it, none posted before. Listings return the cursor too, and
/// creating the same subscriber again does not move it.
pub async fn new_subscription_starts_at_the_queues_last_seq(s: Store) {
    let t = now();
    let on_missing = create(&s, &q("a"), "http://example.com/a", 600, t).await;
    assert_eq!(cursor(&s, &q("a"), &on_missing, t).await, 0);
    let first = post(&s, &q("a"), "c", &["1"], t).await;
    assert!(first[0].seq > 0, "a message posted after it is pending");
    assert_eq!(cursor(&s, &q("a"), &on_missing, t).await, 0);

    let posted = post(&s, &q("b"), "c", &["1", "2", "3"], t).await;
    let early = create(&s, &q("b"), "http://example.com/early", 600, t).await;
    assert_eq!(cursor(&s, &q("b"), &early, t).await, posted[2].seq);
    assert_eq!(s.queue_last_seq(q("b")).await.unwrap(), posted[2].seq);
    let more = post(&s, &q("b"), "c", &["4", "5"], t).await;
    assert_eq!(
        cursor(&s, &q("b"), &early, t).await,
        posted[2].seq,
        "posts do not move a cursor"
    );
    let late = create(&s, &q("b"), "http://example.com/late", 600, t).await;
    assert_eq!(cursor(&s, &q("b"), &late, t).await, more[1].seq);
    let listed: HashMap<String, u64> = list_page(&s, &q("b"), None, 10, t)
        .await
        .iter()
        .map(|r| (r.id.to_string(), r.delivered_seq))
        .collect();
    assert_eq!(
        listed,
        HashMap::from([(early.clone(), posted[2].seq), (late, more[1].seq)])
    );
    let again = s
        .subscription_create(q("b"), sub("http://example.com/early", 600), t)
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(cursor(&s, &q("b"), &early, t).await, posted[2].seq);

    // On a deleted queue it starts where the queue's numbers stand, so that
    // a message posted to the queue created again is pending.
    s.queue_delete(q("b")).await.unwrap();
    let after_delete = create(&s, &q("b"), "http://example.com/after", 600, t).await;
    let start = cursor(&s, &q("b"), &after_delete, t).await;
    assert_eq!(start, s.queue_last_seq(q("b")).await.unwrap());
    let next = post(&s, &q("b"), "c", &["6"], t).await;
    assert!(next[0].seq > start, "{} <= {start}", next[0].seq);
}

/// `subscription_advance` moves the cursor to the larger of the stored and
/// the given value: it never goes back.
pub async fn subscription_advance_moves_the_cursor_forward_only(s: Store) {
    let t = now();
    let id = create(&s, &q("a"), "http://example.com/a", 600, t).await;
    let other = create(&s, &q("a"), "http://example.com/other", 600, t).await;
    let posted = post(&s, &q("a"), "c", &["1", "2", "3", "4", "5"], t).await;
    let seq = |i: usize| posted[i].seq;
    let advance = |to: u64| {
        let s = s.clone();
        let id = id.clone();
        async move {
            s.subscription_advance(q("a"), id.into(), to, t)
                .await
                .unwrap()
        }
    };
    advance(seq(2)).await;
    assert_eq!(cursor(&s, &q("a"), &id, t).await, seq(2));
    advance(seq(1)).await;
    assert_eq!(cursor(&s, &q("a"), &id, t).await, seq(2), "never back");
    advance(seq(2)).await;
    assert_eq!(cursor(&s, &q("a"), &id, t).await, seq(2));
    advance(0).await;
    assert_eq!(cursor(&s, &q("a"), &id, t).await, seq(2));
    advance(seq(4)).await;
    assert_eq!(cursor(&s, &q("a"), &id, t).await, seq(4));
    let listed = list_page(&s, &q("a"), None, 10, t).await;
    let found = listed.iter().find(|r| r.id.as_str() == id).unwrap();
    assert_eq!(found.delivered_seq, seq(4), "listings return the cursor");
    assert_eq!(
        cursor(&s, &q("a"), &other, t).await,
        0,
        "other subscriptions keep theirs"
    );
    // Nothing else changes.
    let got = s
        .subscription_get(q("a"), id.into(), t)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.subscriber.as_str(), "http://example.com/a");
    assert_eq!((got.ttl, got.expires_ms), (600, t + secs(600)));
    assert!(!got.confirmed);
}

/// Updating (any field) and confirming a subscription keep its cursor.
pub async fn subscription_update_and_confirm_keep_the_cursor(s: Store) {
    let t = now();
    let id = create(&s, &q("a"), "http://example.com/a", 600, t).await;
    let posted = post(&s, &q("a"), "c", &["1", "2", "3"], t).await;
    s.subscription_advance(q("a"), id.clone().into(), posted[1].seq, t)
        .await
        .unwrap();
    let patch = SubscriptionPatch {
        subscriber: RSome("http://example.com/b".into()),
        ttl: RSome(900),
        options: RSome(b"{\"n\":1}".to_vec().into()),
    };
    s.subscription_update(q("a"), id.clone().into(), patch, t + 1)
        .await
        .unwrap();
    assert_eq!(cursor(&s, &q("a"), &id, t + 1).await, posted[1].seq);
    s.subscription_confirm(q("a"), id.clone().into(), true, t + 1)
        .await
        .unwrap();
    let got = s
        .subscription_get(q("a"), id.into(), t + 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.delivered_seq, posted[1].seq);
    assert!(got.confirmed);
    assert_eq!(got.subscriber.as_str(), "http://example.com/b");
}

/// Advancing a missing, deleted or expired subscription is
/// `SUBSCRIPTION_NOT_FOUND` and writes nothing.
pub async fn subscription_advance_of_missing_or_expired_is_not_found(s: Store) {
    let t = now();
    let id = create(&s, &q("a"), "http://example.com/a", 60, t).await;
    let posted = post(&s, &q("a"), "c", &["1", "2"], t).await;
    assert_code(
        s.subscription_advance(q("a"), "unknown".into(), 1, t).await,
        ErrorCode::SUBSCRIPTION_NOT_FOUND,
    );
    assert_code(
        s.subscription_advance(q("b"), id.clone().into(), 1, t)
            .await,
        ErrorCode::SUBSCRIPTION_NOT_FOUND,
    );
    assert_code(
        s.subscription_advance(q("a"), id.clone().into(), posted[1].seq, t + secs(60))
            .await,
        ErrorCode::SUBSCRIPTION_NOT_FOUND,
    );
    assert_eq!(cursor(&s, &q("a"), &id, t).await, 0, "nothing was written");
    let gone = create(&s, &q("a"), "http://example.com/gone", 600, t).await;
    s.subscription_delete(q("a"), gone.clone().into())
        .await
        .unwrap();
    assert_code(
        s.subscription_advance(q("a"), gone.into(), 1, t).await,
        ErrorCode::SUBSCRIPTION_NOT_FOUND,
    );
}

/// One page of `subscription_scan`.
async fn scan_page(s: &Store, marker: Option<&str>, limit: u32, t: u64) -> SubscriptionScanPage {
    s.subscription_scan(marker.map(RString::from).into(), limit, t)
        .await
        .unwrap()
}

/// `(project, queue, id)` of every entry, scanning `limit` at a time until
/// `next_marker` is `RNone`. Checks each page's size.
async fn scan_all(s: &Store, limit: u32, t: u64) -> Vec<(String, String, String)> {
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..1000 {
        let page = scan_page(s, marker.as_deref(), limit, t).await;
        assert!(
            page.entries.len() <= limit as usize,
            "a page holds at most limit"
        );
        seen.extend(page.entries.iter().map(|e| {
            (
                e.project.to_string(),
                e.record.queue.to_string(),
                e.record.id.to_string(),
            )
        }));
        match page.next_marker {
            RSome(next) => marker = Some(next.to_string()),
            RNone => return seen,
        }
    }
    panic!("the scan did not end after 1000 pages");
}

/// The scan returns every live subscription of every project and queue
/// exactly once, `limit` at a time, with the same records `get` gives, in
/// a stable order; expired ones are skipped; `next_marker` is `RNone` after
/// the last page.
pub async fn subscription_scan_pages_through_every_live_subscription_once(s: Store) {
    let t = now();
    let empty = scan_page(&s, None, 10, t).await;
    assert!(empty.entries.is_empty());
    assert_eq!(empty.next_marker, RNone, "an empty store is one last page");

    let mut live = HashSet::new();
    for project in ["p1", "p2", "p3"] {
        for queue in ["a", "b"] {
            let qr = QueueRef::new(project, queue);
            post(&s, &qr, "c", &["1"], t).await;
            for i in 0..2 {
                let id = create(&s, &qr, &format!("http://example.com/{i}"), 600, t).await;
                live.insert((project.to_string(), queue.to_string(), id));
            }
            // Expired by the time of the scan.
            create(&s, &qr, "http://example.com/short", 60, t).await;
        }
    }
    let later = t + secs(60);
    for limit in [1, 2, 5, 100] {
        let seen = scan_all(&s, limit, later).await;
        let unique: HashSet<_> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "limit {limit}: each once");
        assert_eq!(
            unique, live,
            "limit {limit}: every live one, no expired one"
        );
    }
    let order = scan_all(&s, 100, later).await;
    assert_eq!(
        scan_all(&s, 2, later).await,
        order,
        "pages follow one stable order"
    );
    let whole = scan_page(&s, None, 100, later).await;
    assert_eq!(whole.entries.len(), live.len());
    assert_eq!(whole.next_marker, RNone, "the last page says so");

    // The records are those of the queue's own reads, cursor included.
    let queue = QueueRef::new("p2", "b");
    let some = whole
        .entries
        .iter()
        .find(|e| e.project.as_str() == "p2" && e.record.queue.as_str() == "b")
        .unwrap();
    s.subscription_advance(queue.clone(), some.record.id.clone(), 7, later)
        .await
        .unwrap();
    let after = scan_page(&s, None, 100, later).await;
    let scanned = after
        .entries
        .iter()
        .find(|e| e.project == some.project && e.record.id == some.record.id)
        .unwrap();
    let got = s
        .subscription_get(queue, some.record.id.clone(), later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(scanned.record, got);
    assert_eq!(got.delivered_seq, 7);
}

/// A scan goes on where it stopped even if the subscription its marker came
/// from was deleted in between: no repeats, nothing skipped.
pub async fn subscription_scan_continues_after_its_marker_is_deleted(s: Store) {
    let t = now();
    let mut all = Vec::new();
    for queue in ["a", "b"] {
        for i in 0..3 {
            let id = create(&s, &q(queue), &format!("http://example.com/{i}"), 600, t).await;
            all.push((queue.to_string(), id));
        }
    }
    let first = scan_page(&s, None, 2, t).await;
    assert_eq!(first.entries.len(), 2);
    let RSome(marker) = first.next_marker else {
        panic!("more pages follow");
    };
    let last = &first.entries[1].record;
    s.subscription_delete(q(&last.queue), last.id.clone())
        .await
        .unwrap();
    let mut seen: Vec<(String, String)> = first
        .entries
        .iter()
        .map(|e| (e.record.queue.to_string(), e.record.id.to_string()))
        .collect();
    let mut marker: Option<String> = Some(marker.to_string());
    while let Some(m) = marker {
        let page = scan_page(&s, Some(m.as_str()), 2, t).await;
        seen.extend(
            page.entries
                .iter()
                .map(|e| (e.record.queue.to_string(), e.record.id.to_string())),
        );
        marker = page.next_marker.into_option().map(|m| m.to_string());
        assert!(seen.len() <= all.len(), "no repeats");
    }
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "each once");
    assert_eq!(unique, all.into_iter().collect::<HashSet<_>>());
}
