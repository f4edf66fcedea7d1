//! Redis unreachable at start-up, lost while running, and back again: each
//! test runs its own `redis-server` on a free port.

mod support;

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use plugin_api::{
    storage::{MessageStore, QueueRef},
    ErrorCode,
};
use storage_redis::{RedisConfig, RedisMessageStore};
use support::{everything, free_port, now, one};

/// A private redis-server, killed when dropped.
struct PrivateRedis {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl PrivateRedis {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let child = spawn(port, dir.path());
        Self { child, port, dir }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn restart(&mut self) {
        self.stop();
        self.child = spawn(self.port, self.dir.path());
    }

    fn uri(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn(port: u16, dir: &std::path::Path) -> Child {
    let child = Command::new("redis-server")
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--save",
            "",
        ])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server runs");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

#[tokio::test]
async fn unreachable_at_start_up_names_the_uri_without_its_password() {
    let port = free_port();
    let config = RedisConfig {
        uri: format!("redis://zaqar:s3cret@127.0.0.1:{port}/2"),
        connect_timeout_ms: 1000,
        ..RedisConfig::default()
    };
    let e = RedisMessageStore::open(&config)
        .await
        .expect_err("nothing listens there");
    assert_eq!(e.code, ErrorCode::UNAVAILABLE, "{}", e.message);
    assert!(
        e.message
            .contains(&format!("redis://zaqar:***@127.0.0.1:{port}/2")),
        "{}",
        e.message
    );
    assert!(!e.message.contains("s3cret"), "{}", e.message);
}

#[tokio::test]
async fn refused_uri_forms_fail_at_start_up_as_bad_config() {
    for (uri, why) in [
        (
            "rediss://u:s3cret@h:6380",
            "TLS (rediss://) is not supported",
        ),
        ("redis://a:1,b:2", "need `master=NAME`"),
        ("redis+sentinel://a:1,b:2", "needs `master=NAME`"),
    ] {
        let config = RedisConfig {
            uri: uri.into(),
            ..RedisConfig::default()
        };
        let e = RedisMessageStore::open(&config).await.expect_err("refused");
        assert_eq!(e.code, ErrorCode::BAD_CONFIG, "{uri}: {}", e.message);
        assert!(e.message.contains(why), "{uri}: {}", e.message);
        assert!(!e.message.contains("s3cret"), "{uri}: {}", e.message);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_redis_is_unavailable_then_recovers_without_restart() {
    let mut redis = PrivateRedis::start();
    let config = RedisConfig {
        uri: redis.uri(),
        connect_timeout_ms: 500,
        response_timeout_ms: 1000,
        ..RedisConfig::default()
    };
    let store = RedisMessageStore::open(&config).await.expect("opens");
    let q = QueueRef::new("p", "q");
    store
        .message_post(q.clone(), "c".into(), one("\"before\""), now())
        .await
        .expect("posts");
    assert!(store.is_alive().await.unwrap());

    redis.stop();
    let e = store
        .message_post(q.clone(), "c".into(), one("\"lost\""), now())
        .await
        .expect_err("Redis is gone");
    assert_eq!(e.code, ErrorCode::UNAVAILABLE, "{}", e.message);
    let e = store
        .message_list(q.clone(), everything(), now())
        .await
        .expect_err("Redis is gone");
    assert_eq!(e.code, ErrorCode::UNAVAILABLE, "{}", e.message);
    assert!(!store.is_alive().await.unwrap());

    // Back (empty: this Redis keeps nothing on disk); the same store object
    // works again within a few seconds.
    redis.restart();
    let start = Instant::now();
    loop {
        match store
            .message_post(q.clone(), "c".into(), one("\"after\""), now())
            .await
        {
            Ok(_) => break,
            Err(e) => {
                assert_eq!(e.code, ErrorCode::UNAVAILABLE, "{}", e.message);
                assert!(
                    start.elapsed() < Duration::from_secs(15),
                    "no recovery: {}",
                    e.message
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let listed = store
        .message_list(q, everything(), now())
        .await
        .expect("lists");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].body.as_slice(), b"\"after\"");
    assert!(store.is_alive().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_feed_lost_and_back_reports_a_resync() {
    let mut redis = PrivateRedis::start();
    let config = RedisConfig {
        uri: redis.uri(),
        connect_timeout_ms: 500,
        response_timeout_ms: 1000,
        ..RedisConfig::default()
    };
    let store = RedisMessageStore::open(&config).await.expect("opens");
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    store
        .watch_changes(move |c| {
            let _ = tx.lock().unwrap().send(c);
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.restart();
    let change = rx
        .recv_timeout(Duration::from_secs(15))
        .expect("a resync once Redis is back");
    assert_eq!(change.kind, storage_redis::changes::Change::RESYNC);
    // And the feed works again.
    let q = QueueRef::new("p", "q");
    let start = Instant::now();
    while store
        .message_post(q.clone(), "c".into(), one("\"x\""), now())
        .await
        .is_err()
    {
        assert!(start.elapsed() < Duration::from_secs(15));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let change = rx.recv_timeout(Duration::from_secs(10)).expect("the post");
    assert_eq!((change.kind, change.last_seq), (0, 1));
}
