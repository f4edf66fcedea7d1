//! `[drivers.transport.wsgi]`.

use plugin_api::{PluginError, PluginResult};
use serde::Deserialize;

/// The transport's own configuration table, with Zaqar's option names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WsgiConfig {
    /// Address to listen on.
    pub bind: String,
    /// Port to listen on; 0 picks a free one (reported at start-up).
    pub port: u16,
    /// Largest request body read, in bytes. Bodies beyond it are not read:
    /// the host is told so and answers 413 without running the request. Zaqar's own limits (`max_messages_post_size`, ...) are far
    /// below the default and are enforced by the host.
    pub max_body_size: usize,
    /// Seconds an idle keep-alive connection stays open (waiting for the
    /// first byte of its next request).
    pub idle_timeout: u64,
    /// Seconds a client has, from the first byte of a request, to send its
    /// whole header block; then the connection is closed.
    pub header_timeout: u64,
    /// Seconds a client has, once the headers arrived, to send the whole
    /// body; then it gets 408 and the connection is closed.
    pub body_timeout: u64,
    /// Bytes all request bodies being received or handled may hold at once,
    /// across connections. A request that cannot get room before its body
    /// deadline gets 503. At least `max_body_size`.
    pub max_body_memory: usize,
    /// Connections open at once; more are answered 503 and closed. 0: no
    /// cap (the open-file limit still applies).
    pub max_connections: usize,
    /// Connections open at once from one client IP address; more are
    /// answered 503 and closed. 0: no cap.
    pub max_connections_per_address: usize,
    /// Header lines a request may have; more get 431.
    pub max_headers: usize,
    /// Bytes the request line and headers may take (at least 8192); more
    /// get 431.
    pub max_header_size: usize,
    /// Seconds to let requests in flight finish on shutdown.
    pub shutdown_grace: u64,
}

/// hyper's own limit on header lines, the default of `max_headers`.
pub(crate) const HYPER_DEFAULT_MAX_HEADERS: usize = 100;

impl Default for WsgiConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1".into(),
            port: 8888,
            max_body_size: 8 * 1024 * 1024,
            idle_timeout: 120,
            header_timeout: 10,
            body_timeout: 30,
            max_body_memory: 128 * 1024 * 1024,
            max_connections: 4096,
            max_connections_per_address: 256,
            max_headers: HYPER_DEFAULT_MAX_HEADERS,
            max_header_size: 64 * 1024,
            shutdown_grace: 10,
        }
    }
}

impl WsgiConfig {
    /// Refuses settings that could never serve a request.
    pub fn validate(&self) -> PluginResult<()> {
        let problem = if self.max_body_memory < self.max_body_size {
            "max_body_memory must be at least max_body_size"
        } else if self.header_timeout == 0 || self.body_timeout == 0 || self.idle_timeout == 0 {
            "idle_timeout, header_timeout and body_timeout must be at least 1 second"
        } else if self.max_header_size < 8192 {
            "max_header_size must be at least 8192"
        } else if self.max_headers == 0 {
            "max_headers must be at least 1"
        } else {
            return Ok(());
        };
        Err(PluginError::bad_config(format!("wsgi: {problem}")))
    }
}
