//! `[drivers.notification.http]` and `[drivers.notification.https]`.

use std::path::PathBuf;

use serde::Deserialize;

/// The sink's own configuration table. Both entry points (`http`, `https`)
/// read the same keys from their own table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Seconds one delivery attempt may take as a whole: name resolution,
    /// connecting, TLS, every redirect hop, and reading the answer.
    pub timeout_secs: u64,
    /// How many redirects (301, 302, 307, 308) one attempt follows.
    pub max_redirects: u32,
    /// Replaces the `User-Agent` header, `zaqar-rs/<version>` by default.
    pub user_agent: Option<String>,
    /// A PEM file of extra CA certificates trusted for `https` subscribers,
    /// on top of the compiled-in Mozilla roots (for an internal CA).
    pub ca_file: Option<PathBuf>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            timeout_secs: 10,
            max_redirects: 3,
            user_agent: None,
            ca_file: None,
        }
    }
}
