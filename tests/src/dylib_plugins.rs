//! `ZAQAR_TEST_PLUGINS=dylib`: every spawned test server runs with
//! `[plugins] builtins = false` and loads every plugin its configuration
//! selects from the `.so` files of `plugins/dylibs/` (the transports and
//! sinks, the store it runs on, its auth strategy), so the suites that run
//! through [`crate::TestServer`] prove each built-in across the library
//! boundary. [`TestServer::start_from_libraries`](crate::TestServer) does
//! the same for one server whatever the switch says.

use std::path::PathBuf;

use crate::build::plugin_libraries;

/// The environment variable that selects where plugins come from.
pub const SWITCH: &str = "ZAQAR_TEST_PLUGINS";

/// A built-in plugin as a library: (package, library name).
type Library = (&'static str, &'static str);

/// What every server may use: both transports and both sinks.
const ALWAYS: [Library; 4] = [
    ("transport-wsgi-dylib", "zaqar_transport_wsgi"),
    ("transport-websocket-dylib", "zaqar_transport_websocket"),
    ("notifier-webhook-dylib", "zaqar_notifier_webhook"),
    ("notifier-mailto-dylib", "zaqar_notifier_mailto"),
];

/// Every built-in plugin's library. They are always built together
/// ([`plugin_libraries`]), whichever a test needs, so every test binary
/// and every pass of scripts/test.sh builds them once.
const ALL: [Library; 9] = [
    ALWAYS[0],
    ALWAYS[1],
    ALWAYS[2],
    ALWAYS[3],
    ("storage-embedded-dylib", "zaqar_storage_embedded"),
    ("storage-postgresql-dylib", "zaqar_storage_postgresql"),
    ("storage-redis-dylib", "zaqar_storage_redis"),
    ("auth-static-dylib", "zaqar_auth_static"),
    ("auth-keystone-dylib", "zaqar_auth_keystone"),
];

/// The path of a built-in's library (`zaqar_storage_redis`), built with
/// all the others on first use.
pub fn library(lib_name: &str) -> PathBuf {
    let index = ALL
        .iter()
        .position(|(_, lib)| *lib == lib_name)
        .unwrap_or_else(|| panic!("{lib_name} is not a built-in plugin's library"));
    plugin_libraries(&ALL).swap_remove(index)
}

/// The library of the store `name` (`[drivers] message_store` or
/// `management_store`), if a built-in has that name.
fn store_library(name: &str) -> Option<Library> {
    match name {
        "embedded" => Some(("storage-embedded-dylib", "zaqar_storage_embedded")),
        "postgresql" => Some(("storage-postgresql-dylib", "zaqar_storage_postgresql")),
        "redis" => Some(("storage-redis-dylib", "zaqar_storage_redis")),
        _ => None,
    }
}

/// The library of the auth strategy `name` (`[server] auth_strategy`), if a
/// built-in has that name.
fn auth_library(name: &str) -> Option<Library> {
    match name {
        "static" => Some(("auth-static-dylib", "zaqar_auth_static")),
        "keystone" => Some(("auth-keystone-dylib", "zaqar_auth_keystone")),
        _ => None,
    }
}

/// True when test servers load every plugin from a library.
pub fn enabled() -> bool {
    match std::env::var(SWITCH).as_deref() {
        Ok("dylib") => true,
        Ok("builtin") | Ok("") | Err(_) => false,
        Ok(other) => panic!("{SWITCH}={other}: expected `dylib` or `builtin`"),
    }
}

/// The libraries of the built-ins `config` selects (both transports and
/// sinks always; its stores and auth strategy), each built on first use.
pub fn libraries_for(config: &toml::Table) -> Vec<PathBuf> {
    let text = |path: &[&str]| -> Option<String> {
        let mut value = config.get(path[0])?;
        for key in &path[1..] {
            value = value.get(key)?;
        }
        value.as_str().map(str::to_owned)
    };
    let mut libraries: Vec<Library> = ALWAYS.to_vec();
    for role in ["message_store", "management_store"] {
        // `[drivers.<role>] name = "x"`, or `[drivers] <role> = "x"`.
        let name = text(&["drivers", role, "name"])
            .or_else(|| text(&["drivers", role]))
            .unwrap_or_else(|| "embedded".into());
        libraries.extend(store_library(&name));
    }
    if let Some(strategy) = text(&["server", "auth_strategy"]) {
        libraries.extend(auth_library(&strategy));
    }
    libraries.dedup();
    libraries.iter().map(|(_, lib)| library(lib)).collect()
}

/// In dylib mode, see [`load_from_libraries`].
pub fn apply(config: &mut toml::Table) {
    if enabled() {
        load_from_libraries(config);
    }
}

/// Turns the built-ins off in `config` and appends the libraries it needs
/// ([`libraries_for`]) to whatever `[plugins] paths` the test configured.
pub fn load_from_libraries(config: &mut toml::Table) {
    let libraries = libraries_for(config);
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
    for library in libraries {
        let library = toml::Value::String(library.display().to_string());
        if !paths.contains(&library) {
            paths.push(library);
        }
    }
}
