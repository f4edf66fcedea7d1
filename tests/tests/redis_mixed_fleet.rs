//! A mixed fleet: the real Zaqar 23.0.1 (wsgi, its Redis driver) and
//! zaqar-server (the `redis` store) on one Redis database. Whatever one
//! writes, the other reads, claims, deletes and counts.
//!
//! Needs the Zaqar virtualenv made by `scripts/zaqar-venv.sh`, named by
//! `ZAQAR_VENV` (`.ci/run` and `scripts/test.sh` set it). Without it the
//! test is skipped with a loud message, except under CI (`CI` set), where
//! it fails.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{json, Value};
use zaqar_tests::{Client, TestServer};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port()
}

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn venv() -> Option<PathBuf> {
    match std::env::var_os("ZAQAR_VENV") {
        Some(v) => Some(PathBuf::from(v)),
        None if std::env::var_os("CI").is_some() => {
            panic!("ZAQAR_VENV is not set under CI: .ci/run must provide the Zaqar venv")
        }
        None => {
            eprintln!(
                "\n!!!!!!!! SKIPPED: the mixed-fleet test needs the real Zaqar; run \
                 `ZAQAR_VENV=$(bash scripts/zaqar-venv.sh)` first !!!!!!!!\n"
            );
            None
        }
    }
}

fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < timeout,
            "{what} did not come up in {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start_redis(dir: &Path) -> (Process, u16) {
    let port = free_port();
    let child = Command::new("redis-server")
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--save",
            "",
        ])
        .args(["--appendonly", "no", "--dir"])
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server runs");
    let process = Process(child);
    wait_until("redis-server", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (process, port)
}

fn start_real_zaqar(venv: &Path, dir: &Path, redis_port: u16) -> (Process, String) {
    let port = free_port();
    let conf = dir.join("zaqar.conf");
    std::fs::write(
        &conf,
        format!(
            "[DEFAULT]\nauth_strategy =\nadmin_mode = True\nlog_file = {log}\n\n\
             [drivers]\ntransport = wsgi\nmessage_store = redis\nmanagement_store = redis\n\n\
             [drivers:message_store:redis]\nuri = redis://127.0.0.1:{redis_port}\n\n\
             [drivers:management_store:redis]\nuri = redis://127.0.0.1:{redis_port}\n\n\
             [drivers:transport:wsgi]\nbind = 127.0.0.1\nport = {port}\n",
            log = dir.join("zaqar.log").display()
        ),
    )
    .expect("write zaqar.conf");
    let child = Command::new(venv.join("bin/zaqar-server"))
        .arg("--config-file")
        .arg(&conf)
        .env("http_proxy", "http://127.0.0.1:9")
        .env("https_proxy", "http://127.0.0.1:9")
        .env("no_proxy", "127.0.0.1,localhost")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("zaqar-server runs");
    let process = Process(child);
    let url = format!("http://127.0.0.1:{port}");
    let probe = Client::new(&url);
    wait_until("the real Zaqar", Duration::from_secs(60), || {
        probe
            .get("/v2/ping")
            .try_send()
            .is_ok_and(|r| r.status == 204)
    });
    (process, url)
}

fn bodies(listing: &Value) -> Vec<Value> {
    listing["messages"]
        .as_array()
        .map(|m| m.iter().map(|m| m["body"].clone()).collect())
        .unwrap_or_default()
}

fn claim_id(location: &str) -> String {
    location
        .rsplit('/')
        .next()
        .and_then(|s| s.split('?').next())
        .expect("a claim id in the Location")
        .to_owned()
}

#[test]
fn zaqar_and_zaqar_server_share_one_redis() {
    let Some(venv) = venv() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let (_redis, redis_port) = start_redis(dir.path());
    let (_zaqar, zaqar_url) = start_real_zaqar(&venv, dir.path(), redis_port);
    let ours = TestServer::start_with(&format!(
        "[drivers.message_store]\nname = \"redis\"\n\
         [drivers.message_store.redis]\nuri = \"redis://127.0.0.1:{redis_port}/0\"\n"
    ));

    let project = "mixed-fleet";
    let theirs = Client::new(&zaqar_url).with_project(project);
    let mine = ours.client().with_project(project);

    // Queues and metadata, both ways.
    let r = theirs
        .put("/v2/queues/made-by-zaqar")
        .json(&json!({"color": "red"}))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    let r = mine
        .put("/v2/queues/made-by-us")
        .json(&json!({"color": "blue"}))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    let r = mine.get("/v2/queues/made-by-zaqar").send();
    assert_eq!(r.json()["color"], "red", "{}", r.text());
    let r = theirs.get("/v2/queues/made-by-us").send();
    assert_eq!(r.json()["color"], "blue", "{}", r.text());
    for client in [&theirs, &mine] {
        let names: Vec<String> = client.get("/v2/queues").send().json()["queues"]
            .as_array()
            .expect("queues")
            .iter()
            .map(|q| q["name"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(names, ["made-by-us", "made-by-zaqar"]);
    }

    // Messages posted through either are listed, in order, through both.
    let q = "/v2/queues/made-by-zaqar";
    let post = |c: &Client, bodies: &[Value]| {
        let messages: Vec<Value> = bodies
            .iter()
            .map(|b| json!({"ttl": 300, "body": b}))
            .collect();
        let r = c
            .post(&format!("{q}/messages"))
            .json(&json!({"messages": messages}))
            .send();
        assert_eq!(r.status, 201, "{}", r.text());
    };
    post(
        &theirs,
        &[
            json!({"from": "zaqar", "n": 1}),
            json!({"from": "zaqar", "n": 2}),
        ],
    );
    post(
        &mine,
        &[json!({"from": "us", "n": 3}), json!({"from": "us", "n": 4})],
    );
    let all = [
        json!({"from": "zaqar", "n": 1}),
        json!({"from": "zaqar", "n": 2}),
        json!({"from": "us", "n": 3}),
        json!({"from": "us", "n": 4}),
    ];
    for client in [&theirs, &mine] {
        let listing = client.get(&format!("{q}/messages?echo=true")).send().json();
        assert_eq!(bodies(&listing), all);
        let stats = client.get(&format!("{q}/stats")).send().json();
        assert_eq!(stats["messages"]["total"], 4, "{stats}");
        assert_eq!(stats["messages"]["claimed"], 0, "{stats}");
    }

    // A claim through zaqar-server takes the two oldest; Zaqar's claim then
    // gets only the other two, and each side sees the other's claim.
    let r = mine
        .post(&format!("{q}/claims?limit=2"))
        .json(&json!({"ttl": 300, "grace": 60}))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    let our_claim = claim_id(r.header("location").expect("Location"));
    let our_taken = r.json()["messages"].clone();
    assert_eq!(bodies(&json!({"messages": our_taken})), all[..2]);
    let r = theirs
        .post(&format!("{q}/claims?limit=10"))
        .json(&json!({"ttl": 300, "grace": 60}))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    let their_claim = claim_id(r.header("location").expect("Location"));
    let their_taken = r.json()["messages"].clone();
    assert_eq!(bodies(&json!({"messages": their_taken})), all[2..]);
    let r = theirs.get(&format!("{q}/claims/{our_claim}")).send();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["messages"].as_array().map(Vec::len), Some(2));
    let r = mine.get(&format!("{q}/claims/{their_claim}")).send();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["messages"].as_array().map(Vec::len), Some(2));
    for client in [&theirs, &mine] {
        let stats = client.get(&format!("{q}/stats")).send().json();
        assert_eq!(stats["messages"]["claimed"], 4, "{stats}");
        assert_eq!(stats["messages"]["free"], 0, "{stats}");
        // Nothing is left to claim on either side.
        let r = client
            .post(&format!("{q}/claims"))
            .json(&json!({"ttl": 60, "grace": 60}))
            .send();
        assert_eq!(r.status, 204, "{}", r.text());
    }

    // Claims are honoured across the fleet when deleting.
    let id_of = |m: &Value| m["id"].as_str().expect("message id").to_owned();
    let our_first = id_of(&our_taken[0]);
    let their_first = id_of(&their_taken[0]);
    let r = theirs.delete(&format!("{q}/messages/{our_first}")).send();
    assert_eq!(
        r.status,
        403,
        "Zaqar refuses a claimed message: {}",
        r.text()
    );
    let r = mine.delete(&format!("{q}/messages/{their_first}")).send();
    assert_eq!(r.status, 403, "we refuse a claimed message: {}", r.text());
    let r = theirs
        .delete(&format!("{q}/messages/{our_first}?claim_id={our_claim}"))
        .send();
    assert_eq!(r.status, 204, "{}", r.text());
    let r = mine
        .delete(&format!(
            "{q}/messages/{their_first}?claim_id={their_claim}"
        ))
        .send();
    assert_eq!(r.status, 204, "{}", r.text());
    // A claim released through one side frees its messages for the other.
    let r = mine.delete(&format!("{q}/claims/{their_claim}")).send();
    assert_eq!(r.status, 204, "{}", r.text());
    let r = theirs
        .post(&format!("{q}/claims?limit=10"))
        .json(&json!({"ttl": 60, "grace": 60}))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(bodies(&r.json()), all[3..]);
    for client in [&theirs, &mine] {
        let stats = client.get(&format!("{q}/stats")).send().json();
        assert_eq!(stats["messages"]["total"], 2, "{stats}");
        assert_eq!(stats["messages"]["claimed"], 2, "{stats}");
    }

    // Subscriptions, both ways.
    let r = theirs
        .post(&format!("{q}/subscriptions"))
        .json(&json!({"subscriber": "http://127.0.0.1:9/theirs", "ttl": 3600, "options": {"a": 1}}))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    let r = mine
        .post(&format!("{q}/subscriptions"))
        .json(&json!({"subscriber": "http://127.0.0.1:9/mine", "ttl": 3600, "options": {"b": 2}}))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    let our_sub = r.json()["subscription_id"].as_str().expect("id").to_owned();
    for client in [&theirs, &mine] {
        let listing = client.get(&format!("{q}/subscriptions")).send().json();
        let mut subscribers: Vec<String> = listing["subscriptions"]
            .as_array()
            .expect("subscriptions")
            .iter()
            .map(|s| s["subscriber"].as_str().unwrap_or_default().to_owned())
            .collect();
        subscribers.sort();
        assert_eq!(
            subscribers,
            ["http://127.0.0.1:9/mine", "http://127.0.0.1:9/theirs"],
            "{listing}"
        );
    }
    let r = theirs.get(&format!("{q}/subscriptions/{our_sub}")).send();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["options"], json!({"b": 2}));

    // A pop through one side takes what the other posted.
    let r = theirs
        .post("/v2/queues/made-by-us/messages")
        .json(&json!({"messages": [{"ttl": 300, "body": "pop me"}]}))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    let r = mine.delete("/v2/queues/made-by-us/messages?pop=1").send();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(bodies(&r.json()), [json!("pop me")]);
    let stats = theirs.get("/v2/queues/made-by-us/stats").send().json();
    assert_eq!(stats["messages"]["total"], 0, "{stats}");

    // Queues deleted through one side are gone for the other.
    let r = theirs.delete("/v2/queues/made-by-us").send();
    assert_eq!(r.status, 204, "{}", r.text());
    let r = mine.delete(q).send();
    assert_eq!(r.status, 204, "{}", r.text());
    for client in [&theirs, &mine] {
        let r = client.get("/v2/queues").send();
        let names = r.json()["queues"].as_array().map(Vec::len).unwrap_or(0);
        assert_eq!(names, 0, "{}", r.text());
    }
}
