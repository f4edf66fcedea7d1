//! The connection pool, error mapping and start-up (connect, migrate).

use std::{str::FromStr, time::Duration};

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use plugin_api::{ErrorCode, PluginError, PluginResult};
use tokio_postgres::{error::SqlState, NoTls};

use crate::{config::redacted_uri, log, migrations, PostgresConfig};

/// What an operation failed with: an error to hand to the host as it is
/// (a caller's mistake, like a claimed message), or a database error to map.
#[derive(Debug)]
pub(crate) enum OpError {
    Caller(PluginError),
    Db(tokio_postgres::Error),
}

pub(crate) type OpResult<T> = Result<T, OpError>;

impl From<tokio_postgres::Error> for OpError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Db(e)
    }
}

/// An error that the caller caused, with its contract code.
pub(crate) fn caller(code: ErrorCode, message: impl Into<String>) -> OpError {
    OpError::Caller(PluginError::new(code, message))
}

impl OpError {
    /// Deadlocks and serialization failures: the transaction was rolled
    /// back and may simply run again.
    pub(crate) fn is_retryable(&self) -> bool {
        matches!(self, Self::Db(e) if e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED)
            || e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE))
    }

    pub(crate) fn into_plugin(self) -> PluginError {
        match self {
            Self::Caller(e) => e,
            Self::Db(e) => db_error(&e),
        }
    }
}

/// Whether a database error means "the database cannot be reached right
/// now" (connection lost, server shutting down or starting, out of
/// connections) rather than a bug.
fn is_unavailable(e: &tokio_postgres::Error) -> bool {
    if let Some(code) = e.code() {
        let class = &code.code()[..2];
        // 08: connection exception; 57: operator intervention (shutdown,
        // terminated backend, cannot connect now); 53: insufficient
        // resources (too many connections, disk full).
        return matches!(class, "08" | "57" | "53");
    }
    if e.is_closed() {
        return true;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    // Errors without a database code or I/O cause are the client's own
    // (connection closed mid-query reports itself this way too).
    e.as_db_error().is_none() && e.to_string().contains("connection")
}

/// The contract's view of a database error.
pub(crate) fn db_error(e: &tokio_postgres::Error) -> PluginError {
    if is_unavailable(e) {
        PluginError::unavailable(format!("postgresql store: database unavailable: {e}"))
    } else {
        let detail = e
            .as_db_error()
            .map_or_else(|| e.to_string(), |d| d.to_string());
        PluginError::internal(format!("postgresql store: {detail}"))
    }
}

fn pool_error(e: deadpool_postgres::PoolError) -> PluginError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => db_error(&e),
        other => {
            PluginError::unavailable(format!("postgresql store: no database connection: {other}"))
        }
    }
}

/// The pool shared by a store's calls.
#[derive(Clone)]
pub(crate) struct Database {
    pool: Pool,
    /// The parsed connection settings (the change feed opens its own
    /// connection with them).
    pub(crate) settings: tokio_postgres::Config,
    /// The configured URI, password redacted.
    pub(crate) uri: String,
    /// How long a connection may take to open.
    pub(crate) connect_timeout: Duration,
    /// Messages this process's collector deleted because their ttl ran out
    /// (shared by every clone: the store answers `messages_expired` from it).
    pub(crate) messages_expired: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Database {
    /// Connects to the configured database and brings its schema up to
    /// date. Fails with a message naming the driver and the (redacted) URI.
    pub(crate) async fn open(config: &PostgresConfig) -> PluginResult<Self> {
        let uri = redacted_uri(&config.uri);
        let scheme_ok = ["postgresql://", "postgres://"]
            .iter()
            .any(|s| config.uri.starts_with(s));
        if !scheme_ok {
            return Err(PluginError::bad_config(format!(
                "postgresql store: uri {uri:?} must start with postgresql:// (or postgres://)"
            )));
        }
        let mut pg = tokio_postgres::Config::from_str(&config.uri).map_err(|e| {
            PluginError::bad_config(format!("postgresql store: invalid uri {uri:?}: {e}"))
        })?;
        let timeout = Duration::from_millis(config.connect_timeout_ms.max(1));
        pg.connect_timeout(timeout);
        pg.application_name("zaqar-server");
        let settings = pg.clone();
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .build()
            .map_err(|e| PluginError::bad_config(format!("postgresql store: {e}")))?;
        let db = Self {
            pool,
            settings,
            uri,
            connect_timeout: timeout,
            messages_expired: Default::default(),
        };
        let mut client = db.pool.get().await.map_err(|e| {
            PluginError::unavailable(format!(
                "postgresql store: cannot connect to {}: {}",
                db.uri,
                pool_error(e).message
            ))
        })?;
        let version = migrations::run(&mut client).await.map_err(|e| {
            let e = e.into_plugin();
            PluginError::new(
                e.code,
                format!("postgresql store on {}: {}", db.uri, e.message),
            )
        })?;
        log::info(&format!(
            "postgresql store: connected to {} (schema version {version})",
            db.uri
        ));
        Ok(db)
    }

    /// A connection from the pool.
    pub(crate) async fn client(&self) -> PluginResult<Object> {
        self.pool.get().await.map_err(pool_error)
    }

    /// Whether the database answers a trivial query.
    pub(crate) async fn is_alive(&self) -> bool {
        match self.pool.get().await {
            Ok(client) => client.simple_query("SELECT 1").await.is_ok(),
            Err(_) => false,
        }
    }
}

/// Runs `$body` (an expression using the pooled connection `$client`, giving
/// a future of `OpResult<T>`) and retries it when the database rolled the
/// transaction back for a deadlock or serialization failure.
macro_rules! with_client {
    ($db:expr, |$client:ident| $body:expr) => {{
        let mut attempt = 0u32;
        loop {
            #[allow(unused_mut)] // only transactions need the client mutable
            let mut $client = $db.client().await?;
            match $body.await {
                Err(e) if e.is_retryable() && attempt < 10 => attempt += 1,
                result => break result.map_err($crate::db::OpError::into_plugin),
            }
        }
    }};
}
pub(crate) use with_client;
