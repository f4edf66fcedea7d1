//! WebSocket fan-out: N sockets subscribed to one queue, one publisher;
//! publish→push latency and the server's memory per idle connection.
//!
//! `cargo bench -p zaqar-tests --bench ws_fanout` (N = 1000 and 10000; set
//! `FANOUT_SOCKETS=2000` to choose N, `FANOUT_INTERVAL_MS` for the pause
//! between two posts, default 200 ms, so that one fan-out is not queued
//! behind the previous one). Latency is measured from just before
//! the publisher sends `message_post` to the moment each subscriber's task
//! reads the push, on one clock, so it includes the client side's own
//! scheduling of N tasks on the same 2 cores as the server.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::{connect_async, tungstenite::Message};
use zaqar_tests::TestServer;

const MESSAGES: usize = 50;

fn frame(action: &str, body: Value) -> Message {
    Message::text(
        json!({
            "action": action,
            "headers": {"Client-ID": uuid::Uuid::new_v4().to_string(), "X-Project-ID": "fanout"},
            "body": body,
        })
        .to_string(),
    )
}

/// The `sent_us` number of a pushed notification.
fn sent_stamp(text: &str) -> Option<u64> {
    let rest = &text[text.find("\"sent_us\":")? + 10..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank]
}

async fn run(sockets: usize, interval: Duration) {
    let server = TestServer::start_release_with(
        "[server]\nlog_level = \"warn\"\n[drivers]\ntransports = [\"wsgi\", \"websocket\"]\n\
         [drivers.transport.websocket]\nport = 0\nidle_timeout = 3600\nping_interval = 3600\n",
    );
    let url = format!("ws://{}/", server.address("websocket"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = server.resident_bytes();

    // Open the sockets (idle).
    let mut streams = Vec::with_capacity(sockets);
    for chunk in 0..sockets.div_ceil(250) {
        let opening: Vec<_> = (0..250.min(sockets - chunk * 250))
            .map(|_| connect_async(url.clone()))
            .collect();
        for opened in futures_util::future::join_all(opening).await {
            streams.push(opened.expect("connect").0);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = server.resident_bytes();

    // Subscribe every socket, then let each read its pushes.
    let start = Instant::now();
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(sockets * MESSAGES)));
    let mut readers = Vec::with_capacity(sockets);
    for mut stream in streams {
        stream
            .send(frame(
                "subscription_create",
                json!({"queue_name": "fanout", "ttl": 3600}),
            ))
            .await
            .expect("subscribe");
        let latencies = latencies.clone();
        readers.push(tokio::spawn(async move {
            // Take the time first and find the stamp without a JSON parse,
            // so the client's own work inflates the figure as little as
            // possible.
            let mut mine = Vec::with_capacity(MESSAGES);
            while mine.len() < MESSAGES {
                let Some(Ok(Message::Text(text))) = stream.next().await else {
                    break;
                };
                let now = start.elapsed().as_micros() as u64;
                if let Some(sent) = sent_stamp(text.as_str()) {
                    mine.push(now.saturating_sub(sent) as f64 / 1000.0);
                }
            }
            latencies.lock().unwrap().extend(mine);
        }));
    }
    // Wait until every subscription is in place.
    let http = server.client().with_project("fanout");
    for _ in 0..600 {
        let listed = http.get("/v2/queues/fanout/stats").send();
        let subscribed = tokio::task::spawn_blocking({
            let http = http.clone();
            move || {
                let mut count = 0;
                let mut path = "/v2/queues/fanout/subscriptions?limit=20".to_string();
                loop {
                    let page = http.get(&path).send().json();
                    let items = page["subscriptions"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    if items.is_empty() {
                        return count;
                    }
                    count += items.len();
                    path = page["links"][0]["href"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                }
            }
        })
        .await
        .unwrap();
        let _ = listed;
        if subscribed >= sockets {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let subscribed = server.resident_bytes();

    let (mut publisher, _) = connect_async(url.clone()).await.expect("publisher");
    let cpu_before = server.cpu_time();
    for _ in 0..MESSAGES {
        let sent_us = start.elapsed().as_micros() as u64;
        publisher
            .send(frame(
                "message_post",
                json!({"queue_name": "fanout", "messages": [{"body": {"sent_us": sent_us}, "ttl": 300}]}),
            ))
            .await
            .expect("post");
        let _reply = publisher.next().await;
        tokio::time::sleep(interval).await;
    }
    for reader in readers {
        let _ = tokio::time::timeout(Duration::from_secs(30), reader).await;
    }
    let server_cpu_per_message = (server.cpu_time() - cpu_before) / MESSAGES as u32;
    let mut samples = latencies.lock().unwrap().clone();
    samples.sort_by(|a, b| a.total_cmp(b));
    println!(
        "sockets {sockets:>6}: pushes {:>7}/{:<7} latency ms p50 {:>7.2} p99 {:>7.2} max {:>7.2} | server CPU per message {:>6.2} ms | server memory per idle connection {:>6} B, per subscribed connection {:>6} B",
        samples.len(),
        sockets * MESSAGES,
        percentile(&samples, 50.0),
        percentile(&samples, 99.0),
        samples.last().copied().unwrap_or(f64::NAN),
        server_cpu_per_message.as_secs_f64() * 1000.0,
        idle.saturating_sub(before) / sockets as u64,
        subscribed.saturating_sub(before) / sockets as u64,
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let sizes: Vec<usize> = match std::env::var("FANOUT_SOCKETS") {
        Ok(n) => vec![n.parse().expect("FANOUT_SOCKETS is a number")],
        Err(_) => vec![1000, 10_000],
    };
    let interval = Duration::from_millis(
        std::env::var("FANOUT_INTERVAL_MS")
            .map(|v| v.parse().expect("FANOUT_INTERVAL_MS is a number"))
            .unwrap_or(200),
    );
    for sockets in sizes {
        runtime.block_on(run(sockets, interval));
    }
}
