//! The workspace's storage conformance suite, run against the postgresql
//! stores, each test on its own throw-away database on the local
//! PostgreSQL.

mod support;

use storage_postgresql::{PostgresManagementStore, PostgresMessageStore};
use support::TestDatabase;

zaqar_storage_conformance::message_store_suite!(async {
    let db = TestDatabase::create().await;
    let store = PostgresMessageStore::open(&db.config())
        .await
        .expect("the store opens");
    (store, db)
});

zaqar_storage_conformance::management_store_suite!(async {
    let db = TestDatabase::create().await;
    let store = PostgresManagementStore::open(&db.config())
        .await
        .expect("the store opens");
    (store, db)
});

// Two instances on one database: what another host sees (the change feed
// through LISTEN/NOTIFY, leases).
zaqar_storage_conformance::shared_message_store_suite!(async {
    let db = TestDatabase::create().await;
    let store = PostgresMessageStore::open(&db.config())
        .await
        .expect("the store opens");
    let other = PostgresMessageStore::open(&db.config())
        .await
        .expect("a second store opens");
    (store, other, db)
});
