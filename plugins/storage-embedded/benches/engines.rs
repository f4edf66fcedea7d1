//! Engine comparison that chose redb for the embedded store.
//!
//! Same access pattern on each engine, through the same group-commit
//! harness as the plugin (one writer thread drains a channel of pending
//! operations, applies them in one transaction, makes it durable with one
//! fsync, then answers each caller):
//!
//! * single-message posts from 1, 16 and 64 concurrent producers;
//! * claim + delete: 16 consumers each claim 10 messages (oldest first,
//!   skipping claimed ones), then delete them one request per message.
//!
//! Engines: redb 4 (copy-on-write B-tree, `Durability::Immediate`), SQLite
//! in WAL mode with `synchronous=FULL` (fsync of the WAL on every commit),
//! fjall 3 (LSM tree; writes applied to the keyspace, then
//! `persist(SyncAll)` once per batch).
//!
//! ```text
//! cargo bench -p storage-embedded --features engine-bench --bench engines
//! BENCH_SECS=5 BENCH_ROUNDS=3 BENCH_DIR=/var/tmp cargo bench -p storage-embedded --features engine-bench --bench engines
//! ```

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use tokio::sync::{mpsc, oneshot};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

fn body() -> Vec<u8> {
    format!(
        "{{\"event\":\"order.created\",\"pad\":\"{}\"}}",
        "x".repeat(220)
    )
    .into_bytes()
}

/// What a caller asks the writer to do.
enum Op {
    Post(Vec<u8>),
    Claim(usize),
    Delete(u64),
}

/// An operation with its result (sequence numbers) and reply channel.
struct Pending {
    op: Op,
    result: Vec<u64>,
    reply: oneshot::Sender<Vec<u64>>,
}

/// A storage engine under test: applies a batch in one durable commit.
trait Engine: Send + 'static {
    const NAME: &'static str;
    fn open(dir: &Path) -> Self;
    fn apply(&mut self, batch: &mut [Pending]);
}

/// Value layout shared by all engines: claim expiry (8 bytes LE) + body.
fn value(claim_expires: u64, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + body.len());
    v.extend_from_slice(&claim_expires.to_le_bytes());
    v.extend_from_slice(body);
    v
}

fn claim_of(v: &[u8]) -> u64 {
    u64::from_le_bytes(v[..8].try_into().expect("8 bytes"))
}

mod redb_engine {
    use redb::{Database, Durability, ReadableTable, TableDefinition};

    use super::*;

    const MESSAGES: TableDefinition<u64, &[u8]> = TableDefinition::new("m");

    pub struct Redb {
        db: Database,
        next: u64,
    }

    impl Engine for Redb {
        const NAME: &'static str = "redb 4.6";

        fn open(dir: &Path) -> Self {
            let db = Database::create(dir.join("bench.redb")).expect("redb opens");
            Self { db, next: 0 }
        }

        fn apply(&mut self, batch: &mut [Pending]) {
            let mut txn = self.db.begin_write().expect("begin");
            txn.set_durability(Durability::Immediate).expect("durable");
            {
                let mut t = txn.open_table(MESSAGES).expect("table");
                let now = now();
                for p in batch.iter_mut() {
                    match &p.op {
                        Op::Post(body) => {
                            self.next += 1;
                            t.insert(self.next, value(0, body).as_slice())
                                .expect("insert");
                            p.result.push(self.next);
                        }
                        Op::Claim(limit) => {
                            let mut taken = Vec::new();
                            for entry in t.range(0..).expect("range") {
                                let (k, v) = entry.expect("entry");
                                if claim_of(v.value()) <= now {
                                    taken.push((k.value(), v.value()[8..].to_vec()));
                                    if taken.len() >= *limit {
                                        break;
                                    }
                                }
                            }
                            for (seq, body) in taken {
                                t.insert(seq, value(now + 60_000, &body).as_slice())
                                    .expect("stamp");
                                p.result.push(seq);
                            }
                        }
                        Op::Delete(seq) => {
                            t.remove(*seq).expect("remove");
                        }
                    }
                }
            }
            txn.commit().expect("commit");
        }
    }
}

mod sqlite_engine {
    use rusqlite::{params, Connection};

    use super::*;

    pub struct Sqlite {
        conn: Connection,
        next: u64,
    }

    impl Engine for Sqlite {
        const NAME: &'static str = "SQLite 3 (WAL, synchronous=FULL)";

        fn open(dir: &Path) -> Self {
            let conn = Connection::open(dir.join("bench.sqlite")).expect("sqlite opens");
            conn.execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
                 CREATE TABLE IF NOT EXISTS m (seq INTEGER PRIMARY KEY, claim INTEGER NOT NULL, body BLOB NOT NULL);",
            )
            .expect("schema");
            Self { conn, next: 0 }
        }

        fn apply(&mut self, batch: &mut [Pending]) {
            let txn = self.conn.transaction().expect("begin");
            {
                let now = now() as i64;
                let mut insert = txn
                    .prepare("INSERT INTO m (seq, claim, body) VALUES (?1, 0, ?2)")
                    .expect("prepare");
                let mut select = txn
                    .prepare("SELECT seq FROM m WHERE claim <= ?1 ORDER BY seq LIMIT ?2")
                    .expect("prepare");
                let mut stamp = txn
                    .prepare("UPDATE m SET claim = ?1 WHERE seq = ?2")
                    .expect("prepare");
                let mut delete = txn
                    .prepare("DELETE FROM m WHERE seq = ?1")
                    .expect("prepare");
                for p in batch.iter_mut() {
                    match &p.op {
                        Op::Post(body) => {
                            self.next += 1;
                            insert
                                .execute(params![self.next as i64, body])
                                .expect("insert");
                            p.result.push(self.next);
                        }
                        Op::Claim(limit) => {
                            let seqs: Vec<i64> = select
                                .query_map(params![now, *limit as i64], |r| r.get(0))
                                .expect("select")
                                .map(|r| r.expect("row"))
                                .collect();
                            for seq in seqs {
                                stamp.execute(params![now + 60_000, seq]).expect("stamp");
                                p.result.push(seq as u64);
                            }
                        }
                        Op::Delete(seq) => {
                            delete.execute(params![*seq as i64]).expect("delete");
                        }
                    }
                }
            }
            txn.commit().expect("commit");
        }
    }
}

mod fjall_engine {
    use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

    use super::*;

    pub struct Fjall {
        db: Database,
        messages: Keyspace,
        next: u64,
    }

    impl Engine for Fjall {
        const NAME: &'static str = "fjall 3.1";

        fn open(dir: &Path) -> Self {
            let db = Database::builder(dir.join("fjall"))
                .open()
                .expect("fjall opens");
            let messages = db
                .keyspace("m", KeyspaceCreateOptions::default)
                .expect("keyspace");
            Self {
                db,
                messages,
                next: 0,
            }
        }

        fn apply(&mut self, batch: &mut [Pending]) {
            let now = now();
            for p in batch.iter_mut() {
                match &p.op {
                    Op::Post(body) => {
                        self.next += 1;
                        self.messages
                            .insert(self.next.to_be_bytes(), value(0, body))
                            .expect("insert");
                        p.result.push(self.next);
                    }
                    Op::Claim(limit) => {
                        let mut taken = Vec::new();
                        for guard in self.messages.iter() {
                            let (k, v) = guard.into_inner().expect("entry");
                            if claim_of(&v) <= now {
                                taken.push((
                                    u64::from_be_bytes(k[..8].try_into().expect("key")),
                                    v[8..].to_vec(),
                                ));
                                if taken.len() >= *limit {
                                    break;
                                }
                            }
                        }
                        for (seq, body) in taken {
                            self.messages
                                .insert(seq.to_be_bytes(), value(now + 60_000, &body))
                                .expect("stamp");
                            p.result.push(seq);
                        }
                    }
                    Op::Delete(seq) => {
                        self.messages.remove(seq.to_be_bytes()).expect("remove");
                    }
                }
            }
            self.db.persist(PersistMode::SyncAll).expect("fsync");
        }
    }
}

/// The group-commit writer for engine `E`, with a handle to submit ops.
#[derive(Clone)]
struct Writer(mpsc::Sender<Pending>);

impl Writer {
    fn start<E: Engine>(dir: &Path) -> (Self, std::thread::JoinHandle<()>) {
        let mut engine = E::open(dir);
        let (sender, mut receiver) = mpsc::channel::<Pending>(16 * 1024);
        let thread = std::thread::spawn(move || {
            while let Some(first) = receiver.blocking_recv() {
                let mut batch = vec![first];
                while batch.len() < 2048 {
                    match receiver.try_recv() {
                        Ok(p) => batch.push(p),
                        Err(_) => break,
                    }
                }
                engine.apply(&mut batch);
                for p in batch {
                    let _ = p.reply.send(p.result);
                }
            }
        });
        (Self(sender), thread)
    }

    async fn call(&self, op: Op) -> Vec<u64> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            op,
            result: Vec::new(),
            reply,
        };
        if self.0.send(pending).await.is_err() {
            panic!("the writer stopped");
        }
        answer.await.expect("writer answers")
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
}

fn row(engine: &str, case: &str, items: usize, elapsed: Duration, mut latencies: Vec<Duration>) {
    latencies.sort_unstable();
    println!(
        "| {engine} | {case} | {:.0} | {:.2} | {:.2} |",
        items as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
}

fn temp_dir() -> tempfile::TempDir {
    match std::env::var("BENCH_DIR") {
        Ok(dir) => tempfile::tempdir_in(dir).expect("temp dir in BENCH_DIR"),
        Err(_) => tempfile::tempdir().expect("temp dir"),
    }
}

async fn posts<E: Engine>(producers: usize, duration: Duration) {
    let dir = temp_dir();
    let (writer, thread) = Writer::start::<E>(dir.path());
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..producers {
        let writer = writer.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while start.elapsed() < duration {
                let t = Instant::now();
                writer.call(Op::Post(body())).await;
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("producer"));
    }
    let elapsed = start.elapsed();
    drop(writer);
    thread.join().expect("writer");
    row(
        E::NAME,
        &format!("post, {producers} producers"),
        all.len(),
        elapsed,
        all,
    );
}

async fn claim_delete<E: Engine>(consumers: usize, duration: Duration) {
    let dir = temp_dir();
    let (writer, thread) = Writer::start::<E>(dir.path());
    // Pre-fill concurrently so it is group-committed too (not timed).
    let fill: Vec<_> = (0..64)
        .map(|_| {
            let writer = writer.clone();
            tokio::spawn(async move {
                for _ in 0..500 {
                    writer.call(Op::Post(body())).await;
                }
            })
        })
        .collect();
    for f in fill {
        f.await.expect("prefill");
    }
    let writer = Arc::new(writer);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..consumers {
        let writer = Arc::clone(&writer);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut done = 0;
            while start.elapsed() < duration {
                let t = Instant::now();
                let seqs = writer.call(Op::Claim(10)).await;
                latencies.push(t.elapsed());
                if seqs.is_empty() {
                    break;
                }
                for seq in seqs {
                    let t = Instant::now();
                    writer.call(Op::Delete(seq)).await;
                    latencies.push(t.elapsed());
                    done += 1;
                }
            }
            (done, latencies)
        }));
    }
    let (mut done, mut all) = (0, Vec::new());
    for task in tasks {
        let (n, l) = task.await.expect("consumer");
        done += n;
        all.extend(l);
    }
    let elapsed = start.elapsed();
    drop(writer);
    thread.join().expect("writer");
    row(
        E::NAME,
        &format!("claim 10 + delete each, {consumers} consumers (msgs/s; latency per call)"),
        done,
        elapsed,
        all,
    );
}

async fn engine<E: Engine>(duration: Duration) {
    for producers in [1, 16, 64] {
        posts::<E>(producers, duration).await;
    }
    claim_delete::<E>(16, duration).await;
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("engines bench: run with `cargo bench` to measure");
        return;
    }
    let secs = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let duration = Duration::from_secs_f64(secs);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("| engine | case | ops/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|");
    // Rounds interleave the engines so that a burst of load from elsewhere
    // on a shared machine does not land on one engine only.
    let rounds = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    runtime.block_on(async {
        for _ in 0..rounds {
            engine::<redb_engine::Redb>(duration).await;
            engine::<sqlite_engine::Sqlite>(duration).await;
            engine::<fjall_engine::Fjall>(duration).await;
        }
    });
}
