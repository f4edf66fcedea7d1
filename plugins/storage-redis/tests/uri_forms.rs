//! The URI forms other than one TCP server, against real `redis-server`
//! processes: a UNIX socket (`unix:///path` and Zaqar's `redis:/path`), and
//! Sentinel with Zaqar's form (`redis://sentinel[:port],...?master=NAME`): a
//! private master, its replica and one Sentinel, each on a free port. The
//! store finds the master through the Sentinel, follows a failover when the
//! master is killed, and refuses to start when the Sentinel knows no such
//! master.

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

/// A `redis-server` child, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(dir: &std::path::Path, args: &[&str]) -> Self {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(args)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
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
        Self { child, port }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> redis::RedisResult<T> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}", self.port))?;
        cmd.query(&mut client.get_connection()?)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A master, a replica of it, and a Sentinel watching them as `mymaster`.
struct Group {
    master: Server,
    _replica: Server,
    sentinel: Server,
    _dir: tempfile::TempDir,
}

impl Group {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let master = Server::start(dir.path(), &["--dbfilename", "master.rdb"]);
        let replica_of = master.port.to_string();
        let replica = Server::start(
            dir.path(),
            &[
                "--dbfilename",
                "replica.rdb",
                "--replicaof",
                "127.0.0.1",
                &replica_of,
            ],
        );
        // Sentinel rewrites its configuration file, so it gets its own.
        let conf = dir.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "sentinel monitor mymaster 127.0.0.1 {} 1\n\
                 sentinel down-after-milliseconds mymaster 500\n\
                 sentinel failover-timeout mymaster 2000\n",
                master.port
            ),
        )
        .expect("sentinel.conf");
        let conf = conf.display().to_string();
        let sentinel = Server::start(dir.path(), &[&conf, "--sentinel"]);
        let group = Self {
            master,
            _replica: replica,
            sentinel,
            _dir: dir,
        };
        // Wait until the replica is in sync and the Sentinel has seen it, so
        // it can promote it.
        let start = Instant::now();
        loop {
            let replicas: redis::RedisResult<Vec<redis::Value>> = group
                .sentinel
                .query(redis::cmd("SENTINEL").arg("replicas").arg("mymaster"));
            let synced: redis::RedisResult<i64> =
                group.master.query(redis::cmd("WAIT").arg(1).arg(100));
            if replicas.is_ok_and(|r| !r.is_empty()) && synced.is_ok_and(|n| n == 1) {
                break group;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the replica never synced or the Sentinel never saw it"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn uri(&self) -> String {
        format!("redis://127.0.0.1:{}?master=mymaster", self.sentinel.port)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_finds_the_master_through_sentinel_and_follows_a_failover() {
    let mut group = Group::start();
    let config = RedisConfig {
        uri: group.uri(),
        connect_timeout_ms: 1000,
        response_timeout_ms: 1000,
        ..RedisConfig::default()
    };
    let store = RedisMessageStore::open(&config).await.expect("opens");
    let q = QueueRef::new("p", "q");
    store
        .message_post(q.clone(), "c".into(), one("\"before\""), now())
        .await
        .expect("posts to the master");
    // Replicated before the master dies (replication is asynchronous).
    let replicated: i64 = group
        .master
        .query(redis::cmd("WAIT").arg(1).arg(5000))
        .expect("WAIT");
    assert_eq!(replicated, 1);

    group.master.kill();
    // Calls fail UNAVAILABLE until the Sentinel has promoted the replica,
    // then the same store object works on the new master.
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
                    start.elapsed() < Duration::from_secs(30),
                    "no failover followed: {}",
                    e.message
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let bodies: Vec<Vec<u8>> = store
        .message_list(q, everything(), now())
        .await
        .expect("lists")
        .iter()
        .map(|m| m.body.to_vec())
        .collect();
    assert_eq!(bodies, vec![b"\"before\"".to_vec(), b"\"after\"".to_vec()]);
}

#[tokio::test]
async fn a_master_the_sentinel_does_not_know_fails_start_up_naming_the_uri() {
    let group = Group::start();
    let uri = format!(
        "redis://127.0.0.1:{}?master=nosuchmaster&sentinel_password=s3cret",
        group.sentinel.port
    );
    let config = RedisConfig {
        uri,
        connect_timeout_ms: 1000,
        ..RedisConfig::default()
    };
    let e = RedisMessageStore::open(&config)
        .await
        .expect_err("no such master");
    assert_eq!(e.code, ErrorCode::UNAVAILABLE, "{}", e.message);
    assert!(e.message.contains("nosuchmaster"), "{}", e.message);
    assert!(!e.message.contains("s3cret"), "{}", e.message);
}

#[tokio::test]
async fn a_unix_socket_is_reached_in_both_spellings() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("redis.sock");
    let socket_arg = socket.display().to_string();
    let _server = Server::start(dir.path(), &["--unixsocket", &socket_arg]);
    let start = Instant::now();
    while !socket.exists() {
        assert!(start.elapsed() < Duration::from_secs(10), "no socket");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let q = QueueRef::new("p", "q");
    let posting = RedisMessageStore::open(&RedisConfig {
        uri: format!("unix://{socket_arg}?dbid=5"),
        ..RedisConfig::default()
    })
    .await
    .expect("opens unix://");
    posting
        .message_post(q.clone(), "c".into(), one("\"over the socket\""), now())
        .await
        .expect("posts");
    // Zaqar's spelling of the same socket and database sees it.
    let reading = RedisMessageStore::open(&RedisConfig {
        uri: format!("redis:{socket_arg}?dbid=5"),
        ..RedisConfig::default()
    })
    .await
    .expect("opens redis:/path");
    let listed = reading
        .message_list(q, everything(), now())
        .await
        .expect("lists");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].body.as_slice(), b"\"over the socket\"");
}
