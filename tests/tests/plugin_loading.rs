//! The plugin boundary through the real loader: libraries built from the
//! workspace, loaded from disk, refused when incompatible, and panics that
//! stay errors.

use std::path::PathBuf;

use plugin_api::{
    notification::{Delivery, Notifier},
    ErrorCode, NAMESPACE_NOTIFICATION, NAMESPACE_TRANSPORT,
};
use serde_json::json;
use zaqar_host::plugins::{self, Origin, Registry};
use zaqar_tests::{example_library, plugin_library, TestServer, WsClient};

fn notifier_file_library() -> PathBuf {
    example_library("notifier-file", "zaqar_notifier_file")
}

fn incompatible_library() -> PathBuf {
    plugin_library(
        "zaqar-fixture-incompatible-plugin",
        "zaqar_fixture_incompatible_plugin",
    )
}

fn fixture_plugins_library() -> PathBuf {
    plugin_library("zaqar-fixture-plugins", "zaqar_fixture_plugins")
}

fn delivery(subscriber: &str, payload: serde_json::Value) -> Delivery {
    zaqar_test_support::delivery(subscriber)
        .payload(payload)
        .allow_private_addresses(true)
        .build()
}

#[tokio::test(flavor = "multi_thread")]
async fn dylib_loaded_from_disk_delivers_through_its_entry_point() {
    let library = notifier_file_library();
    let registry = Registry::discover(std::slice::from_ref(&library));
    assert!(registry.refusals().is_empty(), "{:?}", registry.refusals());
    let plugin = registry
        .select(NAMESPACE_NOTIFICATION, "file", "test")
        .expect("the example library provides the `file` notifier");
    assert_eq!(plugin.origin, Origin::Library { path: library });
    assert_eq!(plugin.api_version, plugin_api::PLUGIN_API_VERSION);

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("deliveries.jsonl");
    let notifier = plugins::build_notifier(plugin, &json!({ "path": out }))
        .await
        .expect("constructor runs in the library");
    notifier
        .deliver(delivery(
            "file:audit",
            json!({"body": {"n": 1}, "queue_name": "q1"}),
        ))
        .await
        .expect("delivery succeeds");
    notifier
        .deliver(delivery(
            "file:audit",
            json!({"body": {"n": 2}, "queue_name": "q1"}),
        ))
        .await
        .expect("delivery succeeds");

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["subscriber"], "file:audit");
    assert_eq!(lines[1]["payload"]["body"]["n"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn dylib_constructor_reports_bad_configuration_as_an_error() {
    let registry = Registry::discover(&[notifier_file_library()]);
    let plugin = registry
        .select(NAMESPACE_NOTIFICATION, "file", "test")
        .unwrap();
    let error = plugins::build_notifier(plugin, &json!({ "pth": "/tmp/x" }))
        .await
        .err()
        .expect("unknown key is refused");
    assert_eq!(error.code, ErrorCode::BAD_CONFIG);
    assert!(error.message.contains("unknown field `pth`"), "{error}");
}

#[test]
fn incompatible_dylib_is_refused_with_a_short_reason() {
    let library = incompatible_library();
    let registry = Registry::discover(std::slice::from_ref(&library));
    let refusal = registry.refusals().first().expect("refused");
    assert_eq!(refusal.path, library);
    assert!(
        refusal
            .reason
            .starts_with("built against an incompatible plugin-api version"),
        "{}",
        refusal.reason
    );
    assert!(refusal.reason.len() < 400, "short: {}", refusal.reason);
    // The built-ins are still there.
    assert!(registry.select(NAMESPACE_TRANSPORT, "wsgi", "test").is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn panic_in_a_dylib_constructor_is_an_error_and_the_host_goes_on() {
    let registry = Registry::discover(&[fixture_plugins_library()]);
    let plugin = registry
        .select(NAMESPACE_TRANSPORT, "panic-in-constructor", "test")
        .unwrap();
    let error = plugins::build_transport(plugin, &json!({}))
        .await
        .err()
        .expect("the constructor panicked");
    assert_eq!(error.code, ErrorCode::PANICKED);
    assert!(
        error.message.contains("refuses to be constructed"),
        "{error}"
    );

    // The same process keeps calling into the same library.
    let noop = registry
        .select(NAMESPACE_NOTIFICATION, "noop", "test")
        .unwrap();
    let notifier = plugins::build_notifier(noop, &json!({})).await.unwrap();
    notifier
        .deliver(delivery("noop:x", json!({})))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn panic_in_a_dylib_method_is_an_error_and_the_plugin_stays_usable() {
    let registry = Registry::discover(&[fixture_plugins_library()]);
    let plugin = registry
        .select(NAMESPACE_NOTIFICATION, "panic-in-deliver", "test")
        .unwrap();
    let notifier = plugins::build_notifier(plugin, &json!({})).await.unwrap();
    for _ in 0..3 {
        let error = notifier
            .deliver(delivery("x:y", json!({})))
            .await
            .expect_err("deliver panicked");
        assert_eq!(error.code, ErrorCode::PANICKED);
        assert!(error.message.contains("asked to deliver to x:y"), "{error}");
    }
}

#[test]
fn panicking_store_method_answers_500_while_the_server_keeps_serving() {
    let library = fixture_plugins_library();
    let server = TestServer::start_with(&format!(
        r#"
[plugins]
paths = [{library:?}]
[drivers.message_store]
name = "panicky"
# Its own copy of the embedded engine must not share the management store's
# files: redb locks a database per process copy of the engine.
[drivers.message_store.panicky]
path = "panicky-data"
[drivers]
transports = ["wsgi", "websocket"]
[drivers.transport.websocket]
port = 0
"#,
        library = library.display().to_string()
    ));
    let client = server.client();
    let messages = json!({"messages": [{"body": "hi"}]});

    let response = client
        .post("/v2/queues/panic-room/messages")
        .json(&messages)
        .send();
    assert_eq!(response.status, 500, "{}", response.text());
    assert!(response.json()["title"].is_string());

    let response = client
        .post("/v2/queues/calm/messages")
        .json(&messages)
        .send();
    assert_eq!(response.status, 201, "{}", response.text());
    let response = client
        .post("/v2/queues/panic-again/messages")
        .json(&messages)
        .send();
    assert_eq!(response.status, 500);
    let response = client.get("/v2/queues/calm/messages?echo=true").send();
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["messages"][0]["body"], "hi");

    // Over WebSocket the frame whose serving panicked gets a 500 envelope
    // and the socket carries on serving the frames after it.
    let mut socket = WsClient::connect(server.address("websocket"));
    let status = |reply: &serde_json::Value| reply["headers"]["status"].as_u64();
    let reply = socket.request(
        "message_post",
        json!({"queue_name": "panic-room", "messages": [{"body": "hi", "ttl": 60}]}),
    );
    assert_eq!(status(&reply), Some(500), "{reply}");
    assert_eq!(reply["request"]["action"], "message_post", "{reply}");
    let reply = socket.request(
        "message_post",
        json!({"queue_name": "calm", "messages": [{"body": "again", "ttl": 60}]}),
    );
    assert_eq!(status(&reply), Some(201), "{reply}");
}

#[test]
fn plugins_command_lists_builtins_libraries_and_refusals() {
    let good = notifier_file_library();
    let bad = incompatible_library();
    let exited = TestServer::run_to_exit(
        &format!(
            "[plugins]\npaths = [{:?}, {:?}]\n",
            good.display().to_string(),
            bad.display().to_string()
        ),
        &["plugins"],
        &[],
    );
    assert!(exited.status.success(), "{exited:?}");
    let out = &exited.stdout;
    let row = |namespace: &str, name: &str| {
        out.lines()
            .find(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.first() == Some(&namespace) && cols.get(1) == Some(&name)
            })
            .unwrap_or_else(|| panic!("no row for {namespace} {name} in:\n{out}"))
            .to_string()
    };
    assert!(row("zaqar.transport", "wsgi").contains("built-in (transport-wsgi)"));
    assert!(row("zaqar.storage.message", "embedded").contains("built-in"));
    assert!(row("zaqar.storage.management", "embedded").contains("built-in"));
    let file_row = row("zaqar.notification", "file");
    assert!(
        file_row.contains(plugin_api::PLUGIN_API_VERSION),
        "{file_row}"
    );
    assert!(file_row.contains(&good.display().to_string()), "{file_row}");
    let refused = out
        .split("Refused libraries:")
        .nth(1)
        .expect("refusals listed");
    assert!(refused.contains(&bad.display().to_string()), "{out}");
    assert!(refused.contains("incompatible plugin-api version"), "{out}");
}

#[test]
fn refused_library_that_nothing_needs_only_warns() {
    let bad = incompatible_library();
    let server = TestServer::start_with(&format!(
        "[plugins]\npaths = [{:?}]\n",
        bad.display().to_string()
    ));
    assert_eq!(server.client().get("/v2/ping").send().status, 204);
    let log = server.log();
    assert!(log.contains("plugin library refused"), "{log}");
    assert!(log.contains("incompatible plugin-api version"), "{log}");
}

#[test]
fn name_provided_twice_fails_start_up_naming_both_sources() {
    let library = notifier_file_library();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join(library.file_name().unwrap());
    std::fs::copy(&library, &copy).unwrap();
    let exited = TestServer::run_to_exit(
        &format!(
            "[plugins]\npaths = [{:?}, {:?}]\n",
            library.display().to_string(),
            copy.display().to_string()
        ),
        &[],
        &[],
    );
    assert_eq!(exited.status.code(), Some(1), "{exited:?}");
    assert!(
        exited.stderr.contains("provided twice"),
        "{}",
        exited.stderr
    );
    assert!(
        exited.stderr.contains(&library.display().to_string()),
        "{}",
        exited.stderr
    );
    assert!(
        exited.stderr.contains(&copy.display().to_string()),
        "{}",
        exited.stderr
    );
}

#[test]
fn transport_whose_constructor_panics_fails_start_up_cleanly() {
    let library = fixture_plugins_library();
    let exited = TestServer::run_to_exit(
        &format!(
            "[plugins]\npaths = [{:?}]\n[drivers]\ntransports = [\"wsgi\", \"panic-in-constructor\"]\n",
            library.display().to_string()
        ),
        &[],
        &[],
    );
    // An orderly exit with a message, not an abort by signal.
    assert_eq!(exited.status.code(), Some(1), "{exited:?}");
    assert!(
        exited.stderr.contains("panic-in-constructor"),
        "{}",
        exited.stderr
    );
    assert!(
        exited.stderr.contains("refuses to be constructed"),
        "{}",
        exited.stderr
    );
}
