//! `[drivers.transport.wsgi]`.

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
    /// the host sees the header `x-zaqar-body-overflow` and answers with its
    /// size error. Zaqar's own limits (`max_messages_post_size`, ...) are far
    /// below the default and are enforced by the host.
    pub max_body_size: usize,
    /// Seconds an idle keep-alive connection stays open.
    pub idle_timeout: u64,
    /// Seconds to let requests in flight finish on shutdown.
    pub shutdown_grace: u64,
}

impl Default for WsgiConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1".into(),
            port: 8888,
            max_body_size: 8 * 1024 * 1024,
            idle_timeout: 120,
            shutdown_grace: 10,
        }
    }
}
