//! Binding, accepting and graceful shutdown.

use std::{sync::Arc, time::Duration};

use plugin_api::{
    runtime,
    transport::{HostApiBox, Transport},
    types::RString,
    PluginContext, PluginError, PluginResult,
};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

use crate::{config::WsgiConfig, connection};

/// The `wsgi` transport plugin.
pub struct WsgiTransport {
    config: WsgiConfig,
    running: tokio::sync::Mutex<Option<Running>>,
}

struct Running {
    stop: watch::Sender<bool>,
    acceptor: JoinHandle<()>,
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
            running: tokio::sync::Mutex::new(None),
        }
    }
}

impl Transport for WsgiTransport {
    async fn start(&self, host: HostApiBox) -> PluginResult<RString> {
        let mut running = self.running.lock().await;
        if running.is_some() {
            return Err(PluginError::internal(
                "the wsgi transport is already started",
            ));
        }
        let address = format!("{}:{}", self.config.bind, self.config.port);
        let listener = TcpListener::bind(&address).await.map_err(|e| {
            PluginError::unavailable(format!("wsgi: cannot listen on {address}: {e}"))
        })?;
        let local = listener
            .local_addr()
            .map_err(|e| PluginError::internal(format!("wsgi: no local address: {e}")))?;
        let (stop, stopped) = watch::channel(false);
        let acceptor = runtime::spawn(accept_loop(
            listener,
            Arc::new(host),
            self.config.clone(),
            stopped,
        ));
        *running = Some(Running { stop, acceptor });
        Ok(RString::from(local.to_string()))
    }

    async fn stop(&self) -> PluginResult<()> {
        if let Some(running) = self.running.lock().await.take() {
            let _ = running.stop.send(true);
            let _ = running.acceptor.await;
        }
        Ok(())
    }
}

/// Accepts connections until told to stop, then waits (up to the configured
/// grace) for the open connections to finish their requests.
async fn accept_loop(
    listener: TcpListener,
    host: Arc<HostApiBox>,
    config: WsgiConfig,
    mut stopped: watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn_on(
                        connection::serve(stream, peer, host.clone(), config.clone(), stopped.clone()),
                        &runtime::handle(),
                    );
                }
                // Out of file descriptors and similar: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            _ = stopped.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let grace = Duration::from_secs(config.shutdown_grace);
    let _ = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
}
