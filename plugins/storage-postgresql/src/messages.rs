//! Messages: post, list, get, delete, pop, purge, stats.
//!
//! A message is a row `(project, queue, seq)`. Its claim stamp
//! (`claim_id`, `claim_expires_ms`) is the truth about whether a claim holds
//! it; the `zaqar_claims` row only records the claim's own ttl and expiry.

use deadpool_postgres::Object;
use plugin_api::{
    storage::{
        ChangeKind, ClaimStamp, MessageListQuery, MessageSummary, NewMessage, PostedMessage,
        QueueRef, QueueStats, StoredMessage,
    },
    types::{ROption, RString},
    ErrorCode,
};
use tokio_postgres::Row;

use crate::{
    db::{caller, OpResult},
    feed, ids, notification_log,
    sql::{big, execute, int, query, query_opt, unbig, unint},
};

/// The columns [`to_stored`] reads, in its order.
pub(crate) const COLUMNS: &str = "seq, tag, created_ms, expires_ms, visible_ms, client_id, \
                                  claim_id, claim_expires_ms, claim_count, body";

/// The ttl reported for a message: `expires - created` in whole seconds,
/// rounded, so that age + ttl always gives the expiry.
fn reported_ttl(created_ms: u64, expires_ms: u64) -> u32 {
    let secs = (expires_ms.saturating_sub(created_ms) + 500) / 1000;
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// The contract's view of a row selected with [`COLUMNS`].
pub(crate) fn to_stored(row: &Row) -> StoredMessage {
    let seq = unbig(row.get(0));
    let created_ms = unbig(row.get(2));
    let expires_ms = unbig(row.get(3));
    let claim_id: Option<String> = row.get(6);
    let claim_expires: Option<i64> = row.get(7);
    StoredMessage {
        id: ids::message_id(seq, unint(row.get(1))).into(),
        seq,
        created_ms,
        expires_ms,
        ttl: reported_ttl(created_ms, expires_ms),
        visible_ms: unbig(row.get(4)),
        client_id: RString::from(row.get::<_, String>(5)),
        claim: match (claim_id, claim_expires) {
            (Some(id), Some(expires)) => ROption::RSome(ClaimStamp {
                id: id.into(),
                expires_ms: unbig(expires),
            }),
            _ => ROption::RNone,
        },
        claim_count: unint(row.get(8)),
        body: row.get::<_, Vec<u8>>(9).into(),
    }
}

/// Creates the queue with empty metadata if it does not exist (a post or a
/// dead-letter move creates its queue).
pub(crate) async fn ensure_queue<C: deadpool_postgres::GenericClient + Sync>(
    c: &C,
    q: &QueueRef,
    now_ms: u64,
) -> OpResult<()> {
    execute(
        c,
        "INSERT INTO zaqar_queues (project, name, metadata, created_ms) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (project, name) DO NOTHING",
        &[
            &q.project.as_str(),
            &q.name.as_str(),
            &b"{}".as_slice(),
            &big(now_ms),
        ],
    )
    .await?;
    Ok(())
}

/// Hands out the next `n` sequence numbers of the queue name and returns
/// the first. The counter row stays locked until the transaction ends, so
/// a later poster waits and gets larger numbers: sequence order is commit
/// order.
pub(crate) async fn reserve_seqs<C: deadpool_postgres::GenericClient + Sync>(
    c: &C,
    q: &QueueRef,
    n: u64,
) -> OpResult<u64> {
    let row = query_opt(
        c,
        "INSERT INTO zaqar_queue_seqs (project, name, last_seq) VALUES ($1, $2, $3) \
         ON CONFLICT (project, name) DO UPDATE SET last_seq = zaqar_queue_seqs.last_seq + EXCLUDED.last_seq \
         RETURNING last_seq",
        &[&q.project.as_str(), &q.name.as_str(), &big(n)],
    )
    .await?;
    let last = row.map_or(0, |r| unbig(r.get(0)));
    Ok(last + 1 - n)
}

/// One message to insert with [`insert`].
pub(crate) struct Insert<'a> {
    pub seq: u64,
    pub tag: u32,
    pub created_ms: u64,
    pub expires_ms: u64,
    pub visible_ms: u64,
    pub client_id: &'a str,
    pub claim_count: u32,
    pub body: &'a [u8],
}

/// Inserts messages into queue `q` in one statement.
pub(crate) async fn insert<C: deadpool_postgres::GenericClient + Sync>(
    c: &C,
    q: &QueueRef,
    rows: &[Insert<'_>],
) -> OpResult<()> {
    let seqs: Vec<i64> = rows.iter().map(|r| big(r.seq)).collect();
    let tags: Vec<i32> = rows.iter().map(|r| int(r.tag)).collect();
    let created: Vec<i64> = rows.iter().map(|r| big(r.created_ms)).collect();
    let expires: Vec<i64> = rows.iter().map(|r| big(r.expires_ms)).collect();
    let visible: Vec<i64> = rows.iter().map(|r| big(r.visible_ms)).collect();
    let clients: Vec<&str> = rows.iter().map(|r| r.client_id).collect();
    let counts: Vec<i32> = rows.iter().map(|r| int(r.claim_count)).collect();
    let bodies: Vec<&[u8]> = rows.iter().map(|r| r.body).collect();
    execute(
        c,
        "INSERT INTO zaqar_messages (project, queue, seq, tag, created_ms, expires_ms, visible_ms, \
         client_id, claim_count, body) \
         SELECT $1, $2, u.* FROM unnest($3::bigint[], $4::integer[], $5::bigint[], $6::bigint[], \
         $7::bigint[], $8::text[], $9::integer[], $10::bytea[]) AS u",
        &[
            &q.project.as_str(),
            &q.name.as_str(),
            &seqs,
            &tags,
            &created,
            &expires,
            &visible,
            &clients,
            &counts,
            &bodies,
        ],
    )
    .await?;
    Ok(())
}

/// Enqueues `messages` in order, creating the queue if needed.
pub(crate) async fn post(
    client: &mut Object,
    q: &QueueRef,
    client_id: &str,
    messages: &[NewMessage],
    now_ms: u64,
) -> OpResult<Vec<PostedMessage>> {
    let tx = client.transaction().await?;
    ensure_queue(&tx, q, now_ms).await?;
    let first = reserve_seqs(&tx, q, messages.len() as u64).await?;
    let rows: Vec<Insert<'_>> = (first..)
        .zip(messages)
        .map(|(seq, m)| Insert {
            seq,
            tag: ids::new_tag(),
            created_ms: now_ms,
            expires_ms: now_ms + u64::from(m.ttl) * 1000,
            visible_ms: now_ms + u64::from(m.delay) * 1000,
            client_id,
            claim_count: 0,
            body: &m.body,
        })
        .collect();
    insert(&tx, q, &rows).await?;
    let last = first + messages.len() as u64 - 1;
    notification_log::record(&tx, q, first, last, now_ms).await?;
    feed::announce(&tx, ChangeKind::MESSAGES, q, last, "").await?;
    tx.commit().await?;
    Ok(rows
        .iter()
        .map(|r| PostedMessage {
            id: ids::message_id(r.seq, r.tag).into(),
            seq: r.seq,
        })
        .collect())
}

/// A page of live messages in sequence order.
pub(crate) async fn list(
    client: &Object,
    q: &QueueRef,
    query_: &MessageListQuery,
    now_ms: u64,
) -> OpResult<Vec<StoredMessage>> {
    if query_.limit == 0 {
        return Ok(Vec::new());
    }
    let after = query_.after_seq.into_option().map_or(-1, big);
    let exclude: Option<&str> = query_
        .exclude_client
        .as_ref()
        .map(|c| c.as_str())
        .into_option();
    let rows = query(
        client,
        &format!(
            "SELECT {COLUMNS} FROM zaqar_messages WHERE project = $1 AND queue = $2 AND seq > $3 \
             AND expires_ms > $4 \
             AND ($5 OR claim_expires_ms IS NULL OR claim_expires_ms <= $4) \
             AND ($6 OR visible_ms <= $4) \
             AND ($7::text IS NULL OR client_id <> $7) \
             ORDER BY seq LIMIT $8"
        ),
        &[
            &q.project.as_str(),
            &q.name.as_str(),
            &after,
            &big(now_ms),
            &query_.include_claimed,
            &query_.include_delayed,
            &exclude,
            &i64::from(query_.limit),
        ],
    )
    .await?;
    Ok(rows.iter().map(to_stored).collect())
}

/// `(seqs, tags)` of the ids that are ours.
fn parse_ids(ids_: &[RString]) -> (Vec<i64>, Vec<i32>) {
    ids_.iter()
        .filter_map(|id| ids::parse_message_id(id))
        .map(|(seq, tag)| (big(seq), int(tag)))
        .unzip()
}

/// The live messages among `ids`, in sequence order.
pub(crate) async fn get_many(
    client: &Object,
    q: &QueueRef,
    ids_: &[RString],
    now_ms: u64,
) -> OpResult<Vec<StoredMessage>> {
    let (seqs, tags) = parse_ids(ids_);
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    let rows = query(
        client,
        &format!(
            "SELECT {COLUMNS} FROM zaqar_messages WHERE project = $1 AND queue = $2 \
             AND (seq, tag) IN (SELECT * FROM unnest($3::bigint[], $4::integer[])) \
             AND expires_ms > $5 ORDER BY seq"
        ),
        &[
            &q.project.as_str(),
            &q.name.as_str(),
            &seqs,
            &tags,
            &big(now_ms),
        ],
    )
    .await?;
    Ok(rows.iter().map(to_stored).collect())
}

/// Deletes one message, honouring its claim (see the contract's rules).
pub(crate) async fn delete(
    client: &mut Object,
    q: &QueueRef,
    id: &str,
    claim_id: Option<&str>,
    now_ms: u64,
) -> OpResult<()> {
    let Some((seq, tag)) = ids::parse_message_id(id) else {
        return Ok(());
    };
    let tx = client.transaction().await?;
    let (p, n) = (q.project.as_str(), q.name.as_str());
    let Some(row) = query_opt(
        &tx,
        "SELECT claim_id, claim_expires_ms FROM zaqar_messages \
         WHERE project = $1 AND queue = $2 AND seq = $3 AND tag = $4 AND expires_ms > $5 FOR UPDATE",
        &[&p, &n, &big(seq), &int(tag), &big(now_ms)],
    )
    .await?
    else {
        return Ok(());
    };
    let stamp: Option<String> = row.get(0);
    let stamp_expires: Option<i64> = row.get(1);
    let holder = match (stamp, stamp_expires) {
        (Some(c), Some(e)) if unbig(e) > now_ms => Some(c),
        _ => None,
    };
    match (holder, claim_id) {
        (Some(held), Some(presented)) if held == presented => {}
        (Some(_), _) => {
            return Err(caller(
                ErrorCode::MESSAGE_IS_CLAIMED,
                format!("message {id} is claimed; delete it with its claim id"),
            ))
        }
        (None, None) => {}
        (None, Some(presented)) => {
            let live = ids::is_claim_id(presented)
                && query_opt(
                    &tx,
                    "SELECT 1 FROM zaqar_claims WHERE project = $1 AND queue = $2 AND id = $3 \
                     AND expires_ms > $4",
                    &[&p, &n, &presented, &big(now_ms)],
                )
                .await?
                .is_some();
            return Err(if live {
                caller(
                    ErrorCode::MESSAGE_NOT_CLAIMED,
                    format!("message {id} is not claimed"),
                )
            } else {
                caller(ErrorCode::CLAIM_NOT_FOUND, "claim not found (or expired)")
            });
        }
    }
    execute(
        &tx,
        "DELETE FROM zaqar_messages WHERE project = $1 AND queue = $2 AND seq = $3",
        &[&p, &n, &big(seq)],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes the messages among `ids`, claimed or not.
pub(crate) async fn delete_many(client: &Object, q: &QueueRef, ids_: &[RString]) -> OpResult<()> {
    let (seqs, tags) = parse_ids(ids_);
    if seqs.is_empty() {
        return Ok(());
    }
    execute(
        client,
        "DELETE FROM zaqar_messages WHERE project = $1 AND queue = $2 \
         AND (seq, tag) IN (SELECT * FROM unnest($3::bigint[], $4::integer[]))",
        &[&q.project.as_str(), &q.name.as_str(), &seqs, &tags],
    )
    .await?;
    Ok(())
}

/// The condition "live, visible and not under a live claim" on a message
/// row, with the current time as `$3`.
pub(crate) const TAKEABLE: &str = "expires_ms > $3 AND visible_ms <= $3 \
                                   AND (claim_expires_ms IS NULL OR claim_expires_ms <= $3)";

/// Removes and returns up to `limit` takeable messages, oldest first. Rows
/// another transaction is claiming or popping are skipped, not waited for.
pub(crate) async fn pop(
    client: &Object,
    q: &QueueRef,
    limit: u32,
    now_ms: u64,
) -> OpResult<Vec<StoredMessage>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let rows = query(
        client,
        &format!(
            "WITH taken AS MATERIALIZED ( \
             SELECT seq FROM zaqar_messages WHERE project = $1 AND queue = $2 AND {TAKEABLE} \
             ORDER BY seq LIMIT $4 FOR UPDATE SKIP LOCKED) \
             DELETE FROM zaqar_messages WHERE project = $1 AND queue = $2 \
             AND seq IN (SELECT seq FROM taken) RETURNING {COLUMNS}"
        ),
        &[
            &q.project.as_str(),
            &q.name.as_str(),
            &big(now_ms),
            &i64::from(limit),
        ],
    )
    .await?;
    let mut out: Vec<StoredMessage> = rows.iter().map(to_stored).collect();
    out.sort_by_key(|m| m.seq);
    Ok(out)
}

/// Deletes every message and claim of the queue.
pub(crate) async fn purge(client: &mut Object, q: &QueueRef) -> OpResult<()> {
    let tx = client.transaction().await?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
        [&q.project.as_str(), &q.name.as_str()];
    execute(
        &tx,
        "DELETE FROM zaqar_messages WHERE project = $1 AND queue = $2",
        &params,
    )
    .await?;
    execute(
        &tx,
        "DELETE FROM zaqar_claims WHERE project = $1 AND queue = $2",
        &params,
    )
    .await?;
    feed::announce(&tx, ChangeKind::QUEUE_PURGED, q, 0, "").await?;
    tx.commit().await?;
    Ok(())
}

/// Counts the live messages of the queue, in one statement (one snapshot).
pub(crate) async fn stats(client: &Object, q: &QueueRef, now_ms: u64) -> OpResult<QueueStats> {
    let rows = query(
        client,
        "SELECT 0 AS part, count(*) AS a, count(*) FILTER (WHERE claim_expires_ms > $3) AS b, \
                0 AS tag FROM zaqar_messages \
           WHERE project = $1 AND queue = $2 AND expires_ms > $3 \
         UNION ALL (SELECT 1, seq, created_ms, tag FROM zaqar_messages \
           WHERE project = $1 AND queue = $2 AND expires_ms > $3 ORDER BY seq LIMIT 1) \
         UNION ALL (SELECT 2, seq, created_ms, tag FROM zaqar_messages \
           WHERE project = $1 AND queue = $2 AND expires_ms > $3 ORDER BY seq DESC LIMIT 1)",
        &[&q.project.as_str(), &q.name.as_str(), &big(now_ms)],
    )
    .await?;
    let mut stats = QueueStats::default();
    for row in rows {
        let part: i32 = row.get(0);
        let (a, b): (i64, i64) = (row.get(1), row.get(2));
        let summary = || MessageSummary {
            id: ids::message_id(unbig(a), unint(row.get(3))).into(),
            created_ms: unbig(b),
        };
        match part {
            0 => {
                stats.total = unbig(a);
                stats.claimed = unbig(b);
                stats.free = stats.total - stats.claimed;
            }
            1 => stats.oldest = ROption::RSome(summary()),
            _ => stats.newest = ROption::RSome(summary()),
        }
    }
    Ok(stats)
}
