//! The message expiry index: which messages the sweeper removes next, and
//! which of a queue's messages `queue_stats` must not count any more.
//!
//! An entry `(at, qid, first)` of [`schema::MESSAGE_EXPIRY`] stands for a
//! *run*: the messages of queue `qid` from seq `first` on, in seq order,
//! as long as their expiry falls in the same second as `at` (`at / 1000`).
//! A run ends at the first message whose expiry is in another second.
//!
//! Why runs: an entry per message cost every post an insert into the
//! index and every delete a removal, each a rebuilt leaf of a hundred-odd
//! small keys plus a second table's branch and root at commit — a fifth of
//! a lone post's commit and a sixth of a consumed message's (callgrind,
//! docs/BENCHMARKS.md). Consecutive posts to a queue mostly expire in the
//! same second, so a post now writes an entry only when it starts a run,
//! and a delete writes nothing: the entry of a run whose messages are gone
//! is dropped when it comes due.
//!
//! What keeps every message reachable from an entry of its expiry's
//! second, through messages all expiring in that second:
//!
//! * a post starts a run (writes an entry) unless the queue's previous
//!   seq is a message expiring in the same second, or was when this batch
//!   posted it and nothing has written to the index since ([`note_posted`]);
//! * removing a message keeps the chain: a run's scan skips missing seqs;
//! * a message whose expiry moves to another second (a claim's grace)
//!   gets an entry of its own, and the message after it an entry at the
//!   old second, since the run's scan now stops at the moved one
//!   ([`note_moved`]).
//!
//! Entries written before runs (format 4 and older: one per message, at
//! its exact expiry) are runs by the same reading, so an older file needs
//! no rewrite. A message may be reachable from two entries; whatever
//! walks the runs removes or counts each message once.

use std::collections::BTreeSet;

use redb::{ReadTransaction, ReadableTable};

use crate::{codec::MessageView, error::OpResult, group_commit::WriteTables, queue_state, schema};

/// The second an expiry falls in.
fn second(expires_ms: u64) -> u64 {
    expires_ms / 1000
}

/// The index key of a run expiring in `expires_ms`'s second: the start of
/// that second, so that ranges by second are ranges by key.
fn run_at(expires_ms: u64) -> u64 {
    second(expires_ms) * 1000
}

/// The expiry of message `(qid, seq)`, if it exists.
fn expiry_of<T>(messages: &T, qid: u64, seq: u64) -> OpResult<Option<u64>>
where
    T: ReadableTable<(u64, u64), &'static [u8]>,
{
    match messages.get((qid, seq))? {
        Some(v) => Ok(Some(MessageView::decode(v.value())?.expires_ms)),
        None => Ok(None),
    }
}

/// The last message a batch posted, remembered for the next post.
#[derive(Clone, Copy)]
pub(crate) struct LastPosted {
    qid: u64,
    seq: u64,
    second: u64,
    /// The index's write count after it was posted: any later write (an
    /// expiry moved, a run swept) and this is no longer trusted.
    index_writes: u64,
}

/// Indexes message `(qid, seq)`, just stored with `expires_ms`, the
/// queue's newest: an entry only if it starts a run.
///
/// The previous seq continues a run if it expires in the same second,
/// read from the batch's memory when this batch posted it and nothing
/// touched the index since (its deletion would not matter: a run's scan
/// skips missing seqs), else from its record (a missing one starts a run,
/// to be safe). Looking it up for every post of a batch cost as much as
/// the entries it saved.
pub(crate) fn note_posted(
    t: &mut WriteTables<'_>,
    qid: u64,
    seq: u64,
    expires_ms: u64,
) -> OpResult<()> {
    let this_second = second(expires_ms);
    let remembered = t.last_posted.filter(|last| {
        last.qid == qid && last.seq + 1 == seq && last.index_writes == t.message_expiry.writes()
    });
    let continues_run = match (remembered, seq.checked_sub(1)) {
        (Some(last), _) => last.second == this_second,
        (None, Some(previous)) => {
            expiry_of(&*t.messages, qid, previous)?.is_some_and(|e| second(e) == this_second)
        }
        (None, None) => false,
    };
    if !continues_run {
        t.message_expiry
            .insert((run_at(expires_ms), qid, seq), ())?;
    }
    t.last_posted = Some(LastPosted {
        qid,
        seq,
        second: this_second,
        index_writes: t.message_expiry.writes(),
    });
    Ok(())
}

/// Re-indexes message `(qid, seq)`, whose expiry moved from `old` to
/// `new` (the record already says `new`).
pub(crate) fn note_moved(
    t: &mut WriteTables<'_>,
    qid: u64,
    seq: u64,
    old: u64,
    new: u64,
) -> OpResult<()> {
    if second(old) == second(new) {
        return Ok(());
    }
    t.message_expiry.insert((run_at(new), qid, seq), ())?;
    let next = match t.messages.range((qid, seq + 1)..=(qid, u64::MAX))?.next() {
        Some(entry) => {
            let (k, v) = entry?;
            Some((k.value().1, MessageView::decode(v.value())?.expires_ms))
        }
        None => None,
    };
    if let Some((next_seq, next_expires)) = next {
        if second(next_expires) == second(old) {
            t.message_expiry.insert((run_at(old), qid, next_seq), ())?;
        }
    }
    Ok(())
}

/// A message of a run: its seq, its expiry, whether it has a claim stamp.
type RunMessage = (u64, u64, bool);

/// The messages of the run `(at, qid, first)`, in seq order, with their
/// expiry and whether they carry a claim stamp: at most `limit`, and only
/// up to the first not expired by `expired_by` if given; with the seq
/// where the walk stopped if the run goes on.
fn walk_run<T>(
    messages: &T,
    (at, qid, first): (u64, u64, u64),
    limit: usize,
    expired_by: Option<u64>,
) -> OpResult<(Vec<RunMessage>, Option<u64>)>
where
    T: ReadableTable<(u64, u64), &'static [u8]>,
{
    let mut found = Vec::new();
    for entry in messages.range((qid, first)..=(qid, u64::MAX))? {
        let (k, v) = entry?;
        let m = MessageView::decode(v.value())?;
        if second(m.expires_ms) != second(at) {
            break;
        }
        if found.len() == limit || expired_by.is_some_and(|now| m.expires_ms > now) {
            return Ok((found, Some(k.value().1)));
        }
        found.push((k.value().1, m.expires_ms, m.claim.is_some()));
    }
    Ok((found, None))
}

/// Removes the messages expired by `now_ms`, run by run, oldest run
/// first, visiting about `budget` rows (entries and messages) at most;
/// returns the rows removed (messages, and entries whose run is done) and
/// the messages among them.
///
/// A run is removed up to its first message not yet expired, and its
/// entry put back there: within a second a later message of a run may
/// expire before an earlier one (another ttl), and waits at most until
/// the second has passed, when every message of the run has expired.
pub(crate) fn sweep(t: &mut WriteTables<'_>, now_ms: u64, budget: usize) -> OpResult<(usize, u64)> {
    let (mut visited, mut dropped, mut removed) = (0, 0, 0);
    // Entries put back once the pass is done, so that it takes each once.
    let mut put_back = Vec::new();
    while visited < budget {
        let Some(key) = t.message_expiry.first()?.map(|(k, _)| k.value()) else {
            break;
        };
        if key.0 > now_ms {
            break;
        }
        t.message_expiry.remove(key)?;
        let (at, qid, _) = key;
        let (expired, resume) = walk_run(&*t.messages, key, budget - visited, Some(now_ms))?;
        visited += 1 + expired.len();
        let mut stamped = 0;
        for &(seq, _, claimed) in &expired {
            t.messages.remove((qid, seq))?;
            stamped += u64::from(claimed);
        }
        queue_state::forget(t, qid, expired.len() as u64, stamped)?;
        removed += expired.len() as u64;
        match resume {
            Some(next) => put_back.push((at, qid, next)),
            None => dropped += 1,
        }
    }
    for key in put_back {
        t.message_expiry.insert(key, ())?;
    }
    Ok((dropped + removed as usize, removed))
}

/// How many messages of queue `qid` have expired by `now_ms` and are
/// still stored (the sweeper has not reached them yet).
pub(crate) fn expired_in(txn: &ReadTransaction, qid: u64, now_ms: u64) -> OpResult<u64> {
    let next_second = run_at(now_ms) + 1000;
    let index = txn.open_table(schema::MESSAGE_EXPIRY)?;
    let messages = txn.open_table(schema::MESSAGES)?;
    let mut expired = BTreeSet::new();
    for entry in index.range(..(next_second, 0, 0))? {
        let key = entry?.0.value();
        if key.1 != qid {
            continue;
        }
        let (run, _) = walk_run(&messages, key, usize::MAX, None)?;
        expired.extend(
            run.iter()
                .filter(|&&(_, expires_ms, _)| expires_ms <= now_ms)
                .map(|&(seq, _, _)| seq),
        );
    }
    Ok(expired.len() as u64)
}

#[cfg(test)]
mod tests {
    use plugin_api::storage::{ClaimRequest, NewMessage, QueueRef};
    use redb::{Database, ReadableDatabase, ReadableTable};

    use crate::{claims, group_commit::WriteTables, messages, schema, sweeper};

    /// A second boundary, so that offsets below stay within known seconds.
    const T0: u64 = 1_700_000_000_000;

    fn message(ttl: u32) -> NewMessage {
        NewMessage {
            ttl,
            delay: 0,
            body: b"{}".to_vec().into(),
        }
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        db: Database,
        q: QueueRef,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let db = Database::create(dir.path().join("t.redb")).unwrap();
            Self {
                _dir: dir,
                db,
                q: QueueRef::new("p", "q"),
            }
        }

        /// Runs `f` in a write transaction of its own and commits it.
        fn write<T>(&self, f: impl FnOnce(&mut WriteTables<'_>, &QueueRef) -> T) -> T {
            let txn = self.db.begin_write().unwrap();
            let out = {
                let mut t = WriteTables::new(&txn);
                t.open_all().unwrap();
                let out = f(&mut t, &self.q);
                t.finish().unwrap();
                out
            };
            txn.commit().unwrap();
            out
        }

        fn post(&self, ttls: &[u32], at: u64) -> Vec<u64> {
            let batch: Vec<_> = ttls.iter().map(|&ttl| message(ttl)).collect();
            self.write(|t, q| messages::post(t, q, "c", &batch, at).unwrap())
                .iter()
                .map(|m| m.seq)
                .collect()
        }

        fn entries(&self) -> Vec<(u64, u64, u64)> {
            let txn = self.db.begin_read().unwrap();
            let index = txn.open_table(schema::MESSAGE_EXPIRY).unwrap();
            index
                .iter()
                .unwrap()
                .map(|e| e.unwrap().0.value())
                .collect()
        }

        /// Sweeps at `now` until nothing is left to do; returns the
        /// messages removed.
        fn sweep(&self, now: u64, budget: usize) -> u64 {
            let mut expired = 0;
            loop {
                let swept = self.write(|t, _| sweeper::pass(t, now, budget).unwrap());
                expired += swept.expired_messages;
                if swept.rows == 0 {
                    return expired;
                }
            }
        }

        fn stats_total(&self, now: u64) -> u64 {
            let txn = self.db.begin_read().unwrap();
            messages::stats(&txn, &self.q, now).unwrap().total
        }

        fn seqs(&self) -> Vec<u64> {
            let txn = self.db.begin_read().unwrap();
            let table = txn.open_table(schema::MESSAGES).unwrap();
            table
                .iter()
                .unwrap()
                .map(|e| e.unwrap().0.value().1)
                .collect()
        }
    }

    #[test]
    fn posts_expiring_in_the_same_second_share_one_entry() {
        let f = Fixture::new();
        // Seqs 1-3 expire in one second; 4 in another; 5 in the first
        // again (a new run, since 4 broke it); 6-7 posted later in the
        // same second as 1-3, still one run with 5.
        f.post(&[60, 60, 60], T0);
        f.post(&[120], T0 + 10);
        f.post(&[60], T0 + 20);
        f.post(&[60, 60], T0 + 900);
        let qid = f.entries()[0].1;
        assert_eq!(
            f.entries(),
            [
                (T0 + 60_000, qid, 1),
                (T0 + 60_000, qid, 5),
                (T0 + 120_000, qid, 4)
            ]
        );
    }

    #[test]
    fn a_run_goes_when_due_in_budgeted_passes_and_its_entry_with_it() {
        let f = Fixture::new();
        f.post(&[60; 25], T0 + 500);
        f.post(&[61], T0 + 500);
        assert_eq!(f.sweep(T0 + 60_499, 10), 0, "not yet");
        assert_eq!(f.stats_total(T0 + 60_499), 26);
        assert_eq!(f.stats_total(T0 + 60_500), 1);
        // Ten rows a pass (the entry counts): the run is put back at the
        // seq where each pass stopped.
        assert_eq!(f.sweep(T0 + 60_500, 10), 25);
        assert_eq!(f.seqs(), [26]);
        assert_eq!(f.entries().len(), 1, "only the second run's entry is left");
        assert_eq!(f.sweep(T0 + 61_500, 10), 1);
        assert!(f.entries().is_empty());
    }

    #[test]
    fn within_a_second_a_run_goes_up_to_its_first_message_not_yet_expired() {
        let f = Fixture::new();
        // Same second of expiry, out of order: 1 at .900, 2 at .100.
        f.post(&[61], T0 + 900);
        f.post(&[60], T0 + 61_100 - 60_000);
        assert_eq!(f.entries().len(), 1);
        assert_eq!(f.stats_total(T0 + 61_500), 1, "2 has expired, 1 not");
        assert_eq!(f.sweep(T0 + 61_500, 100), 0, "2 waits behind 1");
        assert_eq!(f.stats_total(T0 + 61_500), 1);
        assert_eq!(f.sweep(T0 + 61_900, 100), 2);
        assert!(f.entries().is_empty());
    }

    #[test]
    fn messages_after_one_whose_claim_moved_its_expiry_still_expire_on_time() {
        let f = Fixture::new();
        f.post(&[60, 60, 60, 60], T0);
        // The claim outlives the first two messages: the grace rule moves
        // their expiry to the claim's end plus the grace.
        let claim = ClaimRequest {
            ttl: 300,
            grace: 60,
            limit: 2,
            dead_letter: plugin_api::types::ROption::RNone,
        };
        let taken = f.write(|t, q| {
            claims::create(t, q, &claim, T0 + 1_000, crate::ids::new_claim()).unwrap()
        });
        assert_eq!(taken.messages.len(), 2);
        let moved_to = T0 + 1_000 + 360_000;
        assert_eq!(f.stats_total(T0 + 60_000), 2);
        assert_eq!(f.sweep(T0 + 60_000, 100), 2);
        assert_eq!(f.seqs(), [1, 2]);
        assert_eq!(f.stats_total(moved_to - 1), 2);
        assert_eq!(f.stats_total(moved_to), 0);
        assert_eq!(f.sweep(moved_to, 100), 2);
        assert!(f.seqs().is_empty());
        assert!(f.entries().is_empty());
    }

    #[test]
    fn a_post_after_a_claim_moved_its_predecessor_in_the_same_batch_starts_a_run() {
        let f = Fixture::new();
        let claim = ClaimRequest {
            ttl: 300,
            grace: 60,
            limit: 1,
            dead_letter: plugin_api::types::ROption::RNone,
        };
        f.write(|t, q| {
            messages::post(t, q, "c", &[message(60)], T0).unwrap();
            claims::create(t, q, &claim, T0, crate::ids::new_claim()).unwrap();
            messages::post(t, q, "c", &[message(60)], T0).unwrap();
        });
        assert_eq!(f.stats_total(T0 + 60_000), 1);
        assert_eq!(f.sweep(T0 + 60_000, 100), 1);
        assert_eq!(f.seqs(), [1]);
    }

    #[test]
    fn a_message_reachable_from_two_entries_is_counted_and_removed_once() {
        let f = Fixture::new();
        f.post(&[60], T0);
        let newest = f.write(|t, q| {
            let posted = messages::post(t, q, "c", &[message(60)], T0).unwrap();
            posted[0].id.to_string()
        });
        // Deleting the newest message makes the next post start a run of
        // its own, though the first run reaches it too.
        f.write(|t, q| messages::delete(t, q, &newest, None, T0).unwrap());
        f.post(&[60], T0 + 100);
        f.post(&[120], T0 + 100);
        assert_eq!(f.entries().len(), 3);
        assert_eq!(f.stats_total(T0 + 60_100), 1, "3 messages, 2 expired");
        assert_eq!(f.sweep(T0 + 60_100, 100), 2);
        assert_eq!(f.seqs(), [4]);
        assert_eq!(f.entries().len(), 1);
    }

    #[test]
    fn entries_of_one_message_each_from_before_runs_are_swept_and_counted() {
        let f = Fixture::new();
        f.post(&[60, 60, 120], T0);
        let qid = f.entries()[0].1;
        // As format 4 wrote them: one entry per message, at its expiry.
        f.write(|t, _| {
            for key in f.entries() {
                t.message_expiry.remove(key).unwrap();
            }
            for (seq, expires) in [(1, T0 + 60_000), (2, T0 + 60_000), (3, T0 + 120_000)] {
                t.message_expiry.insert((expires, qid, seq), ()).unwrap();
            }
        });
        assert_eq!(f.stats_total(T0 + 59_999), 3);
        assert_eq!(f.stats_total(T0 + 60_000), 1, "each expired message once");
        assert_eq!(f.sweep(T0 + 60_000, 100), 2);
        assert_eq!(f.seqs(), [3]);
        assert_eq!(f.sweep(T0 + 120_000, 100), 1);
        assert!(f.entries().is_empty());
    }

    #[test]
    fn a_format_4_file_is_upgraded_at_open_and_its_messages_still_expire() {
        use plugin_api::storage::MessageStore;

        use crate::{test_support, EmbeddedMessageStore, DATABASE_FILE};

        let (_dir, mut config, runtime) = test_support::data_dir();
        config.sweep_interval_secs = 3600;
        let q = QueueRef::new("p", "q");
        let file = config.path.join(DATABASE_FILE);
        runtime.block_on(async {
            let store = EmbeddedMessageStore::open(&config).unwrap();
            let batch: Vec<_> = [60, 60, 120].iter().map(|&ttl| message(ttl)).collect();
            store
                .message_post(q.clone(), "c".into(), batch.into(), T0)
                .await
                .unwrap();
        });
        {
            // What a format 4 build leaves: an entry per message.
            let db = Database::create(&file).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut index = txn.open_table(schema::MESSAGE_EXPIRY).unwrap();
                let keys: Vec<_> = index
                    .iter()
                    .unwrap()
                    .map(|e| e.unwrap().0.value())
                    .collect();
                let qid = keys[0].1;
                for key in keys {
                    index.remove(key).unwrap();
                }
                for (seq, expires) in [(1, T0 + 60_000), (2, T0 + 60_000), (3, T0 + 120_000)] {
                    index.insert((expires, qid, seq), ()).unwrap();
                }
                let mut meta = txn.open_table(schema::META).unwrap();
                meta.insert(schema::META_FORMAT, 4).unwrap();
            }
            txn.commit().unwrap();
        }
        runtime.block_on(async {
            let store = EmbeddedMessageStore::open(&config).unwrap();
            let stats = store.queue_stats(q.clone(), T0 + 60_000).await.unwrap();
            assert_eq!(stats.total, 1);
            assert!(store.sweep(T0 + 60_000, 100).await.unwrap() > 0);
            let stats = store.queue_stats(q.clone(), T0 + 60_000).await.unwrap();
            assert_eq!(stats.total, 1);
        });
        assert_eq!(test_support::format_of(&file), schema::FORMAT_VERSION);
    }
}
