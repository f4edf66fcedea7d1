//! Binding and stopping.

use std::{sync::Arc, time::Duration};

use plugin_api::{
    net::ListenerSlot,
    transport::{HostApiBox, Transport},
    types::RString,
    PluginContext, PluginResult,
};

use crate::{config::WsgiConfig, connection};

/// The `wsgi` transport plugin.
pub struct WsgiTransport {
    config: WsgiConfig,
    listener: ListenerSlot,
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
            listener: ListenerSlot::default(),
        }
    }
}

impl Transport for WsgiTransport {
    async fn start(&self, host: HostApiBox) -> PluginResult<RString> {
        let address = format!("{}:{}", self.config.bind, self.config.port);
        let host = Arc::new(host);
        let config = self.config.clone();
        let local = self
            .listener
            .start(
                &address,
                Duration::from_secs(self.config.shutdown_grace),
                move |stream, peer, stop| {
                    connection::serve(stream, peer, host.clone(), config.clone(), stop)
                },
            )
            .await?;
        Ok(local.into())
    }

    async fn stop(&self) -> PluginResult<()> {
        self.listener.stop().await;
        Ok(())
    }
}
