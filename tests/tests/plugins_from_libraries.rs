//! The server with `[plugins] builtins = false`, every plugin loaded from
//! its library in `plugins/dylibs/`: on the postgresql and redis stores,
//! and with the `static` auth strategy, each checked over HTTP and
//! WebSocket. (The `ZAQAR_TEST_PLUGINS=dylib` pass of scripts/test.sh runs
//! the whole API suite this way on the store it is given; these run in
//! every pass.)

use std::time::Duration;

use serde_json::{json, Value};
use zaqar_tests::{Frame, TestServer, WsClient};

const WEBSOCKET: &str = "[drivers]\ntransports = [\"wsgi\", \"websocket\"]\n\
                         [drivers.transport.websocket]\nport = 0\n";

/// The log line where the server says `what` is ready, which must name the
/// library it came from.
#[track_caller]
fn assert_ready_from(server: &TestServer, what: &str, library: &str) {
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains(what))
        .unwrap_or_else(|| panic!("no `{what}` in the log:\n{log}"));
    assert!(
        line.contains(&format!("lib{library}.so")),
        "{what} did not come from lib{library}.so: {line}"
    );
}

fn status(reply: &Value) -> u64 {
    reply["headers"]["status"].as_u64().expect("a status")
}

/// The next frame that is not a reply: a push.
fn next_push(socket: &mut WsClient) -> Value {
    loop {
        match socket.recv(Duration::from_secs(10)) {
            Frame::Text(frame) if frame.get("request").is_none() => return frame,
            Frame::Text(_) => continue,
            other => panic!("no push: {other:?}"),
        }
    }
}

/// Queues, messages, claims and a pushing WebSocket subscription on a
/// server whose store (and everything else) comes from libraries.
fn serves_from_libraries(store: &str) {
    let server = TestServer::start_from_libraries(store, WEBSOCKET);
    assert_ready_from(
        &server,
        "message store ready",
        &format!("zaqar_storage_{store}"),
    );
    assert_ready_from(
        &server,
        "management store ready",
        &format!("zaqar_storage_{store}"),
    );
    assert_ready_from(&server, "transport listening", "zaqar_transport_wsgi");

    let client = server.client();
    assert_eq!(client.put("/v2/queues/from-library").send().status, 201);
    let mut socket = WsClient::connect(server.address("websocket"));
    socket.set_header("X-Project-ID", "test-project");
    let subscribed = socket.request(
        "subscription_create",
        json!({"queue_name": "from-library", "ttl": 600}),
    );
    assert_eq!(status(&subscribed), 201, "{subscribed}");

    let posted = client
        .post("/v2/queues/from-library/messages")
        .json(&json!({"messages": [{"body": "one"}, {"body": "two"}]}))
        .send();
    assert_eq!(posted.status, 201, "{}", posted.text());
    assert_eq!(next_push(&mut socket)["body"], "one");
    assert_eq!(next_push(&mut socket)["body"], "two");

    let claimed = client
        .post("/v2/queues/from-library/claims?limit=1")
        .json(&json!({"ttl": 60, "grace": 60}))
        .send();
    assert_eq!(claimed.status, 201, "{}", claimed.text());
    let message = &claimed.json()["messages"][0];
    assert_eq!(message["body"], "one");
    let href = message["href"].as_str().unwrap();
    let unclaimed_delete = client.delete(href.split('?').next().unwrap()).send();
    assert_eq!(
        unclaimed_delete.status,
        403,
        "a claimed message needs its claim id: {}",
        unclaimed_delete.text()
    );
    assert_eq!(client.delete(href).send().status, 204);

    let listed = socket.request(
        "message_list",
        json!({"queue_name": "from-library", "echo": true, "include_claimed": true}),
    );
    let bodies: Vec<&Value> = listed["body"]["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .map(|m| &m["body"])
        .collect();
    assert_eq!(bodies, [&json!("two")], "{listed}");
}

#[test]
fn the_postgresql_store_serves_from_its_library_with_no_builtins() {
    serves_from_libraries("postgresql");
}

#[test]
fn the_redis_store_serves_from_its_library_with_no_builtins() {
    serves_from_libraries("redis");
}

const TOKENS: &str = r#"
[[tokens]]
token = "token-of-alice"
project = "alice-project"
user = "alice"
roles = ["member"]

[[tokens]]
token = "token-of-root"
project = "ops"
user = "root"
roles = ["admin"]
"#;

#[test]
fn the_static_auth_strategy_works_from_its_library_over_http_and_websocket() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(&tokens, TOKENS).unwrap();
    let server = TestServer::start_from_libraries(
        "embedded",
        &format!(
            "{WEBSOCKET}[server]\nauth_strategy = \"static\"\n\
             [drivers.auth.static]\ntokens_file = {:?}\n",
            tokens.display().to_string()
        ),
    );
    assert_ready_from(&server, "auth strategy ready", "zaqar_auth_static");
    let client = server.client();

    // HTTP: 401 without a valid token, 200 with one, 403 for another
    // project or an admin route without the admin role.
    for token in [None, Some("not-a-token")] {
        let mut request = client.get("/v2/queues");
        if let Some(token) = token {
            request = request.header("X-Auth-Token", token);
        }
        let refused = request.send();
        assert_eq!(refused.status, 401, "{}", refused.text());
        assert_eq!(
            refused.json()["error"]["message"],
            "The request you have made requires authentication."
        );
    }
    let alice = |request: zaqar_tests::RequestBuilder| {
        request
            .without_header("X-Project-ID")
            .header("X-Auth-Token", "token-of-alice")
    };
    let created = alice(client.put("/v2/queues/guarded")).send();
    assert_eq!(created.status, 201, "{}", created.text());
    let listed = alice(client.get("/v2/queues")).send();
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert_eq!(listed.json()["queues"][0]["name"], "guarded");
    let spoofed = alice(client.get("/v2/queues"))
        .header("X-Project-ID", "ops")
        .send();
    assert_eq!(spoofed.status, 403, "{}", spoofed.text());
    let not_admin = alice(client.get("/v2/health"))
        .header("X-Roles", "admin")
        .send();
    assert_eq!(not_admin.status, 403, "{}", not_admin.text());
    let admin = client
        .get("/v2/health")
        .without_header("X-Project-ID")
        .header("X-Auth-Token", "token-of-root")
        .send();
    assert_eq!(admin.status, 200, "{}", admin.text());

    // WebSocket: 401 before `authenticate` and for a bad token, then the
    // socket acts as its identity; another project is refused.
    let mut socket = WsClient::connect(server.address("websocket"));
    let early = socket.request("queue_list", json!({}));
    assert_eq!(status(&early), 401, "{early}");
    socket.set_header("X-Auth-Token", "not-a-token");
    let refused = socket.request("authenticate", json!({}));
    assert_eq!(status(&refused), 401, "{refused}");
    socket.set_header("X-Auth-Token", "token-of-alice");
    let accepted = socket.request("authenticate", json!({}));
    assert_eq!(status(&accepted), 200, "{accepted}");
    socket.set_header("X-Project-ID", "alice-project");
    let listed = socket.request("queue_list", json!({}));
    assert_eq!(status(&listed), 200, "{listed}");
    assert_eq!(listed["body"]["queues"][0]["name"], "guarded", "{listed}");
    socket.set_header("X-Project-ID", "ops");
    let spoofed = socket.request("queue_list", json!({}));
    assert_eq!(status(&spoofed), 403, "{spoofed}");
}
