//! Calling a selected entry point's constructor with its configuration.

use plugin_api::{
    management::ManagementStoreBox, notification::NotifierBox, storage::MessageStoreBox,
    transport::TransportBox, types::RVec, Constructor, PluginContext, PluginError,
};
use serde_json::Value;

use super::{registry::Plugin, services};

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
        Constructor::Transport(build) => build(context(plugin, config)).await.into_result(),
        _ => Err(wrong_role(plugin)),
    }
}

/// Builds a message store.
pub async fn build_message_store(
    plugin: &Plugin,
    config: &Value,
) -> Result<MessageStoreBox, PluginError> {
    match plugin.constructor {
        Constructor::MessageStore(build) => build(context(plugin, config)).await.into_result(),
        _ => Err(wrong_role(plugin)),
    }
}

/// Builds a management store.
pub async fn build_management_store(
    plugin: &Plugin,
    config: &Value,
) -> Result<ManagementStoreBox, PluginError> {
    match plugin.constructor {
        Constructor::ManagementStore(build) => build(context(plugin, config)).await.into_result(),
        _ => Err(wrong_role(plugin)),
    }
}

/// Builds a notifier sink.
pub async fn build_notifier(plugin: &Plugin, config: &Value) -> Result<NotifierBox, PluginError> {
    match plugin.constructor {
        Constructor::Notifier(build) => build(context(plugin, config)).await.into_result(),
        _ => Err(wrong_role(plugin)),
    }
}
