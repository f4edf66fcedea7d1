//! The storage conformance suite against every built-in store loaded from
//! its dynamic library (`plugins/dylibs/storage-*`), found and constructed
//! by the host's own loader: every call crosses the library boundary as it
//! does for a third party's store. The postgresql stores run on a
//! throw-away database of the local PostgreSQL, the redis stores under a
//! fresh key prefix of the local Redis, as in their own crates' runs.

use std::sync::OnceLock;

use serde_json::{json, Value};
use zaqar_host::plugins::{self, Plugin, Registry};
use zaqar_tests::dylib_plugins;

/// The registry with only the stores' libraries (no built-ins), loaded
/// once per test process: a library is never unloaded.
fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let libraries = [
            dylib_plugins::library("zaqar_storage_embedded"),
            dylib_plugins::library("zaqar_storage_postgresql"),
            dylib_plugins::library("zaqar_storage_redis"),
        ];
        let registry = Registry::discover_with(&libraries, false);
        assert!(registry.refusals().is_empty(), "{:?}", registry.refusals());
        registry
    })
}

fn entry_point(namespace: &str, name: &str) -> &'static Plugin {
    let plugin = registry()
        .select(namespace, name, "test")
        .unwrap_or_else(|e| panic!("no library provides `{name}`: {e}"));
    assert!(matches!(plugin.origin, plugins::Origin::Library { .. }));
    plugin
}

async fn message_store(name: &str, options: &Value) -> plugin_api::storage::MessageStoreBox {
    let plugin = entry_point(plugin_api::NAMESPACE_MESSAGE_STORE, name);
    plugins::build_message_store(plugin, options)
        .await
        .expect("the store opens")
}

async fn management_store(
    name: &str,
    options: &Value,
) -> plugin_api::management::ManagementStoreBox {
    let plugin = entry_point(plugin_api::NAMESPACE_MANAGEMENT_STORE, name);
    plugins::build_management_store(plugin, options)
        .await
        .expect("the store opens")
}

mod embedded {
    use super::*;

    fn options(dir: &tempfile::TempDir) -> Value {
        json!({ "path": dir.path().join("data") })
    }

    zaqar_storage_conformance::message_store_suite!(async {
        let dir = tempfile::tempdir().expect("a temporary directory");
        (message_store("embedded", &options(&dir)).await, dir)
    });

    zaqar_storage_conformance::management_store_suite!(async {
        let dir = tempfile::tempdir().expect("a temporary directory");
        (management_store("embedded", &options(&dir)).await, dir)
    });
}

mod postgresql {
    use super::*;
    use zaqar_tests::postgres::TestDatabase;

    fn options(database: &TestDatabase) -> Value {
        json!({ "uri": database.uri, "pool_size": 4 })
    }

    zaqar_storage_conformance::message_store_suite!(async {
        let database = TestDatabase::create();
        (
            message_store("postgresql", &options(&database)).await,
            database,
        )
    });

    zaqar_storage_conformance::management_store_suite!(async {
        let database = TestDatabase::create();
        (
            management_store("postgresql", &options(&database)).await,
            database,
        )
    });

    // Two instances on one database, each from the library: what another
    // host sees (the change feed, leases).
    zaqar_storage_conformance::shared_message_store_suite!(async {
        let database = TestDatabase::create();
        let store = message_store("postgresql", &options(&database)).await;
        let other = message_store("postgresql", &options(&database)).await;
        (store, other, database)
    });
}

mod redis {
    use super::*;
    use zaqar_tests::RedisPrefix;

    fn options(prefix: &RedisPrefix) -> Value {
        json!({ "uri": prefix.uri, "key_prefix": prefix.prefix })
    }

    zaqar_storage_conformance::message_store_suite!(async {
        let prefix = RedisPrefix::create();
        (message_store("redis", &options(&prefix)).await, prefix)
    });

    zaqar_storage_conformance::management_store_suite!(async {
        let prefix = RedisPrefix::create();
        (management_store("redis", &options(&prefix)).await, prefix)
    });
}
