//! zaqar-load through its real interfaces: the bare reference server on a
//! port, the binary as a user runs it, a dead port, a server that answers
//! errors, and a WebSocket peer speaking Zaqar's frames.

use std::{
    net::SocketAddr,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};
use tokio_tungstenite::tungstenite::Message;
use zaqar_load::{
    cli::Cli,
    reference,
    workload::{self, LoadError},
};

const BIN: &str = env!("CARGO_BIN_EXE_zaqar-load");

/// Starts the reference server in this process; answers its address.
async fn start_reference() -> SocketAddr {
    let listener = reference::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(reference::serve(listener, std::future::pending()));
    addr
}

async fn config(args: &[&str]) -> workload::LoadConfig {
    use clap::Parser;
    let mut argv = vec!["zaqar-load", "--quiet"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv)
        .unwrap()
        .load
        .into_config()
        .await
        .unwrap()
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_second_against_the_reference_server() {
    let addr = start_reference().await;
    let url = format!("http://{addr}");
    let config = config(&[
        "--url",
        &url,
        "--duration",
        "1s",
        "--producers",
        "2",
        "--consumers",
        "1",
        "--observers",
        "1",
        "--queues",
        "2",
    ])
    .await;
    let started = Instant::now();
    let outcome = workload::run(config, std::future::pending()).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(outcome.fatal.is_none());
    assert!(!outcome.interrupted);
    let summary = outcome.summary;
    assert!(
        summary.duration_s >= 0.9 && summary.duration_s < 3.0,
        "{}",
        summary.duration_s
    );
    let post = &summary.operations["post"];
    assert!(post.requests > 100, "only {} posts", post.requests);
    assert_eq!(post.errors, 0);
    assert!(post.latency_ms.p50 > 0.0 && post.latency_ms.p50 <= post.latency_ms.p99);
    assert!(post.latency_ms.p99 <= post.latency_ms.max);
    assert_eq!(summary.totals.messages_posted, post.messages);
    // The reference server has nothing to claim: claims come back empty.
    let claim = &summary.operations["claim"];
    assert!(claim.requests > 0 && claim.empty == claim.requests);
    assert!(summary.operations["list"].requests > 0);
    assert_eq!(summary.totals.errors, 0);
}

/// `--post-pause` idles a producer before each post: at 200 ms a pause, a
/// one-second run holds at most five posts, where an unpaced one holds
/// hundreds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_pause_spaces_a_producers_posts() {
    let addr = start_reference().await;
    let url = format!("http://{addr}");
    let config = config(&[
        "--url",
        &url,
        "--duration",
        "1s",
        "--producers",
        "1",
        "--consumers",
        "0",
        "--post-pause",
        "200ms",
    ])
    .await;
    let outcome = workload::run(config, std::future::pending()).await.unwrap();
    let post = &outcome.summary.operations["post"];
    assert!(
        (2..=5).contains(&post.requests),
        "{} posts in one second at 200 ms a pause",
        post.requests
    );
    assert_eq!(post.errors, 0);
    // The pause is not part of a post's latency.
    assert!(post.latency_ms.max < 150.0, "{}", post.latency_ms.max);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_count_ends_the_run() {
    let addr = start_reference().await;
    let url = format!("http://{addr}");
    let config = config(&[
        "--url",
        &url,
        "--messages",
        "500",
        "--batch",
        "5",
        "--producers",
        "3",
        "--consumers",
        "0",
    ])
    .await;
    let outcome = workload::run(config, std::future::pending()).await.unwrap();
    let post = &outcome.summary.operations["post"];
    assert_eq!(post.requests, 100);
    assert_eq!(post.messages, 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_down_is_a_clean_error_naming_the_url() {
    let url = format!("http://127.0.0.1:{}", dead_port());
    let config = config(&["--url", &url, "--duration", "1s"]).await;
    let started = Instant::now();
    let error = workload::run(config, std::future::pending())
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(error, LoadError::Unreachable { .. }));
    assert!(error.to_string().contains(&url), "{error}");
}

#[test]
fn the_binary_exits_non_zero_when_the_server_is_down() {
    let url = format!("http://127.0.0.1:{}", dead_port());
    let output = Command::new(BIN)
        .args(["--url", &url, "--duration", "2s"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot reach the server at {url}")),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let ws = format!("ws://127.0.0.1:{}", dead_port());
    let output = Command::new(BIN).args(["--ws", &ws]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains(&ws));
}

#[test]
fn the_binary_prints_a_json_summary() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let addr = runtime.block_on(start_reference());
    let output = Command::new(BIN)
        .args([
            "--url",
            &format!("http://{addr}"),
            "--duration",
            "1s",
            "--producers",
            "2",
            "--consumers",
            "1",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    for field in [
        "target",
        "transport",
        "encoding",
        "duration_s",
        "interrupted",
        "config",
        "totals",
        "operations",
    ] {
        assert!(summary.get(field).is_some(), "no {field} in {summary}");
    }
    assert_eq!(summary["transport"], "http");
    for field in [
        "requests",
        "requests_per_s",
        "errors",
        "errors_by_status",
        "messages_posted",
        "posted_per_s",
        "messages_deleted",
        "consumed_per_s",
    ] {
        assert!(summary["totals"].get(field).is_some(), "no totals.{field}");
    }
    let post = &summary["operations"]["post"];
    for field in [
        "requests",
        "requests_per_s",
        "messages",
        "messages_per_s",
        "errors_by_status",
    ] {
        assert!(post.get(field).is_some(), "no post.{field}");
    }
    for field in ["p50", "p90", "p99", "max", "mean", "samples"] {
        assert!(
            post["latency_ms"].get(field).is_some(),
            "no latency {field}"
        );
    }
    assert!(post["requests"].as_u64().unwrap() > 0);
    // The table goes to stderr with --json.
    assert!(String::from_utf8_lossy(&output.stderr).contains("operation"));
}

#[test]
fn ctrl_c_prints_the_summary_so_far() {
    use std::io::{BufRead, BufReader};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let addr = runtime.block_on(start_reference());
    let mut child = Command::new(BIN)
        .args(["--url", &format!("http://{addr}"), "--duration", "60s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Not a terminal: a plain progress line comes every 2 s. The first one
    // shows the run (and its Ctrl-C handler) is under way.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !line.contains(" s of ") {
        line.clear();
        if stderr.read_line(&mut line).unwrap() == 0 || Instant::now() > deadline {
            let _ = child.kill();
            panic!("no progress line from zaqar-load");
        }
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
    let output = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(output.status.code(), Some(130), "{rest}");
    assert!(rest.contains("interrupted"), "{rest}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("(interrupted)"), "{stdout}");
    assert!(stdout.contains("post"), "{stdout}");
}

/// A server that reads one request at a time and answers 503 to posts,
/// keep-alive, never doing anything else.
async fn start_failing_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 65536];
                let mut pending = Vec::new();
                loop {
                    let Ok(n) = stream.read(&mut buffer).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    pending.extend_from_slice(&buffer[..n]);
                    // Requests end after headers plus Content-Length bytes.
                    while let Some(end) = find(&pending, b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&pending[..end]).to_lowercase();
                        let length: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if pending.len() < end + 4 + length {
                            break;
                        }
                        pending.drain(..end + 4 + length);
                        let answer = if head.starts_with("put") {
                            "HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n".to_string()
                        } else {
                            let body = r#"{"title": "Service temporarily unavailable", "description": "x"}"#;
                            format!(
                                "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                                body.len()
                            )
                        };
                        if stream.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_2xx_answers_are_counted_by_status() {
    let addr = start_failing_server().await;
    let url = format!("http://{addr}");
    let config = config(&[
        "--url",
        &url,
        "--messages",
        "50",
        "--producers",
        "2",
        "--consumers",
        "0",
        "--keep-queues",
    ])
    .await;
    let outcome = workload::run(config, std::future::pending()).await.unwrap();
    let summary = outcome.summary;
    let post = &summary.operations["post"];
    assert_eq!(post.requests, 50);
    assert_eq!(post.messages, 0);
    assert_eq!(post.errors_by_status.get("503"), Some(&50));
    assert_eq!(summary.totals.errors_by_status.get("503"), Some(&50));
    assert!(
        summary.to_text().contains("post: 503 x50"),
        "{}",
        summary.to_text()
    );
}

/// A WebSocket peer answering Zaqar frames: posts 201, claims one message
/// once, deletes 204, in the encoding of the request.
async fn start_ws_peer() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                let mut claimed = false;
                while let Some(Ok(frame)) = socket.next().await {
                    let (request, binary): (Value, bool) = match &frame {
                        Message::Text(text) => {
                            (serde_json::from_str(text.as_str()).unwrap(), false)
                        }
                        Message::Binary(bytes) => (rmp_serde::from_slice(bytes).unwrap(), true),
                        _ => continue,
                    };
                    assert!(request["headers"]["Client-ID"].is_string());
                    assert!(request["headers"]["X-Project-ID"].is_string());
                    let action = request["action"].as_str().unwrap_or_default();
                    let (status, body) = match action {
                        "queue_create" => (201, json!("created")),
                        "message_post" => {
                            assert!(request["body"]["messages"].is_array());
                            (201, json!({"message_ids": ["m"]}))
                        }
                        "claim_create" if !claimed => {
                            claimed = true;
                            (
                                201,
                                json!({"claim_id": "c", "messages": [{"id": "m", "claim_id": "c", "ttl": 1, "age": 0, "body": 1}]}),
                            )
                        }
                        "claim_create" => (204, json!({"claim_id": null})),
                        "message_delete" => {
                            assert_eq!(request["body"]["claim_id"], "c");
                            (204, json!({}))
                        }
                        "queue_delete" => (204, json!("removed")),
                        _ => (400, json!({"error": "unexpected"})),
                    };
                    let encode = |frame: &Value| {
                        if binary {
                            Message::Binary(rmp_serde::to_vec_named(frame).unwrap().into())
                        } else {
                            Message::Text(frame.to_string().into())
                        }
                    };
                    // A subscription's push, which echoes no request, comes
                    // first: the client must skip it and wait for its answer.
                    if action == "message_post" {
                        let push = json!({"body": {"messages": [{"id": "p"}]}, "headers": {"X-Project-ID": "p"}});
                        if socket.send(encode(&push)).await.is_err() {
                            return;
                        }
                    }
                    let answer =
                        json!({"request": request, "body": body, "headers": {"status": status}});
                    if socket.send(encode(&answer)).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_frames_in_json_and_msgpack() {
    let addr = start_ws_peer().await;
    let url = format!("ws://{addr}");
    for encoding in [None, Some("--msgpack")] {
        let mut args = vec![
            "--ws",
            &url,
            "--messages",
            "20",
            "--producers",
            "2",
            "--consumers",
            "1",
        ];
        args.extend(encoding);
        let outcome = workload::run(config(&args).await, std::future::pending())
            .await
            .unwrap();
        let summary = outcome.summary;
        assert_eq!(summary.transport, "websocket");
        assert_eq!(
            summary.encoding,
            if encoding.is_some() {
                "msgpack"
            } else {
                "json"
            }
        );
        assert_eq!(summary.totals.errors, 0, "{}", summary.to_text());
        assert_eq!(summary.operations["post"].messages, 20);
        assert_eq!(summary.operations["claim"].messages, 1);
        assert_eq!(summary.operations["delete"].messages, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_cannot_stretch_the_run() {
    // Answers the queue set-up, then reads requests and never answers them.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut first = true;
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let answer_setup = std::mem::take(&mut first);
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 65536];
                if answer_setup {
                    let _ = stream.read(&mut buffer).await;
                    let _ = stream
                        .write_all(b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n")
                        .await;
                }
                while let Ok(n) = stream.read(&mut buffer).await {
                    if n == 0 {
                        return;
                    }
                }
            });
        }
    });
    let url = format!("http://{addr}");
    let config = config(&[
        "--url",
        &url,
        "--duration",
        "1s",
        "--producers",
        "2",
        "--consumers",
        "0",
        "--keep-queues",
    ])
    .await;
    let started = Instant::now();
    let outcome = workload::run(config, std::future::pending()).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let summary = outcome.summary;
    assert!(summary.duration_s < 1.5, "{}", summary.duration_s);
    // The posts in flight at the end are abandoned, not counted.
    assert!(summary.operations.is_empty(), "{}", summary.to_text());
}

/// Starts `zaqar-load reference-server --durable-dir` (with `extra` args)
/// as a user would, checks its banner names `kind`; answers the process,
/// its address and its directory.
fn start_durable_reference(
    extra: &[&str],
    kind: &str,
) -> (std::process::Child, String, tempfile::TempDir) {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["reference-server", "--port", "0"])
        .args(extra)
        .arg("--durable-dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.contains(&format!("durable {kind} reference server listening on")),
        "{line}"
    );
    let addr = line.trim().rsplit(' ').next().unwrap().to_string();
    (child, addr, dir)
}

/// The durable reference server, as `bench/http-floor.sh` starts it: a post
/// is answered only once its body is in the log file.
#[test]
fn the_durable_reference_server_writes_each_post_before_answering() {
    use std::io::{Read, Write};
    let (mut child, addr, dir) = start_durable_reference(&[], "HTTP");
    let log = dir.path().join("reference-sync-log");
    for round in 0..3 {
        let marker = format!("durable-floor-marker-{round}-{}", std::process::id());
        let body = format!(r#"{{"messages":[{{"ttl":300,"body":"{marker}"}}]}}"#);
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            stream,
            "POST /v2/queues/q/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
        let written = std::fs::read(&log).unwrap();
        assert!(
            find(&written, marker.as_bytes()).is_some(),
            "round {round}: the answer came before the body was in the log"
        );
    }
    // A claim hands out as many new messages as asked, each href carrying
    // the claim's id, and is in the log when answered; so is a delete.
    let request = |head: &str| {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            stream,
            "{head} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    let claimed = request("POST /v2/queues/q/claims?limit=3");
    assert!(claimed.starts_with("HTTP/1.1 201"), "{claimed}");
    let location = claimed
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .unwrap();
    let claim_id = location.rsplit('/').next().unwrap();
    let body: Value = serde_json::from_str(claimed.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3, "{body}");
    for message in messages {
        let href = message["href"].as_str().unwrap();
        assert!(href.ends_with(&format!("?claim_id={claim_id}")), "{href}");
        assert_eq!(
            message["body"].as_str().unwrap().len(),
            reference::CLAIMED_BODY_BYTES
        );
    }
    let written = std::fs::read(&log).unwrap();
    assert!(find(&written, b"/v2/queues/q/claims?limit=3").is_some());
    let first = messages[0]["href"].as_str().unwrap();
    let deleted = request(&format!("DELETE {first}"));
    assert!(deleted.starts_with("HTTP/1.1 204"), "{deleted}");
    let written = std::fs::read(&log).unwrap();
    assert!(find(&written, first.as_bytes()).is_some());
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_durable_reference_server_refuses_a_directory_it_cannot_write() {
    let output = Command::new(BIN)
        .args([
            "reference-server",
            "--port",
            "0",
            "--durable-dir",
            "/nonexistent/zaqar-load-floor",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot open the sync log in /nonexistent/zaqar-load-floor"),
        "{stderr}"
    );
}

/// The durable WebSocket reference server, as `bench/peers.sh` starts it:
/// zaqar-load's MessagePack producers get their answers, and every post
/// they made is in the log.
#[test]
fn the_durable_websocket_reference_server_logs_each_post() {
    let (mut child, addr, dir) = start_durable_reference(&["--websocket"], "WebSocket");
    let output = Command::new(BIN)
        .args([
            "--ws",
            &format!("ws://{addr}"),
            "--msgpack",
            "--json",
            "--quiet",
        ])
        .args(["--messages", "40", "--producers", "2", "--consumers", "0"])
        .args(["--message-size", "32", "--queue-prefix", "wsfloor"])
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(output.status.success(), "{output:?}");
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["totals"]["errors"], 0, "{summary}");
    let posted = summary["totals"]["messages_posted"].as_u64().unwrap();
    assert!(posted >= 40, "{summary}");
    let written = std::fs::read(dir.path().join("reference-sync-log")).unwrap();
    let logged = written
        .windows(b"message_post".len())
        .filter(|w| *w == b"message_post")
        .count() as u64;
    assert_eq!(logged, posted, "each post's frame is in the log once");
}
