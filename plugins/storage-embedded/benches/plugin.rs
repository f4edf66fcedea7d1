//! Benchmark of the embedded message store as the host uses it (through the
//! ABI-stable boxed store): single-message posts from 1, 16 and 64
//! concurrent clients, then claim+delete by 16 concurrent consumers, then
//! how long each kind of read holds the caller's task (reads run on it).
//! Every write is durable (fsync before its future resolves).
//!
//! The first line is the disk's own floor: one 4 KiB page rewritten and
//! `fdatasync`ed in a loop in the same directory, with no database at all.
//! No store that syncs before it answers can commit more often than that,
//! so one client can never post faster, whatever the engine.
//!
//! ```text
//! cargo bench -p storage-embedded --bench plugin            # 3 s per case
//! BENCH_SECS=10 BENCH_DIR=/var/tmp cargo bench -p storage-embedded --bench plugin
//! BENCH_WATCH=1 cargo bench -p storage-embedded --bench plugin  # with a change sink, as the host runs it
//! BENCH_ONLY=reads cargo bench -p storage-embedded --bench plugin  # only the reads
//! ```
//! The database lives under `BENCH_DIR` (default: the system temp dir);
//! put it on the disk you want to measure, not on tmpfs.

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use plugin_api::{
    storage::{
        wrap_change_sink, wrap_message_store, ChangeSink, ClaimRequest, MessageStore,
        MessageStoreBox, NewMessage, QueueChange, QueueRef,
    },
    types::ROption::{RNone, RSome},
};
use storage_embedded::{EmbeddedConfig, EmbeddedMessageStore};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

fn body() -> Vec<u8> {
    // A typical small JSON message (~256 bytes).
    format!(
        "{{\"event\":\"order.created\",\"pad\":\"{}\"}}",
        "x".repeat(220)
    )
    .into_bytes()
}

fn bench_secs() -> Duration {
    Duration::from_secs_f64(
        std::env::var("BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3.0),
    )
}

/// A change sink that only counts, like the host's only updates memory.
struct CountingSink(std::sync::atomic::AtomicU64);

impl ChangeSink for CountingSink {
    fn changed(&self, _change: QueueChange) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

async fn open(dir: &tempfile::TempDir) -> Arc<MessageStoreBox> {
    let config = EmbeddedConfig {
        path: dir.path().to_path_buf(),
        ..EmbeddedConfig::default()
    };
    let store = wrap_message_store(EmbeddedMessageStore::open(&config).expect("store opens"));
    if std::env::var("BENCH_WATCH").is_ok_and(|v| v == "1") {
        let sink = wrap_change_sink(CountingSink(Default::default()));
        store.changes_watch(sink).await.expect("changes_watch");
    }
    Arc::new(store)
}

fn temp_dir() -> tempfile::TempDir {
    match std::env::var("BENCH_DIR") {
        Ok(dir) => tempfile::tempdir_in(dir).expect("temp dir in BENCH_DIR"),
        Err(_) => tempfile::tempdir().expect("temp dir"),
    }
}

/// Latency percentiles of a sample, in ms.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

fn report(case: &str, items: usize, elapsed: Duration, mut latencies: Vec<Duration>) {
    latencies.sort_unstable();
    if latencies.is_empty() {
        let rate = items as f64 / elapsed.as_secs_f64();
        println!("| {case} | {rate:.0} | – | – | – |");
        return;
    }
    println!(
        "| {case} | {:.0} | {:.2} | {:.2} | {} |",
        items as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.len()
    );
}

/// The disk floor: how many `fdatasync`s of a rewritten 4 KiB page the
/// disk under `BENCH_DIR` completes per second, one after another.
fn disk_floor(duration: Duration) {
    use std::io::{Seek, SeekFrom, Write};
    let dir = temp_dir();
    let mut file = std::fs::File::create(dir.path().join("floor")).expect("floor file");
    let page = [7u8; 4096];
    // Allocate the block first, so each round measures a data sync and not
    // the file system's extent allocation.
    file.write_all(&page).expect("write");
    file.sync_all().expect("sync");
    let start = Instant::now();
    let mut latencies = Vec::new();
    while start.elapsed() < duration {
        let t = Instant::now();
        file.seek(SeekFrom::Start(0)).expect("seek");
        file.write_all(&page).expect("write");
        file.sync_data().expect("fdatasync");
        latencies.push(t.elapsed());
    }
    let n = latencies.len();
    report(
        "disk floor: rewrite 4 KiB + fdatasync, no database",
        n,
        start.elapsed(),
        latencies,
    );
}

/// One post's worth of pre-fill: 100 messages of the bench body.
fn hundred_messages() -> Vec<NewMessage> {
    (0..100)
        .map(|_| NewMessage {
            ttl: 3600,
            delay: 0,
            body: body().into(),
        })
        .collect()
}

/// `clients` tasks posting one message per request for `duration`.
async fn posts(clients: usize, duration: Duration) {
    let dir = temp_dir();
    let store = open(&dir).await;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let queue = QueueRef::new("bench", &format!("q{}", c % 4));
            let mut latencies = Vec::new();
            while start.elapsed() < duration {
                let message = NewMessage {
                    ttl: 3600,
                    delay: 0,
                    body: body().into(),
                };
                let t = Instant::now();
                store
                    .message_post(queue.clone(), "bench".into(), vec![message].into(), now())
                    .await
                    .expect("post");
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("client"));
    }
    report(
        &format!("post, {clients} clients"),
        all.len(),
        start.elapsed(),
        all,
    );
}

/// 16 consumers claiming 10 at a time and deleting each claimed message
/// with its claim id, from a pre-filled queue.
async fn claim_and_delete(consumers: usize, duration: Duration) {
    let dir = temp_dir();
    let store = open(&dir).await;
    let queue = QueueRef::new("bench", "work");
    // Pre-fill in batches of 100 messages per post.
    let prefill = 50_000;
    for _ in 0..prefill / 100 {
        let batch = hundred_messages();
        store
            .message_post(queue.clone(), "bench".into(), batch.into(), now())
            .await
            .expect("prefill");
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..consumers {
        let store = Arc::clone(&store);
        let queue = queue.clone();
        tasks.push(tokio::spawn(async move {
            let (mut claims, mut deletes, mut done) = (Vec::new(), Vec::new(), 0usize);
            while start.elapsed() < duration {
                let request = ClaimRequest {
                    ttl: 60,
                    grace: 60,
                    limit: 10,
                    dead_letter: RNone,
                };
                let t = Instant::now();
                let claim = store
                    .claim_create(queue.clone(), request, now())
                    .await
                    .expect("claim");
                claims.push(t.elapsed());
                if claim.messages.is_empty() {
                    break;
                }
                for m in claim.messages.iter() {
                    let t = Instant::now();
                    store
                        .message_delete(queue.clone(), m.id.clone(), RSome(claim.id.clone()), now())
                        .await
                        .expect("delete");
                    deletes.push(t.elapsed());
                    done += 1;
                }
            }
            (claims, deletes, done)
        }));
    }
    let (mut claims, mut deletes, mut done) = (Vec::new(), Vec::new(), 0);
    for task in tasks {
        let (c, d, n) = task.await.expect("consumer");
        claims.extend(c);
        deletes.extend(d);
        done += n;
    }
    let elapsed = start.elapsed();
    report(
        &format!("claim (10) + delete each, {consumers} consumers: messages"),
        done,
        elapsed,
        Vec::new(),
    );
    let n = claims.len();
    report("  of which claim_create calls", n, elapsed, claims);
    let n = deletes.len();
    report("  of which message_delete calls", n, elapsed, deletes);
}

/// One client reading a queue of `messages` messages, the oldest tenth of
/// them claimed, each read awaited before the next: how long each read
/// takes. Bounded reads run on the caller's task, so for them this is the
/// time a worker is not available to others; listings run on tokio's
/// blocking pool, so for them it is the caller's wait.
async fn reads(messages: usize, duration: Duration) {
    let dir = temp_dir();
    let store = open(&dir).await;
    let queue = QueueRef::new("bench", "read");
    let mut ids = Vec::with_capacity(messages);
    for _ in 0..messages / 100 {
        let batch = hundred_messages();
        let posted = store
            .message_post(queue.clone(), "bench".into(), batch.into(), now())
            .await
            .expect("prefill");
        ids.extend(posted.iter().map(|m| m.id.clone()));
    }
    let mut claim_id = None;
    for _ in 0..messages / 10 / 20 {
        let request = ClaimRequest {
            ttl: 3600,
            grace: 60,
            limit: 20,
            dead_letter: RNone,
        };
        let claim = store
            .claim_create(queue.clone(), request, now())
            .await
            .expect("claim");
        claim_id = Some(claim.id);
    }
    let claim_id = claim_id.expect("a claim");
    let per_case = duration / 4;
    let mut cases = Vec::new();
    for name in [
        "queue_stats",
        "message_list (10, unclaimed)",
        "message_get_many (1 id)",
        "claim_get (20)",
    ] {
        let (mut latencies, start) = (Vec::new(), Instant::now());
        let mut i = 0usize;
        while start.elapsed() < per_case {
            i += 1;
            let t = Instant::now();
            match name {
                "queue_stats" => {
                    let stats = store
                        .queue_stats(queue.clone(), now())
                        .await
                        .expect("stats");
                    assert_eq!(stats.total as usize, messages);
                }
                "message_list (10, unclaimed)" => {
                    let query = plugin_api::storage::MessageListQuery {
                        after_seq: RNone,
                        limit: 10,
                        exclude_client: RNone,
                        include_claimed: false,
                        include_delayed: false,
                    };
                    let page = store
                        .message_list(queue.clone(), query, now())
                        .await
                        .expect("list");
                    assert_eq!(page.len(), 10);
                }
                "message_get_many (1 id)" => {
                    let id = ids[i.wrapping_mul(7919) % ids.len()].clone();
                    let got = store
                        .message_get_many(queue.clone(), vec![id].into(), now())
                        .await
                        .expect("get");
                    assert_eq!(got.len(), 1);
                }
                _ => {
                    let claim = store
                        .claim_get(queue.clone(), claim_id.clone(), now())
                        .await
                        .expect("claim_get");
                    assert!(claim.is_some());
                }
            }
            latencies.push(t.elapsed());
        }
        latencies.sort_unstable();
        cases.push((name, latencies));
    }
    println!();
    println!(
        "reads, one client, queue of {messages} messages (the oldest {} claimed):",
        messages / 10
    );
    println!();
    println!("| read | calls | p50 µs | p99 µs | max µs |");
    println!("|---|---|---|---|---|");
    for (name, latencies) in cases {
        let micros = |p: f64| percentile(&latencies, p) * 1000.0;
        println!(
            "| {name} | {} | {:.1} | {:.1} | {:.1} |",
            latencies.len(),
            micros(0.5),
            micros(0.99),
            micros(1.0)
        );
    }
}

fn main() {
    // `cargo test --benches` runs this binary with `--bench` absent; keep
    // that fast by measuring only when asked to.
    if !std::env::args().any(|a| a == "--bench") {
        println!("plugin bench: run with `cargo bench` to measure");
        return;
    }
    let duration = bench_secs();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if std::env::var("BENCH_ONLY").is_ok_and(|v| v == "reads") {
        runtime.block_on(reads(50_000, duration));
        return;
    }
    println!("| case | ops/s | p50 ms | p99 ms | samples |");
    println!("|---|---|---|---|---|");
    disk_floor(duration);
    runtime.block_on(async {
        for clients in [1, 16, 64] {
            posts(clients, duration).await;
        }
        claim_and_delete(16, duration).await;
        reads(50_000, duration).await;
    });
}
