//! A TCP listener for transport plugins: bind, accept on the plugin's
//! runtime, and stop gracefully (stop accepting, give open connections a
//! grace period, then cut them).

use std::{
    collections::HashMap,
    future::Future,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
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

/// Caps on the connections a listener keeps open. `0` means no cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections open at once on this listener.
    pub max_connections: usize,
    /// Connections open at once from one client IP address.
    pub max_per_address: usize,
}

/// Why a connection was refused at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The listener has [`ConnectionLimits::max_connections`] open.
    TooManyConnections,
    /// The client's address has [`ConnectionLimits::max_per_address`] open.
    TooManyFromAddress,
}

impl Refusal {
    /// A sentence for logs and error bodies.
    pub fn describe(self) -> &'static str {
        match self {
            Refusal::TooManyConnections => "the server has too many open connections",
            Refusal::TooManyFromAddress => "too many open connections from your address",
        }
    }
}

/// Where the listener reports what an operator should see (refusals,
/// accept errors): the transport forwards it to the host's log.
pub type ListenerLog = std::sync::Arc<dyn Fn(crate::LogLevel, &str) + Send + Sync>;

/// How a listener serves and limits its connections.
pub struct ListenOptions<S, R> {
    /// How long [`Listening::stop`] waits for open connections to finish.
    pub grace: Duration,
    /// Caps on open connections.
    pub limits: ConnectionLimits,
    /// Serves an accepted connection.
    pub serve: S,
    /// Answers a connection refused by `limits` (e.g. a 503 written without
    /// reading the request); it should be quick, and is cut after
    /// [`REFUSAL_TIME`]. At most [`REFUSALS_IN_FLIGHT`] run at once; beyond
    /// that a refused connection is closed without an answer.
    pub refuse: R,
    /// Where refusals and accept errors are logged.
    pub log: ListenerLog,
}

/// The longest a refused connection is kept to be answered.
pub const REFUSAL_TIME: Duration = Duration::from_secs(2);
/// Refused connections being answered at once; more are simply closed, so a
/// flood of refusals cannot itself use up the file descriptors.
pub const REFUSALS_IN_FLIGHT: usize = 64;

/// Binds `address` (`host:port`) and serves each accepted connection with
/// `serve` on its own task. `grace` is how long [`Listening::stop`] waits for
/// open connections to finish. No connection caps (see [`listen_with`]).
pub async fn listen<S, Fut>(address: &str, grace: Duration, serve: S) -> PluginResult<Listening>
where
    S: Fn(TcpStream, SocketAddr, StopSignal) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    listen_with(
        address,
        ListenOptions {
            grace,
            limits: ConnectionLimits::default(),
            serve,
            refuse: |_stream: TcpStream, _peer: SocketAddr, _why: Refusal| async {},
            log: std::sync::Arc::new(|_, _: &str| {}),
        },
    )
    .await
}

/// Binds `address` (`host:port`) and serves each accepted connection with
/// `options.serve` on its own task, within `options.limits`.
pub async fn listen_with<S, Fut, R, RFut>(
    address: &str,
    options: ListenOptions<S, R>,
) -> PluginResult<Listening>
where
    S: Fn(TcpStream, SocketAddr, StopSignal) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
    R: Fn(TcpStream, SocketAddr, Refusal) -> RFut + Send + Sync + 'static,
    RFut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| PluginError::unavailable(format!("cannot listen on {address}: {e}")))?;
    let local_addr = listener
        .local_addr()
        .map_err(|e| PluginError::internal(format!("no local address for {address}: {e}")))?;
    let (stop, stopped) = watch::channel(false);
    let acceptor = runtime::spawn(accept_loop(listener, options, stopped));
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
        self.start_with(
            address,
            ListenOptions {
                grace,
                limits: ConnectionLimits::default(),
                serve,
                refuse: |_stream: TcpStream, _peer: SocketAddr, _why: Refusal| async {},
                log: std::sync::Arc::new(|_, _: &str| {}),
            },
        )
        .await
    }

    /// Binds and starts serving (see [`listen_with`]) unless already
    /// started; returns the bound address as `host:port`.
    pub async fn start_with<S, Fut, R, RFut>(
        &self,
        address: &str,
        options: ListenOptions<S, R>,
    ) -> PluginResult<String>
    where
        S: Fn(TcpStream, SocketAddr, StopSignal) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
        R: Fn(TcpStream, SocketAddr, Refusal) -> RFut + Send + Sync + 'static,
        RFut: Future<Output = ()> + Send + 'static,
    {
        let mut listening = self.listening.lock().await;
        if listening.is_some() {
            return Err(PluginError::internal(format!(
                "already listening on {address}"
            )));
        }
        let started = listen_with(address, options).await?;
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

/// Open connections, in total and per client address.
#[derive(Default)]
struct OpenConnections {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// One admitted connection's place in [`OpenConnections`], given back when
/// its task ends (however it ends).
struct Admitted {
    open: Arc<Mutex<OpenConnections>>,
    address: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_address.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.by_address.remove(&self.address);
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// A connection's future holding its place in [`OpenConnections`]
    /// (given back when the task ends and drops it). A struct rather than
    /// `async move { served.await; drop(admitted) }`: such a block keeps the
    /// captured future and the one being awaited as two copies in its
    /// state, doubling every connection task (4.5 KB instead of 2.3 KB for
    /// an idle WebSocket).
    struct AdmittedConnection<F> {
        #[pin]
        served: F,
        _admitted: Admitted,
    }
}

impl<F: Future<Output = ()>> Future for AdmittedConnection<F> {
    type Output = ();

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        self.project().served.poll(cx)
    }
}

fn admit(
    open: &Arc<Mutex<OpenConnections>>,
    limits: ConnectionLimits,
    address: IpAddr,
) -> Result<Admitted, Refusal> {
    let mut state = open.lock().unwrap_or_else(|e| e.into_inner());
    if limits.max_connections > 0 && state.total >= limits.max_connections {
        return Err(Refusal::TooManyConnections);
    }
    let from_address = state.by_address.get(&address).copied().unwrap_or(0);
    if limits.max_per_address > 0 && from_address >= limits.max_per_address {
        return Err(Refusal::TooManyFromAddress);
    }
    state.total += 1;
    *state.by_address.entry(address).or_insert(0) += 1;
    Ok(Admitted {
        open: open.clone(),
        address,
    })
}

/// Back-off after a failed accept (out of file descriptors, out of memory):
/// doubles from [`ACCEPT_BACKOFF_MIN`] to [`ACCEPT_BACKOFF_MAX`], reset by a
/// successful accept, so a full descriptor table neither spins the CPU nor
/// floods the log.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

async fn accept_loop<S, Fut, R, RFut>(
    listener: TcpListener,
    options: ListenOptions<S, R>,
    mut stopped: StopSignal,
) where
    S: Fn(TcpStream, SocketAddr, StopSignal) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
    R: Fn(TcpStream, SocketAddr, Refusal) -> RFut,
    RFut: Future<Output = ()> + Send + 'static,
{
    let ListenOptions {
        grace,
        limits,
        serve,
        refuse,
        log,
    } = options;
    let open = Arc::new(Mutex::new(OpenConnections::default()));
    let mut connections = JoinSet::new();
    let mut refusals = JoinSet::new();
    let mut backoff = ACCEPT_BACKOFF_MIN;
    let mut failed_accepts: u64 = 0;
    let mut refused: u64 = 0;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if failed_accepts > 0 {
                        log(crate::LogLevel::WARN, &format!(
                            "accepting again after {failed_accepts} failed accepts"
                        ));
                        failed_accepts = 0;
                    }
                    backoff = ACCEPT_BACKOFF_MIN;
                    match admit(&open, limits, peer.ip()) {
                        Ok(admitted) => {
                            // Small request/response pairs: don't let Nagle hold them back.
                            let _ = stream.set_nodelay(true);
                            let served = serve(stream, peer, stopped.clone());
                            connections.spawn_on(
                                AdmittedConnection { served, _admitted: admitted },
                                &runtime::handle(),
                            );
                        }
                        Err(why) => {
                            refused += 1;
                            // One line per power of two: a flood is visible
                            // without writing a line per connection.
                            if refused.is_power_of_two() {
                                log(crate::LogLevel::WARN, &format!(
                                    "refused a connection from {peer}: {} ({refused} refused so far)",
                                    why.describe()
                                ));
                            }
                            if refusals.len() < REFUSALS_IN_FLIGHT {
                                let answer = refuse(stream, peer, why);
                                refusals.spawn_on(
                                    async move {
                                        let _ = tokio::time::timeout(REFUSAL_TIME, answer).await;
                                    },
                                    &runtime::handle(),
                                );
                            }
                        }
                    }
                }
                Err(error) => {
                    failed_accepts += 1;
                    if failed_accepts.is_power_of_two() {
                        log(crate::LogLevel::ERROR, &format!(
                            "cannot accept connections: {error} ({failed_accepts} failures); \
                             raise the open-file limit (ulimit -n) or lower the connection caps"
                        ));
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stopped.changed() => break,
                    }
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                }
            },
            _ = stopped.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            Some(_) = refusals.join_next(), if !refusals.is_empty() => {}
        }
    }
    drop(listener);
    refusals.abort_all();
    let _ = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
}

/// Refuses a connection over a cap the way both of Zaqar's transports can
/// (a WebSocket client reads an HTTP answer to its handshake): a 503 with
/// Zaqar's JSON error body, written without reading the request, then
/// closes it. Usable as [`ListenOptions::refuse`].
pub async fn refuse_with_503(stream: TcpStream, _peer: SocketAddr, why: Refusal) {
    let description = match why {
        Refusal::TooManyConnections => "The server has too many open connections; retry later.",
        Refusal::TooManyFromAddress => "Too many open connections from your address.",
    };
    let body = format!("{{\"title\":\"Service Unavailable\",\"description\":\"{description}\"}}");
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    answer_and_close(stream, response.as_bytes()).await;
}

/// Writes `response` (a whole HTTP response) to a connection that will not
/// be served, without reading its request, then closes it. The unread
/// request is drained for a moment after the write so the close does not
/// turn into a reset that would discard the answer on the client's side.
pub async fn answer_and_close(mut stream: TcpStream, response: &[u8]) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if stream.write_all(response).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        let mut drained = 0usize;
        while drained < 64 * 1024 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
}

/// Whether an address is one a tenant must not make the server reach
/// unless the operator allows it: loopback, private (RFC 1918, IPv6 unique
/// local and site-local), link-local, shared (CGNAT), unspecified,
/// broadcast, multicast, benchmarking, documentation and reserved ranges;
/// and every IPv6 form that carries an IPv4 address (IPv4-mapped
/// `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`,
/// 6to4 `2002::/16`) is judged by the IPv4 address it carries, because a
/// host or a NAT64 gateway on the way delivers it there. Local-use NAT64
/// (`64:ff9b:1::/48`) and Teredo (`2001::/32`), whose targets cannot be
/// told from the address alone, count as private.
pub fn is_private_address(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
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
                || (a == 192 && b == 0 && c == 0)
                || (a == 192 && b == 88 && c == 99)
                || a >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_ipv4(v6) {
                return is_private_address(IpAddr::V4(v4));
            }
            let segments = v6.segments();
            let first = segments[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
                || (first == 0x2001 && segments[1] == 0x0db8)
                || (first == 0x2001 && segments[1] == 0)
                || (first == 0x0064 && segments[1] == 0xff9b && segments[2] == 1)
                || first == 0x0100 && segments[1..4] == [0, 0, 0]
        }
    }
}

/// The IPv4 address an IPv6 address delivers to, for the forms that embed
/// one: IPv4-mapped, IPv4-compatible (`::a.b.c.d`, but not `::` and `::1`),
/// well-known NAT64 and 6to4.
fn embedded_ipv4(v6: std::net::Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    let low = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        std::net::Ipv4Addr::new(a, b, c, d)
    };
    if s[..6] == [0, 0, 0, 0, 0, 0] && (s[6] != 0 || s[7] > 1) {
        return Some(low(s[6], s[7]));
    }
    if s[..6] == [0x0064, 0xff9b, 0, 0, 0, 0] {
        return Some(low(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return Some(low(s[1], s[2]));
    }
    None
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
            "::127.0.0.1",
            "::10.0.0.1",
            "::169.254.169.254",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::10.1.2.3",
            "64:ff9b:1::8.8.8.8",
            "2002:7f00:1::1",
            "2002:c0a8:101::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "fec0::1",
            "100::1",
            "192.0.0.8",
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
            "::8.8.8.8",
            "64:ff9b::8.8.8.8",
            "2002:808:808::1",
        ] {
            assert!(!is_private_address(address.parse().unwrap()), "{address}");
        }
    }
}
