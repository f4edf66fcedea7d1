//! `zaqar-server plugins --check`: what a plugin author or operator runs
//! before deploying. With a library path it loads that one library the way
//! the server would and says whether this host accepts it; without, it
//! builds every plugin the configuration selects, so a typo in a plugin's
//! table or a failing constructor shows before the server is started.

use std::path::Path;

use plugin_api::{
    NAMESPACE_AUTH, NAMESPACE_MANAGEMENT_STORE, NAMESPACE_MESSAGE_STORE, NAMESPACE_NOTIFICATION,
    NAMESPACE_TRANSPORT, PLUGIN_API_VERSION,
};
use serde_json::Value;

use super::{
    build_authenticator, build_management_store, build_message_store, build_notifier,
    build_transport, describe_config_error, library, Plugin, Registry,
};
use crate::config::Loaded;

/// Loads the library at `path` and prints its plugin-api version and entry
/// points, or why this host refuses it. True when it is accepted.
pub fn check_library(path: &Path) -> bool {
    println!("library:    {}", path.display());
    println!("host:       plugin-api {PLUGIN_API_VERSION}");
    match library::load(path) {
        Ok(loaded) => {
            println!("plugin-api: {}", loaded.api_version);
            let rows: Vec<(&str, String)> = match &loaded.entries {
                library::Entries::Current { entry_points, auth } => entry_points
                    .iter()
                    .map(|e| (e.namespace(), e.name.to_string()))
                    .chain(auth.iter().map(|a| (NAMESPACE_AUTH, a.name.to_string())))
                    .collect(),
                library::Entries::V1_0(entry_points) => entry_points
                    .iter()
                    .map(|e| (e.namespace(), e.name.to_string()))
                    .collect(),
            };
            println!("entry points:");
            for (namespace, name) in &rows {
                println!("  {namespace:<26} {name}");
            }
            if rows.is_empty() {
                println!("  (none)");
            }
            println!("accepted: this host loads it");
            true
        }
        Err(reason) => {
            println!("refused: {reason}");
            false
        }
    }
}

/// Builds every plugin the configuration selects (each with its own table,
/// exactly as at start-up, without starting anything) and prints one line
/// per plugin. True when every one of them would start.
pub async fn check_configured(loaded: &Loaded, registry: &Registry) -> bool {
    let config = &loaded.config;
    let drivers = &config.drivers;
    let file = loaded.file.as_deref();
    let mut all_ok = true;
    let mut report = |namespace: &str, name: &str, outcome: Result<&Plugin, String>| match outcome {
        Ok(plugin) => println!("ok      {namespace:<26} {name:<16} {}", plugin.origin),
        Err(reason) => {
            all_ok = false;
            println!("FAILED  {namespace:<26} {name:<16} {reason}");
        }
    };
    for conflict in registry.conflicts() {
        report(
            conflict.namespace,
            &conflict.name,
            Err(conflict.to_string()),
        );
    }

    let name = drivers.message_store.name().unwrap_or_default();
    let table = format!("drivers.message_store.{name}");
    let outcome = match registry.select(NAMESPACE_MESSAGE_STORE, name, "drivers.message_store") {
        Ok(plugin) => build_message_store(plugin, &drivers.message_store.options())
            .await
            .map(|store| {
                drop(store);
                plugin
            })
            .map_err(|e| describe_config_error(e, &table, file).to_string()),
        Err(reason) => Err(reason),
    };
    report(NAMESPACE_MESSAGE_STORE, name, outcome);

    let name = drivers.management_store.name().unwrap_or_default();
    let table = drivers.management_table();
    let outcome =
        match registry.select(NAMESPACE_MANAGEMENT_STORE, name, "drivers.management_store") {
            Ok(plugin) => build_management_store(plugin, &drivers.management_options())
                .await
                .map(|store| {
                    drop(store);
                    plugin
                })
                .map_err(|e| describe_config_error(e, &table, file).to_string()),
            Err(reason) => Err(reason),
        };
    report(NAMESPACE_MANAGEMENT_STORE, name, outcome);

    for name in &drivers.transports {
        let table = format!("drivers.transport.{name}");
        let options = table_or_empty(drivers.transport.get(name));
        let outcome = match registry.select(NAMESPACE_TRANSPORT, name, "drivers.transports") {
            Ok(plugin) => build_transport(plugin, &options)
                .await
                .map(|transport| {
                    drop(transport);
                    plugin
                })
                .map_err(|e| describe_config_error(e, &table, file).to_string()),
            Err(reason) => Err(reason),
        };
        report(NAMESPACE_TRANSPORT, name, outcome);
    }

    let name = config.server.auth_strategy.as_str();
    if name != crate::config::NO_AUTH && !name.is_empty() {
        let table = format!("drivers.auth.{name}");
        let outcome = match registry.select(NAMESPACE_AUTH, name, "server.auth_strategy") {
            Ok(plugin) => build_authenticator(plugin, &table_or_empty(drivers.auth.get(name)))
                .await
                .map(|strategy| {
                    drop(strategy);
                    plugin
                })
                .map_err(|e| describe_config_error(e, &table, file).to_string()),
            Err(reason) => Err(reason),
        };
        report(NAMESPACE_AUTH, name, outcome);
    }

    for scheme in drivers.notification.keys() {
        let key = format!("[drivers.notification.{scheme}]");
        if let Err(reason) = registry.select(NAMESPACE_NOTIFICATION, scheme, &key) {
            report(NAMESPACE_NOTIFICATION, scheme, Err(reason));
        }
    }
    for plugin in registry.in_namespace(NAMESPACE_NOTIFICATION) {
        let table = drivers.notification.get(&plugin.name);
        let key = format!("drivers.notification.{}", plugin.name);
        match build_notifier(plugin, &table_or_empty(table)).await {
            Ok(_) => report(NAMESPACE_NOTIFICATION, &plugin.name, Ok(plugin)),
            // Not configured: the server starts, refusing subscriptions
            // with this scheme; say so without failing the check.
            Err(error) if table.is_none() => println!(
                "unused  {:<26} {:<16} {}; subscriptions with this scheme are refused",
                NAMESPACE_NOTIFICATION, plugin.name, error
            ),
            Err(error) => report(
                NAMESPACE_NOTIFICATION,
                &plugin.name,
                Err(describe_config_error(error, &key, file).to_string()),
            ),
        }
    }
    all_ok
}

fn table_or_empty(table: Option<&Value>) -> Value {
    table
        .cloned()
        .unwrap_or_else(|| Value::Object(Default::default()))
}
