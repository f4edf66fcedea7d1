//! Queues: creation, metadata, listing, deletion, the sequence counter.

use deadpool_postgres::Object;
use plugin_api::{
    storage::{ChangeKind, QueueEntry, QueueListQuery, QueueRef},
    ErrorCode,
};

use crate::{
    db::{caller, OpResult},
    feed,
    sql::{big, execute, query, query_opt, unbig},
};

/// Creates the queue; false if it already exists.
pub(crate) async fn create(
    client: &Object,
    q: &QueueRef,
    metadata: &[u8],
    now_ms: u64,
) -> OpResult<bool> {
    let inserted = execute(
        client,
        "INSERT INTO zaqar_queues (project, name, metadata, created_ms) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (project, name) DO NOTHING",
        &[
            &q.project.as_str(),
            &q.name.as_str(),
            &metadata,
            &big(now_ms),
        ],
    )
    .await?;
    Ok(inserted == 1)
}

pub(crate) async fn get_metadata(client: &Object, q: &QueueRef) -> OpResult<Option<Vec<u8>>> {
    Ok(query_opt(
        client,
        "SELECT metadata FROM zaqar_queues WHERE project = $1 AND name = $2",
        &[&q.project.as_str(), &q.name.as_str()],
    )
    .await?
    .map(|r| r.get(0)))
}

pub(crate) async fn set_metadata(client: &Object, q: &QueueRef, metadata: &[u8]) -> OpResult<()> {
    let updated = execute(
        client,
        "UPDATE zaqar_queues SET metadata = $3 WHERE project = $1 AND name = $2",
        &[&q.project.as_str(), &q.name.as_str(), &metadata],
    )
    .await?;
    if updated == 0 {
        return Err(caller(
            ErrorCode::QUEUE_NOT_FOUND,
            format!("queue {} does not exist", q.name),
        ));
    }
    Ok(())
}

/// Deletes the queue with its messages, claims and subscriptions; its
/// sequence counter stays so that the numbers never go back.
pub(crate) async fn delete(client: &mut Object, q: &QueueRef) -> OpResult<()> {
    let tx = client.transaction().await?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
        [&q.project.as_str(), &q.name.as_str()];
    execute(
        &tx,
        "DELETE FROM zaqar_queues WHERE project = $1 AND name = $2",
        &params,
    )
    .await?;
    for table in [
        "zaqar_messages",
        "zaqar_claims",
        "zaqar_subscriptions",
        "zaqar_notification_log",
    ] {
        execute(
            &tx,
            &format!("DELETE FROM {table} WHERE project = $1 AND queue = $2"),
            &params,
        )
        .await?;
    }
    feed::announce(&tx, ChangeKind::QUEUE_DELETED, q, 0, "").await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn list(
    client: &Object,
    project: &str,
    query_: &QueueListQuery,
) -> OpResult<Vec<QueueEntry>> {
    let marker = query_.marker.as_ref().map_or("", |m| m.as_str());
    let rows = query(
        client,
        "SELECT name, CASE WHEN $3 THEN metadata ELSE ''::bytea END FROM zaqar_queues \
         WHERE project = $1 AND name > $2 ORDER BY name LIMIT $4",
        &[
            &project,
            &marker,
            &query_.with_metadata,
            &i64::from(query_.limit),
        ],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| QueueEntry {
            name: r.get::<_, String>(0).into(),
            metadata: r.get::<_, Vec<u8>>(1).into(),
        })
        .collect())
}

pub(crate) async fn count(client: &Object, project: &str) -> OpResult<u64> {
    let row = query_opt(
        client,
        "SELECT count(*) FROM zaqar_queues WHERE project = $1",
        &[&project],
    )
    .await?;
    Ok(row.map_or(0, |r| unbig(r.get(0))))
}

/// The last sequence number ever handed out for the queue name.
pub(crate) async fn last_seq(client: &Object, q: &QueueRef) -> OpResult<u64> {
    let row = query_opt(
        client,
        "SELECT last_seq FROM zaqar_queue_seqs WHERE project = $1 AND name = $2",
        &[&q.project.as_str(), &q.name.as_str()],
    )
    .await?;
    Ok(row.map_or(0, |r| unbig(r.get(0))))
}
