//! The cluster scenarios, run by `cluster_postgresql.rs` and
//! `cluster_redis.rs` on their shared store: several `zaqar-server` hosts
//! on one store are one service: any host serves any request, a socket on
//! one host gets what is posted through another (in sequence order, each
//! once), claims by consumers on different hosts never overlap, and webhook
//! delivery survives the delivering host being killed (SIGKILL), resuming
//! on another host from the durable cursor.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use serde_json::{json, Value};
use zaqar_tests::{Frame, Received, Receiver, TestServer, WsClient};

const WITH_WEBSOCKET: &str = r#"
[drivers]
transports = ["wsgi", "websocket"]
[drivers.transport.websocket]
port = 0
"#;

/// Starts one more host on the shared store, with `overlay` merged over
/// the base configuration.
pub type StartHost<'a> = &'a dyn Fn(&str) -> TestServer;

fn hosts(start: StartHost, count: usize) -> Vec<TestServer> {
    (0..count).map(|_| start(WITH_WEBSOCKET)).collect()
}

fn post(server: &TestServer, queue: &str, bodies: Vec<Value>) {
    let messages: Vec<Value> = bodies
        .into_iter()
        .map(|body| json!({"body": body, "ttl": 600}))
        .collect();
    let response = server
        .client()
        .post(&format!("/v2/queues/{queue}/messages"))
        .json(&json!({ "messages": messages }))
        .send();
    assert_eq!(response.status, 201, "{}", response.text());
}

/// A socket subscribed on one host gets the messages posted concurrently
/// through the two others, in sequence order, each once.
pub fn a_socket_on_one_host_gets_what_is_posted_through_the_others_in_order_once(start: StartHost) {
    let hosts = hosts(start, 3);
    let mut socket = WsClient::connect(hosts[1].address("websocket"));
    let subscribed = socket.request(
        "subscription_create",
        json!({"queue_name": "fanout", "ttl": 600}),
    );
    assert_eq!(subscribed["headers"]["status"], 201, "{subscribed}");

    // Posts through the two other hosts, concurrently.
    std::thread::scope(|scope| {
        for (host, offset) in [(&hosts[0], 0), (&hosts[2], 100)] {
            scope.spawn(move || {
                for n in 0..10 {
                    post(host, "fanout", vec![json!({"n": offset + n})]);
                }
            });
        }
    });

    let mut pushed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while pushed.len() < 20 && Instant::now() < deadline {
        match socket.recv(Duration::from_secs(2)) {
            Frame::Text(value) if value.get("sequence").is_some() => pushed.push(value),
            _ => {}
        }
    }
    assert_eq!(
        pushed.len(),
        20,
        "every post reached the socket: {pushed:?}"
    );
    let sequences: Vec<u64> = pushed
        .iter()
        .map(|p| p["sequence"].as_u64().unwrap())
        .collect();
    let mut sorted = sequences.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sequences, sorted, "in sequence order, none twice");
    for host in [0, 100] {
        let mine: Vec<i64> = pushed
            .iter()
            .map(|p| p["body"]["n"].as_i64().unwrap())
            .filter(|n| (host..host + 10).contains(n))
            .collect();
        assert_eq!(mine, (host..host + 10).collect::<Vec<_>>());
    }
    assert!(matches!(
        socket.recv(Duration::from_millis(500)),
        Frame::Timeout
    ));
}

/// Consumers claiming through three hosts at once never get the same
/// message, and together they claim every one.
pub fn claims_by_consumers_on_different_hosts_never_overlap(start: StartHost) {
    let hosts = hosts(start, 3);
    for batch in 0..6 {
        let bodies = (0..10).map(|n| json!(batch * 10 + n)).collect();
        post(&hosts[batch % 3], "work", bodies);
    }
    let taken: Vec<Vec<String>> = std::thread::scope(|scope| {
        let consumers: Vec<_> = hosts
            .iter()
            .map(|host| {
                scope.spawn(move || {
                    let client = host.client();
                    let mut ids = Vec::new();
                    loop {
                        let claimed = client
                            .post("/v2/queues/work/claims?limit=4")
                            .json(&json!({"ttl": 300, "grace": 60}))
                            .send();
                        if claimed.status == 204 {
                            return ids;
                        }
                        assert_eq!(claimed.status, 201, "{}", claimed.text());
                        for message in claimed.json()["messages"].as_array().unwrap() {
                            ids.push(message["id"].as_str().unwrap().to_string());
                        }
                    }
                })
            })
            .collect();
        consumers.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let all: Vec<&String> = taken.iter().flatten().collect();
    let distinct: HashSet<&String> = all.iter().copied().collect();
    assert_eq!(all.len(), 60, "every message claimed: {taken:?}");
    assert_eq!(distinct.len(), 60, "no message claimed twice");
}

/// The host delivering a webhook subscription is killed (SIGKILL)
/// mid-stream: another host takes over from the durable cursor; every
/// message arrives, in order, with at most the one in flight repeated.
pub fn webhook_delivery_resumes_on_another_host_after_the_delivering_host_is_killed(
    start: StartHost,
) {
    let receiver = Receiver::start();
    // Slow deliveries, so the kill lands mid-stream.
    receiver.delay(Duration::from_millis(150));
    let mut first = start("");
    let subscribed = first
        .client()
        .post("/v2/queues/orders/subscriptions")
        .json(&json!({"subscriber": receiver.url("/hook"), "ttl": 3600}))
        .send();
    assert_eq!(subscribed.status, 201, "{}", subscribed.text());
    let total = 40;
    post(&first, "orders", (0..total).map(|n| json!(n)).collect());
    // The only host takes the subscription's lease and starts delivering.
    receiver.wait_for(5, Duration::from_secs(20));
    let others = hosts(start, 2);
    first.kill();

    // Usually the attempt in flight at the kill is repeated, but not when
    // the kill lands between an answer and the next attempt: wait for every
    // message rather than for a count of requests.
    let body_order = |received: &[Received]| -> Vec<i64> {
        received
            .iter()
            .map(|r| r.json()["body"].as_i64().unwrap())
            .collect()
    };
    let distinct = |received: &[Received]| {
        let mut once = body_order(received);
        once.dedup();
        once
    };
    let received = receiver.wait_until(
        &format!("all {total} messages"),
        Duration::from_secs(60),
        |received| distinct(received).len() >= total as usize,
    );
    let (bodies, once) = (body_order(&received), distinct(&received));
    assert_eq!(
        once,
        (0..total).collect::<Vec<i64>>(),
        "every message, in order, after the takeover: {bodies:?}"
    );
    assert!(
        bodies.len() - once.len() <= 1,
        "at most the attempt in flight at the kill is repeated: {bodies:?}"
    );
    drop(others);
}
