//! Per-queue state kept in the write transaction: the queue's last
//! sequence number and two counters that let `queue_stats` answer without
//! scanning the queue.
//!
//! * `records`: how many message rows the queue has (expired ones not yet
//!   swept included).
//! * `stamped`: how many of them carry a claim stamp. A stamp always
//!   belongs to a claim whose record still exists: releasing a claim
//!   clears its stamps, and so does the sweeper when it removes an expired
//!   claim ([`crate::claims::forget_expired`]).
//!
//! Both are exact whatever the clock: they change only with rows. What the
//! clock changes (a message or a claim expiring) is folded in when stats
//! are read, from the expiry indexes: only the entries already due and not
//! yet swept are visited, so the cost is bounded by what expired since the
//! sweeper last ran, not by the queue's length (see [`crate::messages::stats`]).
//!
//! The row exists exactly while the queue's qid is live: it is written when
//! the queue is created, moved to the new qid by a purge and removed by a
//! delete. Updates for a retired qid (rows the sweeper removes later) find
//! no row and change nothing.
//!
//! In a write batch the rows go through [`QueueStates`], which keeps the
//! batch's changes and writes each changed row once, before the commit:
//! every post and delete changes its queue's row, and a batch is mostly
//! operations on a few busy queues.

use std::collections::BTreeMap;

use redb::ReadableTable;

use crate::{
    codec::MessageView,
    error::OpResult,
    group_commit::{LazyTable, WriteTables},
};

/// The stored value: `(last_seq, records, stamped)`.
pub(crate) type Row = (u64, u64, u64);

/// A live queue's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct QueueState {
    /// The last sequence number given to a message of the queue.
    pub last_seq: u64,
    /// Message rows of the queue, expired or not.
    pub records: u64,
    /// Message rows carrying a claim stamp.
    pub stamped: u64,
}

impl QueueState {
    /// A fresh queue continuing its sequence numbers from `last_seq`.
    pub(crate) fn starting_at(last_seq: u64) -> Self {
        Self {
            last_seq,
            ..Self::default()
        }
    }

    fn from_row((last_seq, records, stamped): Row) -> Self {
        Self {
            last_seq,
            records,
            stamped,
        }
    }

    pub(crate) fn row(self) -> Row {
        (self.last_seq, self.records, self.stamped)
    }
}

/// The state of queue `qid`, if it is live.
pub(crate) fn read<T>(table: &T, qid: u64) -> OpResult<Option<QueueState>>
where
    T: ReadableTable<u64, Row>,
{
    Ok(table.get(qid)?.map(|v| QueueState::from_row(v.value())))
}

/// The queue states of a write batch: reads see the batch's own changes,
/// and each changed row is written to the table once, by [`Self::flush`].
///
/// Why: a redb insert rebuilds the leaf it lands in, and a batch of 64
/// posts to one queue would otherwise read and rewrite that queue's row 64
/// times.
pub(crate) struct QueueStates<'t> {
    table: LazyTable<'t, u64, Row>,
    /// Rows changed in this batch and not yet written; `None` for a
    /// removed one. Ordered so that the flush writes in key order.
    changed: BTreeMap<u64, Option<QueueState>>,
}

impl<'t> QueueStates<'t> {
    pub(crate) fn new(table: LazyTable<'t, u64, Row>) -> Self {
        Self {
            table,
            changed: BTreeMap::new(),
        }
    }

    /// The state of queue `qid` as this batch left it, if it is live.
    pub(crate) fn get(&self, qid: u64) -> OpResult<Option<QueueState>> {
        match self.changed.get(&qid) {
            Some(state) => Ok(*state),
            None => read(&*self.table, qid),
        }
    }

    /// Sets the state of queue `qid`.
    pub(crate) fn set(&mut self, qid: u64, state: QueueState) {
        self.changed.insert(qid, Some(state));
    }

    /// Removes the state of queue `qid`; returns what it was.
    pub(crate) fn remove(&mut self, qid: u64) -> OpResult<Option<QueueState>> {
        let old = self.get(qid)?;
        self.changed.insert(qid, None);
        Ok(old)
    }

    /// Writes the batch's changes to the table; must run before the
    /// transaction commits.
    pub(crate) fn flush(&mut self) -> OpResult<()> {
        for (qid, state) in std::mem::take(&mut self.changed) {
            match state {
                Some(state) => {
                    self.table.insert(qid, state.row())?;
                }
                None => {
                    self.table.remove(qid)?;
                }
            }
        }
        Ok(())
    }

    /// Opens the table (creating it in a new file).
    pub(crate) fn open(&self) -> Result<(), redb::TableError> {
        self.table.try_open().map(|_| ())
    }
}

/// Applies `change` to the state of queue `qid` if it is live; returns the
/// state after the change.
pub(crate) fn update(
    t: &mut WriteTables<'_>,
    qid: u64,
    change: impl FnOnce(&mut QueueState),
) -> OpResult<Option<QueueState>> {
    let Some(mut state) = t.queue_state.get(qid)? else {
        return Ok(None);
    };
    change(&mut state);
    t.queue_state.set(qid, state);
    Ok(Some(state))
}

/// Counts `removed` message rows gone from queue `qid`, `unstamped` of
/// which carried a stamp (or lost one while staying).
pub(crate) fn forget(
    t: &mut WriteTables<'_>,
    qid: u64,
    removed: u64,
    unstamped: u64,
) -> OpResult<()> {
    if removed == 0 && unstamped == 0 {
        return Ok(());
    }
    update(t, qid, |s| {
        s.records = s.records.saturating_sub(removed);
        s.stamped = s.stamped.saturating_sub(unstamped);
    })?;
    Ok(())
}

/// Upgrades a format 1 or 2 file, whose sequence counters are in `legacy`
/// (`queue_seq`): counts each live queue's message rows and stamps once,
/// clearing the stamps of claims the sweeper already removed (such a
/// message was free; now it says so without a stamp). The caller deletes
/// `legacy` afterwards. Returns how many queues were counted.
pub(crate) fn upgrade<S>(t: &mut WriteTables<'_>, legacy: &S) -> OpResult<usize>
where
    S: ReadableTable<u64, u64>,
{
    let mut counters = Vec::new();
    for entry in legacy.iter()? {
        let (qid, last_seq) = entry?;
        counters.push((qid.value(), last_seq.value()));
    }
    for &(qid, last_seq) in &counters {
        let mut state = QueueState::starting_at(last_seq);
        let mut orphans = Vec::new();
        for entry in t.messages.range((qid, 0)..=(qid, u64::MAX))? {
            let (k, v) = entry?;
            let m = MessageView::decode(v.value())?;
            state.records += 1;
            if let Some(stamp) = m.claim {
                if t.claims.get((qid, stamp.claim))?.is_some() {
                    state.stamped += 1;
                } else {
                    orphans.push((k.value().1, m.to_owned_record()));
                }
            }
        }
        for (seq, mut m) in orphans {
            m.claim = None;
            t.messages.insert((qid, seq), m.encode().as_slice())?;
        }
        t.queue_state.set(qid, state);
    }
    Ok(counters.len())
}

#[cfg(test)]
mod tests {
    use plugin_api::{
        storage::{ClaimRequest, MessageListQuery, MessageStore, NewMessage, QueueRef},
        types::ROption::{RNone, RSome},
    };
    use redb::{Database, ReadableDatabase, ReadableTable};

    use crate::{schema, EmbeddedMessageStore};

    fn message(ttl: u32) -> NewMessage {
        NewMessage {
            ttl,
            delay: 0,
            body: b"{}".to_vec().into(),
        }
    }

    /// Rewrites a format 3 file as a format 2 build would have left it:
    /// the sequence counters in `queue_seq`, no `queue_state`, and (what a
    /// format 2 sweeper did) a claim removed while its message kept the
    /// stamp.
    fn downgrade_to_format_2(file: &std::path::Path) {
        let db = Database::create(file).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let state = txn.open_table(schema::QUEUE_STATE).unwrap();
            let mut legacy = txn.open_table(schema::QUEUE_SEQ).unwrap();
            for entry in state.iter().unwrap() {
                let (qid, row) = entry.unwrap();
                legacy.insert(qid.value(), row.value().0).unwrap();
            }
            let mut claims = txn.open_table(schema::CLAIMS).unwrap();
            let swept = claims.first().unwrap().map(|(k, _)| k.value()).unwrap();
            claims.remove(swept).unwrap();
            let mut meta = txn.open_table(schema::META).unwrap();
            meta.insert(schema::META_FORMAT, 2).unwrap();
        }
        txn.delete_table(schema::QUEUE_STATE).unwrap();
        txn.commit().unwrap();
    }

    #[test]
    fn format_2_file_is_upgraded_with_counted_queues_and_orphan_stamps_cleared() {
        let (_dir, mut config, runtime) = crate::test_support::data_dir();
        config.sweep_interval_secs = 3600;
        let queue = QueueRef::new("p", "q");
        let t = crate::sweeper::now_ms();
        let claim = |limit| ClaimRequest {
            ttl: 600,
            grace: 0,
            limit,
            dead_letter: RNone,
        };
        runtime.block_on(async {
            let store = EmbeddedMessageStore::open(&config).unwrap();
            let batch: Vec<_> = (0..6).map(|_| message(3600)).collect();
            store
                .message_post(queue.clone(), "c".into(), batch.into(), t)
                .await
                .unwrap();
            // The first claim's record is removed by the downgrade.
            store
                .claim_create(queue.clone(), claim(1), t)
                .await
                .unwrap();
            store
                .claim_create(queue.clone(), claim(2), t)
                .await
                .unwrap();
        });
        let file = config.path.join(crate::DATABASE_FILE);
        downgrade_to_format_2(&file);

        runtime.block_on(async {
            let store = EmbeddedMessageStore::open(&config).unwrap();
            let stats = store.queue_stats(queue.clone(), t).await.unwrap();
            // Which of the two claims was removed depends on the random ids.
            assert_eq!(stats.total, 6);
            assert!(
                matches!((stats.claimed, stats.free), (1, 5) | (2, 4)),
                "{stats:?}"
            );
            let all = store
                .message_list(
                    queue.clone(),
                    MessageListQuery {
                        after_seq: RNone,
                        limit: 100,
                        exclude_client: RNone,
                        include_claimed: true,
                        include_delayed: true,
                    },
                    t,
                )
                .await
                .unwrap();
            let stamped = all.iter().filter(|m| matches!(m.claim, RSome(_))).count();
            assert_eq!(
                stamped as u64, stats.claimed,
                "the stamp of the removed claim is cleared"
            );
            // Posts continue the sequence.
            let next = store
                .message_post(queue.clone(), "c".into(), vec![message(60)].into(), t)
                .await
                .unwrap();
            assert_eq!(next[0].seq, 7);
        });
        assert_eq!(
            crate::test_support::format_of(&file),
            schema::FORMAT_VERSION
        );
        let db = Database::create(&file).unwrap();
        let txn = db.begin_read().unwrap();
        assert!(
            txn.open_table(schema::QUEUE_SEQ).is_err(),
            "the old counters are gone"
        );
    }
}
