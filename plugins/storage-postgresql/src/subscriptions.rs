//! Subscriptions: create, list, get, update, confirm, delete, advance, scan.
//!
//! A subscription's `delivered_seq` starts at the queue's last sequence
//! number, read under the counter row's lock so that no post can commit
//! between the read and the subscription.

use deadpool_postgres::Object;
use plugin_api::{
    storage::{
        ChangeKind, NewSubscription, QueueRef, SubscriptionCreated, SubscriptionEntry,
        SubscriptionListQuery, SubscriptionPatch, SubscriptionRecord, SubscriptionScanPage,
    },
    types::ROption,
    ErrorCode,
};
use tokio_postgres::Row;

use crate::{
    db::{caller, OpError, OpResult},
    feed, ids, notification_log,
    sql::{big, execute, query, query_opt, unbig},
};

const COLUMNS: &str =
    "project, queue, id, subscriber, ttl, created_ms, expires_ms, options, confirmed, delivered_seq";

fn not_found() -> OpError {
    caller(
        ErrorCode::SUBSCRIPTION_NOT_FOUND,
        "subscription not found (or expired)",
    )
}

fn to_record(r: &Row) -> SubscriptionRecord {
    SubscriptionRecord {
        id: r.get::<_, String>(2).into(),
        queue: r.get::<_, String>(1).into(),
        subscriber: r.get::<_, String>(3).into(),
        ttl: r.get::<_, i32>(4) as u32,
        created_ms: unbig(r.get(5)),
        expires_ms: unbig(r.get(6)),
        options: r.get::<_, Vec<u8>>(7).into(),
        confirmed: r.get(8),
        delivered_seq: unbig(r.get(9)),
    }
}

pub(crate) async fn create(
    client: &mut Object,
    q: &QueueRef,
    s: &NewSubscription,
    now_ms: u64,
) -> OpResult<SubscriptionCreated> {
    let (p, n) = (q.project.as_str(), q.name.as_str());
    let tx = client.transaction().await?;
    // Locks the queue name's counter row (creating it at 0 if needed):
    // creations of one queue serialize, and no post commits in between.
    let last_seq: i64 = query_opt(
        &tx,
        "INSERT INTO zaqar_queue_seqs (project, name, last_seq) VALUES ($1, $2, 0) \
         ON CONFLICT (project, name) DO UPDATE SET last_seq = zaqar_queue_seqs.last_seq \
         RETURNING last_seq",
        &[&p, &n],
    )
    .await?
    .map_or(0, |r| r.get(0));
    if let Some(existing) = query_opt(
        &tx,
        "SELECT id, confirmed FROM zaqar_subscriptions \
         WHERE project = $1 AND queue = $2 AND subscriber = $3 AND expires_ms > $4 LIMIT 1",
        &[&p, &n, &s.subscriber.as_str(), &big(now_ms)],
    )
    .await?
    {
        return Ok(SubscriptionCreated {
            id: existing.get::<_, String>(0).into(),
            created: false,
            confirmed: existing.get(1),
        });
    }
    let id = loop {
        let id = ids::new_subscription_id(now_ms);
        let inserted = execute(
            &tx,
            "INSERT INTO zaqar_subscriptions (project, queue, id, subscriber, ttl, created_ms, \
             expires_ms, options, confirmed, delivered_seq) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, false, $9) ON CONFLICT DO NOTHING",
            &[
                &p,
                &n,
                &id,
                &s.subscriber.as_str(),
                &(s.ttl as i32),
                &big(now_ms),
                &big(now_ms + u64::from(s.ttl) * 1000),
                &s.options.as_slice(),
                &last_seq,
            ],
        )
        .await?;
        if inserted == 1 {
            break id;
        }
    };
    feed::announce(&tx, ChangeKind::SUBSCRIPTIONS, q, 0, &id).await?;
    tx.commit().await?;
    Ok(SubscriptionCreated {
        id: id.into(),
        created: true,
        confirmed: false,
    })
}

pub(crate) async fn list(
    client: &Object,
    q: &QueueRef,
    query_: &SubscriptionListQuery,
    now_ms: u64,
) -> OpResult<Vec<SubscriptionRecord>> {
    let marker = query_.marker.as_ref().map_or("", |m| m.as_str());
    let rows = query(
        client,
        &format!(
            "SELECT {COLUMNS} FROM zaqar_subscriptions WHERE project = $1 AND queue = $2 \
             AND id > $3 AND expires_ms > $4 ORDER BY id LIMIT $5"
        ),
        &[
            &q.project.as_str(),
            &q.name.as_str(),
            &marker,
            &big(now_ms),
            &i64::from(query_.limit),
        ],
    )
    .await?;
    Ok(rows.iter().map(to_record).collect())
}

pub(crate) async fn get(
    client: &Object,
    q: &QueueRef,
    id: &str,
    now_ms: u64,
) -> OpResult<Option<SubscriptionRecord>> {
    Ok(query_opt(
        client,
        &format!(
            "SELECT {COLUMNS} FROM zaqar_subscriptions WHERE project = $1 AND queue = $2 \
             AND id = $3 AND expires_ms > $4"
        ),
        &[&q.project.as_str(), &q.name.as_str(), &id, &big(now_ms)],
    )
    .await?
    .as_ref()
    .map(to_record))
}

pub(crate) async fn update(
    client: &mut Object,
    q: &QueueRef,
    id: &str,
    patch: &SubscriptionPatch,
    now_ms: u64,
) -> OpResult<()> {
    let (p, n) = (q.project.as_str(), q.name.as_str());
    let tx = client.transaction().await?;
    let Some(current) = query_opt(
        &tx,
        &format!(
            "SELECT {COLUMNS} FROM zaqar_subscriptions WHERE project = $1 AND queue = $2 \
             AND id = $3 AND expires_ms > $4 FOR UPDATE"
        ),
        &[&p, &n, &id, &big(now_ms)],
    )
    .await?
    else {
        return Err(not_found());
    };
    let mut record = to_record(&current);
    if let Some(subscriber) = patch.subscriber.as_ref().into_option() {
        let taken = query_opt(
            &tx,
            "SELECT 1 FROM zaqar_subscriptions WHERE project = $1 AND queue = $2 \
             AND subscriber = $3 AND id <> $4 AND expires_ms > $5 LIMIT 1",
            &[&p, &n, &subscriber.as_str(), &id, &big(now_ms)],
        )
        .await?;
        if taken.is_some() {
            return Err(caller(
                ErrorCode::CONFLICT,
                format!("queue {n} already has a subscription for {subscriber}"),
            ));
        }
        record.subscriber = subscriber.clone();
    }
    if let Some(&ttl) = patch.ttl.as_ref().into_option() {
        record.ttl = ttl;
        record.expires_ms = now_ms + u64::from(ttl) * 1000;
    }
    if let Some(options) = patch.options.as_ref().into_option() {
        record.options = options.clone();
    }
    execute(
        &tx,
        "UPDATE zaqar_subscriptions SET subscriber = $4, ttl = $5, expires_ms = $6, options = $7 \
         WHERE project = $1 AND queue = $2 AND id = $3",
        &[
            &p,
            &n,
            &id,
            &record.subscriber.as_str(),
            &(record.ttl as i32),
            &big(record.expires_ms),
            &record.options.as_slice(),
        ],
    )
    .await?;
    feed::announce(&tx, ChangeKind::SUBSCRIPTIONS, q, 0, id).await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn confirm(
    client: &mut Object,
    q: &QueueRef,
    id: &str,
    confirmed: bool,
    now_ms: u64,
) -> OpResult<()> {
    let tx = client.transaction().await?;
    let updated = execute(
        &tx,
        "UPDATE zaqar_subscriptions SET confirmed = $4 \
         WHERE project = $1 AND queue = $2 AND id = $3 AND expires_ms > $5",
        &[
            &q.project.as_str(),
            &q.name.as_str(),
            &id,
            &confirmed,
            &big(now_ms),
        ],
    )
    .await?;
    if updated == 0 {
        return Err(not_found());
    }
    feed::announce(&tx, ChangeKind::SUBSCRIPTIONS, q, 0, id).await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes the subscription, and the log copies no other subscription
/// still waits for.
pub(crate) async fn delete(
    client: &mut Object,
    q: &QueueRef,
    id: &str,
    now_ms: u64,
) -> OpResult<()> {
    let tx = client.transaction().await?;
    let deleted = execute(
        &tx,
        "DELETE FROM zaqar_subscriptions WHERE project = $1 AND queue = $2 AND id = $3",
        &[&q.project.as_str(), &q.name.as_str(), &id],
    )
    .await?;
    if deleted > 0 {
        notification_log::prune(&tx, q, now_ms).await?;
        feed::announce(&tx, ChangeKind::SUBSCRIPTIONS, q, 0, id).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Moves the cursor forward (never back), and drops the log copies every
/// subscription has now passed.
pub(crate) async fn advance(
    client: &mut Object,
    q: &QueueRef,
    id: &str,
    delivered_seq: u64,
    now_ms: u64,
) -> OpResult<()> {
    let tx = client.transaction().await?;
    let updated = execute(
        &tx,
        "UPDATE zaqar_subscriptions SET delivered_seq = GREATEST(delivered_seq, $4) \
         WHERE project = $1 AND queue = $2 AND id = $3 AND expires_ms > $5",
        &[
            &q.project.as_str(),
            &q.name.as_str(),
            &id,
            &big(delivered_seq),
            &big(now_ms),
        ],
    )
    .await?;
    if updated == 0 {
        return Err(not_found());
    }
    notification_log::prune(&tx, q, now_ms).await?;
    tx.commit().await?;
    Ok(())
}

type ScanKey = (String, String, String);

/// The scan marker: the last key returned, each part hex-encoded so that
/// any name survives the round trip.
fn encode_marker((project, queue, id): &ScanKey) -> String {
    fn hex(s: &str) -> String {
        s.bytes().map(|b| format!("{b:02x}")).collect()
    }
    format!("{}.{}.{}", hex(project), hex(queue), hex(id))
}

fn decode_marker(marker: &str) -> OpResult<ScanKey> {
    fn unhex(s: &str) -> Option<String> {
        if !s.len().is_multiple_of(2) {
            return None;
        }
        let bytes = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        String::from_utf8(bytes).ok()
    }
    let mut parts = marker.split('.').map(unhex);
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(Some(p)), Some(Some(q)), Some(Some(id)), None) => Ok((p, q, id)),
        _ => Err(caller(
            ErrorCode::INVALID_INPUT,
            format!("not a subscription scan marker: {marker:?}"),
        )),
    }
}

/// A page of every live subscription, in primary-key order.
pub(crate) async fn scan(
    client: &Object,
    marker: Option<&str>,
    limit: u32,
    now_ms: u64,
) -> OpResult<SubscriptionScanPage> {
    let (p, n, id) = match marker {
        Some(m) => decode_marker(m)?,
        None => Default::default(),
    };
    let rows = query(
        client,
        &format!(
            "SELECT {COLUMNS} FROM zaqar_subscriptions \
             WHERE (project, queue, id) > ($1, $2, $3) AND expires_ms > $4 \
             ORDER BY project, queue, id LIMIT $5"
        ),
        &[&p, &n, &id, &big(now_ms), &(i64::from(limit) + 1)],
    )
    .await?;
    let more = rows.len() > limit as usize;
    let entries: Vec<SubscriptionEntry> = rows
        .iter()
        .take(limit as usize)
        .map(|r| SubscriptionEntry {
            project: r.get::<_, String>(0).into(),
            record: to_record(r),
        })
        .collect();
    let next_marker = match (more, entries.last()) {
        (true, Some(last)) => ROption::RSome(
            encode_marker(&(
                last.project.to_string(),
                last.record.queue.to_string(),
                last.record.id.to_string(),
            ))
            .into(),
        ),
        (true, None) => ROption::RSome(encode_marker(&(p, n, id)).into()),
        _ => ROption::RNone,
    };
    Ok(SubscriptionScanPage {
        entries: entries.into(),
        next_marker,
    })
}
