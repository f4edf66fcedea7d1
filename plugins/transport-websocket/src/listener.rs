//! Binding and stopping.

use std::{sync::Arc, time::Duration};

use plugin_api::{
    net::ListenerSlot,
    transport::{HostApiBox, Transport},
    types::RString,
    PluginContext, PluginError, PluginResult,
};

use crate::{config::WebSocketConfig, connection};

/// The `websocket` transport plugin.
pub struct WebSocketTransport {
    config: WebSocketConfig,
    listener: ListenerSlot,
}

impl WebSocketTransport {
    /// The constructor behind the `websocket` entry point.
    pub async fn from_context(context: PluginContext) -> PluginResult<Self> {
        let config: WebSocketConfig = context.config()?;
        if config.send_queue_frames == 0 || config.max_frame_size == 0 {
            return Err(PluginError::bad_config(
                "websocket: send_queue_frames and max_frame_size must be at least 1",
            ));
        }
        Ok(Self::new(config))
    }

    /// A transport with this configuration, not yet listening.
    pub fn new(config: WebSocketConfig) -> Self {
        Self {
            config,
            listener: ListenerSlot::default(),
        }
    }
}

impl Transport for WebSocketTransport {
    async fn start(&self, host: HostApiBox) -> PluginResult<RString> {
        let address = format!("{}:{}", self.config.bind, self.config.port);
        let host = Arc::new(host);
        let config = Arc::new(self.config.clone());
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
