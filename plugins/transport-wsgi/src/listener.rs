//! Binding and stopping.

use std::{sync::Arc, time::Duration};

use plugin_api::{
    net::{self, Listening},
    transport::{HostApiBox, Transport},
    types::RString,
    PluginContext, PluginError, PluginResult,
};

use crate::{config::WsgiConfig, connection};

/// The `wsgi` transport plugin.
pub struct WsgiTransport {
    config: WsgiConfig,
    listening: tokio::sync::Mutex<Option<Listening>>,
}

impl WsgiTransport {
    /// The constructor behind the `wsgi` entry point.
    pub async fn from_context(context: PluginContext) -> PluginResult<Self> {
        Ok(Self::new(context.config()?))
    }

    /// A transport with this configuration, not yet listening.
    pub fn new(config: WsgiConfig) -> Self {
        Self {
            config,
            listening: tokio::sync::Mutex::new(None),
        }
    }
}

impl Transport for WsgiTransport {
    async fn start(&self, host: HostApiBox) -> PluginResult<RString> {
        let mut listening = self.listening.lock().await;
        if listening.is_some() {
            return Err(PluginError::internal(
                "the wsgi transport is already started",
            ));
        }
        let address = format!("{}:{}", self.config.bind, self.config.port);
        let host = Arc::new(host);
        let config = self.config.clone();
        let started = net::listen(
            &address,
            Duration::from_secs(self.config.shutdown_grace),
            move |stream, peer, stop| {
                connection::serve(stream, peer, host.clone(), config.clone(), stop)
            },
        )
        .await?;
        let local = started.local_addr.to_string();
        *listening = Some(started);
        Ok(local.into())
    }

    async fn stop(&self) -> PluginResult<()> {
        if let Some(listening) = self.listening.lock().await.take() {
            listening.stop().await;
        }
        Ok(())
    }
}
