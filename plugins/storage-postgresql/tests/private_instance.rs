//! A private PostgreSQL instance (initdb in a temporary directory, on a
//! free port) stopped and started under a running store: calls fail
//! `UNAVAILABLE` while it is down, succeed again once it is back, without
//! reopening the store; acknowledged writes survive; the change feed
//! reconnects and says `RESYNC`.
//!
//! Needs root (the server runs as the `postgres` user through `runuser`)
//! and Debian's PostgreSQL binaries; without them the test says so and
//! passes (CI, as root with `postgresql` installed, runs it for real).

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use plugin_api::{
    storage::{
        wrap_change_sink, ChangeKind, ChangeSink, MessageStore, NewMessage, QueueChange, QueueRef,
    },
    types::RVec,
    ErrorCode,
};
use storage_postgresql::{PostgresConfig, PostgresMessageStore};
use tokio::sync::mpsc;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The newest installed PostgreSQL's bin directory.
fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("pg_ctl").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

fn as_postgres(program: &Path, args: &[&str]) -> bool {
    Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(program)
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

struct Instance {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl Instance {
    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        assert!(
            as_postgres(
                &self.bin.join("pg_ctl"),
                &[
                    "-D",
                    &self.data(),
                    "-o",
                    &options,
                    "-l",
                    &log,
                    "-w",
                    "start"
                ]
            ),
            "pg_ctl start"
        );
    }

    fn stop(&self) {
        assert!(
            as_postgres(
                &self.bin.join("pg_ctl"),
                &["-D", &self.data(), "-m", "immediate", "-w", "stop"]
            ),
            "pg_ctl stop"
        );
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = as_postgres(
            &self.bin.join("pg_ctl"),
            &["-D", &self.data(), "-m", "immediate", "stop"],
        );
    }
}

/// initdb in a temporary directory owned by `postgres`, or `None` when this
/// machine cannot (not root, no binaries).
fn new_instance() -> Option<Instance> {
    let bin = bin_dir()?;
    let dir = tempfile::tempdir().ok()?;
    let status = Command::new("chown")
        .args(["postgres:postgres"])
        .arg(dir.path())
        .status()
        .ok()?;
    if !status.success() {
        return None;
    }
    let data = dir.path().join("data").display().to_string();
    if !as_postgres(
        &bin.join("initdb"),
        &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
    ) {
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    Some(Instance { bin, dir, port })
}

struct Collect(mpsc::UnboundedSender<QueueChange>);

impl ChangeSink for Collect {
    fn changed(&self, change: QueueChange) {
        let _ = self.0.send(change);
    }
}

fn one() -> RVec<NewMessage> {
    vec![NewMessage {
        ttl: 300,
        delay: 0,
        body: b"{}".to_vec().into(),
    }]
    .into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_rides_out_a_database_stop_and_start() {
    let Some(instance) = new_instance() else {
        eprintln!("skipped: cannot run a private PostgreSQL here (needs root and initdb)");
        return;
    };
    instance.start();
    let config = PostgresConfig {
        uri: format!("postgresql://postgres@127.0.0.1:{}/postgres", instance.port),
        pool_size: 4,
        connect_timeout_ms: 1000,
        ..PostgresConfig::default()
    };
    let store = PostgresMessageStore::open(&config).await.unwrap();
    let (tx, mut changes) = mpsc::unbounded_channel();
    store
        .changes_watch(wrap_change_sink(Collect(tx)))
        .await
        .unwrap();
    let q = QueueRef::new("p", "q");
    for _ in 0..3 {
        store
            .message_post(q.clone(), "c".into(), one(), now())
            .await
            .unwrap();
    }

    instance.stop();
    for _ in 0..3 {
        let e = store
            .message_post(q.clone(), "c".into(), one(), now())
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::UNAVAILABLE, "{e}");
    }
    assert!(!store.is_alive().await.unwrap());
    while changes.try_recv().is_ok() {}

    instance.start();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match store
            .message_post(q.clone(), "c".into(), one(), now())
            .await
        {
            Ok(_) => break,
            Err(e) => {
                assert_eq!(e.code, ErrorCode::UNAVAILABLE, "{e}");
                assert!(Instant::now() < deadline, "no recovery within 20 s: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert!(store.is_alive().await.unwrap());
    assert_eq!(
        store.queue_last_seq(q.clone()).await.unwrap(),
        4,
        "the three acknowledged posts survived, the failed ones left nothing"
    );
    let resync = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match changes.recv().await {
                Some(c) if c.kind == ChangeKind::RESYNC => return,
                Some(_) => {}
                None => panic!("the feed ended"),
            }
        }
    })
    .await;
    assert!(resync.is_ok(), "the feed came back and said RESYNC");
}
