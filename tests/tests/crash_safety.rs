//! A 2xx means durable: kill -9 the real server in the middle of a load and
//! every acknowledged message is there, exactly once, after a restart; and
//! every acknowledged delete stays done.

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
const CONSUMERS: usize = 8;
const BACKLOG: usize = 4000;
const CONSUMED: &str = "/v2/queues/consumed/messages";

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
                let id = message_id(response.json()["resources"][0].as_str().unwrap());
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

/// The message id at the end of a message's href (its query left out).
fn message_id(href: &str) -> String {
    let path = href.split('?').next().unwrap();
    path.rsplit('/').next().unwrap().to_string()
}

/// Every message of `queue` (its messages path), following `next` links.
fn all_messages(client: &Client, queue: &str) -> Vec<Value> {
    let mut messages = Vec::new();
    let mut path = format!("{queue}?echo=true&include_claimed=true&limit=20");
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
    let stored = all_messages(&server.client(), QUEUE);
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

/// What one consumer saw before the server died: the ids it deleted with a
/// 204, and the one whose delete had no answer (it may or may not be done).
#[derive(Default)]
struct Consumed {
    deleted: Vec<String>,
    unanswered: Option<String>,
}

/// Claims five at a time and deletes each with its claim id until `stop`
/// or the server dies.
fn consume_until_stopped(client: Client, stop: Arc<AtomicBool>) -> Consumed {
    let mut consumed = Consumed::default();
    let claims = CONSUMED.replace("/messages", "/claims?limit=5");
    while !stop.load(Ordering::Relaxed) {
        let claimed = match client
            .post(&claims)
            .json(&json!({"ttl": 300, "grace": 60}))
            .try_send()
        {
            Ok(response) if response.status == 201 => response.json(),
            Ok(response) if response.status == 204 => continue,
            Ok(response) => panic!("unexpected {}: {}", response.status, response.text()),
            Err(_) => return consumed,
        };
        for message in claimed["messages"].as_array().unwrap() {
            let href = message["href"].as_str().unwrap();
            let id = message_id(href);
            match client.delete(href).try_send() {
                Ok(response) if response.status == 204 => consumed.deleted.push(id),
                Ok(response) => panic!("unexpected {}: {}", response.status, response.text()),
                Err(_) => {
                    consumed.unanswered = Some(id);
                    return consumed;
                }
            }
        }
    }
    consumed
}

#[test]
fn every_acknowledged_delete_survives_sigkill_and_nothing_else_is_lost() {
    let mut server = TestServer::start();
    let client = server.client();
    let mut posted = HashSet::new();
    for batch in 0..BACKLOG / 10 {
        let messages: Vec<Value> = (0..10)
            .map(|n| json!({"body": {"n": batch * 10 + n}, "ttl": 3600}))
            .collect();
        let response = client
            .post(CONSUMED)
            .json(&json!({ "messages": messages }))
            .send();
        assert_eq!(response.status, 201, "{}", response.text());
        for href in response.json()["resources"].as_array().unwrap() {
            posted.insert(message_id(href.as_str().unwrap()));
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| {
            let (client, stop) = (server.client(), stop.clone());
            thread::spawn(move || consume_until_stopped(client, stop))
        })
        .collect();

    // Let the consumers get going, then crash the server under them.
    let started = Instant::now();
    let probe = server.client();
    while started.elapsed() < Duration::from_secs(20) {
        let stats = probe.get("/v2/queues/consumed/stats").send().json();
        if stats["messages"]["total"]
            .as_u64()
            .unwrap_or(BACKLOG as u64)
            <= (BACKLOG - 1000) as u64
        {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    server.kill();
    stop.store(true, Ordering::Relaxed);
    let (mut deleted, mut unanswered) = (HashSet::new(), HashSet::new());
    for consumer in consumers {
        let consumed = consumer.join().expect("consumer thread");
        deleted.extend(consumed.deleted);
        unanswered.extend(consumed.unanswered);
    }
    assert!(
        deleted.len() >= 500,
        "too little load to be a test: {} deletes",
        deleted.len()
    );

    server.restart();
    let stored: HashSet<String> = all_messages(&server.client(), CONSUMED)
        .iter()
        .map(|message| message["id"].as_str().unwrap().to_string())
        .collect();
    for id in &stored {
        assert!(posted.contains(id), "a message that was never posted: {id}");
        assert!(
            !deleted.contains(id),
            "acknowledged delete of {id} was lost"
        );
    }
    for id in &posted {
        assert!(
            stored.contains(id) || deleted.contains(id) || unanswered.contains(id),
            "message {id} was lost without an acknowledged delete"
        );
    }
}
