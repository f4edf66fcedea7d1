//! Calling a selected entry point's constructor with its configuration.

use plugin_api::{
    auth::AuthenticatorBox, management::ManagementStoreBox, notification::NotifierBox,
    storage::MessageStoreBox, transport::TransportBox, types::RVec, Constructor, PluginContext,
    PluginError,
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
