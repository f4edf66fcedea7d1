//! The version promise of plugin-api 1.x: a library built against 1.0.0
//! (a copy of its source kept in `tests/fixtures/plugin-api-1.0`) loads
//! into this host, which is built against a later 1.x, and works.

use std::time::{Duration, Instant};

use plugin_api::{
    notification::{Delivery, Notifier},
    NAMESPACE_NOTIFICATION,
};
use serde_json::{json, Value};
use zaqar_host::plugins::{self, Registry};
use zaqar_tests::{plugin_library_v1_0, TestServer};

#[test]
fn the_host_is_on_a_later_minor_than_the_fixture() {
    let host: Vec<u32> = plugin_api::PLUGIN_API_VERSION
        .split('.')
        .map(|part| part.parse().unwrap())
        .collect();
    assert_eq!(host[0], 1);
    assert!(host[1] >= 1, "the host's plugin-api is {host:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_library_built_against_1_0_loads_and_its_calls_work() {
    let library = plugin_library_v1_0();
    let registry = Registry::discover(std::slice::from_ref(&library));
    assert!(registry.refusals().is_empty(), "{:?}", registry.refusals());
    let plugin = registry
        .select(NAMESPACE_NOTIFICATION, "legacy", "test")
        .expect("the 1.0 library's entry point is listed");
    assert_eq!(plugin.api_version, "1.0.0");

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("legacy.jsonl");
    let notifier = plugins::build_notifier(plugin, &json!({ "path": out }))
        .await
        .expect("the 1.0 constructor runs");
    notifier
        .deliver(Delivery {
            subscriber: "legacy:x".into(),
            project: "p".into(),
            queue: "q".into(),
            subscription_id: "s".into(),
            options: b"{}".to_vec().into(),
            payload: br#"{"body":{"n":1}}"#.to_vec().into(),
            allow_private_addresses: true,
        })
        .await
        .expect("a call into the 1.0 vtable works");
    let line: Value = serde_json::from_str(std::fs::read_to_string(&out).unwrap().trim()).unwrap();
    assert_eq!(line["built_against"], "1.0.0");
    assert_eq!(line["payload"]["body"]["n"], 1);
}

#[test]
fn a_server_delivers_notifications_through_a_1_0_library() {
    let library = plugin_library_v1_0();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("legacy.jsonl");
    let server = TestServer::start_with(&format!(
        r#"
[plugins]
paths = [{library:?}]
[drivers.notification.legacy]
path = {out:?}
[transport]
subscriber_types = ["http", "https", "mailto", "legacy"]
"#,
        library = library.display().to_string(),
        out = out.display().to_string()
    ));
    let client = server.client();
    let created = client
        .post("/v2/queues/old-plugins/subscriptions")
        .json(&json!({"subscriber": "legacy:audit", "ttl": 3600}))
        .send();
    assert_eq!(created.status, 201, "{}", created.text());
    let posted = client
        .post("/v2/queues/old-plugins/messages")
        .json(&json!({"messages": [{"body": {"event": "one"}}, {"body": {"event": "two"}}]}))
        .send();
    assert_eq!(posted.status, 201, "{}", posted.text());

    let deadline = Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let lines: Vec<Value> = std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.len() >= 2 || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(lines.len(), 2, "{lines:?}\n{}", server.log());
    assert_eq!(lines[0]["payload"]["body"]["event"], "one");
    assert_eq!(lines[1]["payload"]["body"]["event"], "two");
    assert!(
        server.log().contains("1.0.0"),
        "the log names the library's plugin-api version"
    );
}
