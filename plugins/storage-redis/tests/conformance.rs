//! The workspace's storage conformance suite, run against the redis stores
//! on the local Redis, each test under its own key prefix (deleted after).

mod support;

use storage_redis::{RedisManagementStore, RedisMessageStore};

zaqar_storage_conformance::message_store_suite!(async {
    let config = support::fresh_config();
    let store = RedisMessageStore::open(&config)
        .await
        .expect("the store opens");
    (store, support::guard(&config))
});

zaqar_storage_conformance::management_store_suite!(async {
    let config = support::fresh_config();
    let store = RedisManagementStore::open(&config)
        .await
        .expect("the store opens");
    (store, support::guard(&config))
});
