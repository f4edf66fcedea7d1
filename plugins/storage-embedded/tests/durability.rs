//! Durability across process death: a second process is refused while the
//! first holds the data directory, and every post acknowledged before a
//! `kill -9` is found exactly once after reopening.
//!
//! The child process is this test binary run again with
//! [`CHILD_ENV`] set, selecting the `child_process` test, which then acts
//! as the store's host instead of testing anything.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{mpsc, Arc},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use plugin_api::{
    storage::{MessageListQuery, MessageStore, NewMessage, QueueRef},
    types::ROption::{RNone, RSome},
    ErrorCode,
};
use storage_embedded::{EmbeddedConfig, EmbeddedMessageStore};

/// Set (to `hold:<dir>`, `post:<dir>`, `post-large:<dir>` or
/// `post-lone:<dir>`) in the child process.
const CHILD_ENV: &str = "ZAQAR_EMBEDDED_TEST_CHILD";

/// Concurrent posters in the child.
const POSTERS: usize = 8;

/// The child never runs longer than this, even if nobody kills it.
const CHILD_LIFETIME: Duration = Duration::from_secs(60);
/// Bytes of padding in a `post-large` body: ~350 posts fill a 16 MiB
/// journal segment.
const LARGE_BODY: usize = 48_000;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

fn config(dir: &Path) -> EmbeddedConfig {
    EmbeddedConfig {
        path: dir.to_path_buf(),
        ..EmbeddedConfig::default()
    }
}

fn queue(poster: usize) -> QueueRef {
    // Two posters per queue: concurrent posts to one queue and to several.
    QueueRef::new("crash", &format!("q{}", poster % 4))
}

/// Not a test of its own: the body of the child process (a no-op when run
/// as a normal test).
#[test]
fn child_process() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let (what, dir) = mode.split_once(':').expect("mode:dir");
        // Large bodies fill journal segments fast, so that checkpoints
        // retire some before the kill; the ACK line names the body by its
        // key, the part before `~`.
        let padding = match what {
            "post-large" => format!("~{}", "x".repeat(LARGE_BODY)),
            _ => String::new(),
        };
        let store = Arc::new(
            EmbeddedMessageStore::open(&config(Path::new(dir))).expect("child opens the store"),
        );
        say("READY");
        if what == "hold" {
            tokio::time::sleep(CHILD_LIFETIME).await;
            return;
        }
        let deadline = Instant::now() + CHILD_LIFETIME;
        // One poster: each post is the only write in flight, which the
        // post log makes durable instead of a durable redb commit.
        let posters = if what == "post-lone" { 1 } else { POSTERS };
        let mut tasks = Vec::new();
        for poster in 0..posters {
            let store = Arc::clone(&store);
            let padding = padding.clone();
            tasks.push(tokio::spawn(async move {
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let body = format!("{}-{poster}-{i}", std::process::id());
                    let message = NewMessage {
                        ttl: 3600,
                        delay: 0,
                        body: format!("\"{body}{padding}\"").into_bytes().into(),
                    };
                    let posted = store
                        .message_post(
                            queue(poster),
                            "crash-test".into(),
                            vec![message].into(),
                            now(),
                        )
                        .await
                        .expect("post");
                    // Acknowledged: from here on the message must survive.
                    say(&format!("ACK {poster} {} {body}", posted[0].id));
                    i += 1;
                }
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
    });
}

/// Writes a line to stdout at once (the parent reads it as it comes).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Starts the child in `mode` on `dir`; returns it and its stdout lines.
fn spawn_child(mode: &str, dir: &Path) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "child_process",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format!("{mode}:{}", dir.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("child starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (lines, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    (child, receiver)
}

fn wait_for(lines: &mpsc::Receiver<String>, wanted: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Ok(line) = lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        // libtest may have printed "test child_process ... " on the same line.
        if line.ends_with(wanted) {
            return;
        }
    }
    panic!("the child never said {wanted}");
}

#[tokio::test(flavor = "multi_thread")]
async fn data_directory_held_by_another_process_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, lines) = spawn_child("hold", dir.path());
    wait_for(&lines, "READY");
    let refused = EmbeddedMessageStore::open(&config(dir.path()));
    child.kill().expect("kill the child");
    let _ = child.wait();
    let error = refused.expect_err("the directory is locked");
    assert_eq!(error.code, ErrorCode::UNAVAILABLE, "{error}");
    assert!(
        error.message.contains(&dir.path().display().to_string()),
        "names the path: {error}"
    );
    assert!(error.message.contains("another process"), "{error}");
    // Once the holder is gone the directory opens.
    EmbeddedMessageStore::open(&config(dir.path())).expect("opens after the holder died");
}

/// Kills a posting child with SIGKILL three times over the same directory;
/// after each kill every acknowledged message is present exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn every_acknowledged_post_survives_sigkill() {
    survives_three_kills("post", |round| 300 + round * 100).await;
}

/// One poster, so that every post is made durable by the post log,
/// answered, and committed in redb without durability after its answer, a
/// durable commit taking them in every few dozen posts: after each kill,
/// the posts only the log held are applied again with the ids they were
/// answered with.
#[tokio::test(flavor = "multi_thread")]
async fn every_acknowledged_lone_post_survives_sigkill_with_its_id() {
    // Not a multiple of the log's cycle, so that some posts are only in the
    // log when the kill comes.
    survives_three_kills("post-lone", |round| 150 + round * 37).await;
}

/// Kills a child posting in `mode` three times over one directory, each
/// time once it has acknowledged `more(round)` more posts (or after 30 s);
/// after each kill every acknowledged post is there exactly once.
async fn survives_three_kills(mode: &str, more: impl Fn(usize) -> usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut acknowledged: HashMap<String, (usize, String)> = HashMap::new();
    for round in 0..3 {
        let wanted = more(round);
        let target = acknowledged.len() + wanted;
        let before = acknowledged.len();
        post_then_sigkill(
            mode,
            dir.path(),
            &mut acknowledged,
            Duration::from_secs(30),
            |acknowledged| acknowledged.len() >= target,
        );
        assert!(
            acknowledged.len() - before >= wanted / 3,
            "the child made progress"
        );
        verify(dir.path(), &acknowledged).await;
    }
}

/// Posts large messages until the journal has moved through several
/// segments and checkpoints have retired the older ones, then SIGKILLs:
/// whatever a checkpoint counted as in the database file must be there,
/// and the records of the segments left must replay onto it.
#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_posts_survive_sigkill_after_journal_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let oldest_segment = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|entry| {
                let name = entry.unwrap().file_name().into_string().ok()?;
                name.strip_prefix("journal-")?
                    .strip_suffix(".log")?
                    .parse::<u64>()
                    .ok()
            })
            .min()
    };
    let mut acknowledged: HashMap<String, (usize, String)> = HashMap::new();
    // Two segments retired: the oldest left is the third or later.
    post_then_sigkill(
        "post-large",
        dir.path(),
        &mut acknowledged,
        Duration::from_secs(50),
        |_| oldest_segment().unwrap_or(0) >= 2,
    );
    assert!(
        oldest_segment().unwrap_or(0) >= 2,
        "checkpoints retired segments within the time ({} posts acknowledged)",
        acknowledged.len()
    );
    verify(dir.path(), &acknowledged).await;
}

/// Starts a child posting in `mode` on `dir`, records what it
/// acknowledges until `done` says so or `within` has passed, then kills it
/// with SIGKILL and records the acknowledgements it wrote before dying.
fn post_then_sigkill(
    mode: &str,
    dir: &Path,
    acknowledged: &mut HashMap<String, (usize, String)>,
    within: Duration,
    mut done: impl FnMut(&HashMap<String, (usize, String)>) -> bool,
) {
    let (mut child, lines) = spawn_child(mode, dir);
    wait_for(&lines, "READY");
    let deadline = Instant::now() + within;
    while !done(acknowledged) && Instant::now() < deadline {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(100)) {
            record(acknowledged, &line);
        }
    }
    child.kill().expect("SIGKILL the child mid-load");
    let _ = child.wait();
    // Lines already written before the kill were acknowledged too.
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(5)) {
        record(acknowledged, &line);
    }
}

fn record(acknowledged: &mut HashMap<String, (usize, String)>, line: &str) {
    let mut parts = line.split(' ');
    if parts.next() != Some("ACK") {
        return;
    }
    let poster: usize = parts.next().and_then(|p| p.parse().ok()).expect("poster");
    let id = parts.next().expect("id").to_string();
    let body = parts.next().expect("body").to_string();
    let previous = acknowledged.insert(format!("{}/{id}", queue(poster).name), (poster, body));
    assert!(previous.is_none(), "an id was acknowledged twice: {line}");
}

/// Reopens the directory and checks the acknowledged messages.
async fn verify(dir: &Path, acknowledged: &HashMap<String, (usize, String)>) {
    let store = EmbeddedMessageStore::open(&config(dir)).expect("reopens after SIGKILL");
    let mut found: HashMap<String, String> = HashMap::new();
    for q in 0..4 {
        let queue = QueueRef::new("crash", &format!("q{q}"));
        let mut after = RNone;
        let mut last_seq = 0;
        loop {
            let query = MessageListQuery {
                after_seq: after,
                limit: 500,
                exclude_client: RNone,
                include_claimed: true,
                include_delayed: true,
            };
            let page = store
                .message_list(queue.clone(), query, now())
                .await
                .expect("list");
            let Some(last) = page.last() else { break };
            after = RSome(last.seq);
            for m in page.iter() {
                assert!(m.seq > last_seq, "sequence numbers increase after recovery");
                last_seq = m.seq;
                let body = String::from_utf8(m.body.to_vec()).unwrap();
                let body = body.trim_matches('"');
                let body = body.split('~').next().unwrap_or(body).to_string();
                let key = format!("{}/{}", queue.name, m.id);
                assert!(
                    found.insert(key, body).is_none(),
                    "message {} listed twice",
                    m.id
                );
            }
        }
    }
    for (key, (_, body)) in acknowledged {
        assert_eq!(
            found.get(key),
            Some(body),
            "acknowledged message {key} was lost"
        );
    }
    eprintln!(
        "after SIGKILL: {} acknowledged, {} found",
        acknowledged.len(),
        found.len()
    );
    // Bodies are unique per process, poster and counter: none was stored twice.
    let mut bodies: Vec<&String> = found.values().collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), found.len(), "a message was stored twice");
}
