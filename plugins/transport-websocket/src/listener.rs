//! Binding and stopping.

use std::{sync::Arc, time::Duration};

use plugin_api::{
    net::{refuse_with_503, ConnectionLimits, ListenOptions, ListenerLog, ListenerSlot},
    transport::{HostApiBox, Transport},
    types::RString,
    LogLevel, PluginContext, PluginError, PluginResult,
};

use crate::{config::WebSocketConfig, connection};

/// The `websocket` transport plugin.
pub struct WebSocketTransport {
    config: WebSocketConfig,
    listener: ListenerSlot,
    log: ListenerLog,
}

impl WebSocketTransport {
    /// The constructor behind the `websocket` entry point.
    pub async fn from_context(context: PluginContext) -> PluginResult<Self> {
        let config: WebSocketConfig = context.config()?;
        if config.send_queue_frames == 0
            || config.max_frame_size == 0
            || config.send_queue_bytes == 0
        {
            return Err(PluginError::bad_config(
                "websocket: send_queue_frames, send_queue_bytes and max_frame_size must be at least 1",
            ));
        }
        if config.write_timeout == 0 || config.handshake_timeout == 0 {
            return Err(PluginError::bad_config(
                "websocket: write_timeout and handshake_timeout must be at least 1 second",
            ));
        }
        let mut transport = Self::new(config);
        let services = context.services;
        transport.log = Arc::new(move |level, message: &str| services.log(level, message.into()));
        Ok(transport)
    }

    /// A transport with this configuration, not yet listening.
    pub fn new(config: WebSocketConfig) -> Self {
        Self {
            config,
            listener: ListenerSlot::default(),
            log: Arc::new(|level, message: &str| {
                if level.0 <= LogLevel::WARN.0 {
                    eprintln!("websocket: {message}");
                }
            }),
        }
    }
}

impl Transport for WebSocketTransport {
    async fn start(&self, host: HostApiBox) -> PluginResult<RString> {
        let address = format!("{}:{}", self.config.bind, self.config.port);
        let host = Arc::new(host);
        let mut config = self.config.clone();
        if config.batched_pushes {
            match crate::batch::probe() {
                Ok(()) => (self.log)(
                    LogLevel::INFO,
                    &format!(
                        "pushes go out in batches of up to {} sockets (io_uring)",
                        crate::batch::BATCH_FRAMES
                    ),
                ),
                Err(reason) => {
                    (self.log)(
                        LogLevel::WARN,
                        &format!("pushes go out one send per socket: {reason}"),
                    );
                    config.batched_pushes = false;
                }
            }
        }
        let config = Arc::new(config);
        let local = self
            .listener
            .start_with(
                &address,
                ListenOptions {
                    grace: Duration::from_secs(self.config.shutdown_grace),
                    limits: ConnectionLimits {
                        max_connections: self.config.max_connections,
                        max_per_address: self.config.max_connections_per_address,
                    },
                    serve: move |stream, peer, stop| {
                        connection::serve(stream, peer, host.clone(), config.clone(), stop)
                    },
                    refuse: refuse_with_503,
                    log: self.log.clone(),
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
