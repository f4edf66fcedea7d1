//! The plugin's configuration table, `[drivers.message_store.postgresql]`
//! (and `[drivers.management_store.postgresql]`).

use serde::Deserialize;

/// Settings of the postgresql stores.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// Where the database is: `postgresql://user[:password]@host[:port]/database`
    /// (`postgres://` works too). The database must exist; the tables are
    /// created in it at start-up.
    #[serde(default = "default_uri")]
    pub uri: String,
    /// Connections kept open to the database by this store.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// How long to wait for a new connection (and for a free one from the
    /// pool) before answering "unavailable".
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Seconds between two passes of the collector that deletes expired
    /// messages, claims and subscriptions.
    #[serde(default = "default_gc_interval")]
    pub gc_interval_secs: u64,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            uri: default_uri(),
            pool_size: default_pool_size(),
            connect_timeout_ms: default_connect_timeout_ms(),
            gc_interval_secs: default_gc_interval(),
        }
    }
}

fn default_uri() -> String {
    "postgresql://postgres@127.0.0.1:5432/zaqar".to_owned()
}

fn default_pool_size() -> usize {
    16
}

fn default_connect_timeout_ms() -> u64 {
    5000
}

fn default_gc_interval() -> u64 {
    5
}

/// The URI with its password replaced by `***`, for messages and logs.
pub fn redacted_uri(uri: &str) -> String {
    let mut out = uri.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest_start + colon + 1..rest_start + at, "***");
            }
        }
    }
    // A password may also come as a query parameter.
    if let Some(query_start) = out.find('?') {
        let (head, query) = out.split_at(query_start + 1);
        let query = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&");
        out = format!("{head}{query}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redacted_uri;

    #[test]
    fn passwords_are_redacted_wherever_they_are() {
        assert_eq!(
            redacted_uri("postgresql://zaqar:s3cret@db:5432/zaqar"),
            "postgresql://zaqar:***@db:5432/zaqar"
        );
        assert_eq!(
            redacted_uri("postgresql://zaqar@db/zaqar?password=s3cret&sslmode=disable"),
            "postgresql://zaqar@db/zaqar?password=***&sslmode=disable"
        );
        assert_eq!(
            redacted_uri("postgresql://db/zaqar"),
            "postgresql://db/zaqar"
        );
    }
}
