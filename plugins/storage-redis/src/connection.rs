//! The connection to Redis: a reconnecting connection manager, the key
//! prefix, script invocation and the mapping of failures to plugin errors.

use std::time::Duration;

use plugin_api::{PluginError, PluginResult};
use redis::{
    aio::{ConnectionManager, ConnectionManagerConfig},
    Script, ToRedisArgs, Value,
};

use crate::config::{self, RedisConfig};

/// One open connection (multiplexed; cloned per call) and the key prefix.
#[derive(Clone)]
pub(crate) struct Conn {
    manager: ConnectionManager,
    client: redis::Client,
    prefix: String,
    uri: String,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("uri", &self.uri)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Conn {
    /// Connects and checks that Redis answers; fails naming the URI (password
    /// hidden) when it does not.
    pub(crate) async fn open(config: &RedisConfig) -> PluginResult<Self> {
        let target = config::parse_uri(&config.uri)?;
        let uri = config::redacted(&config.uri);
        let client = redis::Client::open(target.info)
            .map_err(|e| PluginError::bad_config(format!("redis store: uri {uri}: {e}")))?;
        let response_timeout = target
            .response_timeout
            .unwrap_or(Duration::from_millis(config.response_timeout_ms));
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_millis(config.connect_timeout_ms))
            .set_response_timeout(response_timeout)
            .set_number_of_retries(1)
            .set_max_delay(1000);
        let manager = ConnectionManager::new_with_config(client.clone(), manager_config)
            .await
            .map_err(|e| {
                PluginError::unavailable(format!("redis store: cannot connect to {uri}: {e}"))
            })?;
        let conn = Self {
            manager,
            client,
            prefix: config.key_prefix.clone(),
            uri,
        };
        conn.ping().await.map_err(|e| {
            PluginError::unavailable(format!(
                "redis store: {} does not answer: {}",
                conn.uri, e.message
            ))
        })?;
        Ok(conn)
    }

    /// The key prefix (empty when shared with Zaqar).
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A new client on the same Redis (for the pub/sub connection).
    pub(crate) fn client(&self) -> redis::Client {
        self.client.clone()
    }

    /// The channel changes are announced on.
    pub(crate) fn changes_channel(&self) -> String {
        format!("{}zaqar-rs.changes", self.prefix)
    }

    /// Sends PING.
    pub(crate) async fn ping(&self) -> PluginResult<()> {
        let mut c = self.manager.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut c)
            .await
            .map(drop)
            .map_err(|e| self.error(e))
    }

    /// Runs `script` with ARGV = prefix followed by `args`.
    pub(crate) async fn run(&self, script: &Script, args: Args) -> PluginResult<Value> {
        let mut invocation = script.prepare_invoke();
        invocation.arg(self.prefix.as_str());
        for a in args.0 {
            invocation.arg(a);
        }
        let mut c = self.manager.clone();
        invocation
            .invoke_async::<Value>(&mut c)
            .await
            .map_err(|e| self.error(e))
    }

    /// Runs one plain command.
    pub(crate) async fn command<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
    ) -> PluginResult<T> {
        let mut c = self.manager.clone();
        cmd.query_async::<T>(&mut c)
            .await
            .map_err(|e| self.error(e))
    }

    /// Runs a pipeline (MULTI/EXEC when it is atomic).
    pub(crate) async fn command_pipe<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> PluginResult<T> {
        let mut c = self.manager.clone();
        pipe.query_async::<T>(&mut c)
            .await
            .map_err(|e| self.error(e))
    }

    /// A connection failure is `UNAVAILABLE` (the API answers 503); anything
    /// Redis itself refused is an internal error.
    fn error(&self, e: redis::RedisError) -> PluginError {
        let lost = e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || matches!(
                e.kind(),
                redis::ErrorKind::BusyLoadingError
                    | redis::ErrorKind::MasterDown
                    | redis::ErrorKind::ReadOnly
                    | redis::ErrorKind::TryAgain
            );
        if lost {
            tracing::warn!(uri = %self.uri, error = %e, "redis store: Redis unreachable");
            PluginError::unavailable(format!("redis store: {} unreachable: {e}", self.uri))
        } else {
            PluginError::internal(format!("redis store: {e}"))
        }
    }
}

/// The ARGV of a script call after the prefix.
#[derive(Default)]
pub(crate) struct Args(Vec<Vec<u8>>);

impl Args {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn arg(mut self, a: impl ToRedisArgs) -> Self {
        self.0.extend(a.to_redis_args());
        self
    }

    pub(crate) fn push(&mut self, a: impl ToRedisArgs) {
        self.0.extend(a.to_redis_args());
    }
}
