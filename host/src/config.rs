//! Configuration: built-in defaults ← `zaqar.toml` (or `--config PATH`) ←
//! `ZAQAR_` environment variables, `__` separating nested keys
//! (`ZAQAR_DRIVERS__MESSAGE_STORE=redis`, `ZAQAR_TRANSPORT__MAX_MESSAGES_PER_PAGE=50`).
//!
//! Option names follow Zaqar's where Zaqar has them, so an operator's
//! knowledge carries over: Zaqar's `[DEFAULT]` options live in `[server]`,
//! its `[transport]` limits in `[transport]`, and its
//! `[drivers:transport:wsgi]` section is `[drivers.transport.wsgi]`.
//! Unknown keys are errors naming the key and where it came from.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use figment::{
    providers::{Env, Format, Serialized, Toml},
    Figment,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Zaqar's `[DEFAULT]` options.
    pub server: ServerOptions,
    /// Which plugins to run, and their own tables.
    pub drivers: Drivers,
    /// Where to find plugin libraries.
    pub plugins: PluginPaths,
    /// Zaqar's `[transport]` limits and defaults.
    pub transport: Limits,
    /// Zaqar's `[signed_url]` options.
    pub signed_url: SignedUrl,
    /// Zaqar's `[notification]` options.
    pub notification: NotificationOptions,
    /// Resumable event streams: sockets, server-sent events, long-poll.
    pub streams: crate::streams::StreamsConfig,
    /// The web console (`[ui]`).
    pub ui: crate::console::UiConfig,
}

/// Zaqar's `[DEFAULT]` options that apply here.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerOptions {
    /// Expose the admin API (`/v2/health`, pools, flavors).
    pub admin_mode: bool,
    /// Zaqar's `pooling`: queues live on the pools registered through the
    /// admin API (`/v2/pools`, `/v2/flavors`) instead of on
    /// `[drivers] message_store`; see docs/pools.md.
    pub pooling: bool,
    /// Add `checksum` (`MD5:<hex>` of the body) to messages.
    pub enable_checksum: bool,
    /// Log filter (`tracing` syntax, e.g. `info,zaqar_host=debug`); the
    /// `RUST_LOG` environment variable wins when set.
    pub log_level: String,
    /// Log format: `text` or `json`.
    pub log_format: String,
    /// `noauth` (every request names its project with `X-Project-ID` and
    /// `X-Roles` grants roles), or the name of a `zaqar.auth` plugin that
    /// turns each request's credentials into an identity (`keystone`,
    /// `static`, a third party's). See docs/auth.md.
    pub auth_strategy: String,
    /// Requests (HTTP requests and WebSocket frames) per second one
    /// project may make; more get 429 with `Retry-After`. 0: no limit.
    pub rate_limit_per_project: f64,
    /// Requests one project may make at once before the rate applies
    /// (0: the rate, rounded up, at least 1).
    pub rate_limit_burst: u32,
    /// Serve the Prometheus exposition at `GET /metrics` (admin only).
    pub metrics: bool,
    /// Also serve `GET /metrics` on this address (`127.0.0.1:9108`), plain
    /// HTTP **without authentication**, for a Prometheus on a private
    /// network. Empty (the default): off.
    pub metrics_listen: String,
    /// `[server.cors]`: which web origins may call the API from a browser.
    pub cors: CorsOptions,
}

/// `[server.cors]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsOptions {
    /// Origins (`https://dash.example`) allowed to call the HTTP API and
    /// open event streams from a browser, and to open WebSockets; `"*"`
    /// allows any. Empty (the default): same origin only.
    pub allowed_origins: Vec<String>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            admin_mode: false,
            pooling: false,
            enable_checksum: false,
            log_level: "info".into(),
            log_format: "text".into(),
            auth_strategy: NO_AUTH.into(),
            rate_limit_per_project: 0.0,
            rate_limit_burst: 0,
            metrics: true,
            metrics_listen: String::new(),
            cors: CorsOptions::default(),
        }
    }
}

/// The `auth_strategy` that checks nothing (Zaqar's empty strategy).
pub const NO_AUTH: &str = "noauth";

/// `[drivers]`: the plugins selected by name, as Zaqar's stevedore drivers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Drivers {
    /// Transports to run side by side (`zaqar.transport`).
    pub transports: Vec<String>,
    /// The message store (`zaqar.storage.message`).
    pub message_store: StoreSelection,
    /// The management store (`zaqar.storage.management`).
    pub management_store: StoreSelection,
    /// Per-transport tables: `[drivers.transport.<name>]`.
    pub transport: BTreeMap<String, Value>,
    /// Per-notifier tables: `[drivers.notification.<scheme>]`.
    pub notification: BTreeMap<String, Value>,
    /// Per-auth-strategy tables: `[drivers.auth.<name>]`.
    pub auth: BTreeMap<String, Value>,
}

impl Drivers {
    /// The management store's table. When the same driver serves both
    /// stores and only the message store has a table, the management store
    /// gets that one too: one embedded data directory, not two by accident.
    pub fn management_options(&self) -> Value {
        let own = self.management_store.options();
        let same_driver = self.management_store.name() == self.message_store.name();
        let has_own = matches!(&self.management_store, StoreSelection::Table(t)
            if self.management_store.name().is_some_and(|n| t.contains_key(n)));
        if same_driver && !has_own {
            self.message_store.options()
        } else {
            own
        }
    }
}

impl Drivers {
    /// The TOML key of the table [`Drivers::management_options`] hands over.
    pub fn management_table(&self) -> String {
        let name = self.management_store.name().unwrap_or_default();
        let has_own =
            matches!(&self.management_store, StoreSelection::Table(t) if t.contains_key(name));
        if name == self.message_store.name().unwrap_or_default() && !has_own {
            format!("drivers.message_store.{name}")
        } else {
            format!("drivers.management_store.{name}")
        }
    }
}

impl Default for Drivers {
    fn default() -> Self {
        Self {
            transports: vec!["wsgi".into(), "websocket".into()],
            message_store: StoreSelection::named("embedded"),
            management_store: StoreSelection::named("embedded"),
            transport: BTreeMap::new(),
            notification: BTreeMap::new(),
            auth: BTreeMap::new(),
        }
    }
}

/// A store selection, written either `message_store = "redis"` or as a table
/// naming the driver and carrying the drivers' own tables:
///
/// ```toml
/// [drivers.message_store]
/// name = "embedded"
/// [drivers.message_store.embedded]
/// path = "data"
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StoreSelection {
    /// Just the driver name.
    Name(String),
    /// The driver name and per-driver tables.
    Table(BTreeMap<String, Value>),
}

impl StoreSelection {
    fn named(name: &str) -> Self {
        Self::Name(name.to_string())
    }

    /// The selected driver's name.
    pub fn name(&self) -> Option<&str> {
        match self {
            Self::Name(name) => Some(name),
            Self::Table(table) => table.get("name").and_then(Value::as_str),
        }
    }

    /// The selected driver's own table (`{}` if none).
    pub fn options(&self) -> Value {
        match (self, self.name()) {
            (Self::Table(table), Some(name)) => table
                .get(name)
                .cloned()
                .unwrap_or_else(|| Value::Object(Default::default())),
            _ => Value::Object(Default::default()),
        }
    }

    /// Checks the table form: a `name`, and nothing but tables beside it.
    fn validate(&self, key: &str) -> Result<(), String> {
        let Self::Table(table) = self else {
            return Ok(());
        };
        match table.get("name") {
            Some(Value::String(_)) => {}
            Some(_) => return Err(format!("`drivers.{key}.name` must be a string")),
            None => {
                return Err(format!(
                    "`[drivers.{key}]` needs `name = \"<driver>\"` to select a driver"
                ))
            }
        }
        for (field, value) in table {
            if field != "name" && !value.is_object() {
                return Err(format!(
                    "unknown key `drivers.{key}.{field}`: beside `name`, only driver tables such as `[drivers.{key}.<driver>]` are allowed"
                ));
            }
        }
        Ok(())
    }
}

impl Default for StoreSelection {
    fn default() -> Self {
        Self::named("embedded")
    }
}

/// `[plugins]`: where dynamic plugin libraries are found.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginPaths {
    /// Library files, or directories whose libraries are all loaded.
    /// Relative paths are relative to the configuration file.
    pub paths: Vec<PathBuf>,
    /// Register the plugins linked into the binary. `false` runs the host
    /// with nothing but what `paths` provides (every built-in also builds as
    /// a library under `plugins/dylibs/`).
    pub builtins: bool,
}

impl Default for PluginPaths {
    fn default() -> Self {
        Self {
            paths: Vec::new(),
            builtins: true,
        }
    }
}

/// Zaqar's `[transport]` options: limits and defaults of the API, with
/// Zaqar's names and defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest page of queues (and topics).
    pub max_queues_per_page: u32,
    /// Largest page of messages; also the most ids in one get or delete.
    pub max_messages_per_page: u32,
    /// Largest page of subscriptions.
    pub max_subscriptions_per_page: u32,
    /// Largest page of pools.
    pub max_pools_per_page: u32,
    /// Largest page of flavors.
    pub max_flavors_per_page: u32,
    /// Most messages one claim or pop takes.
    pub max_messages_per_claim_or_pop: u32,
    /// Largest queue metadata document, in bytes.
    pub max_queue_metadata: u64,
    /// Largest message POST body, in bytes.
    pub max_messages_post_size: u64,
    /// Longest message ttl, in seconds.
    pub max_message_ttl: u32,
    /// Longest message delay, in seconds.
    pub max_message_delay: u32,
    /// Longest claim ttl, in seconds.
    pub max_claim_ttl: u32,
    /// Longest claim grace, in seconds.
    pub max_claim_grace: u32,
    /// Ttl of messages posted without one (unless the queue says otherwise).
    pub default_message_ttl: u32,
    /// Delay of messages posted without one (unless the queue says otherwise).
    pub default_message_delay: u32,
    /// Claim ttl when a claim names none.
    pub default_claim_ttl: u32,
    /// Claim grace when a claim names none.
    pub default_claim_grace: u32,
    /// Subscription ttl when a subscription names none.
    pub default_subscription_ttl: u32,
    /// Accepted subscriber URI schemes.
    pub subscriber_types: Vec<String>,
    /// `strict`: Client-ID must be a UUID; `off`: any string of
    /// `min_length_client_id..=max_length_client_id` characters.
    pub client_id_uuid_safe: String,
    /// Shortest Client-ID when `client_id_uuid_safe = "off"`.
    pub min_length_client_id: u32,
    /// Longest Client-ID when `client_id_uuid_safe = "off"`.
    pub max_length_client_id: u32,
    /// Require `claim_ids` beside `ids` when deleting messages in bulk.
    pub message_delete_with_claim_id: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_queues_per_page: 20,
            max_messages_per_page: 20,
            max_subscriptions_per_page: 20,
            max_pools_per_page: 20,
            max_flavors_per_page: 20,
            max_messages_per_claim_or_pop: 20,
            max_queue_metadata: 64 * 1024,
            max_messages_post_size: 256 * 1024,
            max_message_ttl: 1_209_600,
            max_message_delay: 900,
            max_claim_ttl: 43_200,
            max_claim_grace: 43_200,
            default_message_ttl: 3600,
            default_message_delay: 0,
            default_claim_ttl: 300,
            default_claim_grace: 60,
            default_subscription_ttl: 3600,
            subscriber_types: ["http", "https", "mailto", "trust+http", "trust+https"]
                .map(String::from)
                .to_vec(),
            client_id_uuid_safe: "strict".into(),
            min_length_client_id: 10,
            max_length_client_id: 36,
            message_delete_with_claim_id: false,
        }
    }
}

/// Zaqar's `[signed_url]` options.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SignedUrl {
    /// Key for pre-signed URLs; unset disables them.
    pub secret_key: Option<String>,
}

/// Zaqar's `[notification]` options.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationOptions {
    /// New subscriptions receive nothing until confirmed.
    pub require_confirmation: bool,
    /// Allow subscriber URLs in loopback, link-local and private ranges.
    pub allow_private_subscribers: bool,
}

/// Where the configuration came from, for logs and relative paths.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// The file read, if any.
    pub file: Option<PathBuf>,
}

/// The file read when no `--config` is given, if it exists.
pub const DEFAULT_FILE: &str = "zaqar.toml";

/// Loads the configuration: defaults, then `file` (or `./zaqar.toml` when
/// present), then the environment.
pub fn load(file: Option<&Path>) -> Result<Loaded, String> {
    let file = match file {
        Some(path) if !path.is_file() => {
            return Err(format!("configuration file {} not found", path.display()))
        }
        Some(path) => Some(path.to_path_buf()),
        None => Some(PathBuf::from(DEFAULT_FILE)).filter(|p| p.is_file()),
    };
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = &file {
        figment = figment.merge(Toml::file_exact(path));
    }
    let environment = Env::prefixed("ZAQAR_")
        // Every option lives in a section, so configuration variables always
        // have a `__`; others (`ZAQAR_BENCH_HOME`, ...) belong to other tools.
        .filter(|key| key.as_str().contains("__"))
        .split("__")
        .map(|key| match key.as_str().to_ascii_lowercase().as_str() {
            // `ZAQAR_DRIVERS__MESSAGE_STORE=redis` selects the driver
            // without discarding the file's per-driver tables.
            "drivers.message_store" => "drivers.message_store.name".into(),
            "drivers.management_store" => "drivers.management_store.name".into(),
            _ => key.into(),
        });
    figment = figment.merge(environment);
    let mut config: Config = figment.extract().map_err(describe_figment_error)?;
    config.drivers.message_store.validate("message_store")?;
    config
        .drivers
        .management_store
        .validate("management_store")?;
    check_choices(&config)?;
    check_metrics_listen(&config)?;
    config.streams.validate()?;
    check_unused_tables(&config)?;
    let rate = config.server.rate_limit_per_project;
    if !(rate.is_finite() && rate >= 0.0) {
        return Err(format!(
            "invalid value {rate} for `server.rate_limit_per_project`: expected requests per second, 0 for no limit"
        ));
    }
    if let Some(dir) = file.as_ref().and_then(|f| f.parent()) {
        for path in &mut config.plugins.paths {
            if path.is_relative() {
                *path = dir.join(&*path);
            }
        }
    }
    Ok(Loaded { config, file })
}

/// `server.metrics_listen` is empty or an address with a port (a host
/// name would make the bind depend on the resolver at start-up).
fn check_metrics_listen(config: &Config) -> Result<(), String> {
    let listen = &config.server.metrics_listen;
    if !listen.is_empty() && listen.parse::<std::net::SocketAddr>().is_err() {
        return Err(format!(
            "invalid value {listen:?} for `server.metrics_listen`: expected an address and port like \"127.0.0.1:9108\", or \"\" for none"
        ));
    }
    Ok(())
}

/// Options that take one of a few words: a misspelt value is an error naming
/// the key and the words allowed, not a silent fallback.
fn check_choices(config: &Config) -> Result<(), String> {
    let choices: [(&str, &str, &[&str]); 2] = [
        (
            "server.log_format",
            &config.server.log_format,
            &["text", "json"],
        ),
        (
            "transport.client_id_uuid_safe",
            &config.transport.client_id_uuid_safe,
            &["strict", "off"],
        ),
    ];
    for (key, value, allowed) in choices {
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(value)) {
            return Err(format!(
                "invalid value {value:?} for `{key}`: expected one of {}",
                allowed
                    .iter()
                    .map(|a| format!("\"{a}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    Ok(())
}

/// A plugin table nothing will read is a typo or a leftover, refused like
/// an unknown key: `[drivers.transport.<name>]` for a transport not in
/// `drivers.transports`. (A `[drivers.notification.<scheme>]` table naming
/// a scheme no loaded sink provides is refused at start-up, once the
/// plugins are found: a sink from a library serves its scheme without it
/// being listed in `subscriber_types`.) Store tables for a driver not
/// selected are allowed: they let an environment variable switch drivers
/// (`ZAQAR_DRIVERS__MESSAGE_STORE=redis`) without editing the file.
fn check_unused_tables(config: &Config) -> Result<(), String> {
    let drivers = &config.drivers;
    for name in drivers.transport.keys() {
        if !drivers.transports.iter().any(|t| t == name) {
            return Err(format!(
                "`[drivers.transport.{name}]` configures a transport that is not selected: \
                 `drivers.transports` is {:?}",
                drivers.transports
            ));
        }
    }
    Ok(())
}

/// Renders figment's errors one per line, each with the key and the source
/// (file or environment variable) it came from.
fn describe_figment_error(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}
