//! The `redis` store under the real server: at start-up, URI forms it
//! refuses are named in the error and an unreachable Redis stops the server
//! naming the URI with its password hidden; while running, a Redis that
//! goes away gets Zaqar's 503 bodies and the server recovers, without a
//! restart, once it is back.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::json;
use zaqar_tests::TestServer;

/// The overlay putting both stores on `uri`, with `extra` settings (TOML
/// lines) for each.
fn on_redis_with(uri: &str, extra: &str) -> String {
    let uri = toml::Value::String(uri.to_owned());
    format!(
        "[drivers.message_store]\nname = \"redis\"\n\
         [drivers.message_store.redis]\nuri = {uri}\n{extra}\n\
         [drivers.management_store]\nname = \"redis\"\n\
         [drivers.management_store.redis]\nuri = {uri}\n{extra}\n"
    )
}

fn on_redis(uri: &str) -> String {
    on_redis_with(uri, "connect_timeout_ms = 1000")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn unreachable_redis_at_start_exits_1_naming_the_redacted_uri() {
    let port = free_port();
    let exited = TestServer::run_to_exit(
        &on_redis(&format!("redis://zaqar:sekrit-pw@127.0.0.1:{port}/3")),
        &[],
        &[],
    );
    assert_eq!(exited.status.code(), Some(1), "{exited:?}");
    assert!(
        exited
            .stderr
            .contains(&format!("redis://zaqar:***@127.0.0.1:{port}/3")),
        "{}",
        exited.stderr
    );
    assert!(!exited.stderr.contains("sekrit-pw"), "{}", exited.stderr);
}

#[test]
fn unsupported_uri_forms_exit_1_naming_the_form() {
    for (uri, names) in [
        (
            "rediss://zaqar:sekrit-pw@127.0.0.1:6380",
            "TLS (rediss://) is not supported",
        ),
        (
            "redis://127.0.0.1:26379,127.0.0.2:26379",
            "need `master=NAME`",
        ),
        ("redis+sentinel://127.0.0.1:26379", "needs `master=NAME`"),
        ("memcached://127.0.0.1", "unsupported scheme `memcached`"),
    ] {
        let exited = TestServer::run_to_exit(&on_redis(uri), &[], &[]);
        assert_eq!(exited.status.code(), Some(1), "{uri}: {exited:?}");
        assert!(exited.stderr.contains(names), "{uri}: {}", exited.stderr);
        assert!(!exited.stderr.contains("sekrit-pw"), "{}", exited.stderr);
    }
}

#[test]
fn a_sentinel_that_knows_no_such_master_exits_1_naming_the_master() {
    // Nothing listens on the Sentinel's port either: the lookup fails.
    let port = free_port();
    let exited = TestServer::run_to_exit(
        &on_redis(&format!("redis://127.0.0.1:{port}?master=zaqar-main")),
        &[],
        &[],
    );
    assert_eq!(exited.status.code(), Some(1), "{exited:?}");
    assert!(exited.stderr.contains("zaqar-main"), "{}", exited.stderr);
}

/// A private `redis-server` on a free port, killed when dropped.
struct PrivateRedis {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl PrivateRedis {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let child = Self::spawn(port, dir.path());
        Self { child, port, dir }
    }

    fn spawn(port: u16, dir: &std::path::Path) -> Child {
        let child = Command::new("redis-server")
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
        child
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn restart(&mut self) {
        self.stop();
        self.child = Self::spawn(self.port, self.dir.path());
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn lost_redis_answers_503_then_the_server_recovers_without_restart() {
    let mut redis = PrivateRedis::start();
    let server = TestServer::start_with(&on_redis_with(
        &format!("redis://127.0.0.1:{}/1", redis.port),
        "connect_timeout_ms = 1000\nresponse_timeout_ms = 1000",
    ));
    let client = server.client();
    let post = |n: usize| {
        client
            .post("/v2/queues/faults/messages")
            .json(&json!({"messages": [{"body": {"n": n}, "ttl": 300}]}))
            .send()
    };
    assert_eq!(post(0).status, 201);

    redis.stop();
    let response = post(1);
    assert_eq!(response.status, 503, "{}", response.text());
    let body = response.json();
    assert!(body["title"].is_string(), "{body}");
    assert!(body["description"].is_string(), "{body}");
    let listed = client.get("/v2/queues/faults/messages?echo=true").send();
    assert_eq!(listed.status, 503, "{}", listed.text());
    assert_eq!(client.get("/v2/ping").send().status, 503);

    // Back (empty: this Redis keeps nothing): the same server serves again.
    redis.restart();
    let start = Instant::now();
    loop {
        let response = post(2);
        match response.status {
            201 => break,
            503 => assert!(
                start.elapsed() < Duration::from_secs(20),
                "no recovery: {}",
                response.text()
            ),
            other => panic!("unexpected status {other}: {}", response.text()),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let listed = client
        .get("/v2/queues/faults/messages?echo=true")
        .send()
        .json();
    assert_eq!(listed["messages"][0]["body"], json!({"n": 2}), "{listed}");
    assert_eq!(client.get("/v2/ping").send().status, 204);
}
