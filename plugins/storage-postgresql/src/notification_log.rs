//! The notification log (plugin-api 1.1): a copy of each message posted
//! while its queue has a live subscription, kept until every live
//! subscription's `delivered_seq` has passed it or it expired (the
//! collector removes expired copies).

use deadpool_postgres::{GenericClient, Object};
use plugin_api::storage::{QueueRef, StoredMessage};

use crate::{
    db::OpResult,
    messages::{to_stored, COLUMNS},
    sql::{big, execute, query},
};

/// Copies the queue's messages `first..=last` into the log if the queue has
/// a live subscription; part of the posting transaction.
pub(crate) async fn record<C: GenericClient + Sync>(
    c: &C,
    q: &QueueRef,
    first: u64,
    last: u64,
    now_ms: u64,
) -> OpResult<()> {
    execute(
        c,
        "INSERT INTO zaqar_notification_log SELECT * FROM zaqar_messages \
         WHERE project = $1 AND queue = $2 AND seq BETWEEN $3 AND $4 \
         AND EXISTS (SELECT 1 FROM zaqar_subscriptions \
                     WHERE project = $1 AND queue = $2 AND expires_ms > $5)",
        &[
            &q.project.as_str(),
            &q.name.as_str(),
            &big(first),
            &big(last),
            &big(now_ms),
        ],
    )
    .await?;
    Ok(())
}

/// Drops the copies every live subscription of the queue has passed (all
/// of them when none is live).
pub(crate) async fn prune<C: GenericClient + Sync>(
    c: &C,
    q: &QueueRef,
    now_ms: u64,
) -> OpResult<()> {
    execute(
        c,
        "DELETE FROM zaqar_notification_log WHERE project = $1 AND queue = $2 \
         AND seq <= COALESCE((SELECT min(delivered_seq) FROM zaqar_subscriptions \
                             WHERE project = $1 AND queue = $2 AND expires_ms > $3), \
                             9223372036854775807)",
        &[&q.project.as_str(), &q.name.as_str(), &big(now_ms)],
    )
    .await?;
    Ok(())
}

/// The logged messages after `after_seq`, in sequence order.
pub(crate) async fn read(
    client: &Object,
    q: &QueueRef,
    after_seq: u64,
    limit: u32,
    now_ms: u64,
) -> OpResult<Vec<StoredMessage>> {
    let rows = query(
        client,
        &format!(
            "SELECT {COLUMNS} FROM zaqar_notification_log WHERE project = $1 AND queue = $2 \
             AND seq > $3 AND expires_ms > $4 ORDER BY seq LIMIT $5"
        ),
        &[
            &q.project.as_str(),
            &q.name.as_str(),
            &big(after_seq),
            &big(now_ms),
            &i64::from(limit),
        ],
    )
    .await?;
    Ok(rows.iter().map(to_stored).collect())
}
