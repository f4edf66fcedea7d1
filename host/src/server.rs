//! Assembling the server from plugins and running it until shutdown.

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use plugin_api::{
    notification::NotifierBox,
    transport::{
        wrap_host_api, ApiRequest, ApiResponse, BodyState, HostApi, PushSinkBox, ServedResponse,
        Transport, TransportBox,
    },
    types::RString,
    PluginResult, NAMESPACE_MANAGEMENT_STORE, NAMESPACE_MESSAGE_STORE, NAMESPACE_NOTIFICATION,
    NAMESPACE_TRANSPORT,
};
use serde_json::Value;

use crate::{
    api::{Api, Stores},
    config::Loaded,
    events,
    notify::{DispatchOptions, Dispatcher},
    plugins::{self, Registry},
    pools::{store::PooledStore, Pools},
};

/// Why the server could not start.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

/// Discovers plugins and logs what was found and refused.
pub fn discover(loaded: &Loaded) -> Registry {
    let plugins = &loaded.config.plugins;
    let registry = Registry::discover_with(&plugins.paths, plugins.builtins);
    for plugin in registry.plugins() {
        crate::metrics::global().plugin_loaded(
            plugin.namespace,
            &plugin.name,
            &plugin.origin.to_string(),
            &plugin.api_version.to_string(),
        );
        tracing::info!(
            namespace = plugin.namespace,
            name = %plugin.name,
            origin = %plugin.origin,
            plugin_api = %plugin.api_version,
            "plugin entry point found"
        );
    }
    for refusal in registry.refusals() {
        tracing::warn!(path = %refusal.path.display(), reason = %refusal.reason, "plugin library refused");
    }
    registry
}

/// Builds the stores and transports the configuration selects, serves until
/// `shutdown` resolves, then stops the transports gracefully.
pub async fn run(loaded: Loaded, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
    let config = &loaded.config;
    let registry = discover(&loaded);
    if let Some(conflict) = registry.conflicts().first() {
        return Err(StartError(conflict.to_string()));
    }

    let drivers = &config.drivers;
    // With pooling the queues' stores are the registered pools, resolved
    // per queue; otherwise the one configured store, used directly.
    let configured = if config.server.pooling {
        None
    } else {
        Some(configured_message_store(&registry, &loaded).await?)
    };

    let management_store_name = drivers.management_store.name().unwrap_or_default();
    let plugin = registry
        .select(
            NAMESPACE_MANAGEMENT_STORE,
            management_store_name,
            "drivers.management_store",
        )
        .map_err(StartError)?;
    let management = plugins::build_management_store(plugin, &drivers.management_options())
        .await
        .map_err(|e| {
            let table = drivers.management_table();
            let e = plugins::describe_config_error(e, &table, loaded.file.as_deref());
            StartError(format!(
                "management store `{management_store_name}` failed to start: {e}"
            ))
        })?;
    tracing::info!(name = management_store_name, origin = %plugin.origin, "management store ready");
    let management = Arc::new(management);

    let (messages, pools) = match configured {
        Some(messages) => (messages, None),
        None => {
            let store_plugins = registry
                .in_namespace(NAMESPACE_MESSAGE_STORE)
                .cloned()
                .collect();
            let pools = Pools::new(management.clone(), store_plugins);
            tracing::info!("pooling on: queues live on the pools registered through /v2/pools");
            let store = plugin_api::storage::wrap_message_store(PooledStore(pools.clone()));
            (store, Some(pools))
        }
    };

    let (messages, events) = events::attach(messages).await;
    if let Some(pools) = &pools {
        // After the feed is attached, so every pool store announces to it.
        match pools.refresh().await {
            Ok(records) => tracing::info!(pools = records.len(), "pools loaded"),
            Err(error) => {
                tracing::error!(%error, "cannot list the pools: they are loaded on first use")
            }
        }
    }
    let notifiers = build_notifiers(&registry, &loaded).await?;
    crate::metrics::global().register_sinks(notifiers.keys().map(String::as_str));
    let mut config = config.clone();
    config.transport.subscriber_types =
        accepted_schemes(&registry, &config.transport.subscriber_types, &notifiers);
    tracing::info!(schemes = ?config.transport.subscriber_types, "subscriber schemes accepted");
    let config = &config;
    let dispatcher = Dispatcher::new(
        messages.clone(),
        events,
        notifiers,
        DispatchOptions {
            notification: config.notification.clone(),
            signing_key: config.signed_url.secret_key.clone(),
            default_subscription_ttl: config.transport.default_subscription_ttl,
        },
    );
    dispatcher.keep_alive();
    dispatcher.resume().await;
    dispatcher.listen();
    let api = Api::new(
        config,
        Stores {
            messages,
            management,
        },
        dispatcher.clone(),
    );
    let api = match pools {
        Some(pools) => api.with_pools(pools),
        None => api,
    };
    let api = Arc::new(match build_auth(&registry, &loaded).await? {
        Some(strategy) => api.with_auth(strategy),
        None => api,
    });

    if let Ok(address) = config.server.metrics_listen.parse() {
        crate::metrics::listener::start(address, api.stores.messages.clone())
            .await
            .map_err(|e| {
                StartError(format!(
                    "server.metrics_listen: cannot listen on {address}: {e}"
                ))
            })?;
    }

    // Resolve every name first, so a typo fails before anything listens.
    let mut selected = Vec::new();
    for name in &drivers.transports {
        let plugin = registry
            .select(NAMESPACE_TRANSPORT, name, "drivers.transports")
            .map_err(StartError)?;
        selected.push(plugin);
    }
    if selected.is_empty() {
        return Err(StartError(
            "drivers.transports is empty: nothing would serve".into(),
        ));
    }

    let mut running: Vec<(String, TransportBox)> = Vec::new();
    for plugin in selected {
        let options = drivers
            .transport
            .get(&plugin.name)
            .cloned()
            .unwrap_or_else(|| Value::Object(Default::default()));
        let options = with_allowed_origins(&plugin.name, options, config);
        let started = async {
            let transport = plugins::build_transport(plugin, &options).await?;
            let address = transport
                .start(wrap_host_api(SharedApi(api.clone())))
                .await?;
            PluginResult::Ok((transport, address))
        }
        .await;
        match started {
            Ok((transport, address)) => {
                tracing::info!(transport = %plugin.name, origin = %plugin.origin, %address, "transport listening");
                // A machine-readable line on stdout, so scripts and tests can
                // find a port chosen with `port = 0`.
                println!(
                    "zaqar-server: transport {} listening on {address}",
                    plugin.name
                );
                if plugin.name == "websocket" {
                    api.console.websocket_listening(&address.to_string());
                }
                running.push((plugin.name.clone(), transport));
            }
            Err(error) => {
                let table = format!("drivers.transport.{}", plugin.name);
                let error = plugins::describe_config_error(error, &table, loaded.file.as_deref());
                for (_, transport) in &running {
                    let _ = transport.stop().await;
                }
                return Err(StartError(format!(
                    "transport `{}` ({}) failed to start: {error}",
                    plugin.name, plugin.origin
                )));
            }
        }
    }

    shutdown.await;
    tracing::info!("shutting down: stopping transports");
    dispatcher.shutdown();
    api.begin_shutdown();
    for (name, transport) in &running {
        match tokio::time::timeout(Duration::from_secs(30), transport.stop()).await {
            Ok(Ok(())) => tracing::info!(transport = %name, "transport stopped"),
            Ok(Err(error)) => {
                tracing::warn!(transport = %name, %error, "transport stopped with an error")
            }
            Err(_) => tracing::warn!(transport = %name, "transport did not stop within 30 s"),
        }
    }
    drop(running);
    drop(api);
    tracing::info!("stopped");
    Ok(())
}

/// The built-in websocket transport checks each handshake's `Origin`
/// against `[server.cors] allowed_origins`, unless its own table lists
/// origins.
fn with_allowed_origins(
    transport: &str,
    mut options: Value,
    config: &crate::config::Config,
) -> Value {
    if transport == "websocket" {
        if let Value::Object(table) = &mut options {
            table
                .entry("allowed_origins")
                .or_insert_with(|| Value::from(config.server.cors.allowed_origins.clone()));
        }
    }
    options
}

/// Builds the message store `[drivers] message_store` names.
async fn configured_message_store(
    registry: &Registry,
    loaded: &Loaded,
) -> Result<plugin_api::storage::MessageStoreBox, StartError> {
    let drivers = &loaded.config.drivers;
    let message_store_name = drivers.message_store.name().unwrap_or_default();
    let plugin = registry
        .select(
            NAMESPACE_MESSAGE_STORE,
            message_store_name,
            "drivers.message_store",
        )
        .map_err(StartError)?;
    let messages = plugins::build_message_store(plugin, &drivers.message_store.options())
        .await
        .map_err(|e| {
            let table = format!("drivers.message_store.{message_store_name}");
            let e = plugins::describe_config_error(e, &table, loaded.file.as_deref());
            StartError(format!(
                "message store `{message_store_name}` failed to start: {e}"
            ))
        })?;
    tracing::info!(name = message_store_name, origin = %plugin.origin, "message store ready");
    Ok(messages)
}

/// Builds the auth strategy `[server] auth_strategy` names, if any; one
/// that is unknown or fails to build stops the start: serving without the
/// checks the operator asked for would open every project to anyone.
async fn build_auth(
    registry: &Registry,
    loaded: &crate::config::Loaded,
) -> Result<Option<plugin_api::auth::AuthenticatorBox>, StartError> {
    let config = &loaded.config;
    let name = config.server.auth_strategy.as_str();
    if name == crate::config::NO_AUTH || name.is_empty() {
        tracing::warn!("auth_strategy = \"noauth\": every client may act as any project (X-Project-ID) and as admin (X-Roles)");
        return Ok(None);
    }
    let plugin = registry
        .select(plugin_api::NAMESPACE_AUTH, name, "server.auth_strategy")
        .map_err(StartError)?;
    let options = config
        .drivers
        .auth
        .get(name)
        .cloned()
        .unwrap_or_else(|| Value::Object(Default::default()));
    let strategy = plugins::build_authenticator(plugin, &options)
        .await
        .map_err(|e| {
            let table = format!("drivers.auth.{name}");
            let e = plugins::describe_config_error(e, &table, loaded.file.as_deref());
            StartError(format!("auth strategy `{name}` failed to start: {e}"))
        })?;
    tracing::info!(strategy = name, origin = %plugin.origin, "auth strategy ready: every request is authenticated");
    Ok(Some(strategy))
}

/// Builds every notifier sink found, keyed by the URI scheme it handles.
///
/// A sink the operator configured (`[drivers.notification.<scheme>]`) that
/// cannot be built stops the start-up, as does a table naming a scheme no
/// sink provides: a typo must not leave subscribers silently without
/// notifications. A sink nobody configured that fails to build is logged and
/// its scheme refused by new subscriptions (see [`accepted_schemes`]).
async fn build_notifiers(
    registry: &Registry,
    loaded: &Loaded,
) -> Result<HashMap<String, Arc<NotifierBox>>, StartError> {
    let tables = &loaded.config.drivers.notification;
    for scheme in tables.keys() {
        registry
            .select(
                NAMESPACE_NOTIFICATION,
                scheme,
                &format!("[drivers.notification.{scheme}]"),
            )
            .map_err(StartError)?;
    }
    let mut notifiers = HashMap::new();
    for plugin in registry.in_namespace(NAMESPACE_NOTIFICATION) {
        let table = tables.get(&plugin.name);
        let options = table
            .cloned()
            .unwrap_or_else(|| Value::Object(Default::default()));
        match plugins::build_notifier(plugin, &options).await {
            Ok(notifier) => {
                tracing::info!(scheme = %plugin.name, origin = %plugin.origin, "notifier sink ready");
                notifiers.insert(plugin.name.clone(), Arc::new(notifier));
            }
            Err(error) if table.is_some() => {
                let error = plugins::describe_config_error(
                    error,
                    &format!("drivers.notification.{}", plugin.name),
                    loaded.file.as_deref(),
                );
                return Err(StartError(format!(
                    "notifier sink `{}` ({}) failed to start: {error}",
                    plugin.name, plugin.origin
                )));
            }
            Err(error) => tracing::error!(
                scheme = %plugin.name,
                origin = %plugin.origin,
                %error,
                "notifier sink failed to start: subscriptions with this scheme are refused"
            ),
        }
    }
    Ok(notifiers)
}

/// The subscriber schemes new subscriptions may use: those of
/// `[transport] subscriber_types`, plus every scheme a sink loaded from a
/// library provides (loading the library is the operator's opt-in), each
/// only while a working sink delivers it.
fn accepted_schemes(
    registry: &Registry,
    configured: &[String],
    notifiers: &HashMap<String, Arc<NotifierBox>>,
) -> Vec<String> {
    let from_libraries = registry
        .in_namespace(NAMESPACE_NOTIFICATION)
        .filter(|p| matches!(p.origin, plugins::Origin::Library { .. }))
        .map(|p| p.name.clone());
    let mut accepted: Vec<String> = Vec::new();
    for scheme in configured.iter().cloned().chain(from_libraries) {
        if notifiers.contains_key(&scheme) && !accepted.contains(&scheme) {
            accepted.push(scheme);
        }
    }
    accepted
}

/// The API as every transport sees it.
struct SharedApi(Arc<Api>);

impl HostApi for SharedApi {
    fn handle(
        &self,
        request: ApiRequest,
    ) -> impl Future<Output = PluginResult<ApiResponse>> + Send {
        HostApi::handle(&*self.0, request)
    }

    fn connection_opened(
        &self,
        connection: RString,
        sink: PushSinkBox,
    ) -> impl Future<Output = PluginResult<()>> + Send {
        HostApi::connection_opened(&*self.0, connection, sink)
    }

    fn connection_closed(
        &self,
        connection: RString,
    ) -> impl Future<Output = PluginResult<()>> + Send {
        HostApi::connection_closed(&*self.0, connection)
    }

    fn serve(
        &self,
        request: ApiRequest,
        body: BodyState,
    ) -> impl Future<Output = PluginResult<ServedResponse>> + Send {
        HostApi::serve(&*self.0, request, body)
    }
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed by this call
/// (it must run inside the runtime), not on the first poll: the server
/// awaits the returned future only once it is serving, and a SIGTERM that
/// arrived before, while it was starting, would otherwise have killed it
/// instead of stopping it cleanly.
pub fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                (Ok(mut only), Err(_)) | (Err(_), Ok(mut only)) => {
                    only.recv().await;
                }
                (Err(_), Err(_)) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
