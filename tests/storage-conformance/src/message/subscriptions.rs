//! Subscriptions: create (one per subscriber), list, get, update, confirm,
//! delete, expiry.

use std::collections::HashSet;

use plugin_api::{
    storage::{
        MessageStore, NewSubscription, QueueRef, SubscriptionListQuery, SubscriptionPatch,
        SubscriptionRecord,
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
}
