//! Queues: creation (explicit and lazy), metadata, listing, deletion.

use plugin_api::{
    storage::{ChangeKind, QueueChange, QueueEntry, QueueListQuery, QueueRef},
    types::RString,
    ErrorCode,
};
use redb::{ReadTransaction, ReadableTable};

use crate::{
    codec::QueueRecord,
    error::{caller, OpResult},
    group_commit::WriteTables,
    notification_log,
    queue_state::{self, QueueState},
    schema, subscriptions,
};

/// The key of a queue.
fn key(q: &QueueRef) -> (&str, &str) {
    (q.project.as_str(), q.name.as_str())
}

/// The internal id of the queue, if it exists.
pub(crate) fn qid_of<T>(queues: &T, q: &QueueRef) -> OpResult<Option<u64>>
where
    T: ReadableTable<(&'static str, &'static str), &'static [u8]>,
{
    match queues.get(key(q))? {
        Some(v) => Ok(Some(QueueRecord::decode_qid(v.value())?)),
        None => Ok(None),
    }
}

/// The queue's id in a read transaction, if it exists.
pub(crate) fn read_qid(txn: &ReadTransaction, q: &QueueRef) -> OpResult<Option<u64>> {
    qid_of(&txn.open_table(schema::QUEUES)?, q)
}

/// The seq of the last message ever posted to the queue: its counter if it
/// exists, else the floor a deleted queue of that name left, else 0. The
/// next post gets a larger one, since a queue created again continues from
/// the floor.
pub(crate) fn last_seq<Q, F>(
    queues: &Q,
    queue_state: impl FnOnce(u64) -> OpResult<Option<QueueState>>,
    seq_floor: &F,
    q: &QueueRef,
) -> OpResult<u64>
where
    Q: ReadableTable<(&'static str, &'static str), &'static [u8]>,
    F: ReadableTable<(&'static str, &'static str), u64>,
{
    let last = match qid_of(queues, q)? {
        Some(qid) => queue_state(qid)?.map(|s| s.last_seq),
        None => seq_floor.get(key(q))?.map(|v| v.value()),
    };
    Ok(last.unwrap_or(0))
}

/// [`last_seq`] in a read transaction.
pub(crate) fn read_last_seq(txn: &ReadTransaction, q: &QueueRef) -> OpResult<u64> {
    let queue_state = txn.open_table(schema::QUEUE_STATE)?;
    last_seq(
        &txn.open_table(schema::QUEUES)?,
        |qid| queue_state::read(&queue_state, qid),
        &txn.open_table(schema::SEQ_FLOOR)?,
        q,
    )
}

/// Creates the queue; false if it existed.
pub(crate) fn create(
    t: &mut WriteTables<'_>,
    q: &QueueRef,
    metadata: &[u8],
    now_ms: u64,
) -> OpResult<bool> {
    if t.queues.get(key(q))?.is_some() {
        return Ok(false);
    }
    insert_new(t, q, metadata, now_ms)?;
    Ok(true)
}

/// The queue's id, creating the queue with empty metadata if needed (lazy
/// queues: a post or a dead-letter move creates its queue).
pub(crate) fn ensure(t: &mut WriteTables<'_>, q: &QueueRef, now_ms: u64) -> OpResult<u64> {
    match qid_of(&*t.queues, q)? {
        Some(qid) => Ok(qid),
        None => insert_new(t, q, b"{}", now_ms),
    }
}

fn insert_new(
    t: &mut WriteTables<'_>,
    q: &QueueRef,
    metadata: &[u8],
    now_ms: u64,
) -> OpResult<u64> {
    let qid = next_qid(t)?;
    let record = QueueRecord {
        qid,
        created_ms: now_ms,
        metadata: metadata.to_vec(),
    };
    t.queues.insert(key(q), record.encode().as_slice())?;
    t.metadata_changed(q);
    // A queue deleted and created again continues its sequence numbers.
    let floor = t.seq_floor.remove(key(q))?.map(|v| v.value()).unwrap_or(0);
    t.queue_state.set(qid, QueueState::starting_at(floor));
    Ok(qid)
}

/// Hands out a fresh internal queue id.
pub(crate) fn next_qid(t: &mut WriteTables<'_>) -> OpResult<u64> {
    let qid = t
        .meta
        .get(schema::META_NEXT_QID)?
        .map(|v| v.value())
        .unwrap_or(1);
    t.meta.insert(schema::META_NEXT_QID, qid + 1)?;
    Ok(qid)
}

/// The queue's metadata, if it exists.
pub(crate) fn get_metadata(txn: &ReadTransaction, q: &QueueRef) -> OpResult<Option<Vec<u8>>> {
    let queues = txn.open_table(schema::QUEUES)?;
    match queues.get(key(q))? {
        Some(v) => Ok(Some(QueueRecord::decode(v.value())?.metadata)),
        None => Ok(None),
    }
}

/// Replaces the metadata; `QUEUE_NOT_FOUND` if the queue does not exist.
pub(crate) fn set_metadata(t: &mut WriteTables<'_>, q: &QueueRef, metadata: &[u8]) -> OpResult<()> {
    let mut record = match t.queues.get(key(q))? {
        Some(v) => QueueRecord::decode(v.value())?,
        None => {
            return Err(caller(
                ErrorCode::QUEUE_NOT_FOUND,
                format!("queue {} does not exist", q.name),
            ))
        }
    };
    record.metadata = metadata.to_vec();
    t.queues.insert(key(q), record.encode().as_slice())?;
    t.metadata_changed(q);
    Ok(())
}

/// Deletes the queue, its subscriptions and its notification log now; its
/// messages and claims are retired with its qid and removed by the sweeper.
pub(crate) fn delete(t: &mut WriteTables<'_>, q: &QueueRef) -> OpResult<()> {
    let had_subscriptions = subscriptions::delete_all(t, q)?;
    notification_log::drop_queue(t, q)?;
    let Some(qid) = qid_of(&*t.queues, q)? else {
        if had_subscriptions {
            t.announce(|| QueueChange::new(ChangeKind::QUEUE_DELETED, q.clone(), 0, ""));
        }
        return Ok(());
    };
    t.announce(|| QueueChange::new(ChangeKind::QUEUE_DELETED, q.clone(), 0, ""));
    t.queues.remove(key(q))?;
    t.metadata_changed(q);
    let last = t.queue_state.remove(qid)?.map_or(0, |s| s.last_seq);
    t.seq_floor.insert(key(q), last)?;
    t.doomed.insert(qid, ())?;
    t.claim_cursors.forget(qid);
    Ok(())
}

/// Gives the queue a fresh qid, retiring the old one with every message
/// and claim under it; metadata, sequence counter, subscriptions and the
/// notification log stay.
pub(crate) fn purge(t: &mut WriteTables<'_>, q: &QueueRef) -> OpResult<()> {
    let mut record = match t.queues.get(key(q))? {
        Some(v) => QueueRecord::decode(v.value())?,
        None => return Ok(()),
    };
    let old = record.qid;
    record.qid = next_qid(t)?;
    t.queues.insert(key(q), record.encode().as_slice())?;
    let last = t.queue_state.remove(old)?.map_or(0, |s| s.last_seq);
    t.queue_state.set(record.qid, QueueState::starting_at(last));
    t.doomed.insert(old, ())?;
    t.claim_cursors.forget(old);
    t.announce(|| QueueChange::new(ChangeKind::QUEUE_PURGED, q.clone(), last, ""));
    Ok(())
}

/// A page of the project's queues, by name.
pub(crate) fn list(
    txn: &ReadTransaction,
    project: &str,
    query: &QueueListQuery,
) -> OpResult<Vec<QueueEntry>> {
    let queues = txn.open_table(schema::QUEUES)?;
    let marker = query.marker.as_ref().map(|m| m.as_str()).unwrap_or("");
    let mut out = Vec::new();
    if query.limit == 0 {
        return Ok(out);
    }
    for entry in queues.range((project, marker)..)? {
        let (k, v) = entry?;
        let (p, name) = k.value();
        if p != project {
            break;
        }
        if name == marker {
            continue; // strictly greater than the marker
        }
        let metadata = if query.with_metadata {
            QueueRecord::decode(v.value())?.metadata
        } else {
            Vec::new()
        };
        out.push(QueueEntry {
            name: RString::from(name),
            metadata: metadata.into(),
        });
        if out.len() >= query.limit as usize {
            break;
        }
    }
    Ok(out)
}

/// How many queues the project has.
pub(crate) fn count(txn: &ReadTransaction, project: &str) -> OpResult<u64> {
    let queues = txn.open_table(schema::QUEUES)?;
    let mut n = 0;
    for entry in queues.range((project, "")..)? {
        let (k, _) = entry?;
        if k.value().0 != project {
            break;
        }
        n += 1;
    }
    Ok(n)
}
