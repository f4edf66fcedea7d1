//! Notification throughput: 100 webhook subscriptions on one queue, all
//! pointing at one local receiver; how many notifications per second the
//! server delivers.
//!
//! `cargo bench -p zaqar-tests --bench notify_fanout`
//! (`NOTIFY_SUBSCRIPTIONS`, `NOTIFY_MESSAGES` to change the defaults 100 and 200).

use std::time::{Duration, Instant};

use serde_json::json;
use zaqar_tests::{Receiver, TestServer};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(default)
}

fn main() {
    let subscriptions = env_or("NOTIFY_SUBSCRIPTIONS", 100);
    let messages = env_or("NOTIFY_MESSAGES", 200);
    let server = TestServer::start_release_with("[server]\nlog_level = \"warn\"\n");
    let receiver = Receiver::start();
    let client = server.client();
    for n in 0..subscriptions {
        let response = client
            .post("/v2/queues/fanout/subscriptions")
            .json(&json!({"subscriber": receiver.url(&format!("/s{n}")), "ttl": 3600}))
            .send();
        assert_eq!(response.status, 201, "{}", response.text());
    }
    let expected = subscriptions * messages;
    let start = Instant::now();
    for batch in 0..messages.div_ceil(10) {
        let count = 10.min(messages - batch * 10);
        let bodies: Vec<_> = (0..count)
            .map(|i| json!({"body": {"n": batch * 10 + i}, "ttl": 600}))
            .collect();
        let response = client
            .post("/v2/queues/fanout/messages")
            .json(&json!({ "messages": bodies }))
            .send();
        assert_eq!(response.status, 201, "{}", response.text());
    }
    let posted = start.elapsed();
    receiver.wait_for(expected, Duration::from_secs(600));
    let elapsed = start.elapsed();
    println!(
        "{subscriptions} subscriptions x {messages} messages: {expected} notifications in {:.2} s \
         = {:.0} notifications/s (posting took {:.2} s)",
        elapsed.as_secs_f64(),
        expected as f64 / elapsed.as_secs_f64(),
        posted.as_secs_f64()
    );
}
