//! `GET /metrics` through the real binary: admin only, parsed by the
//! Prometheus project's own OpenMetrics parser (Python `prometheus_client`,
//! in the venv `scripts/test.sh` makes), and its counters move with real
//! HTTP requests and WebSocket frames. And the per-project rate limit,
//! which answers 429 on both transports.

use std::{
    io::Write,
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::{json, Value};
use zaqar_tests::{Frame, TestServer, WsClient};

/// One parsed sample: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: serde_json::Map<String, Value>,
    value: f64,
}

/// Parses an exposition with `prometheus_client.openmetrics.parser`, which
/// refuses anything that is not valid OpenMetrics text.
fn parse(exposition: &str) -> Vec<Sample> {
    let python = std::env::var("PYTHON_ZAQARCLIENT").expect(
        "PYTHON_ZAQARCLIENT is not set: run the suite with `bash scripts/test.sh`, \
         which creates the virtualenv with prometheus_client",
    );
    let script = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append([s.name, s.labels, s.value])
print(json.dumps(out))
"#;
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the OpenMetrics parser refused the exposition: {}\n{exposition}",
        String::from_utf8_lossy(&output.stderr)
    );
    let parsed: Vec<(String, serde_json::Map<String, Value>, f64)> =
        serde_json::from_slice(&output.stdout).unwrap();
    parsed
        .into_iter()
        .map(|(name, labels, value)| Sample {
            name,
            labels,
            value,
        })
        .collect()
}

/// The value of the sample `name` whose labels include `labels` (0 when
/// there is none yet).
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).and_then(Value::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

fn scrape(server: &TestServer) -> Vec<Sample> {
    let response = server
        .client()
        .get("/metrics")
        .header("X-Roles", "admin")
        .send();
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(
        response
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/openmetrics-text")),
        "{:?}",
        response.header("content-type")
    );
    parse(&response.text())
}

#[test]
fn metrics_are_admin_only_and_count_real_requests_on_both_transports() {
    let server = TestServer::start_with(
        "[drivers]\ntransports = [\"wsgi\", \"websocket\"]\n[drivers.transport.websocket]\nport = 0\n",
    );
    let client = server.client();
    let refused = client.get("/metrics").send();
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert_eq!(refused.json()["title"], "Not authorized");

    let before = scrape(&server);
    let mut socket = WsClient::connect(server.address("websocket"));
    let subscribed = socket.request(
        "subscription_create",
        json!({"queue_name": "observed", "ttl": 600}),
    );
    assert_eq!(subscribed["headers"]["status"], 201, "{subscribed}");
    assert_eq!(
        socket.request("queue_list", json!({}))["headers"]["status"],
        200
    );

    assert_eq!(client.put("/v2/queues/observed").send().status, 204);
    let posted = client
        .post("/v2/queues/observed/messages")
        .json(&json!({"messages": [{"body": 1}, {"body": 2}, {"body": 3}]}))
        .send();
    assert_eq!(posted.status, 201);
    // The socket's subscription gets the posted messages pushed. Pushes
    // are read from the store, so they are awaited before one of the
    // messages is deleted: a message deleted first is never pushed.
    let mut pushed = 0;
    while pushed < 3 {
        match socket.recv(Duration::from_secs(10)) {
            Frame::Text(v) if v.get("request").is_none() => pushed += 1,
            Frame::Text(_) => {}
            other => panic!("expected a push, got {other:?}"),
        }
    }
    let claimed = client
        .post("/v2/queues/observed/claims?limit=2")
        .json(&json!({"ttl": 60}))
        .send();
    assert_eq!(claimed.status, 201);
    let href = claimed.json()["messages"][0]["href"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(client.delete(&href).send().status, 204);
    assert_eq!(client.get("/v2/nowhere").send().status, 404);

    let after = scrape(&server);
    let moved = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    let post = [
        ("route", "message_post"),
        ("transport", "http"),
        ("status", "201"),
    ];
    assert_eq!(moved("zaqar_requests_total", &post), 1.0);
    assert_eq!(
        moved(
            "zaqar_requests_total",
            &[
                ("route", "queue_list"),
                ("transport", "websocket"),
                ("status", "200")
            ]
        ),
        1.0
    );
    assert_eq!(
        moved(
            "zaqar_requests_total",
            &[("route", "unrouted"), ("status", "404")]
        ),
        1.0
    );
    assert_eq!(
        moved(
            "zaqar_request_duration_seconds_count",
            &[("route", "message_post"), ("transport", "http")]
        ),
        1.0
    );
    assert_eq!(
        moved(
            "zaqar_request_duration_seconds_bucket",
            &[
                ("route", "message_post"),
                ("transport", "http"),
                ("le", "+Inf")
            ]
        ),
        1.0
    );
    assert_eq!(moved("zaqar_messages_posted_total", &[]), 3.0);
    assert_eq!(moved("zaqar_messages_claimed_total", &[]), 2.0);
    assert_eq!(moved("zaqar_messages_deleted_total", &[]), 1.0);
    assert_eq!(value(&after, "zaqar_websocket_connections", &[]), 1.0);
    assert_eq!(moved("zaqar_websocket_connections_opened_total", &[]), 1.0);
    assert_eq!(moved("zaqar_websocket_pushes_total", &[]), 3.0);
    assert_eq!(
        moved(
            "zaqar_store_operation_duration_seconds_count",
            &[("operation", "message_post")]
        ),
        1.0
    );
    assert_eq!(
        moved(
            "zaqar_store_batch_messages_sum",
            &[("operation", "message_post")]
        ),
        3.0
    );
    assert_eq!(
        value(
            &after,
            "zaqar_plugin",
            &[("namespace", "zaqar.transport"), ("name", "wsgi")]
        ),
        1.0
    );
    assert!(value(&after, "process_resident_memory_bytes", &[]) > 0.0);
    assert!(value(&after, "process_open_fds", &[]) > 0.0);
    assert!(value(&after, "process_max_fds", &[]) > 0.0);

    drop(socket);
    let closed = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        value(&scrape(&server), "zaqar_websocket_connections", &[]) == 0.0
    });
    assert!(closed, "the open-connections gauge comes back to 0");
}

/// Messages whose ttl ran out are counted when the store's sweeper
/// removes them. Zaqar's shortest ttl is 60 s, so rather than wait, the
/// test writes messages posted two minutes ago straight into the stopped
/// server's embedded store, then lets the restarted server sweep them.
#[test]
fn messages_removed_by_the_sweeper_are_counted_as_expired() {
    if std::env::var("ZAQAR_TEST_STORE").is_ok_and(|s| s != "embedded") {
        return; // The embedded store is the one written to directly.
    }
    let mut server =
        TestServer::start_with("[drivers.message_store.embedded]\nsweep_interval_secs = 1\n");
    let created = server.client().put("/v2/queues/short-lived").send();
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(
        value(&scrape(&server), "zaqar_messages_expired_total", &[]),
        0.0
    );

    server.kill();
    let config: storage_embedded::EmbeddedConfig =
        serde_json::from_value(json!({ "path": server.data_dir() })).unwrap();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use plugin_api::storage::{MessageStore, NewMessage, QueueRef};
        let store = storage_embedded::EmbeddedMessageStore::open(&config).unwrap();
        let two_minutes_ago = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
            - 120_000;
        let messages: Vec<NewMessage> = (0..3)
            .map(|i| NewMessage {
                ttl: 60,
                delay: 0,
                body: format!("{i}").into_bytes().into(),
            })
            .collect();
        store
            .message_post(
                QueueRef::new("test-project", "short-lived"),
                "writer".into(),
                messages.into(),
                two_minutes_ago,
            )
            .await
            .unwrap();
    });
    server.restart();

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let expired = value(&scrape(&server), "zaqar_messages_expired_total", &[]);
        if expired == 3.0 {
            break;
        }
        assert!(
            expired < 3.0 && std::time::Instant::now() < deadline,
            "expected 3 expired messages, the metric says {expired}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A restarted server listens on a new port: a new client.
    let listed = server
        .client()
        .get("/v2/queues/short-lived/messages?include_claimed=true")
        .send();
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert_eq!(listed.json()["messages"], json!([]));
}

/// `[server] metrics_listen`: the same exposition on a port of its own,
/// without credentials (no `X-Roles` here), and nothing else there.
#[test]
fn metrics_are_also_served_without_auth_on_their_own_address() {
    let port = zaqar_tests::Receiver::free_port();
    let server = TestServer::start_with(&format!(
        "[server]\nmetrics_listen = \"127.0.0.1:{port}\"\n"
    ));
    let posted = server
        .client()
        .post("/v2/queues/scraped/messages")
        .json(&json!({"messages": [{"body": 1}, {"body": 2}]}))
        .send();
    assert_eq!(posted.status, 201, "{}", posted.text());

    let private = zaqar_tests::Client::new(&format!("http://127.0.0.1:{port}"));
    let response = private.get("/metrics").send();
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(
        response
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/openmetrics-text")),
        "{:?}",
        response.header("content-type")
    );
    let samples = parse(&response.text());
    assert_eq!(value(&samples, "zaqar_messages_posted_total", &[]), 2.0);
    assert_eq!(private.get("/v2/queues").send().status, 404);
    assert_eq!(private.get("/").send().status, 404);
}

#[test]
fn metrics_can_be_turned_off() {
    let server = TestServer::start_with("[server]\nmetrics = false\n");
    let response = server
        .client()
        .get("/metrics")
        .header("X-Roles", "admin")
        .send();
    assert_eq!(response.status, 404);
}

#[test]
fn the_rate_limit_answers_429_per_project_on_both_transports() {
    let server = TestServer::start_with(
        "[server]\nrate_limit_per_project = 1\nrate_limit_burst = 3\n\
         [drivers]\ntransports = [\"wsgi\", \"websocket\"]\n[drivers.transport.websocket]\nport = 0\n",
    );
    let client = server.client().with_project("busy");
    for _ in 0..3 {
        assert_eq!(client.get("/v2/queues").send().status, 200);
    }
    let refused = client.put("/v2/queues/not-created").send();
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert_eq!(refused.header("retry-after"), Some("1"));
    let error = refused.json();
    assert_eq!(error["title"], "Too many requests");
    assert!(error["description"].as_str().unwrap().contains("1 second"));

    // The same project over WebSocket shares the budget.
    let mut socket = WsClient::connect(server.address("websocket"));
    socket.set_header("X-Project-ID", "busy");
    let frame = socket.request("queue_list", json!({}));
    assert_eq!(frame["headers"]["status"], 429, "{frame}");

    // Another project is not held back.
    let other = server.client().with_project("calm");
    assert_eq!(other.get("/v2/queues").send().status, 200);

    // Nothing was done by the refused request, and the budget comes back.
    std::thread::sleep(Duration::from_millis(1100));
    let queues = client.get("/v2/queues").send();
    assert_eq!(queues.status, 200, "{}", queues.text());
    let metrics = scrape(&server);
    assert_eq!(
        value(&metrics, "zaqar_rate_limited_requests_total", &[]),
        2.0
    );
    assert_eq!(
        value(
            &metrics,
            "zaqar_requests_total",
            &[("route", "queue_create"), ("status", "429")]
        ),
        1.0
    );
}
