//! A pool's URI picks the store plugin that serves it: the scheme names the
//! driver, and the URI (plus the pool's `options`) becomes that instance's
//! configuration table, so one host runs several instances of a driver.
//!
//! | URI | driver | instance table |
//! |---|---|---|
//! | `redis://host:port/db`, `redis:/path.sock`, `unix:///path.sock` | `redis` | `{"uri": <uri>, ...options}` |
//! | `postgresql://user@host/db`, `postgres://...` | `postgresql` | `{"uri": <uri>, ...options}` |
//! | `embedded:///absolute/dir`, `embedded:relative/dir` | `embedded` | `{"path": <dir>, ...options}` |
//! | `<name>://...` | a loaded `zaqar.storage.message` plugin called `<name>` | `{"uri": <uri>, ...options}` |

use serde_json::{Map, Value};

/// The driver a URI names and the table its instance is built with.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The message-store plugin's name.
    pub driver: String,
    /// The instance's configuration table.
    pub config: Value,
}

/// The scheme of `uri` (before the first `:`), lowercased; `None` when
/// there is none or it is not a URI scheme.
pub fn scheme(uri: &str) -> Option<String> {
    let (scheme, _) = uri.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then(|| scheme.to_ascii_lowercase())
}

/// The driver name a scheme asks for (aliases folded).
pub fn driver_for_scheme(scheme: &str) -> &str {
    match scheme {
        "postgres" => "postgresql",
        "unix" => "redis",
        other => other,
    }
}

/// Resolves a pool's URI and options into a driver and its table; `Err`
/// says why the URI cannot name a store.
pub fn resolve(uri: &str, options: &Map<String, Value>) -> Result<Target, String> {
    let scheme = scheme(uri).ok_or_else(|| {
        format!("The pool URI `{uri}` has no scheme; it must name a store, e.g. redis://host:6379 or embedded:///var/lib/zaqar/pool1")
    })?;
    let driver = driver_for_scheme(&scheme).to_string();
    let mut config = options.clone();
    if driver == "embedded" {
        let rest = &uri[scheme.len() + 1..];
        // `embedded:///abs` and `embedded://localhost/abs` are absolute,
        // `embedded:rel` is relative to the server's working directory.
        let path = match rest.strip_prefix("//") {
            Some(after) => match after.find('/') {
                Some(0) => after.to_string(),
                Some(slash) if &after[..slash] == "localhost" => after[slash..].to_string(),
                _ => {
                    return Err(format!(
                        "The pool URI `{uri}` names a host; an embedded store is a directory of this host: embedded:///absolute/dir"
                    ))
                }
            },
            None => rest.to_string(),
        };
        if path.is_empty() || path == "/" {
            return Err(format!("The pool URI `{uri}` names no directory"));
        }
        config.insert("path".into(), Value::String(path));
    } else {
        config.insert("uri".into(), Value::String(uri.to_string()));
    }
    Ok(Target {
        driver,
        config: Value::Object(config),
    })
}

/// The URI with any password replaced by `***`, for messages and logs.
pub fn redacted(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{}", &rest[authority_end..]),
            None => uri.to_string(),
        },
        None => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(uri: &str) -> Result<(String, Value), String> {
        resolve(uri, &Map::new()).map(|t| (t.driver, t.config))
    }

    #[test]
    fn embedded_uris_name_a_directory() {
        assert_eq!(
            config("embedded:///var/lib/p1").unwrap(),
            (
                "embedded".into(),
                serde_json::json!({"path": "/var/lib/p1"})
            )
        );
        assert_eq!(
            config("embedded:data/p2").unwrap().1,
            serde_json::json!({"path": "data/p2"})
        );
        assert_eq!(
            config("embedded://localhost/srv/p").unwrap().1,
            serde_json::json!({"path": "/srv/p"})
        );
        assert!(config("embedded://otherhost/srv/p").is_err());
        assert!(config("embedded:///").is_err());
    }

    #[test]
    fn network_uris_pass_through_with_aliases_folded() {
        assert_eq!(
            config("redis://127.0.0.1:6379/2").unwrap(),
            (
                "redis".into(),
                serde_json::json!({"uri": "redis://127.0.0.1:6379/2"})
            )
        );
        assert_eq!(config("postgres://u@h/db").unwrap().0, "postgresql");
        assert_eq!(config("unix:///tmp/r.sock").unwrap().0, "redis");
        assert!(config("no scheme here").is_err());
    }

    #[test]
    fn options_join_the_table_and_passwords_are_redacted() {
        let mut options = Map::new();
        options.insert("key_prefix".into(), Value::String("p1:".into()));
        let target = resolve("redis://h", &options).unwrap();
        assert_eq!(target.config["key_prefix"], "p1:");
        assert_eq!(
            redacted("postgresql://u:secret@h:5432/db"),
            "postgresql://u:***@h:5432/db"
        );
        assert_eq!(redacted("redis://h:1"), "redis://h:1");
    }
}
