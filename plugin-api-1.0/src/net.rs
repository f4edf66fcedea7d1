//! A TCP listener for transport plugins: bind, accept on the plugin's
//! runtime, and stop gracefully (stop accepting, give open connections a
//! grace period, then cut them).

use std::{
    future::Future,
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
    task::{JoinHandle, JoinSet},
};

use crate::{runtime, PluginError, PluginResult};

/// A listener accepting connections until [`Listening::stop`].
pub struct Listening {
    /// The address it is bound to (the real port when 0 was asked for).
    pub local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    acceptor: JoinHandle<()>,
}

/// Tells a connection task the transport is stopping: when it changes to
/// `true`, finish the request in flight and close.
pub type StopSignal = watch::Receiver<bool>;

/// Binds `address` (`host:port`) and serves each accepted connection with
/// `serve` on its own task. `grace` is how long [`Listening::stop`] waits for
/// open connections to finish.
pub async fn listen<S, Fut>(address: &str, grace: Duration, serve: S) -> PluginResult<Listening>
where
    S: Fn(TcpStream, SocketAddr, StopSignal) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| PluginError::unavailable(format!("cannot listen on {address}: {e}")))?;
    let local_addr = listener
        .local_addr()
        .map_err(|e| PluginError::internal(format!("no local address for {address}: {e}")))?;
    let (stop, stopped) = watch::channel(false);
    let acceptor = runtime::spawn(accept_loop(listener, serve, stopped, grace));
    Ok(Listening {
        local_addr,
        stop,
        acceptor,
    })
}

/// The listener of a transport that is started and stopped through
/// [`Transport`](crate::transport::Transport): at most one at a time.
#[derive(Default)]
pub struct ListenerSlot {
    listening: tokio::sync::Mutex<Option<Listening>>,
}

impl ListenerSlot {
    /// Binds and starts serving (see [`listen`]) unless already started;
    /// returns the bound address as `host:port`.
    pub async fn start<S, Fut>(
        &self,
        address: &str,
        grace: Duration,
        serve: S,
    ) -> PluginResult<String>
    where
        S: Fn(TcpStream, SocketAddr, StopSignal) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut listening = self.listening.lock().await;
        if listening.is_some() {
            return Err(PluginError::internal(format!(
                "already listening on {address}"
            )));
        }
        let started = listen(address, grace, serve).await?;
        let local = started.local_addr.to_string();
        *listening = Some(started);
        Ok(local)
    }

    /// Stops the listener if it runs (see [`Listening::stop`]).
    pub async fn stop(&self) {
        if let Some(listening) = self.listening.lock().await.take() {
            listening.stop().await;
        }
    }
}

impl Listening {
    /// Stops accepting, signals the open connections, and resolves once they
    /// finished (or the grace period ran out and they were cut).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.acceptor.await;
    }
}

async fn accept_loop<S, Fut>(
    listener: TcpListener,
    serve: S,
    mut stopped: StopSignal,
    grace: Duration,
) where
    S: Fn(TcpStream, SocketAddr, StopSignal) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Small request/response pairs: don't let Nagle hold them back.
                    let _ = stream.set_nodelay(true);
                    connections.spawn_on(serve(stream, peer, stopped.clone()), &runtime::handle());
                }
                // Out of file descriptors and the like: back off, don't spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            _ = stopped.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
}

/// Whether an address is one a tenant must not make the server reach
/// unless the operator allows it: loopback, private (RFC 1918, IPv6 unique
/// local), link-local, shared (CGNAT), unspecified, broadcast, multicast,
/// documentation ranges, and IPv4-mapped forms of all of these.
pub fn is_private_address(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private_address(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_private_address;

    #[test]
    fn private_and_special_ranges_are_private() {
        for address in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_private_address(address.parse().unwrap()), "{address}");
        }
    }

    #[test]
    fn public_addresses_are_not_private() {
        for address in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_private_address(address.parse().unwrap()), "{address}");
        }
    }
}
