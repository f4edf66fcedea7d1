//! A throw-away key prefix on the local Redis for one test server of the
//! `redis` store (`ZAQAR_TEST_REDIS_URI`, default `redis://127.0.0.1:6379`):
//! its keys are deleted when the value is dropped.

/// A fresh key prefix, emptied on drop.
#[derive(Debug)]
pub struct RedisPrefix {
    /// The Redis the prefix lives on.
    pub uri: String,
    /// The prefix (`zaqar-e2e-<uuid>:`).
    pub prefix: String,
}

impl RedisPrefix {
    /// A new prefix on the test Redis.
    pub fn create() -> Self {
        Self {
            uri: std::env::var("ZAQAR_TEST_REDIS_URI")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned()),
            prefix: format!("zaqar-e2e-{}:", uuid::Uuid::new_v4().simple()),
        }
    }

    /// The `[drivers.*.redis]` settings (TOML lines) for a server on it.
    pub fn settings(&self) -> String {
        format!(
            "uri = {}\nkey_prefix = {}",
            toml::Value::String(self.uri.clone()),
            toml::Value::String(self.prefix.clone())
        )
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(self.uri.as_str()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection() else {
            return;
        };
        let pattern = format!("{}*", self.prefix);
        let mut cursor = 0u64;
        loop {
            let Ok((next, keys)): redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query(&mut conn)
            else {
                return;
            };
            if !keys.is_empty() {
                let _: redis::RedisResult<()> = redis::cmd("DEL").arg(&keys).query(&mut conn);
            }
            if next == 0 {
                return;
            }
            cursor = next;
        }
    }
}
