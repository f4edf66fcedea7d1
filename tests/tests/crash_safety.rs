//! A 2xx means durable: kill -9 the real server in the middle of a load and
//! every acknowledged message is there, exactly once, after a restart.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use serde_json::{json, Value};
use zaqar_tests::{Client, TestServer};

const POSTERS: usize = 8;
const QUEUE: &str = "/v2/queues/crash/messages";

/// Posts one message at a time until `stop`, returning the `(poster, n)` →
/// id of every message the server acknowledged with 201.
fn post_until_stopped(
    client: Client,
    poster: usize,
    stop: Arc<AtomicBool>,
) -> HashMap<(usize, u64), String> {
    let mut acknowledged = HashMap::new();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let body = json!({"messages": [{"body": {"poster": poster, "n": n}, "ttl": 3600}]});
        match client.post(QUEUE).json(&body).try_send() {
            Ok(response) if response.status == 201 => {
                let href = response.json()["resources"][0]
                    .as_str()
                    .unwrap()
                    .to_string();
                let id = href.rsplit('/').next().unwrap().to_string();
                acknowledged.insert((poster, n), id);
            }
            Ok(response) => panic!("unexpected {}: {}", response.status, response.text()),
            // The server was killed under this request: not acknowledged.
            Err(_) => break,
        }
        n += 1;
    }
    acknowledged
}

/// Every message of the queue, following `next` links.
fn all_messages(client: &Client) -> Vec<Value> {
    let mut messages = Vec::new();
    let mut path = format!("{QUEUE}?echo=true&include_claimed=true&limit=20");
    loop {
        let response = client.get(&path).send();
        assert_eq!(response.status, 200, "{}", response.text());
        let page = response.json();
        let items = page["messages"].as_array().unwrap().clone();
        if items.is_empty() {
            return messages;
        }
        messages.extend(items);
        path = page["links"][0]["href"].as_str().unwrap().to_string();
    }
}

#[test]
fn every_acknowledged_post_survives_sigkill_exactly_once() {
    let mut server = TestServer::start();
    let stop = Arc::new(AtomicBool::new(false));
    let posters: Vec<_> = (0..POSTERS)
        .map(|poster| {
            let client = server.client();
            let stop = stop.clone();
            thread::spawn(move || post_until_stopped(client, poster, stop))
        })
        .collect();

    // Let the load build up, then crash the server under it.
    let started = Instant::now();
    let probe = server.client();
    while started.elapsed() < Duration::from_secs(20) {
        let stats = probe.get("/v2/queues/crash/stats").send().json();
        if stats["messages"]["total"].as_u64().unwrap_or(0) >= 400 {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    server.kill();
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = HashMap::new();
    for poster in posters {
        acknowledged.extend(poster.join().expect("poster thread"));
    }
    assert!(
        acknowledged.len() >= 100,
        "too little load to be a test: {}",
        acknowledged.len()
    );

    server.restart();
    let stored = all_messages(&server.client());
    // The embedded store brought its database file up to date from the
    // journal the killed server left, and says so in the host's log.
    let log = server.log();
    assert!(
        zaqar_tests::selected_store() != "embedded"
            || log
                .lines()
                .any(|line| line.contains("replayed") && line.contains("journal records")),
        "the journal replay is logged:\n{log}"
    );
    let mut seen_ids = HashSet::new();
    let mut seen_bodies = HashSet::new();
    for message in &stored {
        let id = message["id"].as_str().unwrap().to_string();
        assert!(seen_ids.insert(id), "message listed twice: {message}");
        let key = (
            message["body"]["poster"].as_u64().unwrap() as usize,
            message["body"]["n"].as_u64().unwrap(),
        );
        assert!(seen_bodies.insert(key), "body stored twice: {message}");
    }
    for (key, id) in &acknowledged {
        assert!(
            seen_bodies.contains(key),
            "acknowledged message {key:?} ({id}) was lost"
        );
        assert!(
            seen_ids.contains(id),
            "acknowledged message {key:?} changed id"
        );
    }
}
