//! The connection to Redis: a reconnecting connection manager, the key
//! prefix, script invocation and the mapping of failures to plugin errors.
//! Behind Sentinel, the master is looked up through the Sentinels at start
//! and again whenever the connection fails, so a failover is followed.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, RwLock,
    },
    time::Duration,
};

use plugin_api::{PluginError, PluginResult};
use redis::{
    aio::{ConnectionManager, ConnectionManagerConfig},
    sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType},
    Script, ToRedisArgs, Value,
};

use crate::config::{self, Endpoint, RedisConfig};

/// Pause between two lookups of the master after failures, so a burst of
/// failing calls does not hammer the Sentinels.
const SENTINEL_LOOKUP_PAUSE: Duration = Duration::from_millis(250);

/// One open connection (multiplexed; cloned per call) and the key prefix.
#[derive(Clone)]
pub(crate) struct Conn {
    link: Arc<Link>,
    prefix: String,
    uri: String,
}

/// The connection to the server in use, and how to find a new one.
struct Link {
    current: RwLock<Current>,
    sentinel: Option<SentinelLink>,
}

#[derive(Clone)]
struct Current {
    manager: ConnectionManager,
    client: redis::Client,
}

/// Following the master behind Sentinel.
struct SentinelLink {
    sentinels: tokio::sync::Mutex<SentinelClient>,
    master: String,
    manager_config: ConnectionManagerConfig,
    connect_timeout: Duration,
    looking_up: AtomicBool,
}

impl SentinelLink {
    /// The current master, as the Sentinels tell it.
    async fn master(&self) -> Result<redis::Client, String> {
        let mut sentinels = self.sentinels.lock().await;
        match tokio::time::timeout(self.connect_timeout, sentinels.async_get_client()).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(e)) => Err(format!("no Sentinel names a master `{}`: {e}", self.master)),
            Err(_) => Err(format!(
                "no Sentinel answered about master `{}` in time",
                self.master
            )),
        }
    }
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
        let bad_config =
            |e: redis::RedisError| PluginError::bad_config(format!("redis store: uri {uri}: {e}"));
        let response_timeout = target
            .response_timeout
            .unwrap_or(Duration::from_millis(config.response_timeout_ms));
        let connect_timeout = Duration::from_millis(config.connect_timeout_ms);
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(connect_timeout)
            .set_response_timeout(response_timeout)
            .set_number_of_retries(1)
            .set_max_delay(1000);
        let (client, sentinel) = match target.endpoint {
            Endpoint::Direct(info) => (redis::Client::open(info).map_err(bad_config)?, None),
            Endpoint::Sentinel {
                sentinels,
                master,
                node,
            } => {
                let node = SentinelNodeConnectionInfo {
                    tls_mode: None,
                    redis_connection_info: Some(node),
                };
                let sentinels = SentinelClient::build(
                    sentinels,
                    master.clone(),
                    Some(node),
                    SentinelServerType::Master,
                )
                .map_err(bad_config)?;
                let link = SentinelLink {
                    sentinels: tokio::sync::Mutex::new(sentinels),
                    master,
                    manager_config: manager_config.clone(),
                    connect_timeout,
                    looking_up: AtomicBool::new(false),
                };
                let client = link.master().await.map_err(|e| {
                    PluginError::unavailable(format!("redis store: cannot connect to {uri}: {e}"))
                })?;
                (client, Some(link))
            }
        };
        let manager = ConnectionManager::new_with_config(client.clone(), manager_config)
            .await
            .map_err(|e| {
                PluginError::unavailable(format!("redis store: cannot connect to {uri}: {e}"))
            })?;
        let conn = Self {
            link: Arc::new(Link {
                current: RwLock::new(Current { manager, client }),
                sentinel,
            }),
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

    fn current(&self) -> Current {
        self.link
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn manager(&self) -> ConnectionManager {
        self.current().manager
    }

    /// The key prefix (empty when shared with Zaqar).
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A client for a new connection to the same Redis (for the pub/sub
    /// connection): behind Sentinel, to the master the Sentinels name now.
    pub(crate) async fn client(&self) -> Result<redis::Client, String> {
        match &self.link.sentinel {
            Some(sentinel) => sentinel.master().await,
            None => Ok(self.current().client),
        }
    }

    /// Behind Sentinel, after a failed call: asks the Sentinels for the
    /// master in the background and, when it moved, switches every later
    /// call to it. (Without Sentinel the connection manager reconnects to
    /// the one server by itself.)
    fn follow_master(&self) {
        let Some(sentinel) = &self.link.sentinel else {
            return;
        };
        if sentinel.looking_up.swap(true, Ordering::SeqCst) {
            return;
        }
        let link = self.link.clone();
        let uri = self.uri.clone();
        plugin_api::runtime::handle().spawn(async move {
            let Some(sentinel) = &link.sentinel else {
                return;
            };
            match sentinel.master().await {
                Ok(client) => {
                    let in_use = link
                        .current
                        .read()
                        .unwrap_or_else(|e| e.into_inner())
                        .client
                        .get_connection_info()
                        .addr
                        .clone();
                    let named = client.get_connection_info().addr.clone();
                    if named != in_use {
                        match ConnectionManager::new_with_config(
                            client.clone(),
                            sentinel.manager_config.clone(),
                        )
                        .await
                        {
                            Ok(manager) => {
                                tracing::info!(%uri, master = %named, "redis store: Sentinel names a new master; switched to it");
                                *link.current.write().unwrap_or_else(|e| e.into_inner()) =
                                    Current { manager, client };
                            }
                            Err(error) => {
                                tracing::warn!(%uri, master = %named, %error, "redis store: cannot connect to the new master yet")
                            }
                        }
                    }
                }
                Err(error) => tracing::warn!(%uri, %error, "redis store: cannot look up the master"),
            }
            tokio::time::sleep(SENTINEL_LOOKUP_PAUSE).await;
            sentinel.looking_up.store(false, Ordering::SeqCst);
        });
    }

    /// The channel changes are announced on.
    pub(crate) fn changes_channel(&self) -> String {
        format!("{}zaqar-rs.changes", self.prefix)
    }

    /// Sends PING.
    pub(crate) async fn ping(&self) -> PluginResult<()> {
        let mut c = self.manager();
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
        let mut c = self.manager();
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
        let mut c = self.manager();
        cmd.query_async::<T>(&mut c)
            .await
            .map_err(|e| self.error(e))
    }

    /// Runs a pipeline (MULTI/EXEC when it is atomic).
    pub(crate) async fn command_pipe<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> PluginResult<T> {
        let mut c = self.manager();
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
            self.follow_master();
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
