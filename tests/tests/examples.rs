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
use zaqar_tests::{cargo_out_of_tree, example_library, output_text, TestServer};

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
        "{}[drivers.message_store]\nname = \"memory\"\n\
         [drivers.management_store]\nname = \"memory\"\n",
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
    let log = server.log();
    for store in ["message store ready", "management store ready"] {
        let line = log.lines().find(|l| l.contains(store)).unwrap_or_default();
        assert!(line.contains("memory"), "{store}: {log}");
    }
}

#[test]
fn memory_store_passes_the_whole_conformance_suite_out_of_tree() {
    let output = cargo_out_of_tree("store-memory", &["test", "--quiet"]);
    let report = output_text(&output);
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

/// A token of the `signed` example for `project`, `user` and `roles`,
/// expiring `expires` seconds since the epoch.
fn signed_token(key: &str, project: &str, user: &str, roles: &str, expires: u64) -> String {
    use hmac::Mac as _;
    let body = format!("{project}.{user}.{roles}.{expires}");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let signature: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{body}.{signature}")
}

#[test]
fn signed_token_auth_strategy_authenticates_loaded_by_the_host() {
    let library = example_library("auth-signed", "zaqar_auth_signed");
    let key = "a key the issuer and the server share, long enough";
    let server = host(&format!(
        "{}[server]\nauth_strategy = \"signed\"\n\
         [drivers]\ntransports = [\"wsgi\", \"websocket\"]\n\
         [drivers.transport.websocket]\nport = 0\n\
         [drivers.auth.signed]\nkey = {key:?}\n",
        paths(&library)
    ));
    let later = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let alice = signed_token(key, "demo", "alice", "member", later);
    let root = signed_token(key, "ops", "root", "admin", later);
    let expired = signed_token(key, "demo", "alice", "member", 1_000_000);
    let forged = signed_token(
        "another key of the same length, or so",
        "demo",
        "x",
        "",
        later,
    );
    let tampered = alice.replacen("demo.alice.member", "demo.alice.admin", 1);
    let client = server.client();
    let with = |token: &str| {
        client
            .get("/v2/queues")
            .without_header("X-Project-ID")
            .header("X-Auth-Token", token)
            .send()
    };
    for refused in [&expired, &forged, &tampered, "no-dots-at-all"] {
        let response = with(refused);
        assert_eq!(response.status, 401, "{refused}: {}", response.text());
    }
    assert_eq!(with(&alice).status, 200);
    let created = client
        .put("/v2/queues/signed")
        .without_header("X-Project-ID")
        .header("Authorization", &format!("Bearer {alice}"))
        .send();
    assert_eq!(created.status, 201, "{}", created.text());
    let spoofed = client
        .get("/v2/queues")
        .header("X-Project-ID", "ops")
        .header("X-Auth-Token", &alice)
        .send();
    assert_eq!(spoofed.status, 403, "{}", spoofed.text());
    let health = |token: &str| {
        client
            .get("/v2/health")
            .without_header("X-Project-ID")
            .header("X-Auth-Token", token)
            .send()
            .status
    };
    assert_eq!(health(&alice), 403);
    assert_eq!(health(&root), 200);

    let mut socket = zaqar_tests::WsClient::connect(server.address("websocket"));
    socket.set_header("X-Project-ID", "demo");
    socket.set_header("X-Auth-Token", &alice);
    let reply = socket.request("authenticate", json!({}));
    assert_eq!(reply["headers"]["status"], 200, "{reply}");
    let reply = socket.request("queue_list", json!({}));
    assert_eq!(reply["body"]["queues"][0]["name"], "signed", "{reply}");
}
