//! Two zaqar-servers on one Redis (the `redis` store, same key prefix): the
//! change feed carries a post made through one host to the other, and the
//! lease makes exactly one host deliver each notification.

use std::time::Duration;

use serde_json::{json, Value};
use zaqar_tests::{Receiver, RedisPrefix, TestServer};

const WAIT: Duration = Duration::from_secs(20);

fn server_on(prefix: &RedisPrefix) -> TestServer {
    TestServer::start_with(&format!(
        "[drivers.message_store]\nname = \"redis\"\n[drivers.message_store.redis]\n{}\n",
        prefix.settings()
    ))
}

#[test]
fn a_post_through_one_host_is_notified_exactly_once_by_the_fleet() {
    let prefix = RedisPrefix::create();
    let a = server_on(&prefix);
    let b = server_on(&prefix);
    let receiver = Receiver::start();
    // Subscribed through host A, posted through host B.
    let r = a
        .client()
        .post("/v2/queues/shared/subscriptions")
        .json(&json!({"subscriber": receiver.url("/hook"), "ttl": 3600, "options": {}}))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    for n in 0..3 {
        let r = b
            .client()
            .post("/v2/queues/shared/messages")
            .json(&json!({"messages": [{"ttl": 300, "body": {"n": n}}]}))
            .send();
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let received = receiver.wait_for(3, WAIT);
    let bodies: Vec<Value> = received.iter().map(|r| r.json()["body"].clone()).collect();
    assert_eq!(bodies, [json!({"n": 0}), json!({"n": 1}), json!({"n": 2})]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        receiver.received().len(),
        3,
        "one delivery per message across both hosts"
    );
    // Each host reads the other's writes.
    let stats = a.client().get("/v2/queues/shared/stats").send().json();
    assert_eq!(stats["messages"]["total"], 3, "{stats}");
}
