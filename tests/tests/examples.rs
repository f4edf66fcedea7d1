//! The out-of-tree examples (`examples/*`, each its own crate and workspace)
//! built the way a third party builds them, from a copy outside the
//! repository, and run loaded by the unmodified `zaqar-server`. With
//! `ZAQAR_EXAMPLES_HOST=release` (scripts/test.sh sets it) the host is the
//! release build.

use std::{
    io::{BufRead, BufReader, Write},
    net::TcpStream,
    time::Duration,
};

use serde_json::{json, Value};
use zaqar_tests::{cargo_out_of_tree, example_library, TestServer};

fn host(overlay: &str) -> TestServer {
    match std::env::var("ZAQAR_EXAMPLES_HOST").as_deref() {
        Ok("release") => TestServer::start_release_with(overlay),
        _ => TestServer::start_with(overlay),
    }
}

fn paths(library: &std::path::Path) -> String {
    format!("[plugins]\npaths = [{:?}]\n", library.display().to_string())
}

const HEADERS: &str =
    r#"{"Client-ID": "3381af92-2b9e-11e3-b191-71861300734c", "X-Project-ID": "test-project"}"#;

/// One line out, one line back.
fn exchange(stream: &mut BufReader<TcpStream>, action: &str, body: Value) -> Value {
    let frame = format!(r#"{{"action": {action:?}, "headers": {HEADERS}, "body": {body}}}"#);
    stream.get_mut().write_all(frame.as_bytes()).unwrap();
    stream.get_mut().write_all(b"\n").unwrap();
    read_line(stream)
}

fn read_line(stream: &mut BufReader<TcpStream>) -> Value {
    let mut line = String::new();
    stream.read_line(&mut line).expect("a line");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

#[test]
fn ndjson_transport_carries_zaqar_actions_and_pushes() {
    let library = example_library("transport-ndjson", "zaqar_transport_ndjson");
    let server = host(&format!(
        "{}[drivers]\ntransports = [\"wsgi\", \"ndjson\"]\n[drivers.transport.ndjson]\nport = 0\n",
        paths(&library)
    ));
    let socket = TcpStream::connect(server.address("ndjson")).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut stream = BufReader::new(socket);

    let reply = exchange(&mut stream, "queue_create", json!({"queue_name": "lines"}));
    assert_eq!(reply["headers"]["status"], 201, "{reply}");
    let reply = exchange(
        &mut stream,
        "message_post",
        json!({"queue_name": "lines", "messages": [{"body": {"n": 1}, "ttl": 300}]}),
    );
    assert_eq!(reply["headers"]["status"], 201, "{reply}");
    // The same host behind both transports: HTTP sees the message.
    let listed = server
        .client()
        .get("/v2/queues/lines/messages?echo=true")
        .send();
    assert_eq!(listed.json()["messages"][0]["body"], json!({"n": 1}));

    // Bad input gets the host's error envelope and the connection goes on.
    let reply = exchange(&mut stream, "no_such_action", json!({}));
    assert_eq!(reply["headers"]["status"], 400, "{reply}");

    // Subscribed, the connection gets what HTTP posts, as a line.
    let reply = exchange(
        &mut stream,
        "subscription_create",
        json!({"queue_name": "lines", "ttl": 600}),
    );
    assert_eq!(reply["headers"]["status"], 201, "{reply}");
    let response = server
        .client()
        .post("/v2/queues/lines/messages")
        .json(&json!({"messages": [{"body": "pushed", "ttl": 300}]}))
        .send();
    assert_eq!(response.status, 201);
    let pushed = read_line(&mut stream);
    assert_eq!(pushed["body"], "pushed", "{pushed}");
    assert_eq!(pushed["queue_name"], "lines", "{pushed}");
}

#[test]
fn memory_store_serves_the_api_loaded_by_the_host() {
    let library = example_library("store-memory", "zaqar_store_memory");
    let server = host(&format!(
        "{}[drivers.message_store]\nname = \"memory\"\n",
        paths(&library)
    ));
    let client = server.client();
    let response = client
        .post("/v2/queues/kept-in-memory/messages")
        .json(&json!({"messages": [{"body": {"k": "v"}, "ttl": 300}]}))
        .send();
    assert_eq!(response.status, 201, "{}", response.text());
    let claimed = client
        .post("/v2/queues/kept-in-memory/claims")
        .json(&json!({"ttl": 60, "grace": 60}))
        .send();
    assert_eq!(claimed.status, 201, "{}", claimed.text());
    assert_eq!(claimed.json()["messages"][0]["body"], json!({"k": "v"}));
    assert!(server.log().contains("message store ready"));
}

#[test]
fn memory_store_passes_the_whole_conformance_suite_out_of_tree() {
    let output = cargo_out_of_tree("store-memory", &["test", "--quiet"]);
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{report}");
    assert!(report.contains("test result: ok"), "{report}");
    assert!(report.contains(" 0 failed"), "{report}");
}

#[test]
fn file_notifier_delivers_loaded_by_the_host() {
    let library = example_library("notifier-file", "zaqar_notifier_file");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("deliveries.jsonl");
    let server = host(&format!(
        "{}[drivers.notification.file]\npath = {:?}\n",
        paths(&library),
        out.display().to_string()
    ));
    let client = server.client();
    let response = client
        .post("/v2/queues/audited/subscriptions")
        .json(&json!({"subscriber": "file:audit", "ttl": 3600}))
        .send();
    assert_eq!(response.status, 201, "{}", response.text());
    let response = client
        .post("/v2/queues/audited/messages")
        .json(&json!({"messages": [{"body": "written", "ttl": 300}]}))
        .send();
    assert_eq!(response.status, 201);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if let Some(line) = text.lines().next() {
            let line: Value = serde_json::from_str(line).unwrap();
            assert_eq!(line["payload"]["body"], "written");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "nothing delivered");
        std::thread::sleep(Duration::from_millis(100));
    }
}
