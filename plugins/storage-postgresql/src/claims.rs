//! Claims: create (with grace and dead-lettering), get, renew, release.
//!
//! Claiming selects the oldest takeable rows `FOR UPDATE SKIP LOCKED`: a
//! concurrent claimer, on this host or another, skips the rows this one is
//! taking instead of waiting for them or taking them too.

use deadpool_postgres::{GenericClient, Object};
use plugin_api::{
    storage::{ChangeKind, ClaimRequest, DeadLetterPolicy, QueueRef, StoredClaim, StoredMessage},
    types::RVec,
    ErrorCode,
};

use crate::{
    db::{caller, OpError, OpResult},
    feed, ids,
    messages::{self, to_stored, Insert, COLUMNS, TAKEABLE},
    notification_log,
    sql::{big, execute, query, query_opt, unbig, unint},
};

fn not_found() -> OpError {
    caller(ErrorCode::CLAIM_NOT_FOUND, "claim not found (or expired)")
}

/// The SQL expression giving a claimed message's new expiry: a message
/// that would expire before the claim (`$claim`) lives until claim expiry +
/// grace (`$grace_ms`).
fn grace_rule(claim: &str, grace_ms: &str) -> String {
    format!("CASE WHEN expires_ms < {claim} THEN {claim} + {grace_ms} ELSE expires_ms END")
}

/// Claims up to `request.limit` takeable messages, oldest first.
pub(crate) async fn create(
    client: &mut Object,
    q: &QueueRef,
    request: &ClaimRequest,
    now_ms: u64,
) -> OpResult<StoredClaim> {
    let claim_id = ids::new_claim_id();
    let expires_ms = now_ms + u64::from(request.ttl) * 1000;
    let grace_ms = u64::from(request.grace) * 1000;
    let mut result = StoredClaim {
        id: claim_id.clone().into(),
        ttl: request.ttl,
        updated_ms: now_ms,
        expires_ms,
        messages: RVec::new(),
    };
    let (p, n) = (q.project.as_str(), q.name.as_str());
    let tx = client.transaction().await?;
    // Messages moved to a dead-letter queue get new sequence numbers; when
    // that queue is this one, stopping at today's last seq keeps the scan
    // from meeting them again.
    let Some(end) = query_opt(
        &tx,
        "SELECT last_seq FROM zaqar_queue_seqs WHERE project = $1 AND name = $2",
        &[&p, &n],
    )
    .await?
    .map(|r| r.get::<_, i64>(0)) else {
        return Ok(result);
    };
    let policy = request.dead_letter.as_ref().into_option();
    let limit = request.limit as usize;
    let mut taken: Vec<StoredMessage> = Vec::with_capacity(limit);
    let mut from: i64 = -1;
    let select = format!(
        "SELECT seq, claim_count FROM zaqar_messages \
         WHERE project = $1 AND queue = $2 AND {TAKEABLE} AND seq > $4 AND seq <= $5 \
         ORDER BY seq LIMIT $6 FOR UPDATE SKIP LOCKED"
    );
    let stamp = format!(
        "UPDATE zaqar_messages SET claim_id = $4, claim_expires_ms = $5, \
         claim_count = claim_count + 1, expires_ms = {} \
         WHERE project = $1 AND queue = $2 AND seq = ANY($3) RETURNING {COLUMNS}",
        grace_rule("$5", "$6")
    );
    // Moved messages do not count against the limit: scan on until `limit`
    // messages are claimed or the queue is exhausted.
    while taken.len() < limit {
        let want = (limit - taken.len()) as i64;
        let rows = query(&tx, &select, &[&p, &n, &big(now_ms), &from, &end, &want]).await?;
        let Some(last) = rows.last() else { break };
        from = last.get(0);
        let (mut keep, mut dead) = (Vec::new(), Vec::new());
        for row in &rows {
            let seq: i64 = row.get(0);
            match policy {
                Some(pol) if unint(row.get(1)) >= pol.max_claim_count => dead.push(seq),
                _ => keep.push(seq),
            }
        }
        if !keep.is_empty() {
            let rows = query(
                &tx,
                &stamp,
                &[&p, &n, &keep, &claim_id, &big(expires_ms), &big(grace_ms)],
            )
            .await?;
            let mut stamped: Vec<StoredMessage> = rows.iter().map(to_stored).collect();
            stamped.sort_by_key(|m| m.seq);
            taken.extend(stamped);
        }
        if let (Some(pol), false) = (policy, dead.is_empty()) {
            move_to_dead_letter(&tx, q, pol, &dead, now_ms).await?;
        }
    }
    if !taken.is_empty() {
        execute(
            &tx,
            "INSERT INTO zaqar_claims (project, queue, id, ttl, updated_ms, expires_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &p,
                &n,
                &claim_id,
                &(request.ttl as i32),
                &big(now_ms),
                &big(expires_ms),
            ],
        )
        .await?;
    }
    tx.commit().await?;
    result.messages = taken.into();
    Ok(result)
}

/// Moves messages claimed too often to the dead-letter queue (same project,
/// created if missing): new sequence numbers there, no claim, and the
/// policy's ttl counted from now if it has one.
async fn move_to_dead_letter<C: GenericClient + Sync>(
    c: &C,
    q: &QueueRef,
    policy: &DeadLetterPolicy,
    seqs: &[i64],
    now_ms: u64,
) -> OpResult<()> {
    let rows = query(
        c,
        &format!(
            "DELETE FROM zaqar_messages WHERE project = $1 AND queue = $2 AND seq = ANY($3) \
             RETURNING {COLUMNS}"
        ),
        &[&q.project.as_str(), &q.name.as_str(), &seqs],
    )
    .await?;
    let mut moved: Vec<StoredMessage> = rows.iter().map(to_stored).collect();
    moved.sort_by_key(|m| m.seq);
    let target = QueueRef::new(&q.project, &policy.queue);
    messages::ensure_queue(c, &target, now_ms).await?;
    let first = messages::reserve_seqs(c, &target, moved.len() as u64).await?;
    let new_expiry = policy
        .message_ttl
        .into_option()
        .map(|ttl| now_ms + u64::from(ttl) * 1000);
    let inserts: Vec<Insert<'_>> = (first..)
        .zip(&moved)
        .map(|(seq, m)| Insert {
            seq,
            tag: ids::new_tag(),
            created_ms: m.created_ms,
            expires_ms: new_expiry.unwrap_or(m.expires_ms),
            visible_ms: m.visible_ms,
            client_id: &m.client_id,
            claim_count: m.claim_count,
            body: &m.body,
        })
        .collect();
    messages::insert(c, &target, &inserts).await?;
    let last = first + inserts.len() as u64 - 1;
    notification_log::record(c, &target, first, last, now_ms).await?;
    feed::announce(c, ChangeKind::MESSAGES, &target, last, "").await
}

/// The live claim with the live messages it still holds.
pub(crate) async fn get(
    client: &mut Object,
    q: &QueueRef,
    claim_id: &str,
    now_ms: u64,
) -> OpResult<Option<StoredClaim>> {
    if !ids::is_claim_id(claim_id) {
        return Ok(None);
    }
    let (p, n) = (q.project.as_str(), q.name.as_str());
    // One snapshot for the claim and its messages.
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let Some(claim) = query_opt(
        &tx,
        "SELECT ttl, updated_ms, expires_ms FROM zaqar_claims \
         WHERE project = $1 AND queue = $2 AND id = $3 AND expires_ms > $4",
        &[&p, &n, &claim_id, &big(now_ms)],
    )
    .await?
    else {
        return Ok(None);
    };
    let rows = query(
        &tx,
        &format!(
            "SELECT {COLUMNS} FROM zaqar_messages WHERE project = $1 AND queue = $2 \
             AND claim_id = $3 AND claim_expires_ms > $4 AND expires_ms > $4 ORDER BY seq"
        ),
        &[&p, &n, &claim_id, &big(now_ms)],
    )
    .await?;
    tx.commit().await?;
    Ok(Some(StoredClaim {
        id: claim_id.into(),
        ttl: claim.get::<_, i32>(0) as u32,
        updated_ms: unbig(claim.get(1)),
        expires_ms: unbig(claim.get(2)),
        messages: rows.iter().map(to_stored).collect(),
    }))
}

/// Renews a live claim: new expiry, grace applied again.
pub(crate) async fn update(
    client: &mut Object,
    q: &QueueRef,
    claim_id: &str,
    ttl: u32,
    grace: u32,
    now_ms: u64,
) -> OpResult<()> {
    if !ids::is_claim_id(claim_id) {
        return Err(not_found());
    }
    let (p, n) = (q.project.as_str(), q.name.as_str());
    let expires_ms = now_ms + u64::from(ttl) * 1000;
    let tx = client.transaction().await?;
    let renewed = execute(
        &tx,
        "UPDATE zaqar_claims SET ttl = $4, updated_ms = $5, expires_ms = $6 \
         WHERE project = $1 AND queue = $2 AND id = $3 AND expires_ms > $5",
        &[
            &p,
            &n,
            &claim_id,
            &(ttl as i32),
            &big(now_ms),
            &big(expires_ms),
        ],
    )
    .await?;
    if renewed == 0 {
        return Err(not_found());
    }
    execute(
        &tx,
        &format!(
            "UPDATE zaqar_messages SET claim_expires_ms = $5, expires_ms = {} \
             WHERE project = $1 AND queue = $2 AND claim_id = $3 \
             AND claim_expires_ms > $4 AND expires_ms > $4",
            grace_rule("$5", "$6")
        ),
        &[
            &p,
            &n,
            &claim_id,
            &big(now_ms),
            &big(expires_ms),
            &big(u64::from(grace) * 1000),
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Releases the claim's messages and forgets the claim.
pub(crate) async fn delete(client: &mut Object, q: &QueueRef, claim_id: &str) -> OpResult<()> {
    if !ids::is_claim_id(claim_id) {
        return Ok(());
    }
    let (p, n) = (q.project.as_str(), q.name.as_str());
    let tx = client.transaction().await?;
    execute(
        &tx,
        "DELETE FROM zaqar_claims WHERE project = $1 AND queue = $2 AND id = $3",
        &[&p, &n, &claim_id],
    )
    .await?;
    // Like Zaqar's MongoDB driver, a released message carries no claim at
    // all (no stale claim id in its href).
    execute(
        &tx,
        "UPDATE zaqar_messages SET claim_id = NULL, claim_expires_ms = NULL \
         WHERE project = $1 AND queue = $2 AND claim_id = $3",
        &[&p, &n, &claim_id],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
