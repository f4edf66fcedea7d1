//! Binding, connection caps and stopping.

use std::{sync::Arc, time::Duration};

use plugin_api::{
    net::{refuse_with_503, ConnectionLimits, ListenOptions, ListenerSlot},
    transport::{HostApiBox, Transport},
    types::RString,
    HostServicesBox, LogLevel, PluginContext, PluginResult,
};

use crate::{
    body::BodyBudget,
    config::WsgiConfig,
    connection::{self, Shared},
};

/// Where the transport logs: the host's log when it gave one.
pub type Log = plugin_api::net::ListenerLog;

/// The `wsgi` transport plugin.
pub struct WsgiTransport {
    config: WsgiConfig,
    listener: ListenerSlot,
    log: Log,
}

impl WsgiTransport {
    /// The constructor behind the `wsgi` entry point.
    pub async fn from_context(context: PluginContext) -> PluginResult<Self> {
        let config: WsgiConfig = context.config()?;
        config.validate()?;
        let mut transport = Self::new(config);
        transport.log = host_log(context.services);
        Ok(transport)
    }

    /// A transport with this configuration, not yet listening; it logs to
    /// stderr.
    pub fn new(config: WsgiConfig) -> Self {
        Self {
            config,
            listener: ListenerSlot::default(),
            log: Arc::new(|level, message: &str| {
                if level.0 <= LogLevel::WARN.0 {
                    eprintln!("wsgi: {message}");
                }
            }),
        }
    }
}

fn host_log(services: HostServicesBox) -> Log {
    Arc::new(move |level, message: &str| services.log(level, message.into()))
}

impl Transport for WsgiTransport {
    async fn start(&self, host: HostApiBox) -> PluginResult<RString> {
        let address = format!("{}:{}", self.config.bind, self.config.port);
        let shared = Arc::new(Shared {
            host,
            config: self.config.clone(),
            budget: BodyBudget::new(self.config.max_body_memory),
            log: self.log.clone(),
        });
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
                        connection::serve(stream, peer, shared.clone(), stop)
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
