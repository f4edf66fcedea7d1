//! Group commit: one writer thread applies every pending write of the moment
//! in a single redb write transaction, commits it once, and answers each
//! caller once the commit's journal record is synced (see
//! [`crate::journal_sync`]: the writer goes on with the next batch
//! meanwhile).
//!
//! Why: an fsync costs milliseconds, whatever the size of the transaction.
//! Committing each write on its own would cap the store at a few hundred
//! writes per second; batching the writes that queue up while the previous
//! commit is in flight makes throughput grow with the number of concurrent
//! clients, and no caller hears "done" before its write is on disk.
//!
//! A write that arrives while no other is in flight skips the writer
//! thread: its caller's thread commits it as a batch of one (see
//! [`Committer::commit_if_lone`]); a lone post is made durable by the post
//! log instead of a durable redb commit (see [`crate::post_log`]), and
//! committed after its answer (see [`crate::late_commit`]).
//!
//! Rules of a batch:
//! * an operation that fails for its caller (`CLAIM_NOT_FOUND`, ...) checks
//!   before it writes, so it fails only its own caller;
//! * an operation that panics or hits a database error is answered with
//!   that error, the transaction is thrown away, and the other operations of
//!   the batch are applied again in a fresh one (they are `FnMut` for this);
//! * if the commit fails, every caller of the batch gets `UNAVAILABLE`.

use std::{
    collections::HashMap,
    panic::{catch_unwind, AssertUnwindSafe},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard,
    },
    thread::JoinHandle,
};

use plugin_api::{
    storage::{QueueChange, QueueRef},
    PluginError, PluginResult,
};
use redb::{Database, Durability, Table, WriteTransaction};
use tokio::sync::{mpsc, oneshot};

use crate::{
    claim_cursor::{BatchCursors, ClaimCursors, Cursor},
    error::{OpError, OpResult},
    feed::{self, Feed, Sinks},
    gather::Gather,
    journal_sync::{JournalSync, Ticket},
    late_commit::{LateCommit, Uncommitted},
    metadata_cache::MetadataCache,
    post_log::{LoggedOp, LoggedPost, PostLog},
    queue_state::QueueStates,
    schema,
};

/// At most this many operations share one transaction, so that one commit
/// cannot grow without bound under a flood of writes.
const MAX_BATCH: usize = 2048;

/// How many operations may wait for the writer before callers wait to
/// enqueue (back-pressure instead of unbounded memory).
const QUEUE_DEPTH: usize = 16 * 1024;

/// A table of the batch's transaction, opened the first time an operation
/// uses it: each table a transaction opens costs its commit a root update
/// whether or not it changed, and a lone post needs only a handful of the
/// sixteen (measured: opening and flushing all sixteen was ~20 us of a
/// one-message commit's writer CPU).
/// Opening fails only when the file is damaged or unreadable; that panics,
/// which fails the operation that needed the table and lets the rest of the
/// batch commit without it (see [`apply_all`]).
pub(crate) struct LazyTable<'t, K: redb::Key + 'static, V: redb::Value + 'static> {
    txn: &'t WriteTransaction,
    definition: redb::TableDefinition<'static, K, V>,
    table: std::cell::OnceCell<Table<'t, K, V>>,
    /// How many times the table was borrowed for writing (see
    /// [`crate::post_target`]).
    writes: u64,
}

impl<'t, K: redb::Key + 'static, V: redb::Value + 'static> LazyTable<'t, K, V> {
    fn new(txn: &'t WriteTransaction, definition: redb::TableDefinition<'static, K, V>) -> Self {
        Self {
            txn,
            definition,
            table: std::cell::OnceCell::new(),
            writes: 0,
        }
    }

    /// The table, opened (and created, in a new file) if it is not yet.
    pub(crate) fn try_open(&self) -> Result<&Table<'t, K, V>, redb::TableError> {
        if let Some(table) = self.table.get() {
            return Ok(table);
        }
        let table = self.txn.open_table(self.definition)?;
        Ok(self.table.get_or_init(|| table))
    }

    /// How many times the table was borrowed for writing: a change of this
    /// count is a possible change of the table.
    pub(crate) fn writes(&self) -> u64 {
        self.writes
    }

    fn opened(&self) -> &Table<'t, K, V> {
        self.try_open().unwrap_or_else(|e| {
            panic!("embedded store: cannot open table {}: {e}", self.definition)
        })
    }
}

impl<'t, K: redb::Key + 'static, V: redb::Value + 'static> std::ops::Deref for LazyTable<'t, K, V> {
    type Target = Table<'t, K, V>;

    fn deref(&self) -> &Self::Target {
        self.opened()
    }
}

impl<K: redb::Key + 'static, V: redb::Value + 'static> std::ops::DerefMut for LazyTable<'_, K, V> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.writes += 1;
        self.opened();
        self.table.get_mut().expect("opened just above")
    }
}

/// Declares [`WriteTables`] with one lazily opened field per table, its
/// constructor and `open_all`, from one list, so that a table added to the
/// schema cannot be forgotten in one of the three.
macro_rules! write_tables {
    ($($field:ident: $definition:ident => ($key:ty, $value:ty),)*) => {
        /// Every table of the batch's transaction, for all its operations;
        /// each is opened on first use.
        pub(crate) struct WriteTables<'t> {
            $(pub $field: LazyTable<'t, $key, $value>,)*
            /// Each queue's state, written once per batch (see
            /// [`WriteTables::finish`]).
            pub queue_state: QueueStates<'t>,
            /// The changes this batch announces once committed; `None` while
            /// no sink watches, so that operations build nothing for nobody.
            changes: Option<Vec<QueueChange>>,
            /// The last post's queue, for the next post (see
            /// [`crate::post_target`]).
            pub post_target: Option<crate::post_target::PostTarget>,
            /// The last message this batch posted, for the next post (see
            /// [`crate::expiry::note_posted`]).
            pub last_posted: Option<crate::expiry::LastPosted>,
            /// The queues whose metadata (or existence) this batch changed,
            /// for the metadata cache to forget once the batch is committed.
            metadata_changed: Vec<(String, String)>,
            /// Where claims may start scanning (see [`crate::claim_cursor`]).
            pub claim_cursors: BatchCursors<'t>,
        }

        impl<'t> WriteTables<'t> {
            /// The tables of `txn`, none opened yet.
            pub(crate) fn new(txn: &'t WriteTransaction) -> Self {
                Self {
                    $($field: LazyTable::new(txn, schema::$definition),)*
                    queue_state: QueueStates::new(LazyTable::new(txn, schema::QUEUE_STATE)),
                    changes: None,
                    post_target: None,
                    last_posted: None,
                    metadata_changed: Vec::new(),
                    claim_cursors: BatchCursors::new(None),
                }
            }

            /// The same, reading and changing the committed claim cursors.
            pub(crate) fn with_claim_cursors(mut self, cursors: &'t ClaimCursors) -> Self {
                self.claim_cursors = BatchCursors::new(Some(cursors));
                self
            }

            /// Opens every table, creating those a new file lacks (so that
            /// reads never meet a missing one).
            pub(crate) fn open_all(&self) -> Result<(), redb::TableError> {
                $(self.$field.try_open()?;)*
                self.queue_state.open()
            }
        }
    };
}

write_tables! {
    queues: QUEUES => ((&'static str, &'static str), &'static [u8]),
    seq_floor: SEQ_FLOOR => ((&'static str, &'static str), u64),
    messages: MESSAGES => ((u64, u64), &'static [u8]),
    message_expiry: MESSAGE_EXPIRY => ((u64, u64, u64), ()),
    claims: CLAIMS => ((u64, u128), &'static [u8]),
    claim_expiry: CLAIM_EXPIRY => ((u64, u64, u128), ()),
    subscriptions: SUBSCRIPTIONS => ((&'static str, &'static str, &'static str), &'static [u8]),
    subscribers: SUBSCRIBERS => ((&'static str, &'static str, &'static str, &'static str), ()),
    subscription_expiry: SUBSCRIPTION_EXPIRY => ((u64, &'static str, &'static str, &'static str), ()),
    notification_log: NOTIFICATION_LOG => ((&'static str, &'static str, u64), &'static [u8]),
    notification_log_expiry: NOTIFICATION_LOG_EXPIRY => ((u64, &'static str, &'static str, u64), ()),
    leases: LEASES => (&'static str, &'static [u8]),
    doomed: DOOMED => (u64, ()),
    meta: META => (&'static str, u64),
    pools: POOLS => (&'static str, &'static [u8]),
    flavors: FLAVORS => ((&'static str, &'static str), &'static [u8]),
}

impl<'t> WriteTables<'t> {
    /// The tables of `txn` for the writes of a batch: reading and changing
    /// the committed claim cursors, and recording the changes to announce
    /// when `announcing` (some sink watches).
    fn for_batch(
        txn: &'t WriteTransaction,
        claim_cursors: &'t ClaimCursors,
        announcing: bool,
    ) -> Self {
        let mut tables = Self::new(txn).with_claim_cursors(claim_cursors);
        tables.changes = announcing.then(Vec::new);
        tables
    }

    /// Writes what the batch kept in memory (the queue states) to its
    /// tables; the transaction must not commit without it.
    pub(crate) fn finish(&mut self) -> OpResult<()> {
        self.queue_state.flush()
    }

    /// Takes what the writes so far leave for after the commit.
    fn aftermath(&mut self) -> Aftermath {
        Aftermath {
            metadata_changed: std::mem::take(&mut self.metadata_changed),
            cursors_changed: self.claim_cursors.take_changes(),
            changes: self.changes.take(),
        }
    }

    /// Notes that the queue's metadata, or whether it exists, changes in
    /// this batch (see [`crate::metadata_cache`]).
    pub(crate) fn metadata_changed(&mut self, queue: &QueueRef) {
        self.metadata_changed
            .push((queue.project.to_string(), queue.name.to_string()));
    }

    /// Records a change to announce once the batch is durable. `change` is
    /// only called while a sink watches.
    pub(crate) fn announce(&mut self, change: impl FnOnce() -> QueueChange) {
        if let Some(changes) = &mut self.changes {
            changes.push(change());
        }
    }

    /// How many changes are recorded (to drop those of a failed operation).
    fn announced(&self) -> usize {
        self.changes.as_ref().map_or(0, Vec::len)
    }

    fn forget_announced_after(&mut self, len: usize) {
        if let Some(changes) = &mut self.changes {
            changes.truncate(len);
        }
    }
}

/// What a transaction's writes leave for once its commit is over: the
/// queues whose cached metadata is stale, the claim cursors they moved and
/// the changes they announce.
pub(crate) struct Aftermath {
    metadata_changed: Vec<(String, String)>,
    cursors_changed: HashMap<u64, Option<Cursor>>,
    changes: Option<Vec<QueueChange>>,
}

impl Aftermath {
    /// Brings the caches in line with the commit that took journal ticket
    /// `ticket` and `committed` or not; returns the changes to announce, if
    /// it committed.
    pub(crate) fn settle(
        self,
        committed: bool,
        ticket: Ticket,
        metadata: &MetadataCache,
        claim_cursors: &ClaimCursors,
    ) -> Option<Vec<QueueChange>> {
        // Also after a failed commit: whether it reached the file is unknown.
        metadata.invalidate(&self.metadata_changed, ticket);
        if committed {
            claim_cursors.apply(self.cursors_changed);
            self.changes
        } else {
            // Whether it reached the file is unknown: trust no cursor.
            claim_cursors.clear();
            None
        }
    }
}

/// One queued write, type-erased so that one channel carries them all.
trait Pending: Send {
    /// Runs the operation inside the batch's transaction, keeping its
    /// result. `Err` means the transaction must be abandoned.
    fn apply(&mut self, tables: &mut WriteTables<'_>) -> Result<(), PluginError>;
    /// Answers the caller once the batch's fate is known.
    fn complete(self: Box<Self>, commit: Result<(), PluginError>);
    /// Answers the caller with an error of its own (it will not be retried).
    fn fail(self: Box<Self>, error: PluginError);
    /// What this operation applies, if it is a write the post log can
    /// hold.
    fn logged(&self) -> Option<&LoggedOp>;
}

/// A write operation with its caller's reply channel.
struct Job<F, T> {
    op: F,
    result: Option<PluginResult<T>>,
    reply: oneshot::Sender<PluginResult<T>>,
    logged: Option<LoggedOp>,
}

impl<F, T> Pending for Job<F, T>
where
    F: FnMut(&mut WriteTables<'_>) -> OpResult<T> + Send,
    T: Send,
{
    fn apply(&mut self, tables: &mut WriteTables<'_>) -> Result<(), PluginError> {
        let announced = tables.announced();
        match (self.op)(tables) {
            Ok(value) => self.result = Some(Ok(value)),
            Err(OpError::Caller(e)) => {
                // It wrote nothing, so it changed nothing to announce.
                tables.forget_announced_after(announced);
                self.result = Some(Err(e));
            }
            Err(e @ OpError::Database(_)) => return Err(e.into_plugin()),
        }
        Ok(())
    }

    fn complete(self: Box<Self>, commit: Result<(), PluginError>) {
        let answer = match commit {
            Ok(()) => self
                .result
                .unwrap_or_else(|| Err(PluginError::internal("write was not applied"))),
            Err(e) => Err(e),
        };
        // The caller may have given up waiting (its future was dropped);
        // the write is committed all the same.
        let _ = self.reply.send(answer);
    }

    fn fail(self: Box<Self>, error: PluginError) {
        let _ = self.reply.send(Err(error));
    }

    fn logged(&self) -> Option<&LoggedOp> {
        self.logged.as_ref()
    }
}

/// The handle callers submit writes through. Dropping it stops the writer
/// thread after it has finished what was queued, and waits for it.
pub(crate) struct GroupCommit {
    sender: Option<mpsc::Sender<Box<dyn Pending>>>,
    thread: Option<JoinHandle<()>>,
    committer: Arc<Committer>,
}

/// What commits a batch, on the writer thread or on an idle caller's.
struct Committer {
    db: Arc<Database>,
    feed: Arc<Feed>,
    metadata: Arc<MetadataCache>,
    /// The journal's syncs, when the database has the journal (see
    /// [`crate::journal_sync`]); without it a commit is durable when it
    /// returns.
    sync: Option<Arc<JournalSync>>,
    claim_cursors: ClaimCursors,
    /// Held while a batch is applied and committed: one batch at a time,
    /// in the order the holders took it.
    committing: Mutex<()>,
    /// Writes whose callers are waiting for their answer.
    in_flight: AtomicUsize,
    /// How many writers there are lately, to gather their writes.
    gather: Gather,
    /// Where lone posts are made durable, when the database has the
    /// journal (see [`crate::post_log`]).
    post_log: Option<Mutex<PostLog>>,
    /// A lone post answered before its commit (see [`crate::late_commit`]).
    late: LateCommit,
}

impl Committer {
    /// Commits `batch` on the writer thread: its record is synced while
    /// the writer goes on with the next batch.
    ///
    /// `more` gives the writes queued since, which join the batch while
    /// the previous record is still syncing.
    fn run(
        &self,
        batch: Vec<Box<dyn Pending>>,
        more: &mut dyn FnMut() -> Option<Box<dyn Pending>>,
    ) {
        let _committing = self.committing.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sync) = &self.sync {
            sync.set_deferred(true);
        }
        self.commit_batch(batch, more);
    }

    fn commit_batch(
        &self,
        batch: Vec<Box<dyn Pending>>,
        more: &mut dyn FnMut() -> Option<Box<dyn Pending>>,
    ) {
        // Its transaction holds redb's write lock until it commits.
        self.finish_late();
        run_batch(
            &self.db,
            &self.feed,
            &self.metadata,
            self.sync.as_ref().map(|sync| Journal {
                sync,
                gather: &self.gather,
                post_log: self.post_log.as_ref(),
            }),
            &self.claim_cursors,
            batch,
            more,
        );
        self.gather.batch_done();
    }

    /// Counts a write in flight until the returned guard drops.
    fn in_flight(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        self.gather.observe(now);
        InFlight(&self.in_flight)
    }

    /// Commits `job` on the caller's thread if it is the only write in
    /// flight, there was one writer lately (see [`crate::gather`]) and
    /// nobody is committing; gives it back otherwise. Handing a
    /// lone write to the writer thread and its answer back would wake two
    /// sleeping threads, which on a virtual machine costs a lone client
    /// more than the commit's own CPU (see docs/storage-embedded.md, "A lone
    /// write commits on its caller's thread"). With other writes in flight,
    /// the writer thread batches them and the callers' threads stay free to
    /// serve requests.
    ///
    /// `logged` is what the job applies, if the post log can hold it; a
    /// lone post goes through the log, a lone claim or delete commits
    /// durably.
    fn commit_if_lone(
        self: &Arc<Self>,
        job: Box<dyn Pending>,
        logged: Option<&LoggedOp>,
    ) -> Result<(), Box<dyn Pending>> {
        if self.in_flight.load(Ordering::Acquire) != 1 || self.gather.writers() > 1 {
            return Err(job);
        }
        let Ok(_committing) = self.committing.try_lock() else {
            return Err(job);
        };
        // Synced here, so that the answer is ready when this returns.
        if let Some(sync) = &self.sync {
            sync.set_deferred(false);
        }
        let job = match logged {
            Some(LoggedOp::Post(post)) => match self.commit_logged(job, post) {
                Ok(()) => return Ok(()),
                Err(job) => job,
            },
            _ => job,
        };
        self.commit_batch(vec![job], &mut || None);
        Ok(())
    }

    /// Applies the lone post `job` after writing and syncing `post`, what
    /// it applies, to the post log, answers it, and leaves its commit
    /// without durability for after the answer (see
    /// [`crate::late_commit`]); gives it back when the store has no post
    /// log or the post is too large for it. The caller holds `committing`
    /// and syncs inline.
    fn commit_logged(
        self: &Arc<Self>,
        mut job: Box<dyn Pending>,
        post: &LoggedPost,
    ) -> Result<(), Box<dyn Pending>> {
        let (Some(log), Some(sync)) = (&self.post_log, &self.sync) else {
            return Err(job);
        };
        let payload = post.encode();
        let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
        // Failing, writing has stopped, and the post's commit fails too.
        let _ = log.restart_if_taken_in(sync);
        if !log.takes(payload.len()) && log.holds_posts() {
            if let Err(e) = self.restart_post_log(&mut log) {
                crate::log::warn(&format!(
                    "embedded store: cannot start the post log over ({e}); committing durably"
                ));
                return Err(job);
            }
        }
        if !log.takes(payload.len()) {
            // Larger than the whole log: a durable commit of its own.
            return Err(job);
        }
        let lsn = log.next_lsn();
        let mut applied = None;
        // The record takes a journal ticket before the post's commit, so
        // that reads wait for it to be durable. It is written on this
        // thread rather than by the sync thread: the hand-off's two
        // wake-ups cost what the overlap saved (docs/storage-embedded.md,
        // "Lone posts through the post log"). Handed to the kernel, its
        // write and sync go on while this thread applies the post.
        let logged = sync.run_inline(|| {
            let appending = log.start_append(&payload, 1)?;
            // The last post's commit first, if its task has not made it
            // yet: redb commits the logged posts in the order of their
            // records.
            self.finish_late();
            // If that commit failed, writing has stopped, and this post's
            // transaction would begin without the last post and answer
            // ids its replay at the next open would not give.
            if !sync.writing_stopped() {
                applied = Some(self.apply_logged(&mut job, lsn));
            }
            appending.finish()
        });
        drop(log);
        match (logged, applied) {
            (Ok(()), Some(Ok((txn, aftermath, sinks)))) => {
                self.answer_before_commit(job, txn, aftermath, sinks, sync.submitted());
            }
            (Ok(()), Some(Err(e))) => match self.skip_in_replay(lsn) {
                Ok(()) => job.fail(e),
                Err(why) => {
                    // The next open would apply what its client is told
                    // failed, and give the posts after it other ids than
                    // they were answered with: nothing more may be written.
                    sync.stop_writing(&format!(
                        "cannot record that a failed post's record is not to be applied ({why})"
                    ));
                    job.complete(Err(PluginError::unavailable(format!(
                        "embedded store: {}",
                        sync.failure().unwrap_or_default()
                    ))));
                }
            },
            (outcome, applied) => {
                if let Some(Ok((txn, ..))) = applied {
                    let _ = txn.abort();
                }
                // Its record may be durable, and is then applied at the
                // next open: the post's outcome is unknown to the client,
                // as after a lost connection.
                let why = match outcome {
                    Err(e) => format!("cannot write the post log: {e}"),
                    Ok(()) => sync.failure().unwrap_or_default(),
                };
                job.complete(Err(PluginError::unavailable(format!(
                    "embedded store: {why}"
                ))));
            }
        }
        self.gather.batch_done();
        Ok(())
    }

    /// Applies the post `job`, logged as `lsn`, in a transaction without
    /// durability; gives back the transaction, uncommitted, with what its
    /// commit changes and whom it tells.
    fn apply_logged(
        &self,
        job: &mut Box<dyn Pending>,
        lsn: u64,
    ) -> Result<(WriteTransaction, Aftermath, Sinks), PluginError> {
        let cannot_begin = |e: &dyn std::fmt::Display| {
            PluginError::unavailable(format!("embedded store: cannot begin a write: {e}"))
        };
        let sinks = self.feed.sinks();
        let mut txn = self.db.begin_write().map_err(|e| cannot_begin(&e))?;
        txn.set_durability(Durability::None)
            .map_err(|e| cannot_begin(&e))?;
        let (applied, aftermath) = {
            let mut tables = WriteTables::for_batch(&txn, &self.claim_cursors, !sinks.is_empty());
            let applied = apply_one(&mut tables, job).and_then(|()| {
                note_logged(&mut tables, lsn)
                    .and_then(|()| tables.finish())
                    .map_err(|e| e.into_plugin())
            });
            #[cfg(test)]
            let applied = applied.and_then(|()| injected_failure());
            (applied, tables.aftermath())
        };
        match applied {
            Ok(()) => Ok((txn, aftermath, sinks)),
            Err(e) => {
                let _ = txn.abort();
                Err(e)
            }
        }
    }

    /// Records durably that the post log's record `lsn` is applied, for a
    /// post whose transaction failed after its record was written: the
    /// next open applies only the records after it. Every commit before
    /// this one becomes durable with it, and they hold every record before.
    fn skip_in_replay(&self, lsn: u64) -> Result<(), String> {
        durable_commit(&self.db, |txn| {
            let mut tables = WriteTables::new(txn);
            note_logged(&mut tables, lsn)
                .and_then(|()| tables.finish())
                .map_err(|e| e.into_plugin().message.to_string())
        })
    }

    /// Answers the logged post `job`, durable with journal ticket
    /// `ticket`, and leaves its transaction's commit to a task of its own.
    fn answer_before_commit(
        self: &Arc<Self>,
        job: Box<dyn Pending>,
        txn: WriteTransaction,
        aftermath: Aftermath,
        sinks: Sinks,
        ticket: Ticket,
    ) {
        self.late.leave(Uncommitted {
            txn,
            aftermath,
            sinks,
            ticket,
        });
        job.complete(Ok(()));
        // Weak: a store closed meanwhile has committed it as it closed, and
        // must not be kept open by a task that may never run.
        let committer = Arc::downgrade(self);
        plugin_api::runtime::spawn(async move {
            if let Some(committer) = committer.upgrade() {
                committer.finish_late();
            }
        });
    }

    /// Commits the post answered before its commit, if there is one;
    /// returns once it is visible (see [`crate::late_commit`]).
    fn finish_late(&self) {
        if let Some(sync) = &self.sync {
            self.late.finish(&self.metadata, &self.claim_cursors, sync);
        }
    }

    /// Starts the post log over once a durable commit holds its posts. The
    /// caller holds `committing` and syncs inline.
    fn restart_post_log(&self, log: &mut PostLog) -> Result<(), String> {
        self.finish_late();
        durable_commit(&self.db, |_| Ok(()))?;
        if let Some(sync) = &self.sync {
            sync.wait_idle()
                .map_err(|e| format!("the journal failed: {e}"))?;
        }
        log.restart(0);
        Ok(())
    }

    /// On a clean close: a durable commit takes in the posts only the post
    /// log holds, so that the database file alone holds every answered
    /// write (redb drops what non-durable commits left when it closes).
    fn take_in_logged_posts(&self) {
        let Some(log) = &self.post_log else { return };
        // In the order `commit_logged` takes them.
        let _committing = self.committing.lock().unwrap_or_else(|e| e.into_inner());
        let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
        if !log.holds_posts() {
            return;
        }
        if let Some(sync) = &self.sync {
            sync.set_deferred(false);
        }
        if let Err(e) = self.restart_post_log(&mut log) {
            // They are still in the log, which the next open applies.
            crate::log::warn(&format!(
                "embedded store: cannot commit the logged posts at close ({e}); the next open applies them from the post log"
            ));
        }
    }
}

/// Commits durably what `write` writes (nothing, for an empty commit):
/// every commit before it is then durable too.
fn durable_commit(
    db: &Database,
    write: impl FnOnce(&WriteTransaction) -> Result<(), String>,
) -> Result<(), String> {
    let mut txn = db.begin_write().map_err(|e| e.to_string())?;
    txn.set_durability(Durability::Immediate)
        .map_err(|e| e.to_string())?;
    write(&txn)?;
    txn.commit().map_err(|e| e.to_string())
}

struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl GroupCommit {
    /// Starts the writer thread for `db`, announcing commits to `feed` and
    /// keeping `metadata` up to date; `sync` is the journal's, if `db` is
    /// on one.
    pub(crate) fn start(
        db: Arc<Database>,
        feed: Arc<Feed>,
        metadata: Arc<MetadataCache>,
        sync: Option<Arc<JournalSync>>,
        post_log: Option<PostLog>,
    ) -> std::io::Result<Self> {
        let committer = Arc::new(Committer {
            db,
            feed,
            metadata,
            sync,
            claim_cursors: ClaimCursors::default(),
            committing: Mutex::new(()),
            in_flight: AtomicUsize::new(0),
            gather: Gather::default(),
            post_log: post_log.map(Mutex::new),
            late: LateCommit::default(),
        });
        let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
        let thread = {
            let committer = Arc::clone(&committer);
            std::thread::Builder::new()
                .name("zaqar-embedded-writer".into())
                .spawn(move || writer_loop(&committer, receiver))?
        };
        Ok(Self {
            sender: Some(sender),
            thread: Some(thread),
            committer,
        })
    }

    /// Runs `op` in the next batch and resolves once that batch is durable
    /// (or failed). `op` may run more than once if another operation of its
    /// batch fails the transaction; only the last run's writes are committed.
    ///
    /// When no other write is in flight, the batch is `op` alone and is
    /// committed before this returns, blocking the calling thread for one
    /// commit (a few hundred microseconds, the sync included); writes that
    /// arrive meanwhile queue for the writer thread as usual.
    pub(crate) async fn write<T, F>(&self, op: F) -> PluginResult<T>
    where
        F: FnMut(&mut WriteTables<'_>) -> OpResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.write_logged(None, op).await
    }

    /// The same for a write the post log can hold: `logged` is what `op`
    /// applies, which the post log makes durable instead of redb when it
    /// is a post alone in flight or in a batch of such writes only (see
    /// [`crate::post_log`]).
    pub(crate) async fn write_logged<T, F>(
        &self,
        logged: Option<LoggedOp>,
        op: F,
    ) -> PluginResult<T>
    where
        F: FnMut(&mut WriteTables<'_>) -> OpResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let sender = self.sender.as_ref().ok_or_else(closed)?;
        let (reply, mut answer) = oneshot::channel();
        let lone = logged.clone();
        let job: Box<dyn Pending> = Box::new(Job {
            op,
            result: None,
            reply,
            logged,
        });
        let _in_flight = self.committer.in_flight();
        let job = match self.committer.commit_if_lone(job, lone.as_ref()) {
            Ok(()) => return answer.try_recv().map_err(|_| closed())?,
            Err(job) => job,
        };
        sender.send(job).await.map_err(|_| closed())?;
        self.committer.gather.enqueued();
        answer.await.map_err(|_| closed())?
    }

    /// Commits the post answered before its commit, if there is one: what
    /// reads the store calls first, so that it finds every answered write.
    pub(crate) fn finish_late_commit(&self) {
        self.committer.finish_late();
    }

    /// Whether the writer thread is still accepting work.
    pub(crate) fn is_running(&self) -> bool {
        self.sender.as_ref().is_some_and(|s| !s.is_closed())
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        // Closing the channel lets the writer drain what is queued and exit;
        // joining makes sure the database file is released when we return.
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.committer.take_in_logged_posts();
    }
}

fn closed() -> PluginError {
    PluginError::unavailable("embedded store: the writer has stopped")
}

/// Takes everything queued (up to [`MAX_BATCH`]) and commits it as one.
fn writer_loop(committer: &Committer, mut receiver: mpsc::Receiver<Box<dyn Pending>>) {
    while let Some(first) = receiver.blocking_recv() {
        let mut batch = Vec::with_capacity(64);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        committer.run(batch, &mut || receiver.try_recv().ok());
    }
}

/// Applies a batch in one transaction and commits it, retrying without an
/// operation that poisoned the transaction; once the commit is durable,
/// announces what the batch changed to the feed's sinks, then answers its
/// callers. The metadata cache forgets what the batch changed before anyone
/// hears of it.
// Kept out of line: `bench/callgrind-profile.sh` counts the store's commit
// as this function's inclusive cost.
#[inline(never)]
fn run_batch(
    db: &Database,
    feed: &Feed,
    metadata: &MetadataCache,
    journal: Option<Journal<'_>>,
    claim_cursors: &ClaimCursors,
    mut batch: Vec<Box<dyn Pending>>,
    more: &mut dyn FnMut() -> Option<Box<dyn Pending>>,
) {
    let sync = journal.as_ref().map(|journal| journal.sync);
    let sinks = feed.sinks();
    while !batch.is_empty() {
        let mut txn = match db.begin_write() {
            Ok(txn) => txn,
            Err(e) => return fail_all(batch, &format!("cannot begin a write: {e}")),
        };
        // Immediate is redb's default; spelled out because a 2xx must mean
        // the write survives `kill -9` and power loss.
        if let Err(e) = txn.set_durability(Durability::Immediate) {
            return fail_all(batch, &format!("cannot make the write durable: {e}"));
        }
        let mut logged = None;
        let (poisoned, finished, aftermath) = {
            let mut tables = WriteTables::for_batch(&txn, claim_cursors, !sinks.is_empty());
            let poisoned = apply_all(&mut tables, &mut batch)
                .or_else(|| absorb_while_syncing(&mut tables, &mut batch, sync, more))
                .or_else(|| gather_writers(&mut tables, &mut batch, journal.as_ref(), more));
            // Writing what the operations kept in memory fails only with
            // the database, not because of one operation: it fails them all.
            let finished = match poisoned {
                None => {
                    logged = journal
                        .as_ref()
                        .and_then(|journal| BatchToLog::of(journal, &batch));
                    logged
                        .as_ref()
                        .map_or(Ok(()), |record| note_logged(&mut tables, record.lsn))
                        .and_then(|()| tables.finish())
                        .map_err(|e| e.into_plugin().message)
                }
                Some(_) => Ok(()),
            };
            (poisoned, finished, tables.aftermath())
        };
        if let Some((index, error)) = poisoned {
            // redb rolls back what the batch wrote; the others run again.
            let _ = txn.abort();
            batch.remove(index).fail(error);
            continue;
        }
        if let Err(message) = finished {
            let _ = txn.abort();
            return fail_all(batch, &format!("cannot write the queue states: {message}"));
        }
        if let (Some(record), Some(journal)) = (logged, journal.as_ref()) {
            let batch = std::mem::take(&mut batch);
            commit_logged_batch(
                txn,
                record,
                journal,
                aftermath,
                metadata,
                claim_cursors,
                &sinks,
                batch,
            );
            continue;
        }
        let outcome = txn
            .commit()
            .map_err(|e| PluginError::unavailable(format!("embedded store: commit failed: {e}")));
        // The record covering this commit (the last one handed over).
        let ticket = sync.map_or(0, |sync| sync.submitted());
        if let (Ok(()), Some(log)) = (&outcome, journal.as_ref().and_then(|j| j.post_log)) {
            // A durable commit holds every post logged before it.
            lock(log).taken_in_by(ticket);
        }
        let changes = aftermath.settle(outcome.is_ok(), ticket, metadata, claim_cursors);
        let batch = std::mem::take(&mut batch);
        let sinks = sinks.clone();
        let complete = move |outcome: Result<(), PluginError>| {
            // `outcome` is also the journal's: a batch whose sync failed
            // was committed but is not durable, and announces nothing.
            if let (Ok(()), Some(changes)) = (&outcome, changes) {
                feed::deliver(&sinks, changes);
            }
            for job in batch {
                job.complete(outcome.clone());
            }
        };
        match (sync, outcome) {
            (Some(sync), Ok(())) => sync.after_durable(ticket, Box::new(complete)),
            (_, outcome) => complete(outcome),
        }
    }
}

/// The journal's parts the writer commits with.
struct Journal<'a> {
    sync: &'a Arc<JournalSync>,
    gather: &'a Gather,
    post_log: Option<&'a Mutex<PostLog>>,
}

fn lock(log: &Mutex<PostLog>) -> MutexGuard<'_, PostLog> {
    log.lock().unwrap_or_else(|e| e.into_inner())
}

/// A batch of writes the post log can hold only (posts, and claims and
/// deletes of messages), made durable by one post-log record instead of a
/// durable redb commit (see [`crate::post_log`]): the record's payload, how
/// many writes it holds and the LSN it takes.
struct BatchToLog {
    payload: Vec<u8>,
    ops: u32,
    lsn: u64,
}

impl BatchToLog {
    /// The record for `batch` if the log can hold every operation in it,
    /// the writer thread commits it, and the log takes it.
    fn of(journal: &Journal<'_>, batch: &[Box<dyn Pending>]) -> Option<Self> {
        let log = journal.post_log?;
        if !journal.sync.deferred() {
            return None;
        }
        let ops: Vec<&LoggedOp> = batch
            .iter()
            .map(|job| job.logged())
            .collect::<Option<_>>()?;
        // A claim or a delete counts as one post in the log's cycle.
        let count = u32::try_from(ops.len()).ok()?;
        let payload = LoggedOp::encode_batch(&ops);
        let mut log = lock(log);
        log.restart_if_taken_in(journal.sync).ok()?;
        // Otherwise the batch commits durably, which takes in the writes
        // logged so far and lets the log start over.
        log.takes_posts(count, payload.len()).then(|| Self {
            payload,
            ops: count,
            lsn: log.next_lsn(),
        })
    }
}

/// Set by a test to make the next lone post fail after it was applied in
/// its transaction, as a database error would make it fail.
#[cfg(test)]
pub(crate) static FAIL_NEXT_LONE_POST: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

#[cfg(test)]
fn injected_failure() -> Result<(), PluginError> {
    if FAIL_NEXT_LONE_POST.swap(false, Ordering::AcqRel) {
        return Err(PluginError::unavailable(
            "embedded store: a failure injected by a test",
        ));
    }
    Ok(())
}

/// Batches committed through the post log, for tests to see that they were.
#[cfg(test)]
pub(crate) static LOGGED_BATCHES: AtomicUsize = AtomicUsize::new(0);

/// Hands `record`, of the batch's writes, to the sync thread, commits
/// `txn` (which holds them and notes the record's LSN) without durability,
/// and answers the batch once the record is durable; the writer goes on
/// with the next batch meanwhile, as after a durable commit.
#[allow(clippy::too_many_arguments)]
fn commit_logged_batch(
    mut txn: redb::WriteTransaction,
    record: BatchToLog,
    journal: &Journal<'_>,
    aftermath: Aftermath,
    metadata: &MetadataCache,
    claim_cursors: &ClaimCursors,
    sinks: &Sinks,
    batch: Vec<Box<dyn Pending>>,
) {
    let log = journal.post_log.expect("a logged batch has the post log");
    let sync = journal.sync;
    #[cfg(test)]
    LOGGED_BATCHES.fetch_add(1, Ordering::Relaxed);
    let prepared = txn
        .set_durability(Durability::None)
        .map_err(|e| format!("cannot commit a logged batch: {e}"))
        // One record in flight at a time.
        .and_then(|()| {
            sync.wait_idle()
                .map_err(|e| format!("the journal failed: {e}"))
        })
        .and_then(|()| {
            let mut log = lock(log);
            debug_assert_eq!(log.next_lsn(), record.lsn, "one writer appends");
            log.reserve(&record.payload, record.ops)
                .map_err(|e| format!("cannot write the post log: {e}"))
        });
    let write = match prepared {
        Ok(write) => write,
        Err(message) => {
            let _ = txn.abort();
            aftermath.settle(false, sync.submitted(), metadata, claim_cursors);
            return fail_all(batch, &message);
        }
    };
    // Handed over before the commit, so that what readers see of it is
    // durable: the record takes a journal ticket, which reads wait for.
    sync.submit(move || write.run());
    let ticket = sync.submitted();
    let outcome = txn.commit().map_err(|e| {
        // The record may still become durable, and the next open would
        // apply these posts: nothing more may be written before it.
        sync.stop_writing(&format!("the commit of a logged batch failed ({e})"));
        PluginError::unavailable(format!("embedded store: commit failed: {e}"))
    });
    let changes = aftermath.settle(outcome.is_ok(), ticket, metadata, claim_cursors);
    let sinks = sinks.clone();
    let complete = move |durable: Result<(), PluginError>| {
        let outcome = outcome.and(durable);
        if let (Ok(()), Some(changes)) = (&outcome, changes) {
            feed::deliver(&sinks, changes);
        }
        for job in batch {
            job.complete(outcome.clone());
        }
    };
    sync.after_durable(ticket, Box::new(complete));
}

/// Records in the transaction that it holds the post-log post `lsn`.
fn note_logged(tables: &mut WriteTables<'_>, lsn: u64) -> OpResult<()> {
    tables.meta.insert(schema::META_POST_LOG_APPLIED, lsn)?;
    Ok(())
}

/// Applies each operation; returns the first one that poisoned the
/// transaction (database error or panic) and its error.
fn apply_all(
    tables: &mut WriteTables<'_>,
    batch: &mut [Box<dyn Pending>],
) -> Option<(usize, PluginError)> {
    for (index, job) in batch.iter_mut().enumerate() {
        if let Err(e) = apply_one(tables, job) {
            return Some((index, e));
        }
    }
    None
}

fn apply_one(tables: &mut WriteTables<'_>, job: &mut Box<dyn Pending>) -> Result<(), PluginError> {
    match catch_unwind(AssertUnwindSafe(|| job.apply(tables))) {
        Ok(outcome) => outcome,
        Err(payload) => Err(PluginError::from_panic(payload.as_ref())),
    }
}

/// How long the writer waits for the record in flight before it looks for
/// newly queued writes again.
const ABSORB_POLL: std::time::Duration = std::time::Duration::from_micros(25);

/// While the previous batch's record is syncing, this batch cannot write
/// its pages yet (see [`crate::journal_sync`]): it takes in the writes
/// queued meanwhile instead, so that the next sync carries them too rather
/// than a batch of its own. Returns the operation that poisoned the
/// transaction, as [`apply_all`] does.
fn absorb_while_syncing(
    tables: &mut WriteTables<'_>,
    batch: &mut Vec<Box<dyn Pending>>,
    sync: Option<&Arc<JournalSync>>,
    more: &mut dyn FnMut() -> Option<Box<dyn Pending>>,
) -> Option<(usize, PluginError)> {
    let sync = sync?;
    while batch.len() < MAX_BATCH && sync.deferred() && sync.syncing() {
        let Some(mut job) = more() else {
            sync.wait_idle_for(ABSORB_POLL);
            continue;
        };
        let applied = apply_one(tables, &mut job);
        batch.push(job);
        if let Err(e) = applied {
            return Some((batch.len() - 1, e));
        }
    }
    None
}

/// With a few writers only, waits a moment for those not in the batch yet
/// (see [`crate::gather`]). Returns the operation that poisoned the
/// transaction, as [`apply_all`] does.
fn gather_writers(
    tables: &mut WriteTables<'_>,
    batch: &mut Vec<Box<dyn Pending>>,
    journal: Option<&Journal<'_>>,
    more: &mut dyn FnMut() -> Option<Box<dyn Pending>>,
) -> Option<(usize, PluginError)> {
    let Journal { sync, gather, .. } = journal?;
    let target = gather.target()?;
    if !sync.deferred() || batch.len() >= target {
        return None;
    }
    let mut poisoned = None;
    gather.wait_for(more, |mut job| {
        let applied = apply_one(tables, &mut job);
        batch.push(job);
        if let Err(e) = applied {
            poisoned = Some((batch.len() - 1, e));
            return false;
        }
        batch.len() < target
    });
    poisoned
}

fn fail_all(batch: Vec<Box<dyn Pending>>, message: &str) {
    for job in batch {
        job.fail(PluginError::unavailable(format!(
            "embedded store: {message}"
        )));
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use plugin_api::ErrorCode;
    use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

    use super::*;
    use crate::error::caller;

    fn job<T: Send + 'static>(
        op: impl FnMut(&mut WriteTables<'_>) -> OpResult<T> + Send + 'static,
    ) -> (Box<dyn Pending>, oneshot::Receiver<PluginResult<T>>) {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            op,
            result: None,
            reply,
            logged: None,
        };
        (Box::new(job), answer)
    }

    fn put(key: &'static str) -> impl FnMut(&mut WriteTables<'_>) -> OpResult<()> + Send {
        move |t| {
            t.meta.insert(key, 1)?;
            Ok(())
        }
    }

    #[test]
    fn a_failing_or_panicking_operation_fails_only_its_own_caller() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        let (first, first_answer) = job(put("first"));
        let (refused, refused_answer) = job(|t| {
            // A caller error after a read but before any write.
            let _ = t.meta.get("first")?;
            Err::<(), _>(caller(ErrorCode::CONFLICT, "no"))
        });
        let (panics, panics_answer) = job(|t| -> OpResult<()> {
            t.meta.insert("half-done", 1)?;
            panic!("boom")
        });
        let (last, last_answer) = job(put("last"));
        run_batch(
            &db,
            &Feed::default(),
            &MetadataCache::default(),
            None,
            &ClaimCursors::default(),
            vec![first, refused, panics, last],
            &mut || None,
        );

        assert_eq!(first_answer.blocking_recv().unwrap(), Ok(()));
        assert_eq!(last_answer.blocking_recv().unwrap(), Ok(()));
        assert_eq!(
            refused_answer.blocking_recv().unwrap().unwrap_err().code,
            ErrorCode::CONFLICT
        );
        assert_eq!(
            panics_answer.blocking_recv().unwrap().unwrap_err().code,
            ErrorCode::PANICKED
        );

        let txn = db.begin_read().unwrap();
        let meta = txn.open_table(crate::schema::META).unwrap();
        assert!(meta.get("first").unwrap().is_some());
        assert!(meta.get("last").unwrap().is_some());
        assert!(
            meta.get("half-done").unwrap().is_none(),
            "the panicking write was rolled back"
        );
    }

    /// A claim rolled back with its batch leaves no claim cursor past the
    /// messages it did not keep.
    #[test]
    fn a_rolled_back_claim_moves_no_claim_cursor() {
        use plugin_api::storage::{ClaimRequest, NewMessage};
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        let cursors = ClaimCursors::default();
        let run = |batch| {
            run_batch(
                &db,
                &Feed::default(),
                &MetadataCache::default(),
                None,
                &cursors,
                batch,
                &mut || None,
            )
        };
        let q = QueueRef::new("p", "q");
        let now = 1_000_000_000;
        let message = NewMessage {
            ttl: 3_600,
            delay: 0,
            body: b"{}".to_vec().into(),
        };
        let (post, posted) = job({
            let q = q.clone();
            move |t| crate::messages::post(t, &q, "c", &[message.clone(), message.clone()], now)
        });
        run(vec![post]);
        assert_eq!(posted.blocking_recv().unwrap().unwrap().len(), 2);
        let request = ClaimRequest {
            ttl: 60,
            grace: 60,
            limit: 10,
            dead_letter: None.into(),
        };
        let claim = |panics: bool| {
            let (q, request) = (q.clone(), request.clone());
            job(move |t| {
                let claimed = crate::claims::create(t, &q, &request, now, crate::ids::new_claim())?;
                assert!(!panics, "boom after claiming {}", claimed.messages.len());
                Ok(claimed.messages.len())
            })
        };
        let (rolled_back, failed) = claim(true);
        run(vec![rolled_back]);
        assert!(failed.blocking_recv().unwrap().is_err());
        let (kept, answer) = claim(false);
        run(vec![kept]);
        assert_eq!(answer.blocking_recv().unwrap(), Ok(2));
    }

    #[test]
    fn queue_states_a_batch_changed_are_stored_as_its_last_operation_left_them() {
        use plugin_api::storage::NewMessage;

        use crate::{messages, queue_state, queues};

        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        let queue = QueueRef::new("p", "q");
        let post = |n: usize| {
            let queue = queue.clone();
            job(move |t| {
                let message = NewMessage {
                    ttl: 60,
                    delay: 0,
                    body: b"{}".to_vec().into(),
                };
                messages::post(t, &queue, "client", &vec![message; n], 1_000).map(|_| ())
            })
        };
        let delete = {
            let queue = queue.clone();
            job(move |t| queues::delete(t, &queue))
        };
        let (post_then_panic, _) = {
            let mut post = post(5).0;
            job(move |t| -> OpResult<()> {
                post.apply(t).unwrap();
                panic!("boom")
            })
        };
        // Seqs 1-3 and 4-5, the queue deleted, created again by a post
        // (seq 6, continuing from the floor), then an operation whose
        // posts are rolled back with it.
        let batch = vec![post(3).0, post(2).0, delete.0, post(1).0, post_then_panic];
        run_batch(
            &db,
            &Feed::default(),
            &MetadataCache::default(),
            None,
            &ClaimCursors::default(),
            batch,
            &mut || None,
        );

        let txn = db.begin_read().unwrap();
        let qid = queues::read_qid(&txn, &queue).unwrap().unwrap();
        let table = txn.open_table(schema::QUEUE_STATE).unwrap();
        let state = queue_state::read(&table, qid).unwrap().unwrap();
        assert_eq!((state.last_seq, state.records, state.stamped), (6, 1, 0));
        assert_eq!(table.len().unwrap(), 1, "the deleted qid's row is gone");
    }

    /// Collects what a feed announces.
    struct Collect(Arc<std::sync::Mutex<Vec<QueueChange>>>);

    impl plugin_api::storage::ChangeSink for Collect {
        fn changed(&self, change: QueueChange) {
            self.0.lock().unwrap().push(change);
        }
    }

    fn announcing(
        name: &'static str,
        seq: u64,
    ) -> impl FnMut(&mut WriteTables<'_>) -> OpResult<()> + Send {
        move |t| {
            t.meta.insert(name, seq)?;
            t.announce(|| {
                QueueChange::messages(plugin_api::storage::QueueRef::new("p", name), seq)
            });
            Ok(())
        }
    }

    #[test]
    fn a_committed_batch_announces_its_operations_changes_in_order_and_no_others() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        let feed = Feed::default();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        feed.watch(plugin_api::storage::wrap_change_sink(Collect(Arc::clone(
            &seen,
        ))));
        let (first, _first) = job(announcing("first", 1));
        let (refused, _refused) = job(|t| {
            t.announce(|| {
                QueueChange::messages(plugin_api::storage::QueueRef::new("p", "refused"), 9)
            });
            Err::<(), _>(caller(ErrorCode::CONFLICT, "no"))
        });
        let (panics, _panics) = job(|t| -> OpResult<()> {
            t.announce(|| {
                QueueChange::messages(plugin_api::storage::QueueRef::new("p", "panics"), 9)
            });
            panic!("boom")
        });
        let (last, _last) = job(announcing("last", 2));
        run_batch(
            &db,
            &feed,
            &MetadataCache::default(),
            None,
            &ClaimCursors::default(),
            vec![first, refused, panics, last],
            &mut || None,
        );
        let names: Vec<String> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.queue.name.to_string())
            .collect();
        assert_eq!(
            names,
            ["first", "last"],
            "only committed operations' changes, in the order applied"
        );

        // Without a sink nothing is built or delivered, and a sink removed
        // hears nothing more.
        let id = feed.watch(plugin_api::storage::wrap_change_sink(Collect(Arc::clone(
            &seen,
        ))));
        feed.unwatch(id);
        feed.unwatch(0);
        let (after, _after) = job(announcing("after", 3));
        run_batch(
            &db,
            &feed,
            &MetadataCache::default(),
            None,
            &ClaimCursors::default(),
            vec![after],
            &mut || None,
        );
        assert_eq!(
            seen.lock().unwrap().len(),
            2,
            "an unwatched sink hears nothing"
        );
    }

    /// The name of the thread an operation ran on, after writing `key`.
    fn put_noting_thread(
        key: &'static str,
    ) -> impl FnMut(&mut WriteTables<'_>) -> OpResult<String> + Send {
        move |t| {
            t.meta.insert(key, 1)?;
            Ok(std::thread::current().name().unwrap_or("").to_owned())
        }
    }

    fn current_thread_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    #[test]
    fn a_lone_write_commits_on_its_callers_thread() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("t.redb")).unwrap());
        let writer =
            GroupCommit::start(Arc::clone(&db), Arc::default(), Arc::default(), None, None)
                .unwrap();
        let ran_on = std::thread::Builder::new()
            .name("caller".into())
            .spawn(move || current_thread_runtime().block_on(writer.write(put_noting_thread("x"))))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(ran_on.unwrap(), "caller");
        let txn = db.begin_read().unwrap();
        let meta = txn.open_table(crate::schema::META).unwrap();
        assert!(
            meta.get("x").unwrap().is_some(),
            "committed before answering"
        );
    }

    #[test]
    fn a_write_while_another_awaits_its_answer_goes_to_the_writer_thread() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("t.redb")).unwrap());
        let writer =
            GroupCommit::start(Arc::clone(&db), Arc::default(), Arc::default(), None, None)
                .unwrap();
        let _other = writer.committer.in_flight();
        let ran_on = current_thread_runtime().block_on(writer.write(put_noting_thread("x")));
        assert_eq!(ran_on.unwrap(), "zaqar-embedded-writer");
    }

    #[test]
    fn writes_arriving_during_a_commit_go_to_the_writer_thread() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("t.redb")).unwrap());
        let writer = Arc::new(
            GroupCommit::start(Arc::clone(&db), Arc::default(), Arc::default(), None, None)
                .unwrap(),
        );
        // A lone write that holds the commit until told to finish.
        let (entered, wait_entered) = std::sync::mpsc::channel();
        let (release, wait_release) = std::sync::mpsc::channel::<()>();
        let wait_release = Mutex::new(wait_release);
        let lone = std::thread::spawn({
            let writer = Arc::clone(&writer);
            move || {
                current_thread_runtime().block_on(writer.write(move |t| {
                    let _ = entered.send(());
                    let _ = wait_release.lock().unwrap().recv();
                    put_noting_thread("lone")(t)
                }))
            }
        });
        wait_entered.recv().unwrap();
        let others = current_thread_runtime().block_on(async {
            let tasks: Vec<_> = ["a", "b", "c"]
                .into_iter()
                .map(|key| {
                    let writer = Arc::clone(&writer);
                    tokio::spawn(async move { writer.write(put_noting_thread(key)).await })
                })
                .collect();
            // Each task submits its write on its first poll, while the lone
            // write is still in flight.
            tokio::task::yield_now().await;
            release.send(()).unwrap();
            let mut ran_on = Vec::new();
            for task in tasks {
                ran_on.push(task.await.unwrap().unwrap());
            }
            ran_on
        });
        assert_ne!(lone.join().unwrap().unwrap(), "zaqar-embedded-writer");
        assert_eq!(others, ["zaqar-embedded-writer"; 3]);
    }

    /// A writer whose journal has a record in flight until `release` is
    /// sent (or fails it, when `fails`), and a caller not alone, so that
    /// writes go to the writer thread.
    fn writer_with_a_record_in_flight(
        dir: &Path,
        fails: bool,
    ) -> (Arc<Database>, Arc<GroupCommit>, std::sync::mpsc::Sender<()>) {
        writer_announcing_to(dir, fails, Arc::default())
    }

    /// [`writer_with_a_record_in_flight`], announcing what it commits to
    /// `feed`.
    fn writer_announcing_to(
        dir: &Path,
        fails: bool,
        feed: Arc<Feed>,
    ) -> (Arc<Database>, Arc<GroupCommit>, std::sync::mpsc::Sender<()>) {
        let db = Arc::new(Database::create(dir.join("t.redb")).unwrap());
        let sync = JournalSync::start().unwrap();
        let (release, held) = std::sync::mpsc::channel::<()>();
        sync.submit(move || {
            let _ = held.recv();
            if fails {
                Err(std::io::Error::other("disk on fire"))
            } else {
                Ok(())
            }
        });
        let writer =
            GroupCommit::start(Arc::clone(&db), feed, Arc::default(), Some(sync), None).unwrap();
        (db, Arc::new(writer), release)
    }

    fn write_on_a_thread(
        writer: &Arc<GroupCommit>,
        key: &'static str,
    ) -> std::thread::JoinHandle<PluginResult<()>> {
        let writer = Arc::clone(writer);
        std::thread::spawn(move || {
            let _other = writer.committer.in_flight();
            current_thread_runtime().block_on(writer.write(put(key)))
        })
    }

    #[test]
    fn writes_queued_while_a_record_syncs_are_answered_once_it_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let (db, writer, release) = writer_with_a_record_in_flight(dir.path(), false);
        let answers: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|key| write_on_a_thread(&writer, key))
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(
            answers.iter().all(|answer| !answer.is_finished()),
            "no answer before the record in flight is durable"
        );
        release.send(()).unwrap();
        for answer in answers {
            assert_eq!(answer.join().unwrap(), Ok(()));
        }
        let txn = db.begin_read().unwrap();
        let meta = txn.open_table(crate::schema::META).unwrap();
        assert_eq!(meta.len().unwrap(), 3);
    }

    #[test]
    fn a_write_whose_record_fails_is_answered_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, writer, release) = writer_with_a_record_in_flight(dir.path(), true);
        let answer = write_on_a_thread(&writer, "x");
        release.send(()).unwrap();
        let error = answer.join().unwrap().unwrap_err();
        assert_eq!(error.code, ErrorCode::UNAVAILABLE);
        assert!(error.message.contains("disk on fire"), "{}", error.message);
    }

    /// A batch commits in redb before its journal record is durable; if
    /// that record then fails, its callers get an error, so subscribers
    /// must not hear of its changes either.
    #[test]
    fn a_batch_announces_its_changes_only_once_its_record_is_durable() {
        for fails in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let feed = Arc::new(Feed::default());
            let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
            feed.watch(plugin_api::storage::wrap_change_sink(Collect(Arc::clone(
                &seen,
            ))));
            let (_db, writer, release) = writer_announcing_to(dir.path(), fails, feed);
            let answer = std::thread::spawn(move || {
                let _other = writer.committer.in_flight();
                current_thread_runtime().block_on(writer.write(announcing("q", 1)))
            });
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(
                seen.lock().unwrap().is_empty(),
                "nothing is announced before the record is durable"
            );
            release.send(()).unwrap();
            let answer = answer.join().unwrap();
            let announced = seen.lock().unwrap().len();
            if fails {
                assert_eq!(answer.unwrap_err().code, ErrorCode::UNAVAILABLE);
                assert_eq!(
                    announced, 0,
                    "a batch whose record failed announces nothing"
                );
            } else {
                assert_eq!(answer, Ok(()));
                assert_eq!(announced, 1, "a durable batch announces its change");
            }
        }
    }

    #[test]
    fn dropping_the_handle_finishes_queued_writes_and_releases_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        let db = Arc::new(Database::create(&path).unwrap());
        let writer =
            GroupCommit::start(Arc::clone(&db), Arc::default(), Arc::default(), None, None)
                .unwrap();
        current_thread_runtime()
            .block_on(writer.write(put("x")))
            .unwrap();
        drop(writer);
        drop(db);
        Database::create(&path).expect("the file is released");
    }
}
