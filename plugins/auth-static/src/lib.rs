//! The `static` auth strategy of zaqar-server: bearer tokens listed in a
//! file the operator writes (`[drivers.auth.static] tokens_file`), each
//! mapped to a project, a user and roles, optionally with an expiry.
//!
//! A request presents its token in `X-Auth-Token` or `Authorization: Bearer
//! <token>`; a missing, unknown or expired token is refused with
//! [`ErrorCode::UNAUTHORIZED`] and keystonemiddleware's message. The file's
//! format is in [`token_file`]; it is re-read when it changes and on SIGHUP
//! ([`reload`]). See `docs/auth.md`.

mod reload;
pub mod token_file;

use std::{
    path::PathBuf,
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use plugin_api::{
    auth::{AuthRequest, Authenticator, Identity},
    LogLevel, PluginContext, PluginError, PluginResult,
};
use serde::Deserialize;
use tokio::task::JoinHandle;

use reload::Stamp;
use token_file::{Lookup, TokenTable};

/// What a refused request is told: keystonemiddleware's words, so clients
/// written against Zaqar see the same refusal.
pub const UNAUTHORIZED_MESSAGE: &str = "The request you have made requires authentication.";

/// `[drivers.auth.static]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    /// The tokens file (TOML, or JSON when it ends in `.json`).
    pub tokens_file: PathBuf,
    /// How often the file's modification stamp is checked, in
    /// milliseconds; 0 reloads on SIGHUP only.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
}

fn default_poll_interval_ms() -> u64 {
    1000
}

/// The `static` strategy.
pub struct StaticTokens {
    shared: Arc<Shared>,
    watcher: JoinHandle<()>,
}

/// What the strategy and its reload task share.
pub(crate) struct Shared {
    path: PathBuf,
    table: RwLock<Arc<TokenTable>>,
    /// The stamp of the file the table was read from.
    stamp: Mutex<Option<Stamp>>,
    context: PluginContext,
}

impl Shared {
    pub(crate) fn log(&self, level: LogLevel, message: &str) {
        self.context.log(level, message);
    }

    fn current(&self) -> Arc<TokenTable> {
        Arc::clone(&self.table.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether the file's stamp differs from the loaded version's.
    pub(crate) fn changed_on_disk(&self) -> bool {
        let now = Stamp::of(&self.path);
        *self.stamp.lock().unwrap_or_else(|e| e.into_inner()) != now
    }

    /// Reads the file; on success installs it and returns its token count.
    /// On failure the stamp is still recorded, so a bad file is reported
    /// once, not at every poll.
    pub(crate) fn reload(&self) -> Result<usize, String> {
        let stamp = Stamp::of(&self.path);
        let loaded = TokenTable::load(&self.path);
        *self.stamp.lock().unwrap_or_else(|e| e.into_inner()) = stamp;
        let table = loaded?;
        let count = table.len();
        *self.table.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(table);
        Ok(count)
    }
}

impl StaticTokens {
    /// Builds the strategy from its configuration: the tokens file must be
    /// readable and valid now ([`ErrorCode::BAD_CONFIG`] otherwise).
    pub async fn open(context: PluginContext) -> PluginResult<Self> {
        let config: StaticConfig = context.config()?;
        let stamp = Stamp::of(&config.tokens_file);
        let table = TokenTable::load(&config.tokens_file).map_err(PluginError::bad_config)?;
        context.log(
            LogLevel::INFO,
            &format!(
                "static tokens from {}: {} tokens",
                config.tokens_file.display(),
                table.len()
            ),
        );
        let shared = Arc::new(Shared {
            path: config.tokens_file,
            table: RwLock::new(Arc::new(table)),
            stamp: Mutex::new(stamp),
            context,
        });
        let watcher = plugin_api::runtime::spawn(reload::watch(
            Arc::downgrade(&shared),
            Duration::from_millis(config.poll_interval_ms),
        ));
        Ok(Self { shared, watcher })
    }
}

impl Drop for StaticTokens {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

impl Authenticator for StaticTokens {
    async fn authenticate(&self, request: AuthRequest, now_ms: u64) -> PluginResult<Identity> {
        let refuse = |why: &str| {
            self.shared.log(
                LogLevel::INFO,
                &format!("refused a request from {}: {why}", request.peer),
            );
            Err(PluginError::unauthorized(UNAUTHORIZED_MESSAGE))
        };
        let Some(token) = request.token() else {
            return refuse("no token");
        };
        match self.shared.current().lookup(token, now_ms) {
            Lookup::Valid(identity) => Ok(identity),
            Lookup::Expired => refuse("expired token"),
            Lookup::Unknown => refuse("unknown token"),
        }
    }
}

plugin_api::auth_entry_points! {
    pub fn auth_entry_points;
    auth "static" => StaticTokens::open,
}

plugin_api::register_builtin!(auth = auth_entry_points);
