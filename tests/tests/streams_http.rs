//! Streams over plain HTTP through real connections: server-sent events
//! (read as a chunked body from a raw socket, as any SSE client would),
//! the long-poll form of the events endpoint, `wait` on message listings
//! and claims, and their bad input.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use serde_json::{json, Value};
use zaqar_tests::{Client, TestServer};

fn server_with(streams: &str) -> TestServer {
    TestServer::start_with(&format!("[streams]\n{streams}\n"))
}

fn post(http: &Client, queue: &str, bodies: &[Value]) {
    let messages: Vec<Value> = bodies
        .iter()
        .map(|b| json!({"body": b, "ttl": 300}))
        .collect();
    let response = http
        .post(&format!("/v2/queues/{queue}/messages"))
        .json(&json!({ "messages": messages }))
        .send();
    assert_eq!(response.status, 201, "{}", response.text());
}

/// One server-sent event (or comment) as read off the wire.
#[derive(Debug, Default, Clone, PartialEq)]
struct Event {
    id: Option<String>,
    event: Option<String>,
    data: Option<String>,
    comment: Option<String>,
    retry: Option<String>,
}

/// A raw HTTP/1.1 SSE client: sends the request, reads the head, then
/// decodes the chunked body into events.
struct SseClient {
    reader: BufReader<TcpStream>,
    status: u16,
    headers: Vec<(String, String)>,
    buffer: String,
    ended: bool,
}

impl SseClient {
    fn open(address: &str, target: &str, headers: &[(&str, &str)]) -> Self {
        let stream = TcpStream::connect(address).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut request = format!("GET {target} HTTP/1.1\r\nHost: {address}\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        (&stream).write_all(request.as_bytes()).unwrap();
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let status = line.split(' ').nth(1).unwrap().parse().unwrap();
        let mut headers = Vec::new();
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            let (name, value) = trimmed.split_once(':').unwrap();
            headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
        Self {
            reader,
            status,
            headers,
            buffer: String::new(),
            ended: false,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The rest of a non-streamed body (fixed length).
    fn body(&mut self) -> String {
        let length: usize = self.header("content-length").unwrap().parse().unwrap();
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        String::from_utf8(body).unwrap()
    }

    /// Reads one chunk of the chunked body; false at its end.
    fn read_chunk(&mut self) -> bool {
        let mut size = String::new();
        if self.reader.read_line(&mut size).unwrap_or(0) == 0 {
            self.ended = true;
            return false;
        }
        let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        let mut chunk = vec![0; size + 2];
        self.reader.read_exact(&mut chunk).unwrap();
        if size == 0 {
            self.ended = true;
            return false;
        }
        self.buffer
            .push_str(std::str::from_utf8(&chunk[..size]).unwrap());
        true
    }

    /// The next event or comment; `None` when the stream ended.
    fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = Event::default();
                for line in block.lines() {
                    if let Some(comment) = line.strip_prefix(':') {
                        event.comment = Some(comment.trim().to_string());
                    } else if let Some((field, value)) = line.split_once(": ") {
                        let value = Some(value.to_string());
                        match field {
                            "id" => event.id = value,
                            "event" => event.event = value,
                            "data" => event.data = value,
                            "retry" => event.retry = value,
                            other => panic!("unknown field {other}"),
                        }
                    }
                }
                return Some(event);
            }
            if self.ended || !self.read_chunk() {
                return None;
            }
        }
    }

    /// The next event that is not a comment.
    fn next_event(&mut self) -> Event {
        loop {
            let event = self.next().expect("an event before the stream ended");
            if event.comment.is_none() {
                return event;
            }
        }
    }
}

fn identity(http: &Client) -> Vec<(&'static str, String)> {
    vec![
        ("Client-ID", http.client_id().to_string()),
        ("X-Project-ID", "test-project".to_string()),
    ]
}

fn sse(server: &TestServer, target: &str, extra: &[(&str, &str)]) -> SseClient {
    let http = server.client();
    let mut headers: Vec<(&str, String)> = identity(&http);
    headers.push(("Accept", "text/event-stream".into()));
    let mut all: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    all.extend_from_slice(extra);
    SseClient::open(server.address("wsgi"), target, &all)
}

#[test]
fn server_sent_events_replay_history_then_go_live_and_resume_by_last_event_id() {
    let server = server_with("");
    let http = server.client();
    post(
        &http,
        "feed",
        &[json!({"n": 1}), json!({"n": 2}), json!({"n": 3})],
    );
    let mut stream = sse(&server, "/v2/queues/feed/events?since_seq=0", &[]);
    assert_eq!(stream.status, 200);
    assert_eq!(stream.header("content-type"), Some("text/event-stream"));
    assert_eq!(stream.header("cache-control"), Some("no-cache"));
    let first = stream.next().unwrap();
    assert_eq!(first.retry.as_deref(), Some("2000"));
    for n in 1..=3 {
        let event = stream.next_event();
        assert_eq!(event.id, Some(n.to_string()));
        assert_eq!(event.event.as_deref(), Some("message"));
        let data: Value = serde_json::from_str(event.data.as_deref().unwrap()).unwrap();
        assert_eq!(data["sequence"], n);
        assert_eq!(data["body"], json!({"n": n}));
        assert_eq!(data["queue_name"], "feed");
        assert_eq!(data["Message_Type"], "Notification");
    }
    post(&http, "feed", &[json!({"n": 4})]);
    assert_eq!(stream.next_event().id.as_deref(), Some("4"));

    // EventSource reconnects with the same URL and the last id it read.
    let mut resumed = sse(
        &server,
        "/v2/queues/feed/events?since_seq=0",
        &[("Last-Event-ID", "2")],
    );
    resumed.next().unwrap();
    assert_eq!(resumed.next_event().id.as_deref(), Some("3"));
    assert_eq!(resumed.next_event().id.as_deref(), Some("4"));
}

#[test]
fn server_sent_events_filter_announce_gaps_and_keep_alive() {
    let server = server_with("heartbeat = 1");
    let http = server.client();
    post(
        &http,
        "gappy",
        &[
            json!({"kind": "a"}),
            json!({"kind": "b"}),
            json!({"kind": "a"}),
        ],
    );
    let first_id = http
        .get("/v2/queues/gappy/messages?echo=true&limit=1")
        .send()
        .json()["messages"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        http.delete(&format!("/v2/queues/gappy/messages/{first_id}"))
            .send()
            .status,
        204
    );
    let mut stream = sse(
        &server,
        "/v2/queues/gappy/events?filter=kind%3D%3Da",
        &[("Last-Event-ID", "0")],
    );
    stream.next().unwrap();
    let gap = stream.next_event();
    assert_eq!(gap.event.as_deref(), Some("gap"));
    assert_eq!(gap.id, None);
    assert_eq!(
        serde_json::from_str::<Value>(gap.data.as_deref().unwrap()).unwrap(),
        json!({"requested_seq": 1, "first_available_seq": 2})
    );
    assert_eq!(
        stream.next_event().id.as_deref(),
        Some("3"),
        "seq 2 is filtered out"
    );
    let started = Instant::now();
    let comment = stream.next().unwrap();
    assert_eq!(comment.comment.as_deref(), Some("keepalive"));
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn an_event_source_may_name_its_identity_in_the_query() {
    let server = server_with("");
    let http = server.client();
    let target = format!(
        "/v2/queues/browser/events?client_id={}&project_id=test-project&last_n=1",
        http.client_id()
    );
    post(&http, "browser", &[json!("old"), json!("latest")]);
    let mut stream = SseClient::open(
        server.address("wsgi"),
        &target,
        &[("Accept", "text/event-stream")],
    );
    assert_eq!(stream.status, 200);
    stream.next().unwrap();
    assert_eq!(stream.next_event().id.as_deref(), Some("2"));
    let missing = SseClient::open(
        server.address("wsgi"),
        "/v2/queues/browser/events",
        &[("Accept", "text/event-stream")],
    );
    assert_eq!(missing.status, 400, "no Client-ID at all");
}

#[test]
fn a_stream_ends_cleanly_when_the_server_stops() {
    let mut server = server_with("");
    let mut stream = sse(&server, "/v2/queues/stopping/events", &[]);
    stream.next().unwrap();
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    while let Some(event) = stream.next() {
        assert!(event.comment.is_some(), "{event:?}");
    }
    assert!(stream.ended, "the chunked body ended with its last chunk");
}

#[test]
fn long_poll_answers_as_soon_as_a_post_lands() {
    let server = server_with("");
    let http = server.client();
    post(&http, "poll", &[json!("before")]);
    let poster = {
        let http = http.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            post(&http, "poll", &[json!({"kind": "x"}), json!({"kind": "y"})]);
        })
    };
    let started = Instant::now();
    let answer = http
        .get("/v2/queues/poll/events?since_seq=1&wait=15&filter=kind%3D%3Dy")
        .header("Accept", "application/json")
        .send();
    let elapsed = started.elapsed();
    poster.join().unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body = answer.json();
    assert!(
        elapsed < Duration::from_secs(5),
        "woken by the post, not the wait: {elapsed:?}"
    );
    assert_eq!(body["gap"], Value::Null);
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{body}");
    assert_eq!(events[0]["sequence"], 3);
    assert_eq!(events[0]["body"], json!({"kind": "y"}));
    assert_eq!(body["last_seq"], 3);

    // Nothing new: an empty answer once the wait is over, with the cursor.
    let started = Instant::now();
    let empty = http
        .get("/v2/queues/poll/events?since_seq=3&wait=1")
        .send()
        .json();
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(empty, json!({"events": [], "gap": null, "last_seq": 3}));
    let limited = http
        .get("/v2/queues/poll/events?since_seq=0&limit=2")
        .send()
        .json();
    assert_eq!(limited["events"].as_array().unwrap().len(), 2);
    assert_eq!(limited["last_seq"], 2);
}

#[test]
fn message_listings_and_claims_wait_for_the_first_message() {
    let server = server_with("");
    let consumer = server.client();
    let producer = server.client();
    for (method, queue, path) in [
        ("GET", "listed", "/v2/queues/listed/messages?wait=15"),
        ("POST", "claimed", "/v2/queues/claimed/claims?wait=15"),
    ] {
        let poster = {
            let producer = producer.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(500));
                post(&producer, queue, &[json!({"job": 1})]);
            })
        };
        let started = Instant::now();
        let request = consumer.request(method, path);
        let request = if method == "POST" {
            request.json(&json!({"ttl": 60, "grace": 60}))
        } else {
            request
        };
        let answer = request.send();
        let elapsed = started.elapsed();
        poster.join().unwrap();
        assert!(
            matches!(answer.status, 200 | 201),
            "{method}: {}",
            answer.text()
        );
        assert!(
            elapsed >= Duration::from_millis(400) && elapsed < Duration::from_secs(5),
            "{method}: {elapsed:?}"
        );
        assert_eq!(
            answer.json()["messages"][0]["body"],
            json!({"job": 1}),
            "{method}"
        );
    }
    // With nothing to find, the wait runs out and the answer is Zaqar's empty one.
    let started = Instant::now();
    let empty = consumer.get("/v2/queues/idle/messages?wait=1").send();
    assert_eq!(empty.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[test]
fn bad_stream_parameters_are_refused() {
    let server = server_with("max_wait = 5");
    let http = server.client();
    post(&http, "strict", &[json!(1)]);
    for target in [
        "/v2/queues/strict/events?since_seq=2",
        "/v2/queues/strict/events?since_seq=x",
        "/v2/queues/strict/events?last_n=0",
        "/v2/queues/strict/events?since_seq=0&last_n=1",
        "/v2/queues/strict/events?since=never",
        "/v2/queues/strict/events?filter=nonsense",
        "/v2/queues/strict/events?wait=6",
        "/v2/queues/strict/events?limit=0",
        "/v2/queues/strict/messages?wait=6",
        "/v2/queues/strict/messages?wait=-1",
    ] {
        let answer = http.get(target).send();
        assert_eq!(answer.status, 400, "{target}: {}", answer.text());
        assert_eq!(answer.json()["title"], "Invalid API request", "{target}");
    }
    let claim = http
        .post("/v2/queues/strict/claims?wait=6")
        .json(&json!({}))
        .send();
    assert_eq!(claim.status, 400);
    let mut stream = sse(
        &server,
        "/v2/queues/strict/events",
        &[("Last-Event-ID", "soon")],
    );
    assert_eq!(stream.status, 400);
    let body: Value = serde_json::from_str(&stream.body()).unwrap();
    assert!(
        body["description"]
            .as_str()
            .unwrap()
            .contains("Last-Event-ID"),
        "{body}"
    );
    let wrong_method = http
        .post("/v2/queues/strict/events")
        .json(&json!({}))
        .send();
    assert_eq!(wrong_method.status, 405);
}

#[test]
fn a_stream_whose_reader_never_reads_is_ended_while_others_go_on() {
    let server = TestServer::start();
    let http = server.client();
    // Far more than the server buffers for one stream (1,024 events) plus
    // what the kernel's socket buffers on both sides can hold.
    const TOTAL: usize = 4000;
    let stalled = sse(&server, "/v2/queues/flood/events", &[]);
    let mut reader = sse(&server, "/v2/queues/flood/events", &[]);
    let reading = std::thread::spawn(move || {
        let mut seen = 0;
        while seen < TOTAL {
            if reader.next_event().event.as_deref() == Some("message") {
                seen += 1;
            }
        }
        seen
    });
    let body = json!("x".repeat(10_000));
    for _ in 0..TOTAL / 10 {
        post(&http, "flood", &vec![body.clone(); 10]);
    }
    assert_eq!(
        reading.join().unwrap(),
        TOTAL,
        "the reading stream gets all"
    );

    // The stalled stream holds what was buffered, then ends instead of
    // keeping every event for a reader that does not read.
    let mut stalled = stalled;
    let mut got = 0;
    while let Some(event) = stalled.next() {
        if event.event.as_deref() == Some("message") {
            got += 1;
        }
    }
    assert!(
        got < TOTAL,
        "a stalled stream is ended, not buffered: {got}"
    );
    assert_eq!(server.client().get("/v2/ping").send().status, 204);
}
