//! Claims: create, grace, counts, dead-lettering, get, update, delete, and
//! the claim rules of message deletion.

use plugin_api::{
    storage::{MessageStore, StoredMessage},
    types::{
        ROption::{RNone, RSome},
        RVec,
    },
    ErrorCode,
};

use crate::support::*;

/// A claim takes up to `limit` of the oldest visible, unclaimed messages
/// and stamps them with its id and expiry.
pub async fn claim_takes_oldest_visible_unclaimed_messages_up_to_limit(s: Store) {
    let t = now();
    let messages: RVec<_> = vec![
        msg(300, 0, "1"),
        msg(300, 60, "delayed"),
        msg(300, 0, "3"),
        msg(300, 0, "4"),
    ]
    .into();
    post_messages(&s, &q("a"), "c", messages, t).await;
    let c = claim(&s, &q("a"), claim_request(60, 0, 2), t).await;
    assert_eq!(bodies(&c.messages), ["1", "3"]);
    assert_eq!((c.ttl, c.updated_ms, c.expires_ms), (60, t, t + secs(60)));
    for m in c.messages.iter() {
        let stamp = m.claim.clone().unwrap();
        assert_eq!((stamp.id, stamp.expires_ms), (c.id.clone(), c.expires_ms));
        assert!(m.is_claimed(t));
    }
    let next = claim(&s, &q("a"), claim_request(60, 0, 5), t).await;
    assert_eq!(bodies(&next.messages), ["4"]);
    assert_ne!(next.id, c.id);
}

/// A claim on an empty or missing queue still returns an id, with no messages.
pub async fn claim_on_empty_or_missing_queue_returns_an_id_and_no_messages(s: Store) {
    let t = now();
    let c = claim(&s, &q("nope"), claim_request(60, 0, 5), t).await;
    assert!(!c.id.is_empty());
    assert!(c.messages.is_empty());
    s.queue_create(q("empty"), b"{}".to_vec().into(), t)
        .await
        .unwrap();
    let c = claim(&s, &q("empty"), claim_request(60, 0, 5), t).await;
    assert!(!c.id.is_empty());
    assert!(c.messages.is_empty());
}

/// A message under a live claim is not claimed again; once the claim
/// expires it is, and its claim count grows with each claim.
pub async fn claim_count_grows_with_each_claim_and_live_claims_are_exclusive(s: Store) {
    let t = now();
    let posted = post(&s, &q("a"), "c", &["1"], t).await;
    let first = claim(&s, &q("a"), claim_request(30, 60, 10), t).await;
    assert_eq!(first.messages[0].claim_count, 1);
    assert!(claim(&s, &q("a"), claim_request(30, 60, 10), t + secs(29))
        .await
        .messages
        .is_empty());
    let later = t + secs(30);
    let second = claim(&s, &q("a"), claim_request(30, 60, 10), later).await;
    assert_eq!(ids(&second.messages), [posted[0].id.to_string()]);
    assert_eq!(second.messages[0].claim_count, 2);
    let stored = get_one(&s, &q("a"), &posted[0].id, later).await.unwrap();
    assert_eq!(stored.claim_count, 2);
    assert_eq!(claim_of(&stored), Some(second.id.to_string()));
}

/// A message that would expire before its claim lives until claim expiry
/// plus grace, and its reported ttl matches its new lifetime.
pub async fn grace_extends_messages_that_would_expire_before_the_claim(s: Store) {
    let t = now();
    let posted = post_messages(&s, &q("a"), "c", vec![msg(60, 0, "short")].into(), t).await;
    let at = t + secs(20);
    let c = claim(&s, &q("a"), claim_request(100, 30, 1), at).await;
    let expected_expiry = at + secs(100) + secs(30);
    assert_eq!(c.messages[0].expires_ms, expected_expiry);
    let m = get_one(&s, &q("a"), &posted[0].id, at).await.unwrap();
    assert_eq!(m.expires_ms, expected_expiry);
    assert_eq!(m.created_ms, t);
    // Not Zaqar's `claim ttl + grace` (130): age + ttl must give the expiry.
    assert_eq!(m.ttl, 150);
    // It outlives its original ttl.
    assert!(get_one(&s, &q("a"), &posted[0].id, t + secs(61))
        .await
        .is_some());
}

/// Messages that outlive the claim keep their expiry and ttl.
pub async fn grace_leaves_messages_that_outlive_the_claim_alone(s: Store) {
    let t = now();
    post_messages(&s, &q("a"), "c", vec![msg(600, 0, "long")].into(), t).await;
    let c = claim(&s, &q("a"), claim_request(100, 30, 1), t).await;
    assert_eq!(c.messages[0].expires_ms, t + secs(600));
    assert_eq!(c.messages[0].ttl, 600);
}

/// `claim_get` returns a live claim with its live messages, and nothing once
/// it expired or for unknown ids.
pub async fn claim_get_returns_the_live_claim_with_its_live_messages(s: Store) {
    let t = now();
    let posted = post(&s, &q("a"), "c", &["1", "2", "3"], t).await;
    let c = claim(&s, &q("a"), claim_request(60, 0, 2), t).await;
    let got = s
        .claim_get(q("a"), c.id.clone(), t + 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.id.clone(), got.ttl, got.updated_ms, got.expires_ms),
        (c.id.clone(), 60, t, t + secs(60))
    );
    assert_eq!(bodies(&got.messages), ["1", "2"]);

    // A message deleted with the claim leaves the claim.
    s.message_delete(q("a"), posted[0].id.clone(), RSome(c.id.clone()), t)
        .await
        .unwrap();
    let got = s.claim_get(q("a"), c.id.clone(), t).await.unwrap().unwrap();
    assert_eq!(bodies(&got.messages), ["2"]);

    assert_eq!(
        s.claim_get(q("a"), c.id.clone(), t + secs(60))
            .await
            .unwrap(),
        RNone
    );
    assert_eq!(
        s.claim_get(q("a"), "unknown".into(), t).await.unwrap(),
        RNone
    );
    assert_eq!(
        s.claim_get(q("nope"), c.id.clone(), t).await.unwrap(),
        RNone
    );
    assert_eq!(s.claim_get(q("b"), c.id, t).await.unwrap(), RNone);
}

/// Renewing sets expiry = now + ttl on the claim and its messages, and
/// applies grace again.
pub async fn claim_update_renews_the_claim_and_applies_grace(s: Store) {
    let t = now();
    post_messages(
        &s,
        &q("a"),
        "c",
        vec![msg(100, 0, "1"), msg(10_000, 0, "2")].into(),
        t,
    )
    .await;
    let c = claim(&s, &q("a"), claim_request(30, 0, 2), t).await;
    let at = t + secs(20);
    s.claim_update(q("a"), c.id.clone(), 200, 50, at)
        .await
        .unwrap();
    let got = s
        .claim_get(q("a"), c.id.clone(), at)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.ttl, got.updated_ms, got.expires_ms),
        (200, at, at + secs(200))
    );
    let short = &got.messages[0];
    assert_eq!(short.claim.clone().unwrap().expires_ms, at + secs(200));
    assert_eq!(short.expires_ms, at + secs(250));
    assert_eq!(short.ttl, 270);
    assert_eq!(got.messages[1].expires_ms, t + secs(10_000));
    // The renewed claim still holds its messages past the old expiry.
    assert!(list(&s, &q("a"), defaults(10), t + secs(31))
        .await
        .is_empty());
}

/// Renewing an unknown or expired claim is `CLAIM_NOT_FOUND`.
pub async fn claim_update_of_unknown_or_expired_claim_is_claim_not_found(s: Store) {
    let t = now();
    post(&s, &q("a"), "c", &["1"], t).await;
    let c = claim(&s, &q("a"), claim_request(30, 0, 1), t).await;
    assert_code(
        s.claim_update(q("a"), c.id.clone(), 60, 0, t + secs(30))
            .await,
        ErrorCode::CLAIM_NOT_FOUND,
    );
    assert_code(
        s.claim_update(q("a"), "unknown".into(), 60, 0, t).await,
        ErrorCode::CLAIM_NOT_FOUND,
    );
    assert_code(
        s.claim_update(q("nope"), c.id, 60, 0, t).await,
        ErrorCode::CLAIM_NOT_FOUND,
    );
}

/// Deleting a claim releases its messages at once.
pub async fn claim_delete_releases_its_messages_at_once(s: Store) {
    let t = now();
    post(&s, &q("a"), "c", &["1", "2"], t).await;
    let c = claim(&s, &q("a"), claim_request(60, 0, 2), t).await;
    s.claim_delete(q("a"), c.id.clone(), t).await.unwrap();
    assert_eq!(s.claim_get(q("a"), c.id.clone(), t).await.unwrap(), RNone);
    let listed = list(&s, &q("a"), defaults(10), t).await;
    assert_eq!(bodies(&listed), ["1", "2"]);
    assert!(listed.iter().all(|m| !m.is_claimed(t)));
    let again = claim(&s, &q("a"), claim_request(60, 0, 2), t).await;
    assert_eq!(bodies(&again.messages), ["1", "2"]);
    assert!(
        again.messages.iter().all(|m| m.claim_count == 2),
        "the count is kept"
    );
}

/// Deleting an unknown claim succeeds.
pub async fn claim_delete_of_unknown_claim_succeeds(s: Store) {
    let t = now();
    s.claim_delete(q("a"), "unknown".into(), t).await.unwrap();
    post(&s, &q("a"), "c", &["1"], t).await;
    s.claim_delete(q("a"), "ffffffffffffffffffffffff".into(), t)
        .await
        .unwrap();
}

/// A message under a live claim cannot be deleted without a claim id.
pub async fn claimed_message_cannot_be_deleted_without_claim_id(s: Store) {
    let t = now();
    let posted = post(&s, &q("a"), "c", &["1"], t).await;
    claim(&s, &q("a"), claim_request(60, 0, 1), t).await;
    assert_code(
        s.message_delete(q("a"), posted[0].id.clone(), RNone, t)
            .await,
        ErrorCode::MESSAGE_IS_CLAIMED,
    );
    assert!(get_one(&s, &q("a"), &posted[0].id, t).await.is_some());
}

/// A message under a live claim cannot be deleted with another claim's id.
pub async fn claimed_message_cannot_be_deleted_with_another_claims_id(s: Store) {
    let t = now();
    let posted = post(&s, &q("a"), "c", &["1", "2"], t).await;
    claim(&s, &q("a"), claim_request(60, 0, 1), t).await;
    let other = claim(&s, &q("a"), claim_request(60, 0, 1), t).await;
    assert_code(
        s.message_delete(q("a"), posted[0].id.clone(), RSome(other.id), t)
            .await,
        ErrorCode::MESSAGE_IS_CLAIMED,
    );
    assert_code(
        s.message_delete(q("a"), posted[0].id.clone(), RSome("garbage".into()), t)
            .await,
        ErrorCode::MESSAGE_IS_CLAIMED,
    );
}

/// A refused delete changes nothing: the message keeps its body and its
/// claim, and the queue's stats stay as they were.
pub async fn refused_deletes_change_nothing(s: Store) {
    let t = now();
    let posted = post(&s, &q("a"), "c", &["1", "2"], t).await;
    let c = claim(&s, &q("a"), claim_request(60, 0, 1), t).await;
    let before = s.queue_stats(q("a"), t).await.unwrap();
    assert_eq!((before.claimed, before.free, before.total), (1, 1, 2));
    let refused = [
        (posted[0].id.clone(), RNone, ErrorCode::MESSAGE_IS_CLAIMED),
        (
            posted[0].id.clone(),
            RSome("garbage".into()),
            ErrorCode::MESSAGE_IS_CLAIMED,
        ),
        (
            posted[1].id.clone(),
            RSome(c.id.clone()),
            ErrorCode::MESSAGE_NOT_CLAIMED,
        ),
    ];
    for (id, claim_id, code) in refused {
        assert_code(s.message_delete(q("a"), id, claim_id, t).await, code);
    }
    let after = s.queue_stats(q("a"), t).await.unwrap();
    assert_eq!(after, before);
    let held = get_one(&s, &q("a"), &posted[0].id, t).await.unwrap();
    assert_eq!((held.body.as_slice(), held.claim_count), (&b"1"[..], 1));
    assert!(held.is_claimed(t));
    let free = get_one(&s, &q("a"), &posted[1].id, t).await.unwrap();
    assert!(!free.is_claimed(t));
    s.message_delete(q("a"), posted[0].id.clone(), RSome(c.id), t)
        .await
        .unwrap();
    let stats = s.queue_stats(q("a"), t).await.unwrap();
    assert_eq!((stats.claimed, stats.free, stats.total), (0, 1, 1));
}

/// A message under a live claim is deleted with its claim's id.
pub async fn claimed_message_is_deleted_with_its_claim_id(s: Store) {
    let t = now();
    let posted = post(&s, &q("a"), "c", &["1"], t).await;
    let c = claim(&s, &q("a"), claim_request(60, 0, 1), t).await;
    s.message_delete(q("a"), posted[0].id.clone(), RSome(c.id), t)
        .await
        .unwrap();
    assert!(get_one(&s, &q("a"), &posted[0].id, t).await.is_none());
}

/// Deleting an unclaimed message with a claim id that no live claim has is
/// `CLAIM_NOT_FOUND`.
pub async fn deleting_unclaimed_message_with_unknown_claim_id_is_claim_not_found(s: Store) {
    let t = now();
    let posted = post(&s, &q("a"), "c", &["1"], t).await;
    assert_code(
        s.message_delete(
            q("a"),
            posted[0].id.clone(),
            RSome("ffffffffffffffffffffffff".into()),
            t,
        )
        .await,
        ErrorCode::CLAIM_NOT_FOUND,
    );
    assert!(get_one(&s, &q("a"), &posted[0].id, t).await.is_some());
}

/// Deleting an unclaimed message with the id of a live claim (holding other
/// messages) is `MESSAGE_NOT_CLAIMED`.
pub async fn deleting_unclaimed_message_with_live_claim_id_is_message_not_claimed(s: Store) {
    let t = now();
    let posted = post(&s, &q("a"), "c", &["1", "2"], t).await;
    let c = claim(&s, &q("a"), claim_request(60, 0, 1), t).await;
    assert_code(
        s.message_delete(q("a"), posted[1].id.clone(), RSome(c.id), t)
            .await,
        ErrorCode::MESSAGE_NOT_CLAIMED,
    );
}

/// Once its claim expired, a message is deleted without a claim id, and
/// presenting the expired claim's id is `CLAIM_NOT_FOUND`.
pub async fn message_whose_claim_expired_is_deleted_without_claim_id(s: Store) {
    let t = now();
    let posted = post(&s, &q("a"), "c", &["1", "2"], t).await;
    let c = claim(&s, &q("a"), claim_request(30, 0, 2), t).await;
    let later = t + secs(30);
    assert_code(
        s.message_delete(q("a"), posted[1].id.clone(), RSome(c.id.clone()), later)
            .await,
        ErrorCode::CLAIM_NOT_FOUND,
    );
    s.message_delete(q("a"), posted[0].id.clone(), RNone, later)
        .await
        .unwrap();
    assert!(get_one(&s, &q("a"), &posted[0].id, later).await.is_none());
}

fn ids_of(messages: &[StoredMessage]) -> Vec<String> {
    ids(messages)
}

/// A message already claimed `max_claim_count` times is moved to the
/// dead-letter queue (created if missing) instead of being claimed: a new
/// sequence number there, no claim, expiry = now + the policy's ttl.
pub async fn message_claimed_too_often_moves_to_the_dead_letter_queue(s: Store) {
    let t = now();
    let posted = post(&s, &q("a"), "c", &["tired", "fresh"], t).await;
    // Claim only the first message twice (limit 1), letting each claim expire.
    let c1 = claim(
        &s,
        &q("a"),
        claim_request_with_dlq(10, 1, 2, "dlq", Some(500)),
        t,
    )
    .await;
    assert_eq!(ids_of(&c1.messages), [posted[0].id.to_string()]);
    let t2 = t + secs(10);
    let c2 = claim(
        &s,
        &q("a"),
        claim_request_with_dlq(10, 1, 2, "dlq", Some(500)),
        t2,
    )
    .await;
    assert_eq!(c2.messages[0].claim_count, 2);
    assert_eq!(ids_of(&c2.messages), [posted[0].id.to_string()]);
    let t3 = t + secs(20);
    // Limit 10: whether a moved message counts against the limit is the
    // store's choice; either way "fresh" is claimed.
    let c3 = claim(
        &s,
        &q("a"),
        claim_request_with_dlq(10, 10, 2, "dlq", Some(500)),
        t3,
    )
    .await;
    // "tired" moved instead of being claimed; "fresh" was claimed.
    assert_eq!(bodies(&c3.messages), ["fresh"]);
    assert!(get_one(&s, &q("a"), &posted[0].id, t3).await.is_none());
    assert_eq!(
        bodies(&list(&s, &q("a"), everything(10), t3).await),
        ["fresh"]
    );

    assert!(
        s.queue_get_metadata(q("dlq")).await.unwrap().is_some(),
        "the DLQ was created"
    );
    let moved = list(&s, &q("dlq"), everything(10), t3).await;
    assert_eq!(bodies(&moved), ["tired"]);
    let m = &moved[0];
    assert_eq!(m.claim_count, 2);
    assert!(!m.is_claimed(t3));
    assert_eq!(m.expires_ms, t3 + secs(500));
    assert_eq!(m.created_ms, t);
    assert_eq!(m.client_id.as_str(), "c");
    // It can be claimed in the dead-letter queue like any other message.
    let c4 = claim(&s, &q("dlq"), claim_request(10, 0, 10), t3).await;
    assert_eq!(bodies(&c4.messages), ["tired"]);
}

/// Without a message ttl in the policy a moved message keeps its expiry,
/// and the dead-letter queue numbers it after its own messages.
pub async fn dead_lettered_message_keeps_its_expiry_without_policy_ttl(s: Store) {
    let t = now();
    let old = post(&s, &q("dlq"), "c", &["already-there"], t).await;
    post_messages(&s, &q("a"), "c", vec![msg(1000, 0, "tired")].into(), t).await;
    claim(
        &s,
        &q("a"),
        claim_request_with_dlq(10, 1, 1, "dlq", None),
        t,
    )
    .await;
    let later = t + secs(10);
    let c = claim(
        &s,
        &q("a"),
        claim_request_with_dlq(10, 1, 1, "dlq", None),
        later,
    )
    .await;
    assert!(c.messages.is_empty(), "the only message was moved");
    let moved = list(&s, &q("dlq"), everything(10), later).await;
    assert_eq!(bodies(&moved), ["already-there", "tired"]);
    assert!(moved[1].seq > old[0].seq);
    assert_eq!(moved[1].expires_ms, t + secs(1000));
    assert_eq!(moved[1].ttl, 1000);
}
