//! The WebSocket transport against clients that stop reading, never finish
//! the handshake, or open too many sockets: the memory queued for a socket
//! is bounded in bytes, a blocked write has a time limit, and the TCP
//! connection of a closed socket is really closed.

use std::{
    io::Read,
    net::TcpStream,
    time::{Duration, Instant},
};

use serde_json::json;
use zaqar_tests::{TestServer, WsClient};

fn server_with(websocket_options: &str) -> TestServer {
    TestServer::start_with(&format!(
        "[drivers]\ntransports = [\"wsgi\", \"websocket\"]\n[drivers.transport.websocket]\nport = 0\n{websocket_options}\n"
    ))
}

/// Sockets the server process has open.
fn open_sockets(server: &TestServer) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", server.pid()))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))
                })
                .count()
        })
        .unwrap_or(0)
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

const MIB: u64 = 1024 * 1024;

#[test]
fn five_readers_that_never_read_hold_bounded_memory_and_are_really_disconnected() {
    let server = server_with("write_timeout = 2\nidle_timeout = 600\n");
    let http = server.client();
    assert_eq!(http.get("/v2/ping").send().status, 204);
    let big = "x".repeat(200_000);
    let post_all = |queue: &str, mut sample: Box<dyn FnMut()>| {
        for i in 0..400 {
            let response = http
                .post(&format!("/v2/queues/{queue}/messages"))
                .json(&json!({"messages": [{"body": big}]}))
                .send();
            assert_eq!(response.status, 201);
            if i % 20 == 0 {
                sample();
            }
        }
    };
    // What storing 400 messages of 200 KB costs by itself, with nobody
    // subscribed: the store's share, which is not the sockets'.
    let start_rss = server.resident_bytes();
    post_all("control", Box::new(|| {}));
    let baseline_rss = server.resident_bytes();
    let store_share = baseline_rss.saturating_sub(start_rss);
    let baseline_sockets = open_sockets(&server);

    let slow: Vec<WsClient> = (0..5)
        .map(|_| {
            let mut client = WsClient::connect(server.address("websocket"));
            let reply = client.request("subscription_create", json!({"queue_name": "flood"}));
            assert_eq!(reply["headers"]["status"], 201);
            client
        })
        .collect();
    assert_eq!(open_sockets(&server), baseline_sockets + 5);

    let peak = std::cell::Cell::new(0);
    post_all(
        "flood",
        Box::new(|| peak.set(peak.get().max(server.resident_bytes()))),
    );
    let peak = peak.get().max(server.resident_bytes());
    // Five sockets may queue 4 MiB each (plus tungstenite's buffers); the
    // unbounded queue took ~100 MiB each.
    assert!(
        peak < baseline_rss + store_share + 60 * MIB,
        "resident memory went from {baseline_rss} to {peak} with five slow readers \
         (storing the messages alone took {store_share})"
    );
    // The server closed their TCP connections (the clients still hold
    // theirs open and unread).
    wait_for(
        "the slow readers' sockets to be closed",
        Duration::from_secs(30),
        || open_sockets(&server) <= baseline_sockets,
    );
    wait_for(
        "the queued pushes' memory to be released",
        Duration::from_secs(20),
        || server.resident_bytes() < baseline_rss + store_share + 30 * MIB,
    );
    drop(slow);
    assert_eq!(http.get("/v2/queues/flood/stats").send().status, 200);
}

#[test]
fn a_handshake_not_completed_in_time_is_closed() {
    let server = server_with("handshake_timeout = 1\n");
    let mut stream = TcpStream::connect(server.address("websocket")).unwrap();
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buffer = [0u8; 64];
    let read = stream.read(&mut buffer);
    assert!(
        matches!(read, Ok(0)) || read.is_err() && started.elapsed() < Duration::from_secs(9),
        "{read:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn sockets_beyond_the_per_address_cap_get_503_in_zaqar_shape() {
    let server = server_with("max_connections_per_address = 3\n");
    let address = server.address("websocket").to_string();
    let held: Vec<WsClient> = (0..3).map(|_| WsClient::connect(&address)).collect();
    std::thread::sleep(Duration::from_millis(200));
    match tungstenite::connect(format!("ws://{address}/")) {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
            let body: serde_json::Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body["title"], "Service Unavailable");
        }
        other => panic!("expected a 503 answer, got {:?}", other.map(|_| ())),
    }
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    let mut again = WsClient::connect(&address);
    assert_eq!(
        again.request("queue_list", json!({}))["headers"]["status"],
        200
    );
}
