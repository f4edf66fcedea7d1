//! `ZAQAR_TEST_PLUGINS=dylib`: every spawned test server runs with
//! `[plugins] builtins = false` and loads every transport, store and sink
//! from the `.so` files of `plugins/dylibs/`, so the suites that run through
//! [`crate::TestServer`] prove each built-in across the library boundary.

use std::path::PathBuf;

use crate::build::plugin_library;

/// The environment variable that selects where plugins come from.
pub const SWITCH: &str = "ZAQAR_TEST_PLUGINS";

/// The built-in plugins as libraries: (package, library name).
const LIBRARIES: [(&str, &str); 5] = [
    ("transport-wsgi-dylib", "zaqar_transport_wsgi"),
    ("transport-websocket-dylib", "zaqar_transport_websocket"),
    ("storage-embedded-dylib", "zaqar_storage_embedded"),
    ("notifier-webhook-dylib", "zaqar_notifier_webhook"),
    ("notifier-mailto-dylib", "zaqar_notifier_mailto"),
];

/// True when test servers load every plugin from a library.
pub fn enabled() -> bool {
    match std::env::var(SWITCH).as_deref() {
        Ok("dylib") => true,
        Ok("builtin") | Ok("") | Err(_) => false,
        Ok(other) => panic!("{SWITCH}={other}: expected `dylib` or `builtin`"),
    }
}

/// Every built-in plugin's library, built on first use.
pub fn builtin_libraries() -> Vec<PathBuf> {
    LIBRARIES
        .iter()
        .map(|(package, lib)| plugin_library(package, lib))
        .collect()
}

/// In dylib mode, turns the built-ins off in `config` and appends their
/// libraries to whatever `[plugins] paths` the test configured.
pub fn apply(config: &mut toml::Table) {
    if !enabled() {
        return;
    }
    let plugins = config
        .entry("plugins")
        .or_insert_with(|| toml::Value::Table(Default::default()))
        .as_table_mut()
        .expect("[plugins] is a table");
    plugins.insert("builtins".into(), toml::Value::Boolean(false));
    let paths = plugins
        .entry("paths")
        .or_insert_with(|| toml::Value::Array(Vec::new()))
        .as_array_mut()
        .expect("[plugins] paths is an array");
    for library in builtin_libraries() {
        paths.push(toml::Value::String(library.display().to_string()));
    }
}
