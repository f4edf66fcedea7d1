//! # storage-postgresql: zaqar-server's stores on PostgreSQL
//!
//! Provides both `zaqar.storage.message` and `zaqar.storage.management`
//! under the name `postgresql`: tables in a PostgreSQL database, reached
//! through a pool of tokio-postgres connections. Several zaqar-server hosts
//! pointed at one database are one service.
//!
//! * **Durable**: a write's future resolves once its transaction committed
//!   (PostgreSQL's own durability, `synchronous_commit` as the server has it).
//! * **Safe across hosts**: sequence numbers are handed out under the queue
//!   counter row's lock, so sequence order is commit order; claims and pops
//!   take rows `FOR UPDATE SKIP LOCKED`, so two consumers never take the
//!   same message.
//! * **Self-healing**: a lost connection fails the calls on it with
//!   `UNAVAILABLE`; the pool replaces it, without a restart.
//!
//! | module | what it does |
//! |---|---|
//! | [`config`] | the `[drivers.*.postgresql]` table |
//! | `db` | the pool, start-up, error mapping |
//! | `migrations` | the versioned schema (`migrations/*.sql`) |
//! | `queues`, `messages`, `claims`, `subscriptions` | the contract's semantics |
//! | `store` | [`PostgresMessageStore`], the `MessageStore` impl |
//! | `management` | [`PostgresManagementStore`], pools and flavors |
//! | `feed` | the change feed: `NOTIFY` in committing transactions, one `LISTEN` connection |
//! | `notification_log`, `leases` | what notification delivery across hosts relies on |
//! | `gc` | background removal of expired rows |
//!
//! Operator notes live in `docs/storage-postgresql.md`.

mod claims;
pub mod config;
mod db;
mod feed;
mod gc;
mod ids;
mod leases;
mod log;
mod management;
mod messages;
mod migrations;
mod notification_log;
mod queues;
mod sql;
mod store;
mod subscriptions;

use std::time::Duration;

use plugin_api::{PluginContext, PluginResult};

pub use config::PostgresConfig;
pub use management::PostgresManagementStore;
pub use migrations::SCHEMA_VERSION;
pub use store::PostgresMessageStore;

plugin_api::entry_points! {
    pub fn entry_points;
    message_store "postgresql" => open_message_store,
    management_store "postgresql" => open_management_store,
}
plugin_api::register_builtin!(entry_points);

/// Opens the message store configured by `ctx` (constructor of the
/// `zaqar.storage.message` entry point `postgresql`).
pub async fn open_message_store(ctx: PluginContext) -> PluginResult<PostgresMessageStore> {
    let config = ctx.config::<PostgresConfig>()?;
    log::install(ctx.services);
    PostgresMessageStore::open(&config).await
}

/// Opens the management store configured by `ctx` (constructor of the
/// `zaqar.storage.management` entry point `postgresql`).
pub async fn open_management_store(ctx: PluginContext) -> PluginResult<PostgresManagementStore> {
    let config = ctx.config::<PostgresConfig>()?;
    log::install(ctx.services);
    PostgresManagementStore::open(&config).await
}

impl PostgresMessageStore {
    /// Connects to `config.uri`, creating or migrating the schema, and
    /// starts the expired-row collector.
    pub async fn open(config: &PostgresConfig) -> PluginResult<Self> {
        let db = db::Database::open(config).await?;
        let interval = Duration::from_secs(config.gc_interval_secs.max(1));
        Ok(Self::new(db, interval))
    }
}

impl PostgresManagementStore {
    /// Connects to `config.uri`, creating or migrating the schema.
    pub async fn open(config: &PostgresConfig) -> PluginResult<Self> {
        Ok(Self::new(db::Database::open(config).await?))
    }
}
