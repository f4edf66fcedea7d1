//! The sweeper: deletes what has expired (messages, claims, subscriptions,
//! notification log entries) and the rows of deleted or purged queues, in
//! bounded passes.
//!
//! Reads already hide anything expired at their `now_ms`; the sweeper only
//! reclaims space. Each pass is one operation of the group commit, removing
//! at most [`BUDGET`] rows so that it never holds up client writes for long;
//! when a pass used its whole budget the next one starts at once.

use std::{
    sync::Weak,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use plugin_api::storage::{ChangeKind, QueueChange, QueueRef};
use redb::ReadableTable;

use crate::{
    claims,
    codec::{ClaimRecord, SubscriptionRecord},
    engine::Engine,
    error::OpResult,
    expiry,
    group_commit::WriteTables,
    messages, notification_log,
};

/// Rows removed per pass at most.
pub(crate) const BUDGET: usize = 1000;

/// The wall clock in ms since the epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Runs passes every `interval` until the engine is dropped.
pub(crate) fn start(engine: Weak<Engine>, interval: Duration) {
    plugin_api::runtime::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            loop {
                // Holding only a weak handle between passes lets the store
                // close when the host drops it.
                let Some(strong) = engine.upgrade() else {
                    return;
                };
                let swept = strong.write(|t| pass(t, now_ms(), BUDGET)).await;
                if let Ok(swept) = &swept {
                    strong.count_expired_messages(swept.expired_messages);
                }
                drop(strong);
                match swept {
                    Ok(swept) if swept.rows >= BUDGET => tokio::task::yield_now().await,
                    _ => break,
                }
            }
        }
    });
}

/// What one pass removed.
pub(crate) struct Swept {
    /// Rows of every kind (what the budget limits).
    pub(crate) rows: usize,
    /// Messages removed because their ttl ran out.
    pub(crate) expired_messages: u64,
}

/// One pass at `now_ms`: removes at most `budget` rows.
pub(crate) fn pass(t: &mut WriteTables<'_>, now_ms: u64, budget: usize) -> OpResult<Swept> {
    let mut removed = retired_queues(t, budget)?;
    let (expiry_rows, expired) = expiry::sweep(t, now_ms, budget - removed)?;
    removed += expiry_rows;
    removed += expired_claims(t, now_ms, budget - removed)?;
    removed += expired_subscriptions(t, now_ms, budget - removed)?;
    removed += notification_log::sweep_expired(t, now_ms, budget - removed)?;
    Ok(Swept {
        rows: removed,
        expired_messages: expired,
    })
}

/// Removes the messages and claims of deleted or purged queues.
fn retired_queues(t: &mut WriteTables<'_>, budget: usize) -> OpResult<usize> {
    let mut removed = 0;
    while removed < budget {
        let Some(qid) = t.doomed.first()?.map(|(k, _)| k.value()) else {
            break;
        };
        let mut rows = Vec::new();
        for entry in t
            .messages
            .range((qid, 0)..=(qid, u64::MAX))?
            .take(budget - removed)
        {
            rows.push(entry?.0.value().1);
        }
        for &seq in &rows {
            messages::remove_row(t, qid, seq)?;
        }
        removed += rows.len();
        if removed >= budget {
            break;
        }
        let mut claims = Vec::new();
        for entry in t
            .claims
            .range((qid, 0)..=(qid, u128::MAX))?
            .take(budget - removed)
        {
            let (k, v) = entry?;
            claims.push((k.value().1, ClaimRecord::decode(v.value())?.expires_ms));
        }
        for &(claim, expires_ms) in &claims {
            t.claims.remove((qid, claim))?;
            t.claim_expiry.remove((expires_ms, qid, claim))?;
        }
        removed += claims.len();
        if removed >= budget {
            break;
        }
        t.doomed.remove(qid)?;
    }
    Ok(removed)
}

fn expired_claims(t: &mut WriteTables<'_>, now_ms: u64, budget: usize) -> OpResult<usize> {
    let mut keys = Vec::new();
    for entry in t
        .claim_expiry
        .range(..=(now_ms, u64::MAX, u128::MAX))?
        .take(budget)
    {
        keys.push(entry?.0.value());
    }
    for &(expires_ms, qid, claim) in &keys {
        t.claim_expiry.remove((expires_ms, qid, claim))?;
        let current = match t.claims.get((qid, claim))? {
            Some(v) => Some(ClaimRecord::decode(v.value())?),
            None => None,
        };
        if let Some(record) = current.filter(|r| r.expires_ms == expires_ms) {
            claims::forget_expired(t, qid, claim, &record)?;
        }
    }
    Ok(keys.len())
}

fn expired_subscriptions(t: &mut WriteTables<'_>, now_ms: u64, budget: usize) -> OpResult<usize> {
    let mut keys: Vec<(u64, String, String, String)> = Vec::new();
    for entry in t
        .subscription_expiry
        .range((0u64, "", "", "")..)?
        .take(budget)
    {
        let (k, _) = entry?;
        let (expires_ms, p, q, id) = k.value();
        if expires_ms > now_ms {
            break;
        }
        keys.push((expires_ms, p.to_owned(), q.to_owned(), id.to_owned()));
    }
    for (expires_ms, p, q, id) in &keys {
        let key = (p.as_str(), q.as_str(), id.as_str());
        t.subscription_expiry
            .remove((*expires_ms, key.0, key.1, key.2))?;
        let current = match t.subscriptions.get(key)? {
            Some(v) => Some(SubscriptionRecord::decode(v.value())?),
            None => None,
        };
        if let Some(record) = current.filter(|r| r.expires_ms == *expires_ms) {
            t.subscriptions.remove(key)?;
            let queue = QueueRef::new(p, q);
            crate::subscriptions::unindex_subscriber(t, &queue, &record.subscriber, id)?;
            t.announce(|| QueueChange::new(ChangeKind::SUBSCRIPTIONS, queue, 0, id));
        }
    }
    Ok(keys.len())
}
