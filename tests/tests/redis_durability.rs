//! A 2xx from the redis store means durable as far as Redis is: against a
//! private `redis-server --appendonly yes --appendfsync always`, kill -9
//! zaqar-server in the middle of a load, then kill -9 Redis too, start both
//! again: every acknowledged message is there, exactly once.

use std::{
    collections::{HashMap, HashSet},
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use serde_json::{json, Value};
use zaqar_tests::{Client, TestServer};

const POSTERS: usize = 6;
const QUEUE: &str = "/v2/queues/crash/messages";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port()
}

/// A redis-server with an fsync'd append-only file, killed when dropped.
struct DurableRedis(Child);

impl DurableRedis {
    fn start(port: u16, dir: &Path) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server runs");
        let start = Instant::now();
        // Answers PING only once the append-only file is loaded.
        while !Command::new("redis-cli")
            .args(["-p", &port.to_string(), "ping"])
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"PONG"))
        {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "redis-server did not start"
            );
            thread::sleep(Duration::from_millis(50));
        }
        Self(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for DurableRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn post_until_stopped(
    client: Client,
    poster: usize,
    stop: Arc<AtomicBool>,
) -> HashMap<u64, String> {
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
                acknowledged.insert(n, href.rsplit('/').next().unwrap().to_string());
            }
            Ok(response) => panic!("unexpected {}: {}", response.status, response.text()),
            Err(_) => break,
        }
        n += 1;
    }
    acknowledged
}

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
fn every_acknowledged_post_survives_sigkill_of_server_and_redis() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut redis = DurableRedis::start(port, dir.path());
    let mut server = TestServer::start_with(&format!(
        "[drivers.message_store]\nname = \"redis\"\n\
         [drivers.message_store.redis]\nuri = \"redis://127.0.0.1:{port}\"\n"
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let posters: Vec<_> = (0..POSTERS)
        .map(|poster| {
            let client = server.client();
            let stop = stop.clone();
            thread::spawn(move || (poster, post_until_stopped(client, poster, stop)))
        })
        .collect();
    let started = Instant::now();
    let probe = server.client();
    while started.elapsed() < Duration::from_secs(20) {
        let stats = probe.get("/v2/queues/crash/stats").send().json();
        if stats["messages"]["total"].as_u64().unwrap_or(0) >= 300 {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    server.kill();
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = HashMap::new();
    for poster in posters {
        let (poster, acks) = poster.join().expect("poster thread");
        for (n, id) in acks {
            acknowledged.insert((poster, n), id);
        }
    }
    assert!(
        acknowledged.len() >= 100,
        "too little load: {}",
        acknowledged.len()
    );

    redis.kill();
    let _redis = DurableRedis::start(port, dir.path());
    server.restart();
    let stored = all_messages(&server.client());
    let mut seen = HashSet::new();
    let mut by_key = HashMap::new();
    for message in &stored {
        assert!(
            seen.insert(message["id"].as_str().unwrap().to_string()),
            "listed twice: {message}"
        );
        let key = (
            message["body"]["poster"].as_u64().unwrap() as usize,
            message["body"]["n"].as_u64().unwrap(),
        );
        assert!(by_key
            .insert(key, message["id"].as_str().unwrap().to_string())
            .is_none());
    }
    for (key, id) in &acknowledged {
        assert_eq!(
            by_key.get(key),
            Some(id),
            "acknowledged message {key:?} lost"
        );
    }
}
