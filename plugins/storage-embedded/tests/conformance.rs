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

// A second store opened on the same directory in this process shares the
// open database (another process is refused the directory): what one
// writes, the other's change feed announces, and leases are one set.
zaqar_storage_conformance::shared_message_store_suite!(async {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = EmbeddedMessageStore::open(&config(&dir)).expect("the store opens");
    let other = EmbeddedMessageStore::open(&config(&dir)).expect("a second store opens");
    (store, other, dir)
});
