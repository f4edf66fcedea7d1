//! Server-sent event fan-out and resume: N event streams on one queue,
//! one publisher; publish→event latency, the server's CPU per message and
//! memory per idle stream, next to a "floor" run that shows what the
//! machine can do at all; then the resume run: clients reconnecting at
//! once, each resuming missed messages by `Last-Event-ID`.
//!
//! `cargo bench -p zaqar-tests --bench sse_fanout` (N = 1000 and 10000;
//! `SSE_STREAMS=2000` to choose N; `SSE_INTERVAL_MS` for the pause between
//! two posts, default 200 ms; `SSE_FLOOR=0` skips the floor runs;
//! `SSE_RESUME_CLIENTS` (1000) and `SSE_RESUME_MISSED` (100) size the resume
//! run, `SSE_RESUME=0` skips it).
//!
//! Latency runs from just before the publisher sends its POST (so it
//! includes the durable commit) to the moment each stream's reader task
//! sees the event, on one clock; the readers run in the bench process on
//! the same cores as the server. The floor is a bare server of 2 std
//! threads in the bench process that writes, for each message, one
//! ready-made chunk of the same shape and size as our event (HTTP chunked
//! framing included) to every stream with one `write_all` each: the least
//! any server can do with one write per stream. Its writer CPU per message
//! (from `/proc/thread-self/schedstat`) is the floor for ours.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    sync::{mpsc, Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zaqar_tests::TestServer;

const MESSAGES: usize = 50;
const PROJECT: &str = "ssebench";
const CLIENT_ID: &str = "3f1c7b2a-9d4e-4c1b-8a6f-2b7d9e0c5a11";

type Latencies = Arc<Mutex<Vec<f64>>>;

fn env_number(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize]
}

fn summary(sorted: &[f64], expected: usize) -> String {
    format!(
        "events {:>7}/{:<7} latency ms p50 {:>7.2} p99 {:>7.2} max {:>7.2}",
        sorted.len(),
        expected,
        percentile(sorted, 50.0),
        percentile(sorted, 99.0),
        sorted.last().copied().unwrap_or(f64::NAN),
    )
}

fn request(address: &str, queue: &str, last_event_id: Option<u64>) -> String {
    let resume = last_event_id.map_or(String::new(), |id| format!("Last-Event-ID: {id}\r\n"));
    format!(
        "GET /v2/queues/{queue}/events HTTP/1.1\r\nHost: {address}\r\nAccept: text/event-stream\r\n\
         Client-ID: {CLIENT_ID}\r\nX-Project-ID: {PROJECT}\r\n{resume}\r\n"
    )
}

/// Opens a stream and waits for its answer's head and `retry:` line.
async fn open(address: &str, queue: &str, last_event_id: Option<u64>) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    stream
        .write_all(request(address, queue, last_event_id).as_bytes())
        .await
        .expect("request");
    let mut seen = Vec::new();
    let mut buffer = [0u8; 1024];
    while !seen.windows(5).any(|w| w == b"retry") {
        let n = stream.read(&mut buffer).await.expect("read head");
        assert!(n > 0, "stream closed: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buffer[..n]);
    }
    stream
}

async fn open_many(address: &str, queue: &str, count: usize) -> Vec<tokio::net::TcpStream> {
    let mut streams = Vec::with_capacity(count);
    for chunk in 0..count.div_ceil(250) {
        let opening: Vec<_> = (0..250.min(count - chunk * 250))
            .map(|_| open(address, queue, None))
            .collect();
        streams.extend(futures_util::future::join_all(opening).await);
    }
    streams
}

/// Every `"sent_us":N` stamp in `text`.
fn stamps(text: &str) -> impl Iterator<Item = u64> + '_ {
    text.match_indices("\"sent_us\":").filter_map(|(at, _)| {
        let digits: String = text[at + 10..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    })
}

fn spawn_reader(
    mut stream: tokio::net::TcpStream,
    start: Instant,
    latencies: Latencies,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut mine = Vec::with_capacity(MESSAGES);
        let mut buffer = vec![0u8; 16 * 1024];
        let mut carry = String::new();
        while mine.len() < MESSAGES {
            let Ok(n) = stream.read(&mut buffer).await else {
                break;
            };
            if n == 0 {
                break;
            }
            let now = start.elapsed().as_micros() as u64;
            carry.push_str(&String::from_utf8_lossy(&buffer[..n]));
            // Only whole events (ended by a blank line) are counted.
            let Some(end) = carry.rfind("\n\n") else {
                continue;
            };
            for sent in stamps(&carry[..end]) {
                mine.push(now.saturating_sub(sent) as f64 / 1000.0);
            }
            carry.drain(..end + 2);
        }
        latencies.lock().unwrap().extend(mine);
    })
}

async fn collect(readers: Vec<tokio::task::JoinHandle<()>>, latencies: &Latencies) -> Vec<f64> {
    for reader in readers {
        let _ = tokio::time::timeout(Duration::from_secs(60), reader).await;
    }
    let mut samples = latencies.lock().unwrap().clone();
    samples.sort_by(|a, b| a.total_cmp(b));
    samples
}

fn start_server() -> TestServer {
    TestServer::start_release_with(
        "[server]\nlog_level = \"warn\"\n[drivers.transport.wsgi]\nidle_timeout = 3600\n\
         max_connections = 0\nmax_connections_per_address = 0\n[streams]\nheartbeat = 3600\n",
    )
}

async fn post(http: &zaqar_tests::Client, queue: &str, body: serde_json::Value) {
    let http = http.clone();
    let path = format!("/v2/queues/{queue}/messages");
    tokio::task::spawn_blocking(move || {
        let answer = http
            .post(&path)
            .json(&json!({"messages": [{"body": body, "ttl": 3600}]}))
            .send();
        assert_eq!(answer.status, 201, "{}", answer.text());
    })
    .await
    .unwrap();
}

async fn fan_out(streams: usize, interval: Duration) {
    let server = start_server();
    let address = server.address("wsgi").to_string();
    let http = server.client().with_project(PROJECT);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = server.resident_bytes();
    let opened = open_many(&address, "fanout", streams).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = server.resident_bytes();

    let start = Instant::now();
    let latencies: Latencies = Arc::new(Mutex::new(Vec::with_capacity(streams * MESSAGES)));
    let readers: Vec<_> = opened
        .into_iter()
        .map(|s| spawn_reader(s, start, latencies.clone()))
        .collect();
    let cpu_before = server.cpu_time();
    for _ in 0..MESSAGES {
        let sent_us = start.elapsed().as_micros() as u64;
        post(&http, "fanout", json!({"sent_us": sent_us})).await;
        tokio::time::sleep(interval).await;
    }
    let samples = collect(readers, &latencies).await;
    let cpu = (server.cpu_time() - cpu_before) / MESSAGES as u32;
    println!(
        "server streams {streams:>6}: {} | CPU per message {:>7.2} ms | memory per idle stream {:>6} B",
        summary(&samples, streams * MESSAGES),
        cpu.as_secs_f64() * 1000.0,
        idle.saturating_sub(before) / streams as u64,
    );
}

// ---------------------------------------------------------------------------
// Floor: one prebuilt chunk, one `write_all` per stream, 2 threads.

fn floor_chunk(sequence: usize, sent_us: u64) -> Vec<u8> {
    let event = format!(
        "id: {sequence}\nevent: message\ndata: {{\"ttl\":3600,\"body\":{{\"sent_us\":{sent_us}}},\
         \"Message_Type\":\"Notification\",\"queue_name\":\"fanout\",\"message_id\":\"{sequence:024x}\",\
         \"sequence\":{sequence},\"subscription_id\":\"sse-{sequence:032x}\"}}\n\n"
    );
    format!("{:x}\r\n{event}\r\n", event.len()).into_bytes()
}

fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(
        stat.split_whitespace().next()?.parse().ok()?,
    ))
}

fn write_loop(mut sockets: Vec<TcpStream>, chunks: mpsc::Receiver<Arc<[u8]>>) -> Option<Duration> {
    let before = thread_cpu();
    for chunk in chunks {
        for socket in &mut sockets {
            let _ = socket.write_all(&chunk);
        }
    }
    thread_cpu().zip(before).map(|(a, b)| a.saturating_sub(b))
}

fn floor_server(
    listener: TcpListener,
    streams: usize,
    stamps: mpsc::Receiver<u64>,
) -> Option<Duration> {
    let mut accepted = Vec::with_capacity(streams);
    while accepted.len() < streams {
        let (mut tcp, _) = listener.accept().expect("floor accept");
        tcp.set_nodelay(true).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            tcp.read_exact(&mut byte).expect("floor read");
            head.push(byte[0]);
        }
        tcp.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
              transfer-encoding: chunked\r\n\r\n11\r\nretry: 2000\n\n\n\r\n",
        )
        .expect("floor head");
        accepted.push(tcp);
    }
    let second = accepted.split_off(streams / 2);
    let writers: Vec<_> = [accepted, second]
        .into_iter()
        .map(|half| {
            let (sender, receiver) = mpsc::channel::<Arc<[u8]>>();
            (
                sender,
                std::thread::spawn(move || write_loop(half, receiver)),
            )
        })
        .collect();
    for (sequence, sent_us) in stamps.into_iter().enumerate() {
        let chunk: Arc<[u8]> = floor_chunk(sequence + 1, sent_us).into();
        for (sender, _) in &writers {
            sender.send(chunk.clone()).unwrap();
        }
    }
    let mut total = Some(Duration::ZERO);
    for (sender, writer) in writers {
        drop(sender);
        let cpu = writer.join().unwrap();
        total = total.zip(cpu).map(|(t, c)| t + c);
    }
    total.map(|t| t / MESSAGES as u32)
}

async fn floor(streams: usize, interval: Duration) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (stamp_sender, stamp_receiver) = mpsc::channel();
    let server = std::thread::spawn(move || floor_server(listener, streams, stamp_receiver));
    let opened = open_many(&address, "fanout", streams).await;
    let start = Instant::now();
    let latencies: Latencies = Arc::new(Mutex::new(Vec::with_capacity(streams * MESSAGES)));
    let readers: Vec<_> = opened
        .into_iter()
        .map(|s| spawn_reader(s, start, latencies.clone()))
        .collect();
    for _ in 0..MESSAGES {
        stamp_sender
            .send(start.elapsed().as_micros() as u64)
            .unwrap();
        tokio::time::sleep(interval).await;
    }
    drop(stamp_sender);
    let samples = collect(readers, &latencies).await;
    let cpu = tokio::task::spawn_blocking(move || server.join().unwrap())
        .await
        .unwrap();
    println!(
        "floor  streams {streams:>6}: {} | writer CPU per message {}",
        summary(&samples, streams * MESSAGES),
        cpu.map_or("n/a".into(), |c| format!(
            "{:>7.2} ms",
            c.as_secs_f64() * 1000.0
        )),
    );
}

// ---------------------------------------------------------------------------
// Resume: clients reconnecting at once, each catching up on missed messages.

async fn resume(clients: usize, missed: usize) {
    let server = start_server();
    let address = server.address("wsgi").to_string();
    let http = server.client().with_project(PROJECT);
    for n in 0..missed {
        post(&http, "resume", json!({"n": n})).await;
    }
    let last = missed.to_string();
    let start = Instant::now();
    let catching_up: Vec<_> = (0..clients)
        .map(|_| {
            let address = address.clone();
            let last = last.clone();
            tokio::spawn(async move {
                let mut stream = open(&address, "resume", Some(0)).await;
                let mut seen = String::new();
                let mut buffer = vec![0u8; 16 * 1024];
                let needle = format!("id: {last}\n");
                while !seen.contains(&needle) {
                    let n = stream.read(&mut buffer).await.expect("read");
                    assert!(n > 0, "stream ended early");
                    seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
                }
                start.elapsed()
            })
        })
        .collect();
    let mut times: Vec<f64> = Vec::with_capacity(clients);
    for client in catching_up {
        times.push(client.await.unwrap().as_secs_f64() * 1000.0);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    println!(
        "resume clients {clients:>6} x {missed} missed: all caught up after {:>8.1} ms (p50 {:>8.1} ms)",
        times.last().copied().unwrap_or(f64::NAN),
        percentile(&times, 50.0),
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let interval = Duration::from_millis(env_number("SSE_INTERVAL_MS").unwrap_or(200) as u64);
    let sizes = env_number("SSE_STREAMS").map_or(vec![1000, 10_000], |n| vec![n]);
    let with_floor = std::env::var("SSE_FLOOR").as_deref() != Ok("0");
    runtime.block_on(async {
        for streams in sizes {
            fan_out(streams, interval).await;
            if with_floor {
                floor(streams, interval).await;
            }
        }
        if std::env::var("SSE_RESUME").as_deref() != Ok("0") {
            resume(
                env_number("SSE_RESUME_CLIENTS").unwrap_or(1000),
                env_number("SSE_RESUME_MISSED").unwrap_or(100),
            )
            .await;
        }
    });
}
