//! Subscriptions and notifications end to end: real HTTP receivers, a
//! notifier sink loaded from a dynamic library, retries, restarts with
//! deliveries pending, confirmation.

use std::time::Duration;

use serde_json::{json, Value};
use zaqar_tests::{plugin_library, Client, Receiver, TestServer};

const WAIT: Duration = Duration::from_secs(20);

fn subscribe(client: &Client, queue: &str, subscriber: &str, options: Value) -> String {
    let response = client
        .post(&format!("/v2/queues/{queue}/subscriptions"))
        .json(&json!({"subscriber": subscriber, "ttl": 3600, "options": options}))
        .send();
    assert_eq!(response.status, 201, "{}", response.text());
    response.json()["subscription_id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn post(client: &Client, queue: &str, bodies: &[Value]) {
    let messages: Vec<Value> = bodies
        .iter()
        .map(|b| json!({"body": b, "ttl": 300}))
        .collect();
    let response = client
        .post(&format!("/v2/queues/{queue}/messages"))
        .json(&json!({ "messages": messages }))
        .send();
    assert_eq!(response.status, 201, "{}", response.text());
}

#[test]
fn every_posted_message_reaches_a_webhook_in_order() {
    let server = TestServer::start();
    let receiver = Receiver::start();
    let client = server.client();
    subscribe(&client, "orders", &receiver.url("/hook"), json!({}));
    post(&client, "orders", &[json!({"n": 1}), json!({"n": 2})]);
    post(&client, "orders", &[json!("three")]);

    let received = receiver.wait_for(3, WAIT);
    let bodies: Vec<Value> = received.iter().map(|r| r.json()["body"].clone()).collect();
    assert_eq!(
        bodies,
        vec![json!({"n": 1}), json!({"n": 2}), json!("three")]
    );
    let first = received[0].json();
    assert_eq!(first["Message_Type"], "Notification");
    assert_eq!(first["queue_name"], "orders");
    assert_eq!(first["ttl"], 300);
    assert_eq!(received[0].path, "/hook");
    assert_eq!(received[0].header("content-type"), Some("application/json"));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(receiver.received().len(), 3, "nothing is delivered twice");
}

#[test]
fn a_webhook_answering_500_then_200_gets_the_message_on_retry() {
    let server = TestServer::start();
    let receiver = Receiver::start();
    receiver.answer_with(&[500, 503]);
    let client = server.client();
    subscribe(&client, "flaky", &receiver.url("/"), json!({}));
    post(&client, "flaky", &[json!("persist")]);
    let received = receiver.wait_for(3, WAIT);
    assert!(received.iter().all(|r| r.json()["body"] == "persist"));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(receiver.received().len(), 3, "no retry after the 200");
}

#[test]
fn a_slow_webhook_does_not_hold_back_other_subscribers() {
    let server = TestServer::start();
    let slow = Receiver::start();
    slow.delay(Duration::from_secs(8));
    let fast = Receiver::start();
    let client = server.client();
    subscribe(&client, "shared", &slow.url("/slow"), json!({}));
    subscribe(&client, "shared", &fast.url("/fast"), json!({}));
    post(&client, "shared", &[json!(1), json!(2), json!(3)]);
    let received = fast.wait_for(3, Duration::from_secs(5));
    assert_eq!(received.len(), 3);
}

#[test]
fn deliveries_pending_at_a_crash_arrive_after_the_restart() {
    let mut server = TestServer::start();
    let port = Receiver::free_port();
    let client = server.client();
    // Nothing listens yet: every attempt is refused and retried.
    subscribe(
        &client,
        "pending",
        &format!("http://127.0.0.1:{port}/later"),
        json!({"_retry_policy": {"minimum_delay": 60, "maximum_delay": 120}}),
    );
    post(&client, "pending", &[json!("a"), json!("b"), json!("c")]);
    std::thread::sleep(Duration::from_millis(500));
    server.kill();

    let receiver = Receiver::start_on(port);
    server.restart();
    let received = receiver.wait_for(3, WAIT);
    let bodies: Vec<Value> = received.iter().map(|r| r.json()["body"].clone()).collect();
    assert_eq!(bodies, vec![json!("a"), json!("b"), json!("c")]);
}

#[test]
fn confirmation_gates_delivery_until_the_subscriber_confirms() {
    let server = TestServer::start_with(
        "[notification]\nrequire_confirmation = true\n[signed_url]\nsecret_key = \"test-secret\"\n",
    );
    let receiver = Receiver::start();
    let client = server.client();
    let id = subscribe(&client, "gated", &receiver.url("/c"), json!({}));

    let request = receiver.wait_for(1, WAIT)[0].json();
    assert_eq!(request["Message_Type"], "SubscriptionConfirmation");
    assert_eq!(request["queue_name"], "gated");
    let path = request["URL-Paths"].as_str().unwrap();
    assert_eq!(path, format!("/v2/queues/gated/subscriptions/{id}/confirm"));

    // Unconfirmed: posts are not delivered.
    post(&client, "gated", &[json!("too early")]);
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(receiver.received().len(), 1);

    // The subscriber confirms with the pre-signed request it was sent.
    let response = server
        .client()
        .with_project(request["X-Project-ID"].as_str().unwrap())
        .put(path)
        .header("URL-Signature", request["URL-Signature"].as_str().unwrap())
        .header("URL-Methods", request["URL-Methods"].as_str().unwrap())
        .header("URL-Paths", path)
        .header("URL-Expires", request["URL-Expires"].as_str().unwrap())
        .json(&request["SubscribeBody"])
        .send();
    assert_eq!(response.status, 204, "{}", response.text());

    post(&client, "gated", &[json!("welcome")]);
    let received = receiver.wait_for(2, WAIT);
    assert_eq!(received[1].json()["body"], "welcome");

    // Unconfirming stops delivery and says so.
    let response = client.put(path).json(&json!({"confirmed": false})).send();
    assert_eq!(response.status, 204);
    let received = receiver.wait_for(3, WAIT);
    assert_eq!(
        received[2].json()["Message_Type"],
        "UnsubscribeConfirmation"
    );
    post(&client, "gated", &[json!("gone")]);
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(receiver.received().len(), 3);
}

#[test]
fn private_subscriber_addresses_are_refused_unless_allowed() {
    let server = TestServer::start_with("[notification]\nallow_private_subscribers = false\n");
    let response = server
        .client()
        .post("/v2/queues/ssrf/subscriptions")
        .json(&json!({"subscriber": "http://169.254.169.254/latest/meta-data"}))
        .send();
    assert_eq!(response.status, 400);
    assert!(response.json()["description"]
        .as_str()
        .unwrap()
        .contains("private address"));
}

#[test]
fn a_notifier_sink_from_a_dylib_delivers_real_notifications() {
    let library = plugin_library("zaqar-notifier-file", "zaqar_notifier_file");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("deliveries.jsonl");
    let server = TestServer::start_with(&format!(
        r#"
[plugins]
paths = [{library:?}]
[drivers.notification.file]
path = {out:?}
[transport]
subscriber_types = ["http", "https", "mailto", "file"]
"#,
        library = library.display().to_string(),
        out = out.display().to_string()
    ));
    let client = server.client();
    subscribe(&client, "audited", "file:audit-log", json!({}));
    post(
        &client,
        "audited",
        &[json!({"event": "login"}), json!({"event": "logout"})],
    );

    let deadline = std::time::Instant::now() + WAIT;
    let lines = loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.len() >= 2 || std::time::Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(lines.len(), 2, "{lines:?}\n{}", server.log());
    assert_eq!(lines[0]["subscriber"], "file:audit-log");
    assert_eq!(lines[0]["queue"], "audited");
    assert_eq!(lines[0]["payload"]["body"], json!({"event": "login"}));
    assert_eq!(lines[1]["payload"]["Message_Type"], "Notification");
}

#[test]
fn a_message_consumed_before_its_first_notification_attempt_is_still_notified() {
    let server = TestServer::start();
    let receiver = Receiver::start();
    // Each delivery takes a while, so the worker is busy with the first
    // message while the second is posted and consumed.
    receiver.delay(Duration::from_secs(2));
    let client = server.client();
    subscribe(&client, "consumed", &receiver.url("/"), json!({}));
    post(&client, "consumed", &[json!("first")]);
    std::thread::sleep(Duration::from_millis(500));
    post(&client, "consumed", &[json!("second")]);
    let popped = client.delete("/v2/queues/consumed/messages?pop=5").send();
    assert_eq!(popped.status, 200, "{}", popped.text());
    assert_eq!(
        popped.json()["messages"].as_array().map(Vec::len),
        Some(2),
        "both messages were consumed: {}",
        popped.text()
    );

    let received = receiver.wait_for(2, WAIT);
    let bodies: Vec<Value> = received.iter().map(|r| r.json()["body"].clone()).collect();
    assert_eq!(bodies, vec![json!("first"), json!("second")]);
}
