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
    /// `redis:/path/to.sock`, `unix:///path/to.sock`, or Sentinel:
    /// `redis://sentinel1[:port],sentinel2[:port]?master=NAME[&dbid=N]`.
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
    pub(crate) endpoint: Endpoint,
    pub(crate) response_timeout: Option<Duration>,
}

/// Where the Redis server is.
#[derive(Debug, Clone)]
pub(crate) enum Endpoint {
    /// One server, over TCP or a UNIX socket.
    Direct(ConnectionInfo),
    /// The current master of `master`, as the Sentinels tell it.
    Sentinel {
        /// The Sentinels to ask (with the Sentinels' own credentials).
        sentinels: Vec<ConnectionInfo>,
        /// The master's name in the Sentinels' configuration.
        master: String,
        /// Database and credentials for the master itself.
        node: RedisConnectionInfo,
    },
}

/// Sentinel's own port, when a Sentinel host names none (as in Zaqar).
const SENTINEL_DEFAULT_PORT: u16 = 26379;

/// The URI with its passwords (the server's, and a Sentinel's
/// `sentinel_password`) replaced by `***`, for messages and logs.
pub(crate) fn redacted(uri: &str) -> String {
    let uri = &hide_sentinel_password(uri);
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

fn hide_sentinel_password(uri: &str) -> String {
    const KEY: &str = "sentinel_password=";
    let mut shown = String::with_capacity(uri.len());
    let mut rest = uri;
    while let Some(at) = rest.find(KEY) {
        let value = &rest[at + KEY.len()..];
        let end = value.find('&').unwrap_or(value.len());
        shown.push_str(&rest[..at + KEY.len()]);
        shown.push_str("***");
        rest = &value[end..];
    }
    shown.push_str(rest);
    shown
}

fn refuse(uri: &str, why: &str) -> PluginError {
    PluginError::bad_config(format!("redis store: uri {}: {why}", redacted(uri)))
}

/// Parses the URI forms Zaqar 23 accepts (and `unix://`), refusing the rest.
pub(crate) fn parse_uri(uri: &str) -> PluginResult<Target> {
    if uri.starts_with("rediss://") {
        return Err(refuse(
            uri,
            "TLS (rediss://) is not supported: Zaqar has no TLS form either; \
             reach Redis over a trusted network, a UNIX socket or a TLS tunnel",
        ));
    }
    if let Some(rest) = uri.strip_prefix("redis+sentinel://") {
        return parse_sentinel(uri, rest);
    }
    if let Some(rest) = uri.strip_prefix("redis://") {
        if query_of(rest).any(|(k, _)| k == "master") {
            return parse_sentinel(uri, rest);
        }
        let netloc = rest.split(['/', '?']).next().unwrap_or_default();
        if netloc.contains(',') {
            return Err(several_hosts(uri));
        }
    }
    let parsed = url::Url::parse(uri).map_err(|e| refuse(uri, &format!("malformed: {e}")))?;
    let query: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if let Some((name, _)) = query
        .iter()
        .find(|(k, _)| !["dbid", "socket_timeout"].contains(&k.as_str()))
    {
        return Err(refuse(uri, &format!("unknown query parameter `{name}`")));
    }
    let mut db = dbid(uri, param("dbid"))?;
    let response_timeout = socket_timeout(uri, param("socket_timeout"))?;
    let username = (!parsed.username().is_empty()).then(|| decode(parsed.username()));
    let password = parsed.password().map(decode);
    if username.is_some() && password.is_none() {
        return Err(refuse(uri, "a username needs a password"));
    }
    let addr = match (parsed.scheme(), parsed.host_str()) {
        ("redis", Some(host)) if !host.is_empty() => {
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
        endpoint: Endpoint::Direct(ConnectionInfo { addr, redis }),
        response_timeout,
    })
}

fn several_hosts(uri: &str) -> PluginError {
    refuse(
        uri,
        "several hosts are Sentinels and need `master=NAME` (the master's name in their configuration)",
    )
}

/// The query pairs after the first `?` of `rest` (the URI after its scheme).
fn query_of(rest: &str) -> impl Iterator<Item = (String, String)> + '_ {
    let query = rest.split_once('?').map_or("", |(_, q)| q);
    url::form_urlencoded::parse(query.as_bytes()).into_owned()
}

/// Zaqar's Sentinel form, `redis://[user:password@]s1[:port],s2[:port][/]?master=NAME`
/// with optional `dbid`, `socket_timeout`, `sentinel_username` and
/// `sentinel_password` (also spelled `redis+sentinel://`). The hosts are
/// Sentinels (port 26379 when none is given); the user and password are
/// the master's. A list of hosts does not fit `url::Url`, so this part is
/// split by hand, as Zaqar does.
fn parse_sentinel(uri: &str, rest: &str) -> PluginResult<Target> {
    let (before_query, _) = rest.split_once('?').unwrap_or((rest, ""));
    let (netloc, path) = before_query.split_once('/').unwrap_or((before_query, ""));
    if !path.is_empty() {
        return Err(refuse(
            uri,
            "a Sentinel URI takes the database from `dbid`, not a path",
        ));
    }
    let query: Vec<(String, String)> = query_of(rest).collect();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if let Some((name, _)) = query.iter().find(|(k, _)| {
        ![
            "master",
            "dbid",
            "socket_timeout",
            "sentinel_username",
            "sentinel_password",
        ]
        .contains(&k.as_str())
    }) {
        return Err(refuse(uri, &format!("unknown query parameter `{name}`")));
    }
    let master = param("master")
        .filter(|m| !m.is_empty())
        .ok_or_else(|| refuse(uri, "a Sentinel URI needs `master=NAME`"))?
        .to_owned();
    let db = dbid(uri, param("dbid"))?;
    let response_timeout = socket_timeout(uri, param("socket_timeout"))?;
    let (credentials, hosts) = match netloc.rsplit_once('@') {
        Some((credentials, hosts)) => (Some(credentials), hosts),
        None => (None, netloc),
    };
    let (username, password) = match credentials {
        None => (None, None),
        Some(c) => match c.split_once(':') {
            Some((u, p)) => ((!u.is_empty()).then(|| decode(u)), Some(decode(p))),
            None => ((!c.is_empty()).then(|| decode(c)), None),
        },
    };
    if username.is_some() && password.is_none() {
        return Err(refuse(uri, "a username needs a password"));
    }
    let sentinel_redis = RedisConnectionInfo {
        db: 0,
        username: param("sentinel_username")
            .filter(|u| !u.is_empty())
            .map(str::to_owned),
        password: param("sentinel_password")
            .filter(|p| !p.is_empty())
            .map(str::to_owned),
        protocol: ProtocolVersion::RESP2,
    };
    let mut sentinels = Vec::new();
    for host in hosts.split(',') {
        let (name, port) = host_port(host)
            .ok_or_else(|| refuse(uri, &format!("invalid Sentinel host `{host}`")))?;
        sentinels.push(ConnectionInfo {
            addr: ConnectionAddr::Tcp(name, port),
            redis: sentinel_redis.clone(),
        });
    }
    Ok(Target {
        endpoint: Endpoint::Sentinel {
            sentinels,
            master,
            node: RedisConnectionInfo {
                db: db.unwrap_or(0),
                username,
                password,
                protocol: ProtocolVersion::RESP2,
            },
        },
        response_timeout,
    })
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn host_port(host: &str) -> Option<(String, u16)> {
    let (name, port) = if let Some(v6) = host.strip_prefix('[') {
        let (name, after) = v6.split_once(']')?;
        match after.strip_prefix(':') {
            Some(port) => (name, Some(port)),
            None if after.is_empty() => (name, None),
            None => return None,
        }
    } else {
        match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    if name.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => SENTINEL_DEFAULT_PORT,
    };
    Some((name.to_owned(), port))
}

fn dbid(uri: &str, value: Option<&str>) -> PluginResult<Option<i64>> {
    value
        .map(|v| v.parse().map_err(|_| refuse(uri, "dbid is not a number")))
        .transpose()
}

fn socket_timeout(uri: &str, value: Option<&str>) -> PluginResult<Option<Duration>> {
    value
        .map(|v| {
            v.parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s > 0.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| refuse(uri, "socket_timeout is not a positive number"))
        })
        .transpose()
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
        let direct = |uri: &str| match parse_uri(uri).unwrap() {
            Target {
                endpoint: Endpoint::Direct(info),
                response_timeout,
            } => (info, response_timeout),
            other => panic!("{uri}: {other:?}"),
        };
        let (info, timeout) = direct("redis://127.0.0.1:6390?dbid=3&socket_timeout=0.5");
        assert_eq!(info.addr, ConnectionAddr::Tcp("127.0.0.1".into(), 6390));
        assert_eq!(info.redis.db, 3);
        assert_eq!(timeout, Some(Duration::from_millis(500)));
        let (info, _) = direct("redis://h/5");
        assert_eq!(info.redis.db, 5);
        assert_eq!(info.addr, ConnectionAddr::Tcp("h".into(), 6379));
        let (info, _) = direct("redis:/run/redis.sock?dbid=2");
        assert_eq!(info.addr, ConnectionAddr::Unix("/run/redis.sock".into()));
        assert_eq!(info.redis.db, 2);
        let (info, _) = direct("unix:///run/redis.sock");
        assert_eq!(info.addr, ConnectionAddr::Unix("/run/redis.sock".into()));
        let (info, _) = direct("redis://u:p%40ss@h:1");
        assert_eq!(info.redis.password.as_deref(), Some("p@ss"));
    }

    #[test]
    fn sentinel_forms_are_accepted() {
        for uri in [
            "redis://u:pw@s1:26380,s2,[::1]:26381?master=mymaster&dbid=4&socket_timeout=2&sentinel_password=sp",
            "redis+sentinel://u:pw@s1:26380,s2,[::1]:26381/?master=mymaster&dbid=4&socket_timeout=2&sentinel_password=sp",
        ] {
            let target = parse_uri(uri).unwrap();
            assert_eq!(target.response_timeout, Some(Duration::from_secs(2)));
            let Endpoint::Sentinel {
                sentinels,
                master,
                node,
            } = target.endpoint
            else {
                panic!("{uri}: not Sentinel");
            };
            assert_eq!(master, "mymaster");
            assert_eq!(node.db, 4);
            assert_eq!(node.username.as_deref(), Some("u"));
            assert_eq!(node.password.as_deref(), Some("pw"));
            let addrs: Vec<_> = sentinels.iter().map(|s| s.addr.clone()).collect();
            assert_eq!(
                addrs,
                vec![
                    ConnectionAddr::Tcp("s1".into(), 26380),
                    ConnectionAddr::Tcp("s2".into(), 26379),
                    ConnectionAddr::Tcp("::1".into(), 26381),
                ]
            );
            assert_eq!(sentinels[0].redis.password.as_deref(), Some("sp"));
        }
    }

    #[test]
    fn other_forms_are_refused_with_the_password_hidden() {
        for (uri, why) in [
            ("redis+sentinel://a,b", "needs `master=NAME`"),
            ("redis://a,b", "need `master=NAME`"),
            ("redis://a:1,b:2/0", "need `master=NAME`"),
            ("redis://a:1,b:x?master=m", "invalid Sentinel host `b:x`"),
            ("redis://a/3?master=m", "not a path"),
            ("redis://a?master=m&foo=1", "unknown query parameter `foo`"),
            ("rediss://h", "TLS (rediss://) is not supported"),
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
        for uri in [
            "redis://u:secret@s1,s2?master=m",
            "redis://s1?master=m&sentinel_password=secret&dbid=1",
        ] {
            let shown = redacted(uri);
            assert!(!shown.contains("secret"), "{shown}");
            assert!(shown.contains("***"), "{shown}");
        }
    }
}
