//! The WebSocket transport through a real client: Zaqar's frames in JSON and
//! MsgPack, pushes to subscribed sockets, limits and bad input.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::Message;
use zaqar_tests::{Frame, TestServer, WsClient};

fn server_with(websocket_options: &str) -> TestServer {
    TestServer::start_with(&format!(
        "[drivers]\ntransports = [\"wsgi\", \"websocket\"]\n[drivers.transport.websocket]\nport = 0\n{websocket_options}\n"
    ))
}

fn server() -> TestServer {
    server_with("")
}

fn status(reply: &Value) -> u64 {
    reply["headers"]["status"].as_u64().expect("status")
}

/// Waits for the next pushed notification (a frame without `request`).
fn next_push(client: &mut WsClient) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match client.recv(Duration::from_secs(10)) {
            Frame::Text(v) | Frame::Binary(v) if v.get("request").is_none() => return v,
            Frame::Text(_) | Frame::Binary(_) => continue,
            other => panic!("expected a push, got {other:?}"),
        }
    }
    panic!("no push within 10 s");
}

#[test]
fn json_and_msgpack_replies_use_the_encoding_of_the_request() {
    let server = server();
    let mut client = WsClient::connect(server.address("websocket"));
    let reply = client.request("queue_create", json!({"queue_name": "enc"}));
    assert_eq!(status(&reply), 201);
    assert_eq!(reply["request"]["action"], "queue_create");
    assert_eq!(reply["request"]["api"], "v2");

    let posted = json!({"queue_name": "enc", "messages": [{"body": {"packed": true}, "ttl": 120}]});
    let reply = client.request_msgpack("message_post", posted.clone());
    assert_eq!(status(&reply), 201, "{reply}");
    assert_eq!(reply["body"]["message_ids"].as_array().unwrap().len(), 1);
    // The MessagePack envelope echoes the request as the JSON one does.
    assert_eq!(reply["request"]["action"], "message_post");
    assert_eq!(reply["request"]["body"], posted);
    assert_eq!(reply["request"]["api"], "v2");
    assert!(
        reply["request"]["headers"]["Client-ID"].is_string(),
        "{reply}"
    );
    let reply = client.request_msgpack("authenticate", json!({}));
    assert_eq!(status(&reply), 200, "{reply}");
    assert_eq!(
        reply["request"]["headers"],
        json!({}),
        "the token is not echoed"
    );
    assert_eq!(reply["request"]["body"], json!({}));

    let reply = client.request("message_list", json!({"queue_name": "enc", "echo": true}));
    assert_eq!(status(&reply), 200);
    assert_eq!(
        reply["body"]["messages"][0]["body"],
        json!({"packed": true})
    );
}

#[test]
fn msgpack_frames_read_where_they_lie_or_transcoded_are_served_alike() {
    let server = server();
    let mut client = WsClient::connect(server.address("websocket"));
    assert_eq!(
        status(&client.request("queue_create", json!({"queue_name": "mp"}))),
        201
    );
    // Made only of values JSON has: read from the frame's bytes.
    let plain = json!({"t": "a\"b\né 日本", "f": 1.5, "n": -70000, "big": u64::MAX});
    let reply = client.request_msgpack(
        "message_post",
        json!({"queue_name": "mp", "messages": [{"body": plain, "ttl": 60}]}),
    );
    assert_eq!(status(&reply), 201, "{reply}");
    // A MessagePack byte string has no JSON value: such a frame is
    // transcoded whole, bytes becoming a list of numbers, as before.
    let headers = json!({"Client-ID": "3fa1e4ae-1f6c-4a8e-9e3b-4d3b0f0d1a2b",
                         "X-Project-ID": "test-project"});
    let frame = json!({"action": "message_post", "headers": headers,
                       "body": {"queue_name": "mp", "messages": [{"body": "@BIN@", "ttl": 60}]}});
    let mut bytes = rmp_serde::to_vec_named(&frame).unwrap();
    let at = bytes.windows(6).position(|w| w == b"\xa5@BIN@").unwrap();
    bytes.splice(at..at + 6, [0xc4, 2, b'x', b'y']);
    client.send_raw(Message::binary(bytes));
    // The reply echoes the byte string: only its status is read.
    #[derive(serde::Deserialize)]
    struct Status {
        status: u16,
    }
    #[derive(serde::Deserialize)]
    struct Reply {
        headers: Status,
    }
    let reply: Reply = rmp_serde::from_slice(&client.recv_binary(Duration::from_secs(10)))
        .expect("a MessagePack reply");
    assert_eq!(reply.headers.status, 201);
    let listed = client.request("message_list", json!({"queue_name": "mp", "echo": true}));
    assert_eq!(status(&listed), 200, "{listed}");
    let bodies: Vec<&Value> = listed["body"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["body"])
        .collect();
    assert_eq!(bodies, [&plain, &json!([120, 121])]);
    // Parameters keep their types in either encoding: a float limit is
    // refused alike, a null one is absent alike.
    for limit in [json!(2.5), json!(null)] {
        let body = json!({"queue_name": "mp", "limit": limit});
        let text = client.request("message_list", body.clone());
        let packed = client.request_msgpack("message_list", body);
        assert_eq!(text["body"], packed["body"], "limit {limit}");
        assert_eq!(status(&text), status(&packed), "limit {limit}");
    }
}

#[test]
fn authenticate_succeeds_without_an_auth_strategy() {
    let server = server();
    let mut client = WsClient::connect(server.address("websocket"));
    client.set_header("X-Auth-Token", "not-checked");
    let reply = client.request("authenticate", json!({}));
    assert_eq!(status(&reply), 200, "{reply}");
    assert_eq!(reply["body"], json!({"message": "Authentified."}));
    assert_eq!(
        reply["request"]["headers"],
        json!({}),
        "the token is not echoed"
    );
    assert_eq!(status(&client.request("queue_list", json!({}))), 200);
}

#[test]
fn bad_frames_get_error_frames_and_the_socket_stays_usable() {
    let server = server();
    let mut client = WsClient::connect(server.address("websocket"));

    client.send_raw(Message::text("{oops"));
    let reply = client.reply();
    assert_eq!(status(&reply), 400);
    assert!(reply["body"]["error"]
        .as_str()
        .unwrap()
        .starts_with("Can't decode text (JSON) request."));

    client.send_raw(Message::binary(vec![0xc1, 0x00, 0xff]));
    match client.recv(Duration::from_secs(10)) {
        Frame::Binary(reply) => {
            assert_eq!(status(&reply), 400);
            assert!(reply["body"]["error"]
                .as_str()
                .unwrap()
                .contains("binary (MessagePack)"));
        }
        other => panic!("expected a binary error reply, got {other:?}"),
    }

    client.send_raw(Message::text("[1, 2]"));
    assert_eq!(status(&client.reply()), 400);

    let reply = client.request("queue_explode", json!({}));
    assert_eq!(status(&reply), 400);
    assert_eq!(
        reply["body"]["error"],
        "queue_explode is not a valid action"
    );

    let reply = client.request(
        "message_post",
        json!({"queue_name": "q", "messages": "not a list"}),
    );
    assert_eq!(status(&reply), 400);

    // Still serving the same socket.
    let reply = client.request("queue_create", json!({"queue_name": "after-errors"}));
    assert_eq!(status(&reply), 201);
}

#[test]
fn a_frame_over_the_limit_closes_the_socket_with_1009() {
    let server = server_with("max_frame_size = 4096");
    let mut client = WsClient::connect(server.address("websocket"));
    client.send_raw(Message::text(format!(
        "{{\"action\": \"queue_list\", \"body\": {{\"pad\": \"{}\"}}}}",
        "x".repeat(10_000)
    )));
    match client.recv(Duration::from_secs(10)) {
        Frame::Closed(code, reason) => {
            assert_eq!(code, 1009, "{reason}");
            assert!(reason.contains("too large"), "{reason}");
        }
        other => panic!("expected a close, got {other:?}"),
    }
    // Other sockets are unaffected.
    let mut other = WsClient::connect(server.address("websocket"));
    assert_eq!(status(&other.request("queue_list", json!({}))), 200);
}

#[test]
fn a_silent_client_is_closed_after_the_idle_timeout() {
    let server = server_with("idle_timeout = 1\nping_interval = 60");
    let mut client = WsClient::connect(server.address("websocket"));
    match client.recv(Duration::from_secs(10)) {
        Frame::Closed(code, reason) => {
            assert_eq!(code, 1000);
            assert!(reason.contains("idle"), "{reason}");
        }
        other => panic!("expected a close, got {other:?}"),
    }
}

#[test]
fn a_client_that_keeps_talking_outlives_the_idle_timeout() {
    let server = server_with("idle_timeout = 1\nping_interval = 60");
    let mut client = WsClient::connect(server.address("websocket"));
    // Three idle periods, a request every 0.4 s: the socket stays open.
    for _ in 0..8 {
        assert_eq!(status(&client.request("queue_list", json!({}))), 200);
        std::thread::sleep(Duration::from_millis(400));
    }
    // Then silence closes it, one idle period after the last frame.
    let silent = std::time::Instant::now();
    match client.recv(Duration::from_secs(10)) {
        Frame::Closed(code, reason) => {
            assert_eq!(code, 1000);
            assert!(reason.contains("idle"), "{reason}");
        }
        other => panic!("expected a close, got {other:?}"),
    }
    assert!(
        silent.elapsed() < Duration::from_secs(3),
        "{:?}",
        silent.elapsed()
    );
}

#[test]
fn a_subscribed_socket_gets_messages_posted_over_http() {
    let server = server();
    let mut subscriber = WsClient::connect(server.address("websocket"));
    let reply = subscriber.request(
        "subscription_create",
        json!({"queue_name": "news", "ttl": 600}),
    );
    assert_eq!(status(&reply), 201, "{reply}");

    let http = server.client();
    let response = http
        .post("/v2/queues/news/messages")
        .json(&json!({"messages": [{"body": {"headline": "one"}, "ttl": 300}, {"body": "two"}]}))
        .send();
    assert_eq!(response.status, 201);

    let first = next_push(&mut subscriber);
    assert_eq!(first["body"], json!({"headline": "one"}));
    assert_eq!(first["ttl"], 300);
    assert_eq!(first["Message_Type"], "Notification");
    assert_eq!(first["queue_name"], "news");
    let second = next_push(&mut subscriber);
    assert_eq!(second["body"], "two");
    // Pushes carry the per-queue sequence number, increasing.
    assert!(second["sequence"].as_u64().unwrap() > first["sequence"].as_u64().unwrap());
}

/// More sockets than one send batch holds (64), and enough for the host
/// to share each fan-out with its helper thread (512), each subscribed to one
/// queue: every socket gets every message, once and in order, with the
/// transport's batched pushes (io_uring, the default where the kernel
/// offers it, as here) and without them; the start-up log says which.
#[test]
fn a_fan_out_to_many_sockets_arrives_whole_and_in_order_with_and_without_batches() {
    for batched in [true, false] {
        let server = server_with(&format!(
            "batched_pushes = {batched}\nmax_connections_per_address = 0"
        ));
        assert_eq!(
            server
                .log()
                .contains("pushes go out in batches of up to 64 sockets (io_uring)"),
            batched,
            "{}",
            server.log()
        );
        let address = server.address("websocket").to_string();
        let mut subscribers: Vec<WsClient> = (0..600)
            .map(|_| {
                let mut socket = WsClient::connect(&address);
                let reply = socket.request("subscription_create", json!({"queue_name": "wide"}));
                assert_eq!(status(&reply), 201, "{reply}");
                socket
            })
            .collect();
        let http = server.client();
        for round in 0..5 {
            let response = http
                .post("/v2/queues/wide/messages")
                .json(&json!({"messages": [{"body": {"round": round}}]}))
                .send();
            assert_eq!(response.status, 201);
        }
        for subscriber in &mut subscribers {
            let rounds: Vec<Value> = (0..5)
                .map(|_| next_push(subscriber)["body"]["round"].clone())
                .collect();
            assert_eq!(rounds, (0..5).map(|r| json!(r)).collect::<Vec<_>>());
        }
    }
}

#[test]
fn one_socket_holds_many_subscriptions_and_msgpack_subscriptions_push_binary() {
    let server = server();
    let address = server.address("websocket").to_string();
    let mut subscriber = WsClient::connect(&address);
    for queue in ["alpha", "beta"] {
        let reply = subscriber.request("subscription_create", json!({"queue_name": queue}));
        assert_eq!(status(&reply), 201);
    }
    let reply = subscriber.request_msgpack("subscription_create", json!({"queue_name": "gamma"}));
    assert_eq!(status(&reply), 201);

    let mut publisher = WsClient::connect(&address);
    for queue in ["alpha", "beta", "gamma"] {
        let reply = publisher.request(
            "message_post",
            json!({"queue_name": queue, "messages": [{"body": queue}]}),
        );
        assert_eq!(status(&reply), 201);
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        match subscriber.recv(Duration::from_secs(10)) {
            Frame::Text(push) => {
                seen.push((push["queue_name"].as_str().unwrap().to_string(), false))
            }
            Frame::Binary(push) => {
                seen.push((push["queue_name"].as_str().unwrap().to_string(), true))
            }
            other => panic!("expected a push, got {other:?}"),
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("alpha".into(), false),
            ("beta".into(), false),
            ("gamma".into(), true)
        ]
    );
}

#[test]
fn closing_the_socket_ends_its_subscriptions() {
    // Without a session to keep (see streams_websocket.rs for sessions,
    // which keep a closed socket's subscriptions for `session_ttl`).
    let server = server_with("[streams]\nsession_ttl = 0");
    let http = server.client();
    let mut subscriber = WsClient::connect(server.address("websocket"));
    assert_eq!(
        status(&subscriber.request("subscription_create", json!({"queue_name": "brief"}))),
        201
    );
    let listed = http.get("/v2/queues/brief/subscriptions").send().json();
    assert_eq!(listed["subscriptions"].as_array().unwrap().len(), 1);
    subscriber.close();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = http.get("/v2/queues/brief/subscriptions").send().json();
        if listed["subscriptions"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "subscription outlived its socket: {listed}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_consumer_too_slow_for_its_pushes_is_closed_with_1008() {
    let server = server_with("send_queue_frames = 4");
    let mut slow = WsClient::connect(server.address("websocket"));
    assert_eq!(
        status(&slow.request("subscription_create", json!({"queue_name": "flood"}))),
        201
    );
    // The client stops reading; large pushes fill the socket buffers, then
    // the send queue.
    let http = server.client();
    let big = "x".repeat(200_000);
    for _ in 0..80 {
        let response = http
            .post("/v2/queues/flood/messages")
            .json(&json!({"messages": [{"body": big}]}))
            .send();
        assert_eq!(response.status, 201);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match slow.recv(Duration::from_secs(10)) {
            Frame::Closed(code, reason) => {
                assert_eq!(code, 1008, "{reason}");
                assert!(reason.contains("slow consumer"), "{reason}");
                break;
            }
            Frame::Timeout => panic!("no close"),
            _ => assert!(Instant::now() < deadline, "still not closed"),
        }
    }
    // The server is fine.
    assert_eq!(http.get("/v2/queues/flood/stats").send().status, 200);
}
