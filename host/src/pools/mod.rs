//! Pools (Zaqar's `pooling`): queues spread over several message stores.
//!
//! With `[server] pooling = true` the host serves no single message store.
//! Operators register **pools** through the admin API (`/v2/pools`), each a
//! URI whose scheme picks the store plugin ([`uri`]); this module keeps one
//! store instance per pool and a **catalog** saying which pool each queue
//! lives on. Everything else in the host keeps talking to one
//! `MessageStore`: [`store::PooledStore`] is that store, resolving each call
//! to the queue's pool, so the API, the notification workers and the socket
//! pushes need no pool logic of their own.
//!
//! **Placement.** A queue is placed the first time something creates it
//! (queue PUT, message post, subscription post): on a pool of its `_flavor`
//! when its metadata names one, else on a pool without a flavor (any pool
//! when every pool has one), chosen by weight ([`placement`]). The catalog
//! records the placement in the management store, and every later request
//! goes there. Queues never move: a pool's URI cannot change while it holds
//! queues, and a pool holding queues cannot be deleted. Deleting a queue
//! removes its placement; created again, it is placed again (on the same
//! pool while the pools and weights are unchanged).
//!
//! **The catalog** lives in the management store, whose contract only knows
//! pools and flavors: a placement is a flavor record in a reserved project
//! namespace (`\u{1}catalog:<hex of project>`, name = queue, pool list =
//! the pool), and each pool has an index (`\u{1}pool:<hex of pool>`, one
//! record per queue `<project>/<queue>`) that says whether it still holds
//! queues. Those
//! projects start with a control character no client can send in a header,
//! and the flavor API refuses them.
//!
//! **Caching.** Each host caches positive lookups only (queue → pool): a
//! placement never changes while the queue exists. A queue deleted through
//! this host is forgotten at once; one deleted through another host is
//! forgotten when the pool's change feed reports the deletion (a feed
//! resync forgets everything). A queue that is not in the catalog is never
//! cached: it is looked up again on the next request, so a placement made
//! by another host is found.

pub mod placement;
pub mod store;
pub mod uri;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, OnceLock, RwLock, Weak},
};

use plugin_api::{
    management::{FlavorRecord, ManagementStore, ManagementStoreBox, NameListQuery, PoolRecord},
    storage::{
        wrap_change_sink, wrap_message_store, ChangeKind, ChangeSink, ChangeSinkBox, MessageStore,
        MessageStoreBox, QueueChange, QueueRef,
    },
    types::{ROption, RVec},
    PluginError, PluginResult,
};
use serde_json::{Map, Value};

use crate::{
    events::{local_feed::LocalFeed, Announce},
    plugins::{self, Plugin},
};

/// Pools listed per management-store round.
const POOL_PAGE: u32 = 100;

/// Whether a project id belongs to the catalog's reserved namespace.
pub fn is_reserved_project(project: &str) -> bool {
    project.starts_with('\u{1}')
}

// The project part is hex: stores may key a flavor by `<project>.<name>`,
// and project ids and queue names may both hold dots.
fn catalog_project(project: &str) -> String {
    format!("\u{1}catalog:{}", hex::encode(project))
}

fn pool_index_project(pool: &str) -> String {
    format!("\u{1}pool:{}", hex::encode(pool))
}

/// A queue's name in its pool's index; unique, since queue names have no `/`.
fn index_name(queue: &QueueRef) -> String {
    format!("{}/{}", queue.project, queue.name)
}

/// One pool's store on this host.
pub struct Pool {
    /// The pool's name.
    pub name: String,
    /// The URI it was built from.
    pub uri: String,
    /// The options it was built with (JSON object bytes).
    pub options: Vec<u8>,
    /// The plugin serving it.
    pub driver: String,
    /// The store.
    pub store: Arc<MessageStoreBox>,
}

/// Why a pool cannot be registered or removed.
#[derive(Debug)]
pub enum PoolError {
    /// The URI names no store a loaded plugin serves (or is malformed).
    BadUri(String),
    /// The store could not be built or does not answer.
    Unreachable(String),
    /// Another pool has the same URI.
    UriInUse,
    /// The pool still holds queues.
    HoldsQueues,
    /// The management store failed.
    Storage(PluginError),
}

impl From<PluginError> for PoolError {
    fn from(error: PluginError) -> Self {
        Self::Storage(error)
    }
}

impl PoolError {
    fn into_plugin(self) -> PluginError {
        match self {
            Self::Storage(error) => error,
            Self::BadUri(text) | Self::Unreachable(text) => PluginError::unavailable(text),
            Self::UriInUse | Self::HoldsQueues => PluginError::internal("pool conflict"),
        }
    }
}

/// The pools, their stores on this host, and the catalog.
pub struct Pools {
    management: Arc<ManagementStoreBox>,
    /// The message-store plugins pools can use.
    plugins: Vec<Plugin>,
    instances: RwLock<BTreeMap<String, Arc<Pool>>>,
    placements: RwLock<HashMap<QueueRef, Arc<Pool>>>,
    /// Where pool stores announce their changes (the host's events).
    sink: OnceLock<Arc<ChangeSinkBox>>,
    building: tokio::sync::Mutex<()>,
    /// This value, for the feeds of the stores it builds.
    me: Weak<Pools>,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    // No critical section calls out, so a poisoned lock holds whole data.
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

impl Pools {
    /// No store built yet: [`Pools::refresh`] builds the registered pools'
    /// once the host's change sink is attached.
    pub fn new(management: Arc<ManagementStoreBox>, plugins: Vec<Plugin>) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            management,
            plugins,
            instances: RwLock::new(BTreeMap::new()),
            placements: RwLock::new(HashMap::new()),
            sink: OnceLock::new(),
            building: tokio::sync::Mutex::new(()),
            me: me.clone(),
        })
    }

    /// The management store (pools and flavors).
    pub fn management(&self) -> &ManagementStoreBox {
        &self.management
    }

    /// The store drivers pools can use (their URI schemes).
    pub fn drivers(&self) -> Vec<&str> {
        self.plugins.iter().map(|p| p.name.as_str()).collect()
    }

    /// Every pool record, by name.
    pub async fn records(&self) -> PluginResult<Vec<PoolRecord>> {
        let mut all = Vec::new();
        let mut marker = ROption::RNone;
        loop {
            let page = self
                .management
                .pool_list(NameListQuery {
                    marker: marker.clone(),
                    limit: POOL_PAGE,
                })
                .await?;
            let full = page.len() as u32 == POOL_PAGE;
            if let Some(last) = page.last() {
                marker = ROption::RSome(last.name.clone());
            }
            all.extend(page);
            if !full {
                return Ok(all);
            }
        }
    }

    /// Builds a store for every registered pool not built yet on this host
    /// and forgets pools removed (through any host); returns the records.
    pub async fn refresh(&self) -> PluginResult<Vec<PoolRecord>> {
        let records = self.records().await?;
        for record in &records {
            if let Err(error) = self.instance(record).await {
                tracing::warn!(pool = %record.name, ?error, "pool store unavailable on this host");
            }
        }
        write(&self.instances).retain(|name, _| records.iter().any(|r| r.name == name.as_str()));
        Ok(records)
    }

    /// The stores of every pool built on this host, by name.
    pub fn built(&self) -> Vec<Arc<Pool>> {
        read(&self.instances).values().cloned().collect()
    }

    /// The pools now registered, each with its store (refreshed first).
    /// Fails when one of them cannot be reached: a listing that skipped a
    /// pool would look complete and be wrong.
    pub async fn current(&self) -> PluginResult<Vec<Arc<Pool>>> {
        let records = self.refresh().await?;
        let built = self.built();
        if let Some(missing) = records
            .iter()
            .find(|r| !built.iter().any(|p| p.name == r.name.as_str()))
        {
            return Err(PluginError::unavailable(format!(
                "pool {} cannot be reached",
                missing.name
            )));
        }
        Ok(built)
    }

    /// The store of `record`, built (and checked to answer) if this host
    /// has none for its URI and options yet.
    pub async fn instance(&self, record: &PoolRecord) -> Result<Arc<Pool>, PoolError> {
        let same = |pool: &Pool| pool.uri == record.uri.as_str() && pool.options == *record.options;
        if let Some(pool) = read(&self.instances).get(record.name.as_str()) {
            if same(pool) {
                return Ok(pool.clone());
            }
        }
        let _building = self.building.lock().await;
        if let Some(pool) = read(&self.instances).get(record.name.as_str()) {
            if same(pool) {
                return Ok(pool.clone());
            }
        }
        let pool = Arc::new(self.build(record).await?);
        write(&self.instances).insert(record.name.to_string(), pool.clone());
        tracing::info!(pool = %pool.name, driver = %pool.driver, uri = %uri::redacted(&pool.uri), "pool store ready");
        Ok(pool)
    }

    /// Builds a store for a pool without registering it anywhere.
    async fn build(&self, record: &PoolRecord) -> Result<Pool, PoolError> {
        let options: Map<String, Value> = if record.options.is_empty() {
            Map::new()
        } else {
            serde_json::from_slice(&record.options)
                .map_err(|_| PoolError::BadUri("The pool options must be a JSON object".into()))?
        };
        let target = uri::resolve(&record.uri, &options).map_err(PoolError::BadUri)?;
        let Some(plugin) = self.plugins.iter().find(|p| p.name == target.driver) else {
            return Err(PoolError::BadUri(format!(
                "No loaded message store serves the URI scheme of {}; the schemes served are: {}",
                uri::redacted(&record.uri),
                self.drivers().join(", ")
            )));
        };
        let unreachable =
            || PoolError::Unreachable(format!("cannot connect to {}", uri::redacted(&record.uri)));
        let store = plugins::build_message_store(plugin, &target.config)
            .await
            .map_err(|error| {
                tracing::warn!(pool = %record.name, %error, "pool store could not be built");
                unreachable()
            })?;
        match store.is_alive().await {
            Ok(true) => {}
            other => {
                tracing::warn!(pool = %record.name, answer = ?other.map_err(|e| e.to_string()), "pool store does not answer");
                return Err(unreachable());
            }
        }
        let store = self.attach_feed(store).await;
        Ok(Pool {
            name: record.name.to_string(),
            uri: record.uri.to_string(),
            options: record.options.to_vec(),
            driver: target.driver,
            store: Arc::new(store),
        })
    }

    /// Routes a pool store's change feed to the host (or, for a store
    /// without one, announces this host's writes to it).
    async fn attach_feed(&self, store: MessageStoreBox) -> MessageStoreBox {
        let Some(sink) = self.sink.get().cloned() else {
            return store;
        };
        let forward = Forward {
            pools: self.me.clone(),
            sink,
        };
        let watched = store.changes_watch(wrap_change_sink(forward.clone())).await;
        match watched {
            Ok(()) => store,
            Err(error) => {
                if !error.is_unsupported() {
                    tracing::warn!(%error, "a pool store's change feed failed to start: this host announces its own writes only");
                }
                wrap_message_store(LocalFeed::new(store, Arc::new(forward)))
            }
        }
    }

    /// Takes the host's change sink: every pool store built from now on
    /// announces to it.
    pub fn attach(&self, sink: ChangeSinkBox) {
        let _ = self.sink.set(Arc::new(sink));
    }

    // ---- the catalog ----

    async fn catalog_get(&self, queue: &QueueRef) -> PluginResult<Option<String>> {
        let record = self
            .management
            .flavor_get(catalog_project(&queue.project).into(), queue.name.clone())
            .await?;
        Ok(record
            .into_option()
            .and_then(|r| r.pool_list.first().map(|p| p.to_string())))
    }

    async fn catalog_put(&self, queue: &QueueRef, pool: &str) -> PluginResult<()> {
        // The index first: a crash in between leaves a pool that looks busy
        // (its deletion is refused), never a queue whose pool may vanish.
        self.management
            .flavor_put(FlavorRecord {
                project: pool_index_project(pool).into(),
                name: index_name(queue).into(),
                pool_list: RVec::new(),
                capabilities: RVec::from(b"[]".to_vec()),
            })
            .await?;
        self.management
            .flavor_put(FlavorRecord {
                project: catalog_project(&queue.project).into(),
                name: queue.name.clone(),
                pool_list: vec![pool.into()].into(),
                capabilities: RVec::from(b"[]".to_vec()),
            })
            .await?;
        Ok(())
    }

    async fn catalog_remove(&self, queue: &QueueRef, pool: &str) -> PluginResult<()> {
        self.forget(queue);
        self.management
            .flavor_delete(catalog_project(&queue.project).into(), queue.name.clone())
            .await?;
        self.management
            .flavor_delete(pool_index_project(pool).into(), index_name(queue).into())
            .await
    }

    /// Whether any queue is placed on the pool.
    pub async fn holds_queues(&self, pool: &str) -> PluginResult<bool> {
        let page = self
            .management
            .flavor_list(
                pool_index_project(pool).into(),
                NameListQuery {
                    marker: ROption::RNone,
                    limit: 1,
                },
            )
            .await?;
        Ok(!page.is_empty())
    }

    fn forget(&self, queue: &QueueRef) {
        write(&self.placements).remove(queue);
    }

    fn forget_all(&self) {
        write(&self.placements).clear();
    }

    // ---- resolution ----

    async fn pool_named(&self, name: &str) -> PluginResult<Option<Arc<Pool>>> {
        if let Some(pool) = read(&self.instances).get(name) {
            return Ok(Some(pool.clone()));
        }
        let Some(record) = self.management.pool_get(name.into()).await?.into_option() else {
            return Ok(None);
        };
        self.instance(&record)
            .await
            .map(Some)
            .map_err(PoolError::into_plugin)
    }

    /// The pool the queue is placed on, if it is placed.
    pub async fn lookup(&self, queue: &QueueRef) -> PluginResult<Option<Arc<Pool>>> {
        if let Some(pool) = read(&self.placements).get(queue) {
            return Ok(Some(pool.clone()));
        }
        let Some(name) = self.catalog_get(queue).await? else {
            return Ok(None);
        };
        let pool = self.pool_named(&name).await?.ok_or_else(|| {
            PluginError::unavailable(format!(
                "queue {} is placed on pool {name}, which is not registered",
                queue.name
            ))
        })?;
        write(&self.placements).insert(queue.clone(), pool.clone());
        Ok(Some(pool))
    }

    /// The pool to read a queue from: its own, or — for a queue placed
    /// nowhere, which every store reads as missing — the first pool.
    pub async fn for_reading(&self, queue: &QueueRef) -> PluginResult<Arc<Pool>> {
        match self.lookup(queue).await? {
            Some(pool) => Ok(pool),
            None => self.first().await,
        }
    }

    /// The first pool by name (for host-wide state such as liveness leases).
    pub async fn first(&self) -> PluginResult<Arc<Pool>> {
        if let Some(pool) = read(&self.instances).values().next() {
            return Ok(pool.clone());
        }
        self.refresh().await?;
        read(&self.instances)
            .values()
            .next()
            .cloned()
            .ok_or_else(|| PluginError::unavailable("no pool is registered"))
    }

    /// The queue's pool, placing the queue first if it is placed nowhere:
    /// among the pools of `flavor`, or the pools without one.
    pub async fn place(&self, queue: &QueueRef, flavor: Option<&str>) -> PluginResult<Arc<Pool>> {
        if let Some(pool) = self.lookup(queue).await? {
            return Ok(pool);
        }
        let records = self.refresh().await?;
        fn flavor_of(record: &PoolRecord) -> Option<&str> {
            record.flavor.as_ref().into_option().map(|f| f.as_str())
        }
        let candidates: Vec<&PoolRecord> = match flavor {
            Some(flavor) => records
                .iter()
                .filter(|r| flavor_of(r) == Some(flavor))
                .collect(),
            None => {
                let plain: Vec<&PoolRecord> =
                    records.iter().filter(|r| flavor_of(r).is_none()).collect();
                if plain.iter().any(|r| r.weight > 0) {
                    plain
                } else {
                    records.iter().collect()
                }
            }
        };
        let chosen = placement::choose(
            candidates.iter().map(|r| (r.name.as_str(), r.weight)),
            &queue.project,
            &queue.name,
        )
        .ok_or_else(|| {
            PluginError::unavailable(match flavor {
                Some(flavor) => format!("no pool of flavor {flavor} takes new queues"),
                None => {
                    "no pool takes new queues (none is registered, or every weight is 0)".into()
                }
            })
        })?
        .to_string();
        self.place_on(queue, &chosen).await
    }

    /// Records that the queue lives on `pool` (unless it is placed already)
    /// and returns where it lives.
    async fn place_on(&self, queue: &QueueRef, pool: &str) -> PluginResult<Arc<Pool>> {
        if self.pool_named(pool).await?.is_none() {
            return Err(PluginError::unavailable(format!("pool {pool} is gone")));
        }
        self.catalog_put(queue, pool).await?;
        // Another host may have placed it at the same moment: what the
        // catalog says now wins, everywhere.
        let placed = self
            .catalog_get(queue)
            .await?
            .unwrap_or_else(|| pool.to_string());
        tracing::debug!(project = %queue.project, queue = %queue.name, pool = %placed, "queue placed");
        self.lookup(queue).await?.ok_or_else(|| {
            PluginError::unavailable(format!("queue {} lost its placement", queue.name))
        })
    }

    // ---- administration ----

    /// Registers (or replaces) a pool after checking that its URI is free
    /// and its store answers. Returns whether it was new.
    pub async fn register(&self, record: PoolRecord) -> Result<bool, PoolError> {
        let records = self.records().await?;
        if records
            .iter()
            .any(|r| r.uri == record.uri && r.name != record.name)
        {
            return Err(PoolError::UriInUse);
        }
        if let Some(existing) = records.iter().find(|r| r.name == record.name) {
            let moved = existing.uri != record.uri || existing.options != record.options;
            if moved && self.holds_queues(&record.name).await? {
                return Err(PoolError::HoldsQueues);
            }
        }
        self.instance(&record).await?;
        Ok(self.management.pool_put(record).await?)
    }

    /// Removes a pool that holds no queue.
    pub async fn unregister(&self, name: &str) -> Result<(), PoolError> {
        if self.holds_queues(name).await? {
            return Err(PoolError::HoldsQueues);
        }
        self.management.pool_delete(name.into()).await?;
        write(&self.instances).remove(name);
        Ok(())
    }

    /// Whether the management store and every pool answer.
    pub async fn is_alive(&self) -> PluginResult<bool> {
        if !self.management.is_alive().await? {
            return Ok(false);
        }
        for pool in self.built() {
            if !pool.store.is_alive().await.unwrap_or(false) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Forwards a pool store's changes to the host, forgetting cached
/// placements of queues deleted through any host.
#[derive(Clone)]
struct Forward {
    pools: Weak<Pools>,
    sink: Arc<ChangeSinkBox>,
}

impl Forward {
    fn pass(&self, change: QueueChange) {
        if let Some(pools) = self.pools.upgrade() {
            match change.kind {
                ChangeKind::QUEUE_DELETED => pools.forget(&change.queue),
                ChangeKind::RESYNC => pools.forget_all(),
                _ => {}
            }
        }
        self.sink.changed(change);
    }
}

impl ChangeSink for Forward {
    fn changed(&self, change: QueueChange) {
        self.pass(change);
    }
}

impl Announce for Forward {
    fn announce(&self, change: QueueChange) {
        self.pass(change);
    }
}
