//! The `postgresql` store under the real server: start-up against an
//! unreachable database, and connections killed while it serves.

use serde_json::{json, Value};
use zaqar_tests::{
    postgres::{admin_execute, TestDatabase},
    TestServer,
};

/// The overlay putting both stores on `uri`.
fn on_postgresql(uri: &str, extra: &str) -> String {
    let uri = toml::Value::String(uri.to_owned());
    format!(
        "[drivers.message_store]\nname = \"postgresql\"\n\
         [drivers.message_store.postgresql]\nuri = {uri}\n{extra}\n\
         [drivers.management_store]\nname = \"postgresql\"\n\
         [drivers.management_store.postgresql]\nuri = {uri}\n{extra}\n"
    )
}

#[test]
fn unreachable_database_at_start_exits_1_naming_the_driver_and_the_redacted_uri() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let uri = format!("postgresql://zaqar:sekrit-pw@127.0.0.1:{port}/zaqar");
    let exited =
        TestServer::run_to_exit(&on_postgresql(&uri, "connect_timeout_ms = 1000"), &[], &[]);
    assert_eq!(exited.status.code(), Some(1), "{exited:?}");
    assert!(exited.stderr.contains("postgresql"), "{}", exited.stderr);
    assert!(
        exited
            .stderr
            .contains(&format!("postgresql://zaqar:***@127.0.0.1:{port}/zaqar")),
        "{}",
        exited.stderr
    );
    assert!(!exited.stderr.contains("sekrit-pw"), "{}", exited.stderr);
}

#[test]
fn a_uri_of_another_scheme_exits_1_with_a_config_error() {
    let exited =
        TestServer::run_to_exit(&on_postgresql("mysql://root@127.0.0.1/zaqar", ""), &[], &[]);
    assert_eq!(exited.status.code(), Some(1), "{exited:?}");
    assert!(exited.stderr.contains("postgresql://"), "{}", exited.stderr);
}

#[test]
fn killed_connections_answer_503_then_the_server_recovers_without_restart() {
    let database = TestDatabase::create();
    let server = TestServer::start_with(&on_postgresql(&database.uri, "pool_size = 4"));
    let client = server.client();
    let post = |n: usize| {
        client
            .post("/v2/queues/faults/messages")
            .json(&json!({"messages": [{"body": {"n": n}, "ttl": 300}]}))
            .send()
    };
    for n in 0..4 {
        assert_eq!(post(n).status, 201);
    }
    admin_execute(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{}' AND pid <> pg_backend_pid()",
        database.name
    ))
    .expect("pg_terminate_backend");

    let mut acknowledged = 4;
    let mut unavailable = 0;
    for n in 0..20 {
        let response = post(100 + n);
        match response.status {
            201 => acknowledged += 1,
            503 => {
                unavailable += 1;
                assert!(n < 10, "calls after the first few succeed");
                let body = response.json();
                assert!(body["title"].is_string(), "{body}");
                assert!(body["description"].is_string(), "{body}");
            }
            other => panic!("unexpected status {other}: {}", response.text()),
        }
    }
    assert!(
        unavailable <= 4,
        "at most one failure per pooled connection"
    );
    assert_eq!(client.get("/v2/ping").send().status, 204);
    let listed = client
        .get("/v2/queues/faults/messages?limit=10&echo=true")
        .send()
        .json();
    let mut count = listed["messages"].as_array().map_or(0, Vec::len);
    let mut next: Value = listed["links"][0]["href"].clone();
    while count < acknowledged {
        let href = next.as_str().expect("a next link").to_owned();
        let page = client.get(&href).send();
        if page.status == 204 {
            break;
        }
        let page = page.json();
        let messages = page["messages"].as_array().map_or(0, Vec::len);
        if messages == 0 {
            break;
        }
        count += messages;
        next = page["links"][0]["href"].clone();
    }
    assert_eq!(count, acknowledged, "every acknowledged post is stored");
    drop(server);
}
