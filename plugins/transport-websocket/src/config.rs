//! `[drivers.transport.websocket]`.

use serde::Deserialize;

/// The transport's own configuration table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebSocketConfig {
    /// Address to listen on.
    pub bind: String,
    /// Port to listen on; 0 picks a free one (reported at start-up).
    pub port: u16,
    /// Largest frame (and message) accepted, in bytes; a larger one closes
    /// the socket with code 1009.
    pub max_frame_size: usize,
    /// Frames (replies and pushes) that may wait for a slow reader before
    /// the socket is closed with code 1008 (slow consumer).
    pub send_queue_frames: usize,
    /// Bytes (replies and pushes) that may wait for a slow reader: a push
    /// beyond it closes the socket with code 1008 (slow consumer); a reply
    /// beyond it waits for room. One frame is always let through, however
    /// large.
    pub send_queue_bytes: usize,
    /// Seconds one write to the client may stay blocked (the client does
    /// not read and its TCP window is full) before the socket is closed.
    pub write_timeout: u64,
    /// Seconds a client has to complete the WebSocket handshake.
    pub handshake_timeout: u64,
    /// Sockets open at once; more are answered 503 and closed. 0: no cap
    /// (the open-file limit still applies).
    pub max_connections: usize,
    /// Sockets open at once from one client IP address; more are answered
    /// 503 and closed. 0: no cap.
    pub max_connections_per_address: usize,
    /// Seconds between pings the server sends.
    pub ping_interval: u64,
    /// Seconds without any frame from the client (pongs count) after which
    /// the socket is closed.
    pub idle_timeout: u64,
    /// Seconds to let requests in flight finish on shutdown.
    pub shutdown_grace: u64,
    /// Web origins (`https://dash.example`, or `"*"`) whose pages may open
    /// a socket; a handshake with another `Origin` is refused with 403.
    /// A page of the server's own host name (any port: the console on the
    /// HTTP port) and clients that send no `Origin` (not browsers) are
    /// always let in. The host fills this from `[server.cors]
    /// allowed_origins` unless the table sets it.
    pub allowed_origins: Vec<String>,
    /// Hand the host's pushes to the kernel in batches (io_uring), one
    /// system call for up to 64 sockets instead of one per socket. Where
    /// the kernel refuses io_uring, pushes go out one `send` each, as
    /// with `false`; the start-up log says which.
    pub batched_pushes: bool,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1".into(),
            port: 9000,
            max_frame_size: 1024 * 1024,
            send_queue_frames: 256,
            send_queue_bytes: 4 * 1024 * 1024,
            write_timeout: 10,
            handshake_timeout: 10,
            max_connections: 4096,
            max_connections_per_address: 256,
            ping_interval: 30,
            idle_timeout: 90,
            shutdown_grace: 10,
            allowed_origins: Vec::new(),
            batched_pushes: true,
        }
    }
}
