//! Shared by the redis store's tests: the Redis they use, and a key prefix
//! per test that is removed when the test ends.

#![allow(dead_code)] // each test binary uses a different part of this module

use plugin_api::{
    storage::{MessageListQuery, NewMessage},
    types::{ROption, RVec},
};
use storage_redis::RedisConfig;

/// The Redis the tests use: `ZAQAR_TEST_REDIS_URI`, else the local one.
pub fn redis_uri() -> String {
    std::env::var("ZAQAR_TEST_REDIS_URI").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A configuration on the test Redis under a fresh random prefix.
pub fn fresh_config() -> RedisConfig {
    RedisConfig {
        uri: redis_uri(),
        key_prefix: format!("zaqar-test-{}:", uuid::Uuid::new_v4().simple()),
        ..RedisConfig::default()
    }
}

/// Deletes every key under the prefix when dropped.
pub struct PrefixGuard {
    pub uri: String,
    pub prefix: String,
}

impl Drop for PrefixGuard {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(self.uri.as_str()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection() else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query(&mut conn)
            .unwrap_or_default();
        for chunk in keys.chunks(500) {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(chunk).query(&mut conn);
        }
    }
}

pub fn guard(config: &RedisConfig) -> PrefixGuard {
    PrefixGuard {
        uri: config.uri.clone(),
        prefix: config.key_prefix.clone(),
    }
}

/// A TCP port nothing listens on now, for a private `redis-server`.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port()
}

/// The current time as the store expects it, in milliseconds.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

/// One message with `body`, five minutes to live.
pub fn one(body: &str) -> RVec<NewMessage> {
    vec![NewMessage {
        ttl: 300,
        delay: 0,
        body: body.as_bytes().to_vec().into(),
    }]
    .into()
}

/// A listing of every message of a queue, claimed and delayed included.
pub fn everything() -> MessageListQuery {
    MessageListQuery {
        after_seq: ROption::RNone,
        limit: 100,
        exclude_client: ROption::RNone,
        include_claimed: true,
        include_delayed: true,
    }
}
