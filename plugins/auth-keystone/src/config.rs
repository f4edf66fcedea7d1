//! `[drivers.auth.keystone]`: keystonemiddleware's option names where it has
//! one, so an operator can carry a Zaqar `[keystone_authtoken]` section over.

use std::path::PathBuf;

use serde::Deserialize;

/// The strategy's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeystoneConfig {
    /// Keystone's URL, with or without the trailing `/v3`
    /// (`http://keystone:5000`, `https://cloud/identity/v3`).
    pub auth_url: String,
    /// The service user the server validates tokens as (it needs the
    /// `service` role, or `admin`, to validate other users' tokens).
    pub username: String,
    /// Its password.
    pub password: String,
    /// The project its token is scoped to (usually `service`).
    pub project_name: String,
    /// The service user's domain.
    #[serde(default = "default_domain")]
    pub user_domain_name: String,
    /// The service project's domain.
    #[serde(default = "default_domain")]
    pub project_domain_name: String,
    /// Seconds to wait for a connection to Keystone.
    #[serde(default = "default_connect_timeout")]
    pub http_connect_timeout: u64,
    /// Seconds one request to Keystone may take in all.
    #[serde(default = "default_request_timeout")]
    pub http_request_timeout: u64,
    /// The longest a validation is reused, in seconds (never past the
    /// token's own expiry); 0 asks Keystone for every request.
    #[serde(default = "default_token_cache_time")]
    pub token_cache_time: u64,
    /// How many validations the cache holds at most.
    #[serde(default = "default_token_cache_size")]
    pub token_cache_size: usize,
    /// A PEM file of extra CA certificates to trust for an `https`
    /// `auth_url`, besides Mozilla's roots.
    #[serde(default)]
    pub cafile: Option<PathBuf>,
}

fn default_domain() -> String {
    "Default".into()
}

fn default_connect_timeout() -> u64 {
    5
}

fn default_request_timeout() -> u64 {
    10
}

/// keystonemiddleware's default.
fn default_token_cache_time() -> u64 {
    300
}

fn default_token_cache_size() -> usize {
    10_000
}
