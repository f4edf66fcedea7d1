//! Calling a selected entry point's constructor with its configuration.

use plugin_api::{
    auth::AuthenticatorBox, management::ManagementStoreBox, notification::NotifierBox,
    storage::MessageStoreBox, transport::TransportBox, types::RVec, Constructor, ErrorCode,
    PluginContext, PluginError,
};
use serde_json::Value;

use plugin_api::{
    management::wrap_management_store, notification::wrap_notifier, storage::wrap_message_store,
    transport::wrap_transport,
};
use plugin_api_v1_0 as old;

use super::{
    registry::{Factory, Plugin},
    services, v1_0,
};

fn context(plugin: &Plugin, config: &Value) -> PluginContext {
    PluginContext {
        name: plugin.name.as_str().into(),
        config: RVec::from(serde_json::to_vec(config).unwrap_or_else(|_| b"{}".to_vec())),
        services: services::for_plugin(&format!("{}:{}", plugin.namespace, plugin.name)),
    }
}

fn wrong_role(plugin: &Plugin) -> PluginError {
    // The registry files entry points by their constructor's role, so this
    // is a host bug if it ever happens.
    PluginError::internal(format!(
        "entry point {} `{}` has no {} constructor",
        plugin.namespace, plugin.name, plugin.namespace
    ))
}

/// Builds a transport.
pub async fn build_transport(plugin: &Plugin, config: &Value) -> Result<TransportBox, PluginError> {
    match plugin.constructor {
        Factory::Role(Constructor::Transport(build)) => {
            build(context(plugin, config)).await.into_result()
        }
        Factory::V1_0(old::Constructor::Transport(build)) => {
            v1_0::construct(
                build(v1_0::context(context(plugin, config))),
                wrap_transport,
            )
            .await
        }
        _ => Err(wrong_role(plugin)),
    }
}

/// Builds a message store.
pub async fn build_message_store(
    plugin: &Plugin,
    config: &Value,
) -> Result<MessageStoreBox, PluginError> {
    match plugin.constructor {
        Factory::Role(Constructor::MessageStore(build)) => {
            build(context(plugin, config)).await.into_result()
        }
        Factory::V1_0(old::Constructor::MessageStore(build)) => {
            v1_0::construct(
                build(v1_0::context(context(plugin, config))),
                wrap_message_store,
            )
            .await
        }
        _ => Err(wrong_role(plugin)),
    }
}

/// Builds a management store.
pub async fn build_management_store(
    plugin: &Plugin,
    config: &Value,
) -> Result<ManagementStoreBox, PluginError> {
    match plugin.constructor {
        Factory::Role(Constructor::ManagementStore(build)) => {
            build(context(plugin, config)).await.into_result()
        }
        Factory::V1_0(old::Constructor::ManagementStore(build)) => {
            let built = build(v1_0::context(context(plugin, config)));
            v1_0::construct(built, wrap_management_store).await
        }
        _ => Err(wrong_role(plugin)),
    }
}

/// Builds a notifier sink.
pub async fn build_notifier(plugin: &Plugin, config: &Value) -> Result<NotifierBox, PluginError> {
    match plugin.constructor {
        Factory::Role(Constructor::Notifier(build)) => {
            build(context(plugin, config)).await.into_result()
        }
        Factory::V1_0(old::Constructor::Notifier(build)) => {
            v1_0::construct(build(v1_0::context(context(plugin, config))), wrap_notifier).await
        }
        _ => Err(wrong_role(plugin)),
    }
}

/// Builds an auth strategy.
pub async fn build_authenticator(
    plugin: &Plugin,
    config: &Value,
) -> Result<AuthenticatorBox, PluginError> {
    match plugin.constructor {
        Factory::Auth(build) => build(context(plugin, config)).await.into_result(),
        _ => Err(wrong_role(plugin)),
    }
}

/// Places a constructor's configuration error in the operator's file: a
/// key the plugin named (`key `pathh``) becomes its full TOML key
/// (`drivers.notification.file.pathh`), and the file is named. Other errors
/// pass through unchanged.
pub fn describe_config_error(
    mut error: PluginError,
    table: &str,
    file: Option<&std::path::Path>,
) -> PluginError {
    if error.code != ErrorCode::BAD_CONFIG {
        return error;
    }
    let source = match file {
        Some(file) => format!("in {}", file.display()),
        None => "(built-in defaults and ZAQAR_ environment variables)".to_string(),
    };
    let message = error.message.to_string();
    // `PluginContext::config` writes "configuration of plugin `x`: key `k`: reason".
    let keyed = message
        .strip_prefix("configuration of plugin `")
        .and_then(|rest| rest.split_once("`: key `"))
        .and_then(|(_, rest)| rest.split_once("`: "));
    error.message = match keyed {
        Some((key, reason)) => format!("`{table}.{key}` {source}: {reason}"),
        None => {
            // Libraries built against plugin-api 1.0 still point into the
            // JSON the host generated; that position means nothing here.
            let reason = match message.rfind(" at line ") {
                Some(at) => &message[..at],
                None => &message,
            };
            format!("{reason} (table [{table}] {source})")
        }
    }
    .into();
    error
}
