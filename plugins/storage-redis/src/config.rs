//! The plugin's configuration table, `[drivers.message_store.redis]` (and
//! `[drivers.management_store.redis]`), and the URI forms Zaqar accepts.

use std::time::Duration;

use plugin_api::{PluginError, PluginResult};
use redis::{ConnectionAddr, ConnectionInfo, ProtocolVersion, RedisConnectionInfo};
use serde::Deserialize;

/// Settings of the redis store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// Where Redis is: `redis://[user:password@]host[:port][/db][?dbid=N]`,
    /// `redis:/path/to.sock` or `unix:///path/to.sock`.
    #[serde(default = "default_uri")]
    pub uri: String,
    /// Prepended to every key. Must stay empty when Zaqar nodes share the
    /// database (Zaqar uses no prefix); tests use it to stay apart.
    #[serde(default)]
    pub key_prefix: String,
    /// How long one connection attempt may take.
    #[serde(default = "default_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// How long Redis may take to answer one command before the call fails
    /// with `UNAVAILABLE` (Zaqar's `socket_timeout` query parameter, when
    /// given in the URI, takes precedence).
    #[serde(default = "default_timeout_ms")]
    pub response_timeout_ms: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            uri: default_uri(),
            key_prefix: String::new(),
            connect_timeout_ms: default_timeout_ms(),
            response_timeout_ms: default_timeout_ms(),
        }
    }
}

fn default_uri() -> String {
    "redis://127.0.0.1:6379".to_owned()
}

fn default_timeout_ms() -> u64 {
    5000
}

/// A parsed URI: where to connect, and the response timeout it asks for.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) info: ConnectionInfo,
    pub(crate) response_timeout: Option<Duration>,
}

/// The URI with its password replaced by `***`, for messages and logs.
pub(crate) fn redacted(uri: &str) -> String {
    match url::Url::parse(uri) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => uri.to_owned(),
        // Unparseable: hide everything between "://" and the last '@'.
        Err(_) => match (uri.find("://"), uri.rfind('@')) {
            (Some(start), Some(at)) if at > start => {
                format!("{}***{}", &uri[..start + 3], &uri[at..])
            }
            _ => uri.to_owned(),
        },
    }
}

fn refuse(uri: &str, why: &str) -> PluginError {
    PluginError::bad_config(format!("redis store: uri {}: {why}", redacted(uri)))
}

/// Parses the URI forms Zaqar 23 accepts (and `unix://`), refusing the rest.
pub(crate) fn parse_uri(uri: &str) -> PluginResult<Target> {
    if uri.starts_with("rediss://") {
        return Err(refuse(uri, "TLS (rediss://) is not supported"));
    }
    if uri.starts_with("redis+sentinel://") || uri.contains("master=") {
        return Err(refuse(uri, "Redis Sentinel is not supported"));
    }
    let parsed = url::Url::parse(uri).map_err(|e| refuse(uri, &format!("malformed: {e}")))?;
    let query: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if param("master").is_some() {
        return Err(refuse(uri, "Redis Sentinel (`master=`) is not supported"));
    }
    if let Some((name, _)) = query
        .iter()
        .find(|(k, _)| !["dbid", "socket_timeout"].contains(&k.as_str()))
    {
        return Err(refuse(uri, &format!("unknown query parameter `{name}`")));
    }
    let mut db: Option<i64> = match param("dbid") {
        Some(v) => Some(v.parse().map_err(|_| refuse(uri, "dbid is not a number"))?),
        None => None,
    };
    let response_timeout = match param("socket_timeout") {
        Some(v) => {
            let secs: f64 = v
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s > 0.0)
                .ok_or_else(|| refuse(uri, "socket_timeout is not a positive number"))?;
            Some(Duration::from_secs_f64(secs))
        }
        None => None,
    };
    let username = (!parsed.username().is_empty()).then(|| decode(parsed.username()));
    let password = parsed.password().map(decode);
    if username.is_some() && password.is_none() {
        return Err(refuse(uri, "a username needs a password"));
    }
    let addr = match (parsed.scheme(), parsed.host_str()) {
        ("redis", Some(host)) if !host.is_empty() => {
            if host.contains(',') {
                return Err(refuse(uri, "several hosts (Sentinel) are not supported"));
            }
            let path = parsed.path().trim_matches('/');
            if !path.is_empty() {
                let from_path: i64 = path
                    .parse()
                    .map_err(|_| refuse(uri, "the path must be a database number"))?;
                if db.is_some_and(|d| d != from_path) {
                    return Err(refuse(uri, "the path and dbid name different databases"));
                }
                db = Some(from_path);
            }
            let host = host.trim_start_matches('[').trim_end_matches(']');
            ConnectionAddr::Tcp(host.to_owned(), parsed.port().unwrap_or(6379))
        }
        ("redis", _) | ("unix", _) => {
            if parsed.path().is_empty() || parsed.path() == "/" {
                return Err(refuse(uri, "missing host name or socket path"));
            }
            ConnectionAddr::Unix(parsed.path().into())
        }
        (scheme, _) => return Err(refuse(uri, &format!("unsupported scheme `{scheme}`"))),
    };
    let redis = RedisConnectionInfo {
        db: db.unwrap_or(0),
        username,
        password,
        protocol: ProtocolVersion::RESP2,
    };
    Ok(Target {
        info: ConnectionInfo { addr, redis },
        response_timeout,
    })
}

fn decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zaqar_forms_are_accepted() {
        let t = parse_uri("redis://127.0.0.1:6390?dbid=3&socket_timeout=0.5").unwrap();
        assert_eq!(t.info.addr, ConnectionAddr::Tcp("127.0.0.1".into(), 6390));
        assert_eq!(t.info.redis.db, 3);
        assert_eq!(t.response_timeout, Some(Duration::from_millis(500)));
        let t = parse_uri("redis://h/5").unwrap();
        assert_eq!(t.info.redis.db, 5);
        assert_eq!(t.info.addr, ConnectionAddr::Tcp("h".into(), 6379));
        let t = parse_uri("redis:/run/redis.sock?dbid=2").unwrap();
        assert_eq!(t.info.addr, ConnectionAddr::Unix("/run/redis.sock".into()));
        assert_eq!(t.info.redis.db, 2);
        let t = parse_uri("unix:///run/redis.sock").unwrap();
        assert_eq!(t.info.addr, ConnectionAddr::Unix("/run/redis.sock".into()));
        let t = parse_uri("redis://u:p%40ss@h:1").unwrap();
        assert_eq!(t.info.redis.password.as_deref(), Some("p@ss"));
    }

    #[test]
    fn other_forms_are_refused_with_the_password_hidden() {
        for (uri, why) in [
            ("redis://a,b?master=m", "Sentinel"),
            ("redis+sentinel://a", "Sentinel"),
            ("rediss://h", "TLS"),
            ("http://h", "unsupported scheme"),
            ("redis://h/1?dbid=2", "different databases"),
            ("redis://u@h", "needs a password"),
            ("redis://h?foo=1", "unknown query parameter"),
        ] {
            let e = parse_uri(uri).unwrap_err();
            assert!(e.message.contains(why), "{uri}: {}", e.message);
        }
        let e = parse_uri("redis://u:secret@h?foo=1").unwrap_err();
        assert!(!e.message.contains("secret"), "{}", e.message);
        assert_eq!(redacted("redis://u:secret@h:1/0"), "redis://u:***@h:1/0");
    }
}
