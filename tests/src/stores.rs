//! Which store the spawned servers use: `ZAQAR_TEST_STORE` = `embedded`
//! (the default), `postgresql` or `redis`. Each server gets a fresh, empty store of
//! that kind, removed when the server is dropped. A new store plugs in
//! here with one line in [`for_server`] and one function.

use std::{any::Any, path::Path};

/// The store of one test server: its configuration and whatever must live
/// as long as the server (a throw-away database, dropped with it).
pub(crate) struct TestStore {
    /// TOML merged into the base configuration: the `message_store` and
    /// `management_store` driver tables.
    pub(crate) config: String,
    pub(crate) _guard: Box<dyn Any + Send + Sync>,
}

/// The name of the store the spawned servers use (`ZAQAR_TEST_STORE`,
/// `embedded` when unset), for the few tests that check something only one
/// store does.
pub fn selected() -> String {
    match std::env::var("ZAQAR_TEST_STORE") {
        Ok(name) if !name.is_empty() => name,
        _ => "embedded".to_owned(),
    }
}

/// The store named by `ZAQAR_TEST_STORE` for a server whose own directory
/// is `data_dir`.
pub(crate) fn for_server(data_dir: &Path) -> TestStore {
    named(&selected(), data_dir)
}

/// A fresh store of kind `name` (`embedded`, `postgresql`, `redis`) for a
/// server whose own directory is `data_dir`.
pub(crate) fn named(name: &str, data_dir: &Path) -> TestStore {
    match name {
        "embedded" => embedded(data_dir),
        "postgresql" => postgresql(),
        "redis" => redis(),
        other => panic!("ZAQAR_TEST_STORE={other:?}: expected embedded, postgresql or redis"),
    }
}

/// A store several test servers share: the PostgreSQL database at `uri`
/// (the caller keeps the database alive), for cluster tests.
pub(crate) fn shared_postgresql(uri: &str) -> TestStore {
    let uri = toml::Value::String(uri.to_string());
    TestStore {
        config: drivers("postgresql", &format!("uri = {uri}\npool_size = 8")),
        _guard: Box::new(()),
    }
}

/// A store several test servers share: the key prefix `prefix` on its
/// Redis (the caller keeps the prefix alive and removes its keys).
pub(crate) fn shared_redis(prefix: &crate::RedisPrefix) -> TestStore {
    TestStore {
        config: drivers("redis", &prefix.settings()),
        _guard: Box::new(()),
    }
}

/// Both drivers tables naming `name`, with `settings` (TOML lines) for it.
fn drivers(name: &str, settings: &str) -> String {
    format!(
        "[drivers.message_store]\nname = \"{name}\"\n[drivers.message_store.{name}]\n{settings}\n\
         [drivers.management_store]\nname = \"{name}\"\n[drivers.management_store.{name}]\n{settings}\n"
    )
}

fn embedded(data_dir: &Path) -> TestStore {
    let path = toml::Value::String(data_dir.display().to_string());
    TestStore {
        config: drivers("embedded", &format!("path = {path}")),
        _guard: Box::new(()),
    }
}

/// A database on the local PostgreSQL (`ZAQAR_TEST_PG_ADMIN_URI`, default
/// `postgresql://postgres@127.0.0.1:5432/postgres`), dropped with the server.
fn postgresql() -> TestStore {
    let database = crate::postgres::TestDatabase::create();
    let uri = toml::Value::String(database.uri.clone());
    TestStore {
        config: drivers("postgresql", &format!("uri = {uri}\npool_size = 8")),
        _guard: Box::new(database),
    }
}

/// A fresh key prefix on the local Redis (`ZAQAR_TEST_REDIS_URI`, default
/// `redis://127.0.0.1:6379`), its keys deleted with the server.
fn redis() -> TestStore {
    let prefix = crate::RedisPrefix::create();
    TestStore {
        config: drivers("redis", &prefix.settings()),
        _guard: Box::new(prefix),
    }
}
