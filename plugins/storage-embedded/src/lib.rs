//! # storage-embedded: the default stores of zaqar-server
//!
//! Provides both `zaqar.storage.message` and `zaqar.storage.management`
//! under the name `embedded`: a single [redb](https://docs.rs/redb) file in a
//! data directory, no server to run.
//!
//! * **Durable**: every write commits with fsync before its future resolves,
//!   so a 2xx survives `kill -9` and power loss.
//! * **Fast anyway**: concurrent writes are batched into one transaction and
//!   one fsync (module `group_commit`).
//! * **Shared**: both stores opened on the same directory share one open
//!   database (module `engine`).
//!
//! | module | what it does |
//! |---|---|
//! | [`config`] | the `[drivers.*.embedded]` table |
//! | `engine` | opening the file, start-up errors, the per-directory registry |
//! | `group_commit` | the writer thread and its batches |
//! | `feed` | the change feed: sinks, delivery after each commit |
//! | `queue_state` | per-queue sequence counter and the counters of stats |
//! | `expiry` | the message expiry index, one entry per run of messages expiring in the same second |
//! | `metadata_cache` | the queues' metadata in memory, for posts |
//! | `schema` | tables and key layouts |
//! | `codec` | record encodings |
//! | `ids` | message, claim and subscription ids |
//! | `queues`, `messages`, `claims`, `subscriptions` | the contract's semantics |
//! | `notification_log`, `leases` | the notification log and leases (plugin-api 1.1) |
//! | `store` | [`EmbeddedMessageStore`], the `MessageStore` impl |
//! | `management` | [`EmbeddedManagementStore`], pools and flavors |
//! | `sweeper` | background removal of expired rows |
//!
//! Operator notes live in `docs/storage-embedded.md`.

mod claim_cursor;
mod claims;
mod codec;
pub mod config;
mod engine;
mod error;
mod expiry;
#[cfg(test)]
mod failed_lone_post_tests;
mod feed;
mod gather;
mod group_commit;
mod ids;
mod journal;
mod journal_sync;
mod late_commit;
mod leases;
mod log;
mod log_ring;
mod management;
mod messages;
mod metadata_cache;
mod notification_log;
mod post_log;
mod post_target;
mod queue_state;
mod queues;
mod schema;
mod store;
mod subscriptions;
mod sweeper;
#[cfg(test)]
mod test_support;

use plugin_api::{PluginContext, PluginResult};

pub use config::EmbeddedConfig;
pub use engine::DATABASE_FILE;
pub use management::EmbeddedManagementStore;
pub use store::EmbeddedMessageStore;

plugin_api::entry_points! {
    pub fn entry_points;
    message_store "embedded" => open_message_store,
    management_store "embedded" => open_management_store,
}
plugin_api::register_builtin!(entry_points);

/// Opens the message store configured by `ctx` (constructor of the
/// `zaqar.storage.message` entry point `embedded`).
pub async fn open_message_store(ctx: PluginContext) -> PluginResult<EmbeddedMessageStore> {
    let config = ctx.config::<EmbeddedConfig>()?;
    log::install(ctx.services);
    EmbeddedMessageStore::open(&config)
}

/// Opens the management store configured by `ctx` (constructor of the
/// `zaqar.storage.management` entry point `embedded`).
pub async fn open_management_store(ctx: PluginContext) -> PluginResult<EmbeddedManagementStore> {
    let config = ctx.config::<EmbeddedConfig>()?;
    log::install(ctx.services);
    EmbeddedManagementStore::open(&config)
}

impl EmbeddedMessageStore {
    /// Opens the message store on `config.path`, sharing the database with
    /// any store already open on the same directory in this process.
    pub fn open(config: &EmbeddedConfig) -> PluginResult<Self> {
        Ok(Self::new(engine::Engine::open(config)?))
    }
}

impl EmbeddedManagementStore {
    /// Opens the management store on `config.path`, sharing the database
    /// with any store already open on the same directory in this process.
    pub fn open(config: &EmbeddedConfig) -> PluginResult<Self> {
        Ok(Self::new(engine::Engine::open(config)?))
    }
}
