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
    let registry = Registry::discover(&loaded.config.plugins.paths);
    for plugin in registry.plugins() {
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
            StartError(format!(
                "message store `{message_store_name}` failed to start: {e}"
            ))
        })?;
    tracing::info!(name = message_store_name, origin = %plugin.origin, "message store ready");

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
            StartError(format!(
                "management store `{management_store_name}` failed to start: {e}"
            ))
        })?;
    tracing::info!(name = management_store_name, origin = %plugin.origin, "management store ready");

    let (messages, events) = events::attach(messages).await;
    let notifiers = build_notifiers(&registry, config).await;
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
    let api = Arc::new(Api::new(
        config,
        Stores {
            messages,
            management,
        },
        dispatcher.clone(),
    ));

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
                running.push((plugin.name.clone(), transport));
            }
            Err(error) => {
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

/// Builds every notifier sink found, keyed by the URI scheme it handles.
/// A sink that fails to build is logged and its scheme left without one:
/// notifications are not worth refusing to serve the API over.
async fn build_notifiers(
    registry: &Registry,
    config: &crate::config::Config,
) -> HashMap<String, Arc<NotifierBox>> {
    let mut notifiers = HashMap::new();
    for plugin in registry.in_namespace(NAMESPACE_NOTIFICATION) {
        let options = config
            .drivers
            .notification
            .get(&plugin.name)
            .cloned()
            .unwrap_or_else(|| Value::Object(Default::default()));
        match plugins::build_notifier(plugin, &options).await {
            Ok(notifier) => {
                tracing::info!(scheme = %plugin.name, origin = %plugin.origin, "notifier sink ready");
                notifiers.insert(plugin.name.clone(), Arc::new(notifier));
            }
            Err(error) => tracing::error!(
                scheme = %plugin.name,
                origin = %plugin.origin,
                %error,
                "notifier sink failed to start: subscribers with this scheme get nothing"
            ),
        }
    }
    notifiers
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

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
