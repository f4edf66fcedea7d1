//! The open database: one per data directory per process, shared by the
//! message store and the management store.
//!
//! The host builds both stores from their own constructors, usually with the
//! same `path`. redb locks its file against a second open, so the stores must
//! share one [`Engine`]: a process-wide registry maps the canonical data
//! directory to the engine while any store holds it.

use std::{
    collections::HashMap,
    panic::{catch_unwind, AssertUnwindSafe},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, OnceLock, Weak,
    },
    time::Duration,
};

use plugin_api::{PluginError, PluginResult};
use redb::{
    Database, DatabaseError, ReadTransaction, ReadableDatabase, ReadableTable, StorageError,
};

use crate::{
    config::EmbeddedConfig,
    error::OpResult,
    feed::Feed,
    group_commit::{GroupCommit, WriteTables},
    journal::JournaledFile,
    journal_sync::JournalSync,
    metadata_cache::{Cached, MetadataCache},
    post_log::{LoggedOp, PostLog},
    queue_state, queues, schema, subscriptions, sweeper,
};
use plugin_api::storage::QueueRef;

/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "zaqar.redb";

/// Open engines by canonical data directory.
fn registry() -> &'static Mutex<HashMap<PathBuf, Weak<Engine>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<PathBuf, Weak<Engine>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// The database and its writer.
struct Inner {
    // Declared first so it is dropped first: the writer thread finishes and
    // releases its handle before ours goes.
    writer: GroupCommit,
    db: Arc<Database>,
    /// The journal's syncs: what a read saw is durable before it answers.
    sync: Arc<JournalSync>,
}

/// An open database with its group-commit writer and sweeper.
pub(crate) struct Engine {
    /// The canonical data directory (for messages).
    dir: PathBuf,
    /// The sinks of `changes_watch`, shared with the writer thread.
    feed: Arc<Feed>,
    /// The queues' metadata, kept up to date by the writer.
    metadata: Arc<MetadataCache>,
    /// Messages the sweeper removed because their ttl ran out, since open.
    expired_messages: AtomicU64,
    inner: Option<Inner>,
}

impl Engine {
    /// The engine for `config.path`: the one already open in this process,
    /// or a newly opened one.
    pub(crate) fn open(config: &EmbeddedConfig) -> PluginResult<Arc<Engine>> {
        let dir = prepare_dir(&config.path)?;
        let mut open = registry().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(engine) = open.get(&dir).and_then(Weak::upgrade) {
            return Ok(engine);
        }
        let (db, sync) = open_database(&dir, config.cache_size_mb)?;
        let post_log = open_post_log(&db, &dir)?;
        let db = Arc::new(db);
        let feed = Arc::new(Feed::default());
        let metadata = Arc::new(MetadataCache::default());
        let writer = GroupCommit::start(
            Arc::clone(&db),
            Arc::clone(&feed),
            Arc::clone(&metadata),
            Some(Arc::clone(&sync)),
            Some(post_log),
        )
        .map_err(|e| {
            PluginError::unavailable(format!(
                "embedded store {}: cannot start the writer thread: {e}",
                dir.display()
            ))
        })?;
        let engine = Arc::new(Engine {
            dir: dir.clone(),
            feed,
            metadata,
            expired_messages: AtomicU64::new(0),
            inner: Some(Inner { writer, db, sync }),
        });
        open.insert(dir, Arc::downgrade(&engine));
        drop(open);
        sweeper::start(
            Arc::downgrade(&engine),
            Duration::from_secs(config.sweep_interval_secs.max(1)),
        );
        Ok(engine)
    }

    fn inner(&self) -> &Inner {
        self.inner
            .as_ref()
            .expect("an engine is usable until dropped")
    }

    /// The canonical data directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where committed changes are announced.
    pub(crate) fn feed(&self) -> &Feed {
        &self.feed
    }

    /// Adds to the count of messages removed because their ttl ran out.
    pub(crate) fn count_expired_messages(&self, messages: u64) {
        self.expired_messages.fetch_add(messages, Ordering::Relaxed);
    }

    /// Messages removed because their ttl ran out since the engine opened.
    pub(crate) fn expired_messages(&self) -> u64 {
        self.expired_messages.load(Ordering::Relaxed)
    }

    /// Runs `op` in the next group commit; resolves once it is durable.
    pub(crate) async fn write<T, F>(&self, op: F) -> PluginResult<T>
    where
        F: FnMut(&mut WriteTables<'_>) -> OpResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.inner().writer.write(op).await
    }

    /// Runs `op`, which applies `logged`, in the next group commit;
    /// resolves once it is durable (by the post log when it is a post
    /// alone in flight, or in a batch of such writes only, see
    /// [`crate::post_log`]).
    pub(crate) async fn write_logged<T, F>(&self, logged: LoggedOp, op: F) -> PluginResult<T>
    where
        F: FnMut(&mut WriteTables<'_>) -> OpResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.inner().writer.write_logged(Some(logged), op).await
    }

    /// Runs `f` in a read transaction: a consistent snapshot of the last
    /// commit, concurrent with writes and other reads; answers once what
    /// it saw is durable (a commit is visible as soon as redb's commit
    /// returns, while its journal record may still be syncing: see
    /// [`crate::journal_sync`]).
    pub(crate) async fn read<T>(
        &self,
        f: impl FnOnce(&ReadTransaction) -> OpResult<T>,
    ) -> PluginResult<T> {
        let found = self.read_now(f)?;
        self.inner().sync.settled().await?;
        Ok(found)
    }

    /// The same, answering at once: for what is not shown to a client as
    /// it is (or settles otherwise).
    fn read_now<T>(&self, f: impl FnOnce(&ReadTransaction) -> OpResult<T>) -> PluginResult<T> {
        self.inner().writer.finish_late_commit();
        let txn = self.inner().db.begin_read().map_err(|e| {
            PluginError::unavailable(format!("embedded store: cannot begin a read: {e}"))
        })?;
        f(&txn).map_err(|e| e.into_plugin())
    }

    /// Runs a read that may walk many rows on tokio's blocking pool instead
    /// of the calling worker. A listing skips the claimed and delayed
    /// messages at the head of its queue, which can take milliseconds on a
    /// long queue (`BENCH_ONLY=reads` of the plugin bench), and a tokio
    /// worker held that long stalls every other request it would serve;
    /// reads bounded by a few keys (a message, a claim, stats) cost a few
    /// microseconds and stay on the worker, where a hand-off would cost more
    /// than the read.
    pub(crate) async fn read_off_worker<T, F>(&self, f: F) -> PluginResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction) -> OpResult<T> + Send + 'static,
    {
        self.inner().writer.finish_late_commit();
        let db = Arc::clone(&self.inner().db);
        let found = plugin_api::runtime::handle()
            .spawn_blocking(move || {
                let txn = db.begin_read().map_err(|e| {
                    PluginError::unavailable(format!("embedded store: cannot begin a read: {e}"))
                })?;
                f(&txn).map_err(|e| e.into_plugin())
            })
            .await
            .unwrap_or_else(|stopped| match stopped.try_into_panic() {
                // Re-raised here so the boundary's guard reports it as the
                // panic it was, as it does for a read on the worker.
                Ok(payload) => std::panic::resume_unwind(payload),
                Err(cancelled) => Err(PluginError::unavailable(format!(
                    "embedded store: a read was cancelled: {cancelled}"
                ))),
            })?;
        self.inner().sync.settled().await?;
        Ok(found)
    }

    /// The queue's metadata (`None`: no such queue), from memory when it
    /// is known there (see [`crate::metadata_cache`]).
    /// Every post asks for it, so it settles only on the last change of
    /// metadata, not on every commit (see [`MetadataCache::changed_at`]).
    pub(crate) async fn queue_metadata(&self, queue: &QueueRef) -> PluginResult<Cached> {
        self.inner().writer.finish_late_commit();
        let found = match self.metadata.get(&queue.project, &queue.name) {
            Some(known) => known,
            None => {
                let generation = self.metadata.generation();
                let found: Cached = self
                    .read_now(|txn| queues::get_metadata(txn, queue))?
                    .map(Arc::from);
                self.metadata
                    .fill(generation, &queue.project, &queue.name, found.clone());
                found
            }
        };
        self.inner()
            .sync
            .settled_at(self.metadata.changed_at())
            .await?;
        Ok(found)
    }

    /// Whether the writer runs, the journal takes records and a read can
    /// start.
    pub(crate) fn is_alive(&self) -> bool {
        self.inner().writer.is_running()
            && self.inner().sync.failure().is_none()
            && self.inner().db.begin_read().is_ok()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Hold the registry while the file is closed, so that an open of the
        // same directory racing with this drop waits instead of finding the
        // file still locked.
        let mut open = registry().lock().unwrap_or_else(|e| e.into_inner());
        if open.get(&self.dir).is_some_and(|w| w.strong_count() == 0) {
            open.remove(&self.dir);
        }
        self.inner = None;
    }
}

/// Creates the data directory if needed and returns its canonical path.
fn prepare_dir(path: &Path) -> PluginResult<PathBuf> {
    std::fs::create_dir_all(path).map_err(|e| {
        PluginError::bad_config(format!(
            "embedded store: cannot create the data directory {}: {e}",
            path.display()
        ))
    })?;
    std::fs::canonicalize(path).map_err(|e| {
        PluginError::bad_config(format!(
            "embedded store: cannot resolve the data directory {}: {e}",
            path.display()
        ))
    })
}

/// Opens (or creates) the database file and its tables, translating every
/// way this can fail into an error that names the file.
fn open_database(dir: &Path, cache_size_mb: u64) -> PluginResult<(Database, Arc<JournalSync>)> {
    let file = dir.join(DATABASE_FILE);
    // redb may panic on a damaged file instead of returning `Corrupted`; a
    // panic here must become a start-up error, not a crash or a reset.
    let backend = match JournaledFile::open(&file) {
        Ok(backend) => backend,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            return Err(open_error(&file, DatabaseError::DatabaseAlreadyOpen))
        }
        Err(e) => {
            return Err(PluginError::unavailable(format!(
                "embedded store: cannot open the database file {} and its journal: {e}",
                file.display()
            )))
        }
    };
    let sync = backend.sync();
    let cache_bytes =
        usize::try_from(cache_size_mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX);
    let opened = catch_unwind(AssertUnwindSafe(|| {
        Database::builder()
            .set_cache_size(cache_bytes)
            .create_with_backend(backend)
    }));
    let db = match opened {
        Ok(Ok(db)) => db,
        Ok(Err(e)) => return Err(open_error(&file, e)),
        Err(payload) => {
            return Err(PluginError::unavailable(format!(
                "embedded store: the database file {} is corrupt ({}); refusing to start. \
                 Restore it from a backup or move it away to start empty.",
                file.display(),
                PluginError::from_panic(payload.as_ref()).message
            )))
        }
    };
    init_schema(&db).map_err(|e| match e {
        InitError::Format(found) => PluginError::bad_config(format!(
            "embedded store: the database file {} has format {found}, this build reads format {}",
            file.display(),
            schema::FORMAT_VERSION
        )),
        InitError::Db(message) => PluginError::unavailable(format!(
            "embedded store: cannot initialise the database file {}: {message}",
            file.display()
        )),
    })?;
    Ok((db, sync))
}

/// Opens the post log of `dir` and applies to `db` the posts it holds that
/// `db` lacks (those a crash took from redb's non-durable commits, see
/// [`crate::post_log`]), in one durable commit; the log then starts over.
fn open_post_log(db: &Database, dir: &Path) -> PluginResult<PostLog> {
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        PluginError::unavailable(format!(
            "embedded store: {what} the post log {}: {e}",
            dir.join(crate::post_log::FILE).display()
        ))
    };
    let (mut log, records) = PostLog::open(dir).map_err(|e| failed("cannot open", &e))?;
    let applied = db
        .begin_read()
        .map_err(|e| failed("cannot read what is applied of", &e))?
        .open_table(schema::META)
        .and_then(|meta| Ok(meta.get(schema::META_POST_LOG_APPLIED)?.map(|v| v.value())))
        .map_err(|e| failed("cannot read what is applied of", &e))?
        .unwrap_or(0);
    let missing: Vec<_> = records
        .into_iter()
        .filter(|(lsn, _)| *lsn > applied)
        .collect();
    let mut last = applied;
    if let Some((newest, _)) = missing.last() {
        let records = missing.len();
        last = *newest;
        let mut count = 0;
        let mut apply = || -> Result<(), String> {
            let txn = db.begin_write().map_err(|e| e.to_string())?;
            {
                let mut tables = WriteTables::new(&txn);
                for (lsn, payload) in &missing {
                    let ops = LoggedOp::decode_record(payload)
                        .map_err(|e| format!("record {lsn}: {}", e.into_plugin().message))?;
                    count += ops.len();
                    for op in &ops {
                        match op.replay(&mut tables) {
                            Ok(()) => {}
                            // It failed its caller the same way the first time.
                            Err(crate::error::OpError::Caller(_)) => {}
                            Err(e) => {
                                return Err(format!("record {lsn}: {}", e.into_plugin().message))
                            }
                        }
                    }
                }
                tables
                    .meta
                    .insert(schema::META_POST_LOG_APPLIED, last)
                    .map_err(|e| e.to_string())?;
                tables
                    .finish()
                    .map_err(|e| e.into_plugin().message.to_string())?;
            }
            txn.commit().map_err(|e| e.to_string())
        };
        apply().map_err(|e| failed("cannot apply", &e))?;
        crate::log::info(&format!(
            "applied {count} writes (posts, claims, deletes) of the post log that the database file lacked ({records} records, up to record {last})"
        ));
    }
    log.restart(last + 1);
    Ok(log)
}

/// Turns redb's open errors into messages an operator can act on.
fn open_error(file: &Path, e: DatabaseError) -> PluginError {
    let shown = file.display();
    match e {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
            PluginError::unavailable(format!(
                "embedded store: the database file {shown} is locked: another process \
                 (another zaqar-server?) has this data directory open"
            ))
        }
        DatabaseError::UpgradeRequired(v) => PluginError::bad_config(format!(
            "embedded store: the database file {shown} uses redb file format {v}, which this build cannot open"
        )),
        DatabaseError::Storage(StorageError::Corrupted(what)) => PluginError::unavailable(format!(
            "embedded store: the database file {shown} is corrupt ({what}); refusing to start. \
             Restore it from a backup or move it away to start empty."
        )),
        DatabaseError::Storage(StorageError::Io(io)) if io.kind() == std::io::ErrorKind::InvalidData => {
            PluginError::unavailable(format!(
                "embedded store: the database file {shown} is corrupt or not a zaqar-server database ({io}); \
                 refusing to start. Restore it from a backup or move it away to start empty."
            ))
        }
        DatabaseError::Storage(StorageError::Io(io)) if io.kind() == std::io::ErrorKind::PermissionDenied => {
            PluginError::bad_config(format!("embedded store: cannot open the database file {shown}: {io}"))
        }
        other => PluginError::unavailable(format!(
            "embedded store: cannot open the database file {shown}: {other}"
        )),
    }
}

enum InitError {
    Format(u64),
    Db(String),
}

impl<E: std::fmt::Display> From<E> for InitError
where
    E: Into<redb::Error>,
{
    fn from(e: E) -> Self {
        Self::Db(e.to_string())
    }
}

/// Creates every table (so reads never meet a missing one) and checks or
/// records the format version, upgrading an older file in place (in the
/// same transaction, so an interrupted upgrade leaves the old format).
fn init_schema(db: &Database) -> Result<(), InitError> {
    let txn = db.begin_write()?;
    let mut drop_legacy = false;
    {
        let mut tables = WriteTables::new(&txn);
        tables.open_all()?;
        let found = tables.meta.get(schema::META_FORMAT)?.map(|v| v.value());
        match found {
            Some(v) if v == schema::FORMAT_VERSION => {}
            Some(v) if (schema::FORMAT_UPGRADABLE..schema::FORMAT_VERSION).contains(&v) => {
                let upgrading = |e: crate::error::OpError| {
                    InitError::Db(format!(
                        "upgrading from format {v}: {}",
                        e.into_plugin().message
                    ))
                };
                if v < 3 {
                    let legacy = txn.open_table(schema::QUEUE_SEQ)?;
                    queue_state::upgrade(&mut tables, &legacy).map_err(upgrading)?;
                    drop(legacy);
                    drop_legacy = true;
                }
                if v < 2 {
                    // After the counters: a cursor starts at its queue's last seq.
                    subscriptions::upgrade_cursors(&mut tables).map_err(upgrading)?;
                }
                let indexed = if v < 4 {
                    subscriptions::index_subscribers(&mut tables).map_err(upgrading)?
                } else {
                    0
                };
                tables
                    .meta
                    .insert(schema::META_FORMAT, schema::FORMAT_VERSION)?;
                crate::log::info(&format!(
                    "upgrading the data file from format {v} to {} ({indexed} subscriptions indexed by subscriber)",
                    schema::FORMAT_VERSION
                ));
            }
            Some(v) => return Err(InitError::Format(v)),
            None => {
                tables
                    .meta
                    .insert(schema::META_FORMAT, schema::FORMAT_VERSION)?;
                if tables.meta.get(schema::META_NEXT_QID)?.is_none() {
                    tables.meta.insert(schema::META_NEXT_QID, 1)?;
                }
            }
        }
        tables
            .finish()
            .map_err(|e| InitError::Db(e.into_plugin().message.into()))?;
    }
    if drop_legacy {
        txn.delete_table(schema::QUEUE_SEQ)?;
    }
    txn.commit()?;
    Ok(())
}
