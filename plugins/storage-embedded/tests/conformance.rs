//! The workspace's storage conformance suite, run against the embedded
//! stores, each test on a fresh database in its own temporary directory.

use storage_embedded::{EmbeddedConfig, EmbeddedManagementStore, EmbeddedMessageStore};

fn config(dir: &tempfile::TempDir) -> EmbeddedConfig {
    EmbeddedConfig {
        path: dir.path().join("data"),
        ..EmbeddedConfig::default()
    }
}

zaqar_storage_conformance::message_store_suite!(async {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = EmbeddedMessageStore::open(&config(&dir)).expect("the store opens");
    (store, dir)
});

zaqar_storage_conformance::management_store_suite!(async {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = EmbeddedManagementStore::open(&config(&dir)).expect("the store opens");
    (store, dir)
});
