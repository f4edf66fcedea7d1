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
    /// Seconds between pings the server sends.
    pub ping_interval: u64,
    /// Seconds without any frame from the client (pongs count) after which
    /// the socket is closed.
    pub idle_timeout: u64,
    /// Seconds to let requests in flight finish on shutdown.
    pub shutdown_grace: u64,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1".into(),
            port: 9000,
            max_frame_size: 1024 * 1024,
            send_queue_frames: 256,
            ping_interval: 30,
            idle_timeout: 90,
            shutdown_grace: 10,
        }
    }
}
