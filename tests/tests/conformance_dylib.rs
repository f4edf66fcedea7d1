//! The storage conformance suite against the embedded stores loaded from
//! their dynamic library (`plugins/dylibs/storage-embedded`), found and
//! constructed by the host's own loader: every call crosses the library
//! boundary as it does for a third party's store.

use std::sync::OnceLock;

use serde_json::json;
use zaqar_host::plugins::{self, Plugin, Registry};
use zaqar_tests::plugin_library;

/// The registry with only the embedded library (no built-ins), loaded once
/// per test process: a library is never unloaded.
fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let library = plugin_library("storage-embedded-dylib", "zaqar_storage_embedded");
        let registry = Registry::discover_with(&[library], false);
        assert!(registry.refusals().is_empty(), "{:?}", registry.refusals());
        registry
    })
}

fn entry_point(namespace: &str) -> &'static Plugin {
    let plugin = registry()
        .select(namespace, "embedded", "test")
        .expect("the library provides `embedded`");
    assert!(matches!(plugin.origin, plugins::Origin::Library { .. }));
    plugin
}

zaqar_storage_conformance::message_store_suite!(async {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let options = json!({ "path": dir.path().join("data") });
    let store =
        plugins::build_message_store(entry_point(plugin_api::NAMESPACE_MESSAGE_STORE), &options)
            .await
            .expect("the store opens");
    (store, dir)
});

zaqar_storage_conformance::management_store_suite!(async {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let options = json!({ "path": dir.path().join("data") });
    let store = plugins::build_management_store(
        entry_point(plugin_api::NAMESPACE_MANAGEMENT_STORE),
        &options,
    )
    .await
    .expect("the store opens");
    (store, dir)
});
