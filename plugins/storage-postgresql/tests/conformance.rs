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
