//! Leases (`lease_acquire`, `lease_release`, plugin-api 1.1): hosts sharing
//! a store take a lease per subscription so that one host at a time
//! delivers it. Taking or renewing is atomic across every host.

use std::sync::Arc;

use crate::support::*;
use plugin_api::storage::MessageStore;

const TTL: u64 = 30_000;

/// `lease_acquire`; a store without leases (`UNSUPPORTED`) fails here:
/// leases are part of the 1.1 contract.
async fn acquire(s: &Store, key: &str, holder: &str, ttl_ms: u64, now_ms: u64) -> bool {
    s.lease_acquire(key.into(), holder.into(), ttl_ms, now_ms)
        .await
        .expect("lease_acquire succeeds (plugin-api 1.1: every store has leases)")
}

async fn release(s: &Store, key: &str, holder: &str) {
    s.lease_release(key.into(), holder.into())
        .await
        .expect("lease_release succeeds (plugin-api 1.1: every store has leases)")
}

/// The first acquirer of a free lease gets it; another holder is refused
/// while it is live; other keys are independent.
pub async fn lease_first_acquirer_wins_and_others_are_refused_while_live(s: Store) {
    let t = now();
    assert!(
        acquire(&s, "sub-1", "host-a", TTL, t).await,
        "a free lease is taken by its first acquirer"
    );
    assert!(
        !acquire(&s, "sub-1", "host-b", TTL, t + 1).await,
        "another holder is refused while the lease is live"
    );
    assert!(
        !acquire(&s, "sub-1", "host-b", TTL, t + TTL - 1).await,
        "another holder is refused until the very end of the lease"
    );
    assert!(
        acquire(&s, "sub-2", "host-b", TTL, t).await,
        "leases with other keys are independent"
    );
}

/// The holder renews its lease: acquiring again succeeds and moves its
/// end to `now + ttl`.
pub async fn lease_holder_renews_its_lease(s: Store) {
    let t = now();
    assert!(acquire(&s, "sub", "host-a", TTL, t).await);
    assert!(
        acquire(&s, "sub", "host-a", TTL, t + TTL - 1000).await,
        "the holder renews its own live lease"
    );
    assert!(
        !acquire(&s, "sub", "host-b", TTL, t + TTL + 1000).await,
        "a renewed lease lasts ttl from the renewal"
    );
    assert!(
        acquire(&s, "sub", "host-a", TTL, t + 3 * TTL).await,
        "the holder takes its own expired lease back too"
    );
}

/// Once a lease has expired, another holder takes it over.
pub async fn expired_lease_is_taken_over(s: Store) {
    let t = now();
    assert!(acquire(&s, "sub", "host-a", TTL, t).await);
    assert!(
        acquire(&s, "sub", "host-b", TTL, t + TTL).await,
        "an expired lease is taken over by another holder"
    );
    assert!(
        !acquire(&s, "sub", "host-a", TTL, t + TTL + 1).await,
        "the old holder is refused once another holder took it over"
    );
}

/// Releasing frees the lease at once; releasing someone else's lease (or
/// a free one) changes nothing and succeeds.
pub async fn lease_release_frees_it_and_another_holders_release_does_nothing(s: Store) {
    let t = now();
    assert!(acquire(&s, "sub", "host-a", TTL, t).await);
    release(&s, "sub", "host-b").await;
    assert!(
        !acquire(&s, "sub", "host-b", TTL, t + 1).await,
        "releasing another holder's lease does nothing"
    );
    release(&s, "sub", "host-a").await;
    assert!(
        acquire(&s, "sub", "host-b", TTL, t + 2).await,
        "a released lease is free at once"
    );
    release(&s, "never-taken", "host-a").await;
}

/// 32 tasks race for one free lease: exactly one wins.
pub async fn concurrent_lease_acquirers_have_exactly_one_winner(s: Store) {
    let t = now();
    let mut tasks = Vec::new();
    for host in 0..32 {
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            acquire(&s, "contended", &format!("host-{host}"), TTL, t).await
        }));
    }
    let mut winners = 0;
    for task in tasks {
        if task.await.expect("acquirer task") {
            winners += 1;
        }
    }
    assert_eq!(
        winners, 1,
        "concurrent acquirers of a free lease: exactly one wins"
    );
}

/// Shared backends: a lease taken through one instance refuses a holder
/// asking through another, until released there.
pub async fn leases_are_exclusive_across_instances(s: Store, other: Store) {
    let t = now();
    assert!(acquire(&s, "sub", "host-a", TTL, t).await);
    assert!(
        !acquire(&other, "sub", "host-b", TTL, t + 1).await,
        "a lease taken through one instance is refused through another"
    );
    release(&s, "sub", "host-a").await;
    assert!(
        acquire(&other, "sub", "host-b", TTL, t + 2).await,
        "a lease released through one instance is free through another"
    );
}
