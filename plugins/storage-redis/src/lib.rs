//! # storage-redis: Zaqar 23's Redis layout as a zaqar-server store
//!
//! Provides `zaqar.storage.message` and `zaqar.storage.management` under the
//! name `redis`. The message store reads and writes exactly the keys, hash
//! fields, MessagePack encodings and ranks of OpenStack Zaqar 23's Redis
//! driver, so zaqar-server nodes and Zaqar nodes can share one database.
//!
//! | module | what it does |
//! |---|---|
//! | [`config`] | the `[drivers.*.redis]` table and the URI forms |
//! | `connection` | the reconnecting connection, script calls, error mapping |
//! | `scripts` + `lua/` | one Lua script per atomic operation |
//! | `codec` | JSON to and from MessagePack, script reply rows |
//! | `store` | [`RedisMessageStore`] |
//! | `management` | [`RedisManagementStore`] (keys of our own) |
//!
//! The layout and every choice are described in `docs/storage-redis.md`.

pub mod changes;
mod codec;
pub mod config;
mod connection;
mod management;
mod scripts;
mod store;

use plugin_api::{PluginContext, PluginResult};

pub use config::RedisConfig;
pub use management::RedisManagementStore;
pub use store::RedisMessageStore;

plugin_api::entry_points! {
    pub fn entry_points;
    message_store "redis" => open_message_store,
    management_store "redis" => open_management_store,
}
plugin_api::register_builtin!(entry_points);

/// Opens the message store configured by `ctx` (constructor of the
/// `zaqar.storage.message` entry point `redis`).
pub async fn open_message_store(ctx: PluginContext) -> PluginResult<RedisMessageStore> {
    RedisMessageStore::open(&ctx.config::<RedisConfig>()?).await
}

/// Opens the management store configured by `ctx` (constructor of the
/// `zaqar.storage.management` entry point `redis`).
pub async fn open_management_store(ctx: PluginContext) -> PluginResult<RedisManagementStore> {
    RedisManagementStore::open(&ctx.config::<RedisConfig>()?).await
}

impl RedisMessageStore {
    /// Connects to the Redis at `config.uri`; fails (naming the URI, password
    /// hidden) when nothing answers there.
    pub async fn open(config: &RedisConfig) -> PluginResult<Self> {
        Ok(Self::new(connection::Conn::open(config).await?))
    }
}

impl RedisManagementStore {
    /// Connects to the Redis at `config.uri`.
    pub async fn open(config: &RedisConfig) -> PluginResult<Self> {
        Ok(Self::new(connection::Conn::open(config).await?))
    }
}
