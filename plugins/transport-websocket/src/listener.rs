//! Binding and stopping.

use std::{sync::Arc, time::Duration};

use plugin_api::{
    net::{self, Listening},
    transport::{HostApiBox, Transport},
    types::RString,
    PluginContext, PluginError, PluginResult,
};

use crate::{config::WebSocketConfig, connection};

/// The `websocket` transport plugin.
pub struct WebSocketTransport {
    config: WebSocketConfig,
    listening: tokio::sync::Mutex<Option<Listening>>,
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
            listening: tokio::sync::Mutex::new(None),
        }
    }
}

impl Transport for WebSocketTransport {
    async fn start(&self, host: HostApiBox) -> PluginResult<RString> {
        let mut listening = self.listening.lock().await;
        if listening.is_some() {
            return Err(PluginError::internal(
                "the websocket transport is already started",
            ));
        }
        let address = format!("{}:{}", self.config.bind, self.config.port);
        let host = Arc::new(host);
        let config = Arc::new(self.config.clone());
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
