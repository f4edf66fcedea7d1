//! Resumable streams over WebSocket through a real socket and real HTTP
//! posts: history (since_seq, last_n), gaps, filters, many subscriptions
//! per socket, acks with redelivery, session resume, and every bad input.

use std::{
    collections::{HashSet, VecDeque},
    time::{Duration, Instant},
};

use serde_json::{json, Value};
use tungstenite::Message;
use zaqar_tests::{Client, Frame, TestServer, WsClient};

/// A socket that keeps the pushes arriving before a reply (history is
/// pushed as soon as a subscription exists, possibly before its answer).
struct Socket {
    client: WsClient,
    pending: VecDeque<Value>,
}

impl Socket {
    fn connect(address: &str) -> Self {
        Self {
            client: WsClient::connect(address),
            pending: VecDeque::new(),
        }
    }

    fn headers(&self) -> &Value {
        self.client.headers()
    }

    fn set_header(&mut self, name: &str, value: &str) {
        self.client.set_header(name, value);
    }

    fn request(&mut self, action: &str, body: Value) -> Value {
        let frame = json!({"action": action, "headers": self.client.headers(), "body": body});
        self.client.send_raw(Message::text(frame.to_string()));
        loop {
            match self.client.recv(Duration::from_secs(10)) {
                Frame::Text(v) | Frame::Binary(v) if v.get("request").is_some() => return v,
                Frame::Text(v) | Frame::Binary(v) => self.pending.push_back(v),
                other => panic!("expected a reply, got {other:?}"),
            }
        }
    }

    fn recv(&mut self, wait: Duration) -> Frame {
        match self.pending.pop_front() {
            Some(push) => Frame::Text(push),
            None => self.client.recv(wait),
        }
    }

    fn close(self) {
        self.client.close();
    }
}

fn server_with(streams: &str) -> TestServer {
    TestServer::start_with(&format!(
        "[drivers]\ntransports = [\"wsgi\", \"websocket\"]\n[drivers.transport.websocket]\nport = 0\n[streams]\n{streams}\n"
    ))
}

fn status(reply: &Value) -> u64 {
    reply["headers"]["status"].as_u64().expect("status")
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

/// The next pushed frame (not a reply), or `None` after `wait`.
fn push_within(client: &mut Socket, wait: Duration) -> Option<Value> {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        match client.recv(left) {
            Frame::Text(v) | Frame::Binary(v) if v.get("request").is_none() => return Some(v),
            Frame::Text(_) | Frame::Binary(_) => continue,
            Frame::Timeout => return None,
            other => panic!("expected a push, got {other:?}"),
        }
    }
}

fn next_push(client: &mut Socket) -> Value {
    push_within(client, Duration::from_secs(10)).expect("a push within 10 s")
}

fn seq(push: &Value) -> u64 {
    push["sequence"]
        .as_u64()
        .unwrap_or_else(|| panic!("no sequence in {push}"))
}

fn subscribe(client: &mut Socket, body: Value) -> Value {
    let reply = client.request("subscription_create", body);
    assert_eq!(status(&reply), 201, "{reply}");
    reply["body"].clone()
}

#[test]
fn replay_then_live_is_exactly_once_while_posts_race_the_seam() {
    let server = server_with("");
    let http = server.client();
    for chunk in 0..5 {
        let bodies: Vec<Value> = (0..10).map(|i| json!({"n": chunk * 10 + i})).collect();
        post(&http, "seam", &bodies);
    }
    let poster = {
        let http = http.clone();
        std::thread::spawn(move || {
            for i in 0..100 {
                post(&http, "seam", &[json!({"n": 50 + i})]);
            }
        })
    };
    let mut client = Socket::connect(server.address("websocket"));
    let answer = subscribe(&mut client, json!({"queue_name": "seam", "since_seq": 0}));
    let id = answer["subscription_id"].as_str().unwrap().to_string();
    assert!(
        answer["session_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{answer}"
    );
    assert!(answer["last_seq"].as_u64().unwrap() >= 50, "{answer}");
    poster.join().unwrap();
    let mut seen = Vec::new();
    while seen.len() < 150 {
        let push = next_push(&mut client);
        assert_eq!(push["subscription_id"], json!(id), "{push}");
        assert_eq!(
            push["body"]["n"].as_u64().unwrap() + 1,
            seq(&push),
            "{push}"
        );
        seen.push(seq(&push));
    }
    assert_eq!(
        seen,
        (1..=150).collect::<Vec<_>>(),
        "in order, no hole, no duplicate"
    );
    assert_eq!(push_within(&mut client, Duration::from_millis(500)), None);
}

#[test]
fn a_cursor_behind_deleted_messages_gets_a_gap_first() {
    let server = server_with("");
    let http = server.client();
    post(
        &http,
        "holes",
        &[json!(1), json!(2), json!(3), json!(4), json!(5)],
    );
    let listed = http
        .get("/v2/queues/holes/messages?echo=true&limit=3")
        .send()
        .json();
    let ids: Vec<&str> = listed["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    let deleted = http
        .delete(&format!("/v2/queues/holes/messages?ids={}", ids.join(",")))
        .send();
    assert_eq!(deleted.status, 204);

    let mut client = Socket::connect(server.address("websocket"));
    let answer = subscribe(&mut client, json!({"queue_name": "holes", "since_seq": 1}));
    let gap = next_push(&mut client);
    assert_eq!(
        gap,
        json!({"Message_Type": "Gap", "queue_name": "holes",
               "subscription_id": answer["subscription_id"],
               "requested_seq": 2, "first_available_seq": 4})
    );
    assert_eq!(seq(&next_push(&mut client)), 4);
    assert_eq!(seq(&next_push(&mut client)), 5);

    // A cursor at the last seq of a queue emptied since: a gap naming the
    // seq the next post will get.
    let all: Vec<String> = http
        .get("/v2/queues/holes/messages?echo=true")
        .send()
        .json()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    http.delete(&format!("/v2/queues/holes/messages?ids={}", all.join(",")))
        .send();
    let mut late = Socket::connect(server.address("websocket"));
    subscribe(&mut late, json!({"queue_name": "holes", "since_seq": 2}));
    let gap = next_push(&mut late);
    assert_eq!(gap["requested_seq"], 3);
    assert_eq!(gap["first_available_seq"], 6);
}

#[test]
fn filters_pick_messages_and_last_n_replays_the_tail() {
    let server = server_with("");
    let http = server.client();
    post(
        &http,
        "mixed",
        &[
            json!({"kind": "deploy", "instance": {"state": "running"}}),
            json!({"kind": "log"}),
            json!({"kind": "deploy", "instance": {"state": "stopped"}}),
            json!("not an object"),
            json!({"kind": "deploy", "instance": {"state": "running-degraded"}}),
        ],
    );
    let mut client = Socket::connect(server.address("websocket"));
    subscribe(
        &mut client,
        json!({"queue_name": "mixed", "since_seq": 0,
               "filter": ["kind==deploy", "instance.state^=run"]}),
    );
    assert_eq!(seq(&next_push(&mut client)), 1);
    assert_eq!(seq(&next_push(&mut client)), 5);
    post(
        &http,
        "mixed",
        &[
            json!({"kind": "log"}),
            json!({"kind": "deploy", "instance": {"state": "running"}}),
        ],
    );
    assert_eq!(seq(&next_push(&mut client)), 7);
    assert_eq!(push_within(&mut client, Duration::from_millis(300)), None);

    let mut tail = Socket::connect(server.address("websocket"));
    subscribe(
        &mut tail,
        json!({"queue_name": "mixed", "last_n": 2, "filter": "kind==log"}),
    );
    assert_eq!(seq(&next_push(&mut tail)), 6);
    assert_eq!(push_within(&mut tail, Duration::from_millis(300)), None);
}

#[test]
fn one_socket_carries_many_subscriptions_each_with_its_own_cursor() {
    let server = server_with("max_subscriptions_per_socket = 3");
    let http = server.client();
    post(&http, "a", &[json!("a1"), json!("a2"), json!("a3")]);
    post(&http, "b", &[json!("b1"), json!("b2")]);
    let mut client = Socket::connect(server.address("websocket"));
    let on_a = subscribe(&mut client, json!({"queue_name": "a", "since_seq": 1}));
    let on_b = subscribe(&mut client, json!({"queue_name": "b", "since_seq": 0}));
    assert_eq!(
        on_a["session_id"], on_b["session_id"],
        "one session per socket"
    );
    subscribe(&mut client, json!({"queue_name": "c"}));
    let mut got: HashSet<(String, u64)> = HashSet::new();
    for _ in 0..4 {
        let push = next_push(&mut client);
        got.insert((push["queue_name"].as_str().unwrap().to_string(), seq(&push)));
    }
    let expected: HashSet<(String, u64)> = [("a", 2), ("a", 3), ("b", 1), ("b", 2)]
        .map(|(q, s)| (q.to_string(), s))
        .into();
    assert_eq!(got, expected);

    // The cap: one more is refused and the socket carries on.
    let refused = client.request("subscription_create", json!({"queue_name": "d"}));
    assert_eq!(status(&refused), 400, "{refused}");
    post(&http, "c", &[json!("c1")]);
    assert_eq!(next_push(&mut client)["queue_name"], "c");
}

#[test]
fn unacked_pushes_are_sent_again_and_the_window_bounds_them() {
    let server = server_with("ack_timeout = 1\nmax_unacked = 2");
    let http = server.client();
    let mut client = Socket::connect(server.address("websocket"));
    let answer = subscribe(&mut client, json!({"queue_name": "acked", "ack": true}));
    let id = answer["subscription_id"].clone();
    post(&http, "acked", &[json!(1), json!(2), json!(3)]);
    assert_eq!(seq(&next_push(&mut client)), 1);
    assert_eq!(seq(&next_push(&mut client)), 2);
    // The window is full: 3 waits; 1 and 2 come again after the timeout.
    let again: Vec<u64> = (0..2).map(|_| seq(&next_push(&mut client))).collect();
    assert_eq!(again, vec![1, 2]);
    let reply = client.request(
        "subscription_ack",
        json!({"subscription_id": id, "seqs": [1]}),
    );
    assert_eq!(status(&reply), 204, "{reply}");
    // 3 takes the room 1 left (2, still unacked, may come again meanwhile
    // on a slow machine, and so may 1 if it was resent before the ack).
    let after_ack = loop {
        let pushed = seq(&next_push(&mut client));
        if pushed > 2 {
            break pushed;
        }
    };
    assert_eq!(after_ack, 3);
    let reply = client.request(
        "subscription_ack",
        json!({"subscription_id": id, "up_to": 3}),
    );
    assert_eq!(status(&reply), 204, "{reply}");
    // Nothing unacked is left, so nothing comes again. A resend that went
    // out before the ack was served (3's timeout can run out first on a
    // loaded machine) arrived ahead of the reply: only what comes after
    // the reply counts.
    client.pending.clear();
    assert_eq!(push_within(&mut client, Duration::from_millis(2500)), None);

    for bad in [
        json!({"subscription_id": id}),
        json!({"subscription_id": id, "seqs": [1], "up_to": 2}),
        json!({"subscription_id": id, "seqs": ["x"]}),
        json!({"subscription_id": id, "upto": 2}),
    ] {
        assert_eq!(
            status(&client.request("subscription_ack", bad.clone())),
            400,
            "{bad}"
        );
    }
    let unknown = client.request(
        "subscription_ack",
        json!({"subscription_id": "nope", "up_to": 1}),
    );
    assert_eq!(status(&unknown), 404);
}

#[test]
fn a_session_resumes_on_a_new_socket_of_the_same_client_only() {
    let server = server_with("ack_timeout = 30");
    let http = server.client();
    let mut first = Socket::connect(server.address("websocket"));
    let client_id = first.headers()["Client-ID"].as_str().unwrap().to_string();
    let answer = subscribe(&mut first, json!({"queue_name": "resumable", "ack": true}));
    let session = answer["session_id"].as_str().unwrap().to_string();
    post(&http, "resumable", &[json!(1), json!(2)]);
    assert_eq!(seq(&next_push(&mut first)), 1);
    assert_eq!(seq(&next_push(&mut first)), 2);
    let ack = first.request(
        "subscription_ack",
        json!({"subscription_id": answer["subscription_id"], "seqs": [1]}),
    );
    assert_eq!(status(&ack), 204);
    first.close();
    post(&http, "resumable", &[json!(3), json!(4)]);

    let mut stranger = Socket::connect(server.address("websocket"));
    let refused = stranger.request("session_resume", json!({"session_id": session}));
    assert_eq!(status(&refused), 403, "another client: {refused}");
    let mut other_project = Socket::connect(server.address("websocket"));
    other_project.set_header("Client-ID", &client_id);
    other_project.set_header("X-Project-ID", "someone-else");
    let refused = other_project.request("session_resume", json!({"session_id": session}));
    assert_eq!(status(&refused), 403, "another project: {refused}");
    let unknown = stranger.request("session_resume", json!({"session_id": "no-such-session"}));
    assert_eq!(status(&unknown), 404);

    let mut second = Socket::connect(server.address("websocket"));
    second.set_header("Client-ID", &client_id);
    let resumed = second.request("session_resume", json!({"session_id": session}));
    assert_eq!(status(&resumed), 200, "{resumed}");
    assert_eq!(
        resumed["body"],
        json!({"session_id": session, "subscriptions": [
            {"subscription_id": answer["subscription_id"], "queue_name": "resumable", "cursor": 2}
        ]})
    );
    // The unacked push first, then what was posted meanwhile.
    let order: Vec<u64> = (0..3).map(|_| seq(&next_push(&mut second))).collect();
    assert_eq!(order, vec![2, 3, 4]);
    // Taken over: it cannot be resumed twice.
    let again = stranger.request("session_resume", json!({"session_id": session}));
    assert_eq!(status(&again), 404);
}

#[test]
fn a_session_is_gone_after_its_time_to_live() {
    let server = server_with("session_ttl = 1");
    let mut first = Socket::connect(server.address("websocket"));
    let client_id = first.headers()["Client-ID"].as_str().unwrap().to_string();
    let session = subscribe(&mut first, json!({"queue_name": "brief"}))["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    first.close();
    std::thread::sleep(Duration::from_millis(2500));
    let mut second = Socket::connect(server.address("websocket"));
    second.set_header("Client-ID", &client_id);
    let reply = second.request("session_resume", json!({"session_id": session}));
    assert_eq!(status(&reply), 404, "{reply}");
    let listed = server
        .client()
        .get("/v2/queues/brief/subscriptions")
        .send()
        .json();
    assert_eq!(
        listed["subscriptions"],
        json!([]),
        "the expired session's subscription is deleted"
    );
}

#[test]
fn bad_stream_options_are_refused_and_subscribe_nothing() {
    let server = server_with("");
    let http = server.client();
    post(&http, "strict", &[json!(1), json!(2)]);
    let mut client = Socket::connect(server.address("websocket"));
    for body in [
        json!({"queue_name": "strict", "since_seq": 3}),
        json!({"queue_name": "strict", "since_seq": "1"}),
        json!({"queue_name": "strict", "since_seq": -1}),
        json!({"queue_name": "strict", "since_seq": 1, "last_n": 1}),
        json!({"queue_name": "strict", "last_n": 0}),
        json!({"queue_name": "strict", "since": "last tuesday"}),
        json!({"queue_name": "strict", "filter": "no operator"}),
        json!({"queue_name": "strict", "filter": [".a==1"]}),
        json!({"queue_name": "strict", "filter": {"a": 1}}),
        json!({"queue_name": "strict", "ack": "yes"}),
        json!({"queue_name": "strict", "since_sequence": 1}),
    ] {
        let reply = client.request("subscription_create", body.clone());
        assert_eq!(status(&reply), 400, "{body}: {reply}");
    }
    let listed = http.get("/v2/queues/strict/subscriptions").send().json();
    assert_eq!(listed["subscriptions"], json!([]), "nothing subscribed");
    post(&http, "strict", &[json!(3)]);
    assert_eq!(push_within(&mut client, Duration::from_millis(500)), None);
}
