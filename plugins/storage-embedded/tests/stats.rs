//! `queue_stats` comes from counters kept in the write transaction plus the
//! due part of the expiry indexes, not from a scan of the queue. These tests
//! check it against what a scan of the queue says, at many instants, across
//! everything that changes the counts: posts, claims (and their expiry,
//! renewal, release), message expiry, deletes, pops, dead-letter moves,
//! sweeps, purge, queue deletion and a reopen of the data directory.

use std::time::{SystemTime, UNIX_EPOCH};

use plugin_api::{
    storage::{
        ClaimRequest, DeadLetterPolicy, MessageListQuery, MessageStore, NewMessage, QueueRef,
        QueueStats, StoredClaim,
    },
    types::{
        ROption::{RNone, RSome},
        RVec,
    },
};
use storage_embedded::{EmbeddedConfig, EmbeddedMessageStore};

const SECOND: u64 = 1000;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

fn open(dir: &tempfile::TempDir) -> EmbeddedMessageStore {
    EmbeddedMessageStore::open(&EmbeddedConfig {
        path: dir.path().join("data"),
        // The tests sweep when they choose to.
        sweep_interval_secs: 3600,
        ..EmbeddedConfig::default()
    })
    .expect("the store opens")
}

fn q(name: &str) -> QueueRef {
    QueueRef::new("stats", name)
}

fn message(ttl: u32, delay: u32) -> NewMessage {
    NewMessage {
        ttl,
        delay,
        body: b"{}".to_vec().into(),
    }
}

/// The stats as a scan of every live message of the queue gives them.
async fn scanned(s: &EmbeddedMessageStore, queue: &QueueRef, now_ms: u64) -> QueueStats {
    let all = s
        .message_list(
            queue.clone(),
            MessageListQuery {
                after_seq: RNone,
                limit: u32::MAX,
                exclude_client: RNone,
                include_claimed: true,
                include_delayed: true,
            },
            now_ms,
        )
        .await
        .unwrap();
    let claimed = all
        .iter()
        .filter(|m| matches!(&m.claim, RSome(c) if c.expires_ms > now_ms))
        .count() as u64;
    let summary = |m: &plugin_api::storage::StoredMessage| plugin_api::storage::MessageSummary {
        id: m.id.clone(),
        created_ms: m.created_ms,
    };
    QueueStats {
        claimed,
        free: all.len() as u64 - claimed,
        total: all.len() as u64,
        oldest: all.first().map(summary).into(),
        newest: all.last().map(summary).into(),
    }
}

/// The stats agree with the scan at `now_ms` and at instants around every
/// expiry that can matter in these tests.
async fn agree(s: &EmbeddedMessageStore, queue: &QueueRef, base: u64, now_ms: u64, what: &str) {
    let mut instants = vec![now_ms];
    for secs in [0, 10, 20, 29, 30, 31, 40, 50, 60, 61, 90, 120, 200, 400] {
        let at = base + secs * SECOND;
        if at >= now_ms {
            instants.extend([at - 1, at]);
        }
    }
    for at in instants {
        let stats = s.queue_stats(queue.clone(), at).await.unwrap();
        assert_eq!(
            stats,
            scanned(s, queue, at).await,
            "{what}: stats of {} at base + {} ms",
            queue.name,
            at - base
        );
    }
}

async fn claim(
    s: &EmbeddedMessageStore,
    queue: &QueueRef,
    ttl: u32,
    grace: u32,
    limit: u32,
    now_ms: u64,
) -> StoredClaim {
    s.claim_create(
        queue.clone(),
        ClaimRequest {
            ttl,
            grace,
            limit,
            dead_letter: RNone,
        },
        now_ms,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn stats_stay_exact_across_claims_expiry_deletes_sweeps_purge_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let work = q("work");
    let t = now();
    let mut s = open(&dir);
    agree(&s, &work, t, t, "missing queue").await;

    // 12 messages: short (30 s) and long (300 s) lives, some delayed.
    let batch: Vec<_> = (0..12)
        .map(|i| {
            message(
                if i % 3 == 0 { 30 } else { 300 },
                if i == 5 { 100 } else { 0 },
            )
        })
        .collect();
    let posted = s
        .message_post(work.clone(), "c".into(), RVec::from(batch), t)
        .await
        .unwrap();
    agree(&s, &work, t, t, "after the post").await;

    // A claim of 4 for 20 s without grace, one of 3 for 60 s with grace
    // (its short-lived message now lives until 60 + 30 s).
    let short = claim(&s, &work, 20, 0, 4, t).await;
    assert_eq!(short.messages.len(), 4);
    let long = claim(&s, &work, 60, 30, 3, t).await;
    assert_eq!(long.messages.len(), 3);
    agree(&s, &work, t, t, "after two claims").await;

    // Deletes: a claimed message with its claim, a free one, a pop of 1,
    // a bulk delete of a claimed and a free one.
    s.message_delete(
        work.clone(),
        long.messages[0].id.clone(),
        RSome(long.id.clone()),
        t,
    )
    .await
    .unwrap();
    s.message_delete(work.clone(), posted[11].id.clone(), RNone, t)
        .await
        .unwrap();
    assert_eq!(s.message_pop(work.clone(), 1, t).await.unwrap().len(), 1);
    s.message_delete_many(
        work.clone(),
        vec![long.messages[1].id.clone(), posted[10].id.clone()].into(),
        t,
    )
    .await
    .unwrap();
    agree(&s, &work, t, t, "after deletes").await;

    // 25 s later the short claim has lapsed: its messages are free again
    // and are claimed anew (their old stamp replaced), one is released.
    let later = t + 25 * SECOND;
    let again = claim(&s, &work, 30, 0, 10, later).await;
    assert!(!again.messages.is_empty());
    agree(&s, &work, t, later, "after reclaiming lapsed messages").await;
    s.claim_update(work.clone(), long.id.clone(), 100, 0, later)
        .await
        .unwrap();
    agree(&s, &work, t, later, "after renewing a claim").await;
    s.claim_delete(work.clone(), again.id.clone(), later)
        .await
        .unwrap();
    agree(&s, &work, t, later, "after releasing a claim").await;
    // A claim left to lapse with its messages (swept below).
    let lapsing = claim(&s, &work, 10, 0, 2, later).await;
    assert_eq!(lapsing.messages.len(), 2);
    agree(&s, &work, t, later, "with a claim left to lapse").await;

    // The sweeper, run past every short expiry, removes expired messages
    // and claims (clearing the stamps they left).
    let swept_at = t + 65 * SECOND;
    s.sweep(swept_at, 1000).await.unwrap();
    agree(&s, &work, t, swept_at, "after a sweep").await;

    // Reopening the directory keeps every count.
    drop(s);
    s = open(&dir);
    agree(&s, &work, t, swept_at, "after reopening").await;

    // Dead-letter moves leave this queue and arrive in another.
    let dead = q("dead");
    let policy = ClaimRequest {
        ttl: 30,
        grace: 0,
        limit: 20,
        dead_letter: RSome(DeadLetterPolicy {
            max_claim_count: 1,
            queue: dead.name.clone(),
            message_ttl: RSome(120),
        }),
    };
    s.claim_create(work.clone(), policy, t + 200 * SECOND)
        .await
        .unwrap();
    agree(&s, &work, t, t + 200 * SECOND, "after dead-lettering").await;
    agree(&s, &dead, t, t + 200 * SECOND, "the dead-letter queue").await;

    // Purge: the queue is empty at once (its rows go later), and counts
    // start again from what is posted after it.
    s.message_purge(work.clone()).await.unwrap();
    agree(&s, &work, t, t + 200 * SECOND, "after a purge").await;
    s.message_post(work.clone(), "c".into(), vec![message(60, 0)].into(), t)
        .await
        .unwrap();
    claim(&s, &work, 30, 0, 1, t).await;
    s.sweep(t + 400 * SECOND, 1000).await.unwrap();
    agree(
        &s,
        &work,
        t,
        t,
        "after a post, a claim and a sweep of the purged rows",
    )
    .await;

    // A deleted queue has no stats, whatever its old rows.
    s.queue_delete(work.clone()).await.unwrap();
    agree(&s, &work, t, t, "after deleting the queue").await;
}

/// Stats and the scan agree for queues the sweeper never visits, whatever
/// instant is asked: the due entries are folded in at read time.
#[tokio::test]
async fn stats_fold_in_expiries_that_no_sweep_has_removed() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let t = now();
    let (a, b) = (q("a"), q("b"));
    for (queue, ttl) in [(&a, 30), (&b, 60), (&a, 300)] {
        let batch: Vec<_> = (0..5).map(|_| message(ttl, 0)).collect();
        s.message_post(queue.clone(), "c".into(), batch.into(), t)
            .await
            .unwrap();
    }
    claim(&s, &a, 40, 0, 3, t).await;
    claim(&s, &b, 20, 0, 2, t).await;
    agree(&s, &a, t, t, "queue a").await;
    agree(&s, &b, t, t, "queue b").await;
    let at = t + 45 * SECOND;
    let stats = s.queue_stats(a.clone(), at).await.unwrap();
    assert_eq!(
        (stats.total, stats.claimed, stats.free),
        (5, 0, 5),
        "the 30 s messages expired (the claimed ones at claim expiry), the claim lapsed"
    );
}
