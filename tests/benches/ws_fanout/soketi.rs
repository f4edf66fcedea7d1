//! Soketi, the peer of the fan-out bench: a Pusher-protocol server on
//! uWebSockets.js, installed from npm by `bench/soketi-env.sh` and started
//! here through that script's `run` command (which `exec`s node, so the
//! child's pid is Soketi's own process and its `/proc` figures are
//! Soketi's).
//!
//! What a Pusher client does, and this module with it: connect to
//! `/app/<key>?protocol=7`, read `pusher:connection_established`, send
//! `pusher:subscribe` for a channel, read
//! `pusher_internal:subscription_succeeded`; a publisher triggers events
//! with a signed `POST /apps/<id>/events` on the same port.

use std::{
    fs::File,
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
use tokio_tungstenite::tungstenite::Message;

use super::Client;

const APP_ID: &str = "fanout";
const APP_KEY: &str = "fanout-key";
const APP_SECRET: &str = "fanout-secret";
/// The channel every bench socket subscribes to, and the event's name.
pub const CHANNEL: &str = "bench";
const EVENT: &str = "fanout";

/// Where `bench/soketi-env.sh` installs Soketi (`SOKETI_DIR`, as for the
/// script).
pub fn install_dir() -> PathBuf {
    std::env::var_os("SOKETI_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| zaqar_tests::workspace_root().join("target/soketi"))
}

/// Whether Soketi is installed where the script puts it.
pub fn installed() -> bool {
    install_dir()
        .join("node_modules/@soketi/soketi/bin/server.js")
        .is_file()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port()
}

/// A running Soketi with the bench's app, stopped on drop.
pub struct Soketi {
    child: Child,
    port: u16,
    http: ureq::Agent,
}

impl Soketi {
    /// Start Soketi on a free port and wait (30 s at most) until it answers.
    pub fn start() -> Self {
        let port = free_port();
        let log_path = install_dir().join("bench.log");
        let log = File::create(&log_path).expect("Soketi log file");
        let child = Command::new("bash")
            .arg(zaqar_tests::workspace_root().join("bench/soketi-env.sh"))
            .args(["run", &port.to_string(), &free_port().to_string()])
            .env("SOKETI_DIR", install_dir())
            .env("SOKETI_APP_ID", APP_ID)
            .env("SOKETI_APP_KEY", APP_KEY)
            .env("SOKETI_APP_SECRET", APP_SECRET)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("Soketi log file"))
            .stderr(log)
            .spawn()
            .expect("start bench/soketi-env.sh run");
        let http: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let mut soketi = Self { child, port, http };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answer = soketi
                .http
                .get(format!("http://127.0.0.1:{port}/"))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok());
            if answer.as_deref() == Some("OK") {
                return soketi;
            }
            let exited = soketi.child.try_wait().expect("wait").is_some();
            if exited || Instant::now() > deadline {
                panic!(
                    "Soketi did not answer on port {port}; its output is in {}",
                    log_path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Soketi's node process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The URL a Pusher client connects to.
    pub fn socket_url(&self) -> String {
        format!(
            "ws://127.0.0.1:{}/app/{APP_KEY}?protocol=7&client=zaqar-bench&version=1.0",
            self.port
        )
    }

    /// Trigger one event on the bench channel through the HTTP API, signed
    /// as Pusher's server libraries sign it; blocks until Soketi answers.
    pub fn trigger(&self, data: &str) {
        let body = serde_json::json!({"name": EVENT, "channel": CHANNEL, "data": data}).to_string();
        let url = signed_url(
            &format!("http://127.0.0.1:{}", self.port),
            &format!("/apps/{APP_ID}/events"),
            &body,
        );
        let mut reply = self
            .http
            .post(url)
            .header("Content-Type", "application/json")
            .send(body)
            .expect("trigger a Soketi event");
        let answer = reply.body_mut().read_to_string().unwrap_or_default();
        assert!(answer.contains("\"ok\":true"), "Soketi refused: {answer}");
    }
}

impl Drop for Soketi {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `base` + `path` with Pusher's authentication query: the key, a
/// timestamp, the version, the body's MD5, and an HMAC-SHA256 (keyed with
/// the app secret) of the method, the path and those parameters in key
/// order.
fn signed_url(base: &str, path: &str, body: &str) -> String {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let body_md5 = hex(&Md5::digest(body.as_bytes()));
    let query = format!(
        "auth_key={APP_KEY}&auth_timestamp={timestamp}&auth_version=1.0&body_md5={body_md5}"
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(APP_SECRET.as_bytes()).expect("any key length");
    mac.update(format!("POST\n{path}\n{query}").as_bytes());
    let signature = hex(&mac.finalize().into_bytes());
    format!("{base}{path}?{query}&auth_signature={signature}")
}

/// The `data` string of an event carrying `sent_us`, padded so that the
/// frame Soketi sends (`{"event":..,"channel":..,"data":"<data, JSON-escaped>"}`)
/// is `frame_len` bytes long, as our server's push is.
pub fn event_data(sent_us: u64, frame_len: usize) -> String {
    let frame = |data: &str| {
        serde_json::json!({"event": EVENT, "channel": CHANNEL, "data": data})
            .to_string()
            .len()
    };
    let unpadded = format!("{{\"sent_us\":{sent_us},\"pad\":\"\"}}");
    let pad = frame_len.saturating_sub(frame(&unpadded));
    format!("{{\"sent_us\":{sent_us},\"pad\":\"{}\"}}", "x".repeat(pad))
}

/// The next text frame's JSON, skipping control frames.
async fn next_event(stream: &mut Client) -> serde_json::Value {
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => {
                return serde_json::from_str(text.as_str()).expect("Pusher frames are JSON")
            }
            Some(Ok(_)) => continue,
            other => panic!("Soketi socket closed: {other:?}"),
        }
    }
}

/// Wait for `pusher:connection_established` on a freshly opened socket.
pub async fn established(mut stream: Client) -> Client {
    let event = next_event(&mut stream).await;
    assert_eq!(event["event"], "pusher:connection_established", "{event}");
    stream
}

/// Subscribe to the bench channel and wait for Soketi's confirmation.
pub async fn subscribe(mut stream: Client) -> Client {
    stream
        .send(Message::text(
            serde_json::json!({"event": "pusher:subscribe", "data": {"channel": CHANNEL}})
                .to_string(),
        ))
        .await
        .expect("subscribe");
    let event = next_event(&mut stream).await;
    assert_eq!(
        event["event"], "pusher_internal:subscription_succeeded",
        "{event}"
    );
    stream
}

/// Read one event and return the length of its frame.
pub async fn read_event(mut stream: Client) -> (Client, usize) {
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => return (stream, text.len()),
            Some(Ok(_)) => continue,
            other => panic!("Soketi socket closed: {other:?}"),
        }
    }
}
