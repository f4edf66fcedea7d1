//! The plugin's configuration table, `[drivers.message_store.embedded]`
//! (and `[drivers.management_store.embedded]`).

use std::path::PathBuf;

use serde::Deserialize;

/// Settings of the embedded store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedConfig {
    /// The data directory; created if missing. The database file is
    /// `<path>/zaqar.redb`. Relative paths are relative to the server's
    /// working directory.
    #[serde(default = "default_path")]
    pub path: PathBuf,
    /// Seconds between two passes of the sweeper that deletes expired
    /// messages, claims and subscriptions.
    #[serde(default = "default_sweep_interval")]
    pub sweep_interval_secs: u64,
    /// Megabytes of database pages kept in memory (redb's page cache, the
    /// bulk of the store's resident memory under load). The default suits
    /// a small machine; more only helps when the working set (the messages
    /// waiting in the queues) is larger and read often. The first store
    /// opened on a data directory sets it for that directory.
    #[serde(default = "default_cache_size_mb")]
    pub cache_size_mb: u64,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            path: default_path(),
            sweep_interval_secs: default_sweep_interval(),
            cache_size_mb: default_cache_size_mb(),
        }
    }
}

fn default_path() -> PathBuf {
    PathBuf::from("data")
}

fn default_sweep_interval() -> u64 {
    5
}

fn default_cache_size_mb() -> u64 {
    64
}
