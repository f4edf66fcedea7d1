//! Tenant isolation, under the `noauth` strategy and under an auth
//! strategy (`static`, with one token for project A and one for B): a
//! client of project A cannot read, list, change, claim, delete, subscribe
//! to or be notified of anything of project B, whether it names B's queue
//! from its own project, uses ids taken from B, replays B's pre-signed
//! URLs, or works over a WebSocket (under `static`, one authenticated as
//! A). Under `static`, A naming B's project in `X-Project-ID` is refused on
//! every route and action. Each test snapshots what B owns before A's
//! attempts and checks that nothing of it changed after, and has B do the
//! same thing successfully where that proves the attempt could have
//! worked.

use std::time::Duration;

use serde_json::{json, Value};
use zaqar_tests::{Client, Frame, Receiver, Response, TestServer, WsClient};

const QUEUE: &str = "orders";

/// How the server authenticates its clients.
#[derive(Clone, Copy, PartialEq)]
enum Strategy {
    /// Zaqar's default: `X-Project-ID` is taken as sent.
    NoAuth,
    /// The `static` strategy, a token per project ([`TOKENS`]).
    Static,
}

const TOKENS: &str = r#"
[[tokens]]
token = "token-of-tenant-a"
project = "tenant-a"
user = "a"
roles = ["member"]

[[tokens]]
token = "token-of-tenant-b"
project = "tenant-b"
user = "b"
roles = ["member"]
"#;

/// A server with both transports, and how its clients authenticate.
struct Isolated {
    server: TestServer,
    strategy: Strategy,
    _dir: tempfile::TempDir,
}

impl Isolated {
    fn start(strategy: Strategy) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut overlay = "[signed_url]\nsecret_key = \"isolation\"\n\
             [notification]\nallow_private_subscribers = true\n\
             [drivers]\ntransports = [\"wsgi\", \"websocket\"]\n\
             [drivers.transport.websocket]\nport = 0\n"
            .to_string();
        if strategy == Strategy::Static {
            let tokens = dir.path().join("tokens.toml");
            std::fs::write(&tokens, TOKENS).expect("write tokens");
            overlay.push_str(&format!(
                "[server]\nauth_strategy = \"static\"\n\
                 [drivers.auth.static]\ntokens_file = {:?}\n",
                tokens.display().to_string()
            ));
        }
        Self {
            server: TestServer::start_with(&overlay),
            strategy,
            _dir: dir,
        }
    }

    /// A client of `project`, with its token under `static`.
    fn client(&self, project: &str) -> Client {
        let client = self.guest(project);
        match self.strategy {
            Strategy::NoAuth => client,
            Strategy::Static => client.with_token(&format!("token-of-{project}")),
        }
    }

    /// A client naming `project` with no token (for pre-signed URLs).
    fn guest(&self, project: &str) -> Client {
        self.server.client().with_project(project)
    }

    /// A socket of `project`, authenticated as it under `static`.
    fn socket(&self, project: &str) -> WsClient {
        let mut socket = WsClient::connect(self.server.address("websocket"));
        socket.set_header("X-Project-ID", project);
        if self.strategy == Strategy::Static {
            socket.set_header("X-Auth-Token", &format!("token-of-{project}"));
            let reply = socket.request("authenticate", json!({}));
            assert_eq!(status(&reply), 200, "{reply}");
        }
        socket
    }
}

/// What project B owns in the test: ids A will try to use.
struct Owned {
    messages: Vec<String>,
    claim: String,
    claimed: Vec<String>,
    subscription: String,
    signed: Value,
}

fn path(rest: &str) -> String {
    format!("/v2/queues/{QUEUE}{rest}")
}

#[track_caller]
fn expect(response: Response, status: u16) -> Response {
    assert_eq!(response.status, status, "{}", response.text());
    response
}

/// The id at the end of a resource href (query string dropped).
fn last_segment(href: &str) -> String {
    let href = href.split('?').next().unwrap();
    href.rsplit('/').next().unwrap().to_string()
}

/// B's queue with metadata, four messages (two claimed), a subscription
/// to `hook` and a signed URL for reading its messages.
fn set_up(b: &Client, hook: &Receiver) -> Owned {
    expect(
        b.put(&path(""))
            .json(&json!({"owner": "b", "_default_message_ttl": 3600}))
            .send(),
        201,
    );
    let posted = expect(
        b.post(&path("/messages"))
            .json(&json!({"messages": [{"body": "b1"}, {"body": "b2"}, {"body": "b3"}, {"body": "b4"}]}))
            .send(),
        201,
    );
    let messages: Vec<String> = posted.json()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| last_segment(h.as_str().unwrap()))
        .collect();
    let claimed = expect(
        b.post(&path("/claims?limit=2"))
            .json(&json!({"ttl": 600, "grace": 60}))
            .send(),
        201,
    );
    let claim = last_segment(claimed.header("location").unwrap());
    let claimed: Vec<String> = claimed.json()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| last_segment(m["href"].as_str().unwrap()))
        .collect();
    let subscription = expect(
        b.post(&path("/subscriptions"))
            .json(&json!({"subscriber": hook.url("/b"), "ttl": 3600, "options": {"from": "b"}}))
            .send(),
        201,
    )
    .json()["subscription_id"]
        .as_str()
        .unwrap()
        .to_string();
    let signed = expect(
        b.post(&path("/share"))
            .json(&json!({"methods": ["GET"], "paths": ["messages"]}))
            .send(),
        200,
    )
    .json();
    Owned {
        messages,
        claim,
        claimed,
        subscription,
        signed,
    }
}

/// Everything B can see of what it owns, without the fields that change
/// with time alone (ages).
fn snapshot(b: &Client, owned: &Owned) -> Value {
    fn strip_ages(mut value: Value) -> Value {
        match &mut value {
            Value::Object(map) => {
                map.remove("age");
                for v in map.values_mut() {
                    *v = strip_ages(v.take());
                }
            }
            Value::Array(items) => {
                for v in items.iter_mut() {
                    *v = strip_ages(v.take());
                }
            }
            _ => {}
        }
        value
    }
    let read = |p: &str| {
        let response = b.get(p).send();
        let body = if response.status == 204 {
            Value::Null
        } else {
            response.json()
        };
        strip_ages(json!({"status": response.status, "body": body}))
    };
    json!({
        "queues": read("/v2/queues?detailed=true"),
        "metadata": read(&path("")),
        "stats": read(&path("/stats")),
        "messages": read(&path("/messages?include_claimed=true&echo=true&limit=20")),
        "claim": read(&path(&format!("/claims/{}", owned.claim))),
        "subscriptions": read(&path("/subscriptions")),
    })
}

#[test]
fn project_a_cannot_reach_project_b_over_http() {
    a_cannot_reach_b_over_http(Strategy::NoAuth);
}

#[test]
fn project_a_cannot_reach_project_b_over_http_with_static_tokens() {
    a_cannot_reach_b_over_http(Strategy::Static);
}

fn a_cannot_reach_b_over_http(strategy: Strategy) {
    let isolated = Isolated::start(strategy);
    let hook_b = Receiver::start();
    let hook_a = Receiver::start();
    let b = isolated.client("tenant-b");
    let a = isolated.client("tenant-a");
    let owned = set_up(&b, &hook_b);
    let before = snapshot(&b, &owned);

    if strategy == Strategy::Static {
        a_forging_bs_project_is_refused_on_every_route(&a, &owned, &hook_a);
        assert_eq!(snapshot(&b, &owned), before, "A changed nothing of B's");
    }

    // Listing and reading by B's queue name, from A's project.
    let queues = a.get("/v2/queues").send();
    assert!(
        queues.status == 204 || queues.json()["queues"] == json!([]),
        "{}",
        queues.text()
    );
    assert!(!expect(a.get(&path("")).send(), 200)
        .json()
        .as_object()
        .unwrap()
        .contains_key("owner"));
    assert_eq!(
        expect(a.get(&path("/stats")).send(), 200).json()["messages"]["total"],
        0
    );
    let listing = a
        .get(&path("/messages?include_claimed=true&echo=true"))
        .send();
    assert!(
        listing.status == 204 || listing.json()["messages"] == json!([]),
        "{}",
        listing.text()
    );
    assert_eq!(
        a.get(&path("/subscriptions")).send().json()["subscriptions"],
        json!([])
    );

    // B's ids, from A's project.
    for id in &owned.messages {
        expect(a.get(&path(&format!("/messages/{id}"))).send(), 404);
    }
    let many = a
        .get(&path(&format!(
            "/messages?ids={}",
            owned.messages.join(",")
        )))
        .send();
    assert!(
        many.status == 404 || many.json()["messages"] == json!([]),
        "{}",
        many.text()
    );
    expect(
        a.get(&path(&format!("/claims/{}", owned.claim))).send(),
        404,
    );
    expect(
        a.patch(&path(&format!("/claims/{}", owned.claim)))
            .json(&json!({"ttl": 100}))
            .send(),
        404,
    );
    expect(
        a.get(&path(&format!("/subscriptions/{}", owned.subscription)))
            .send(),
        404,
    );
    expect(
        a.patch(&path(&format!("/subscriptions/{}", owned.subscription)))
            .json(&json!({"ttl": 100}))
            .send(),
        404,
    );
    let patch_queue = a
        .patch(&path(""))
        .header(
            "Content-Type",
            "application/openstack-messaging-v2.0-json-patch",
        )
        .body(json!([{"op": "add", "path": "/metadata/owner", "value": "a"}]).to_string())
        .send();
    assert_eq!(patch_queue.status, 404, "{}", patch_queue.text());

    // Destructive attempts: Zaqar answers 204 for what does not exist, and
    // nothing of B's may change.
    for id in &owned.messages {
        a.delete(&path(&format!("/messages/{id}"))).send();
        a.delete(&path(&format!("/messages/{id}?claim_id={}", owned.claim)))
            .send();
    }
    a.delete(&path(&format!(
        "/messages?ids={}",
        owned.messages.join(",")
    )))
    .send();
    a.delete(&path("/messages?pop=10")).send();
    a.delete(&path(&format!("/claims/{}", owned.claim))).send();
    a.delete(&path(&format!("/subscriptions/{}", owned.subscription)))
        .send();
    a.put(&path(&format!(
        "/subscriptions/{}/confirm",
        owned.subscription
    )))
    .json(&json!({"confirmed": true}))
    .send();
    a.post(&path("/purge")).json(&json!({})).send();
    expect(
        a.post(&path("/claims")).json(&json!({"ttl": 60})).send(),
        204,
    );
    expect(a.delete(&path("")).send(), 204);
    assert_eq!(snapshot(&b, &owned), before, "A changed nothing of B's");

    // A's own queue of the same name holds only A's; B's ids find nothing
    // in it, and A's claim takes only A's messages.
    let a_ids: Vec<String> = expect(
        a.post(&path("/messages"))
            .json(&json!({"messages": [{"body": "a1"}]}))
            .send(),
        201,
    )
    .json()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| last_segment(h.as_str().unwrap()))
        .collect();
    for id in &owned.messages {
        expect(a.get(&path(&format!("/messages/{id}"))).send(), 404);
    }
    expect(
        a.get(&path(&format!("/claims/{}", owned.claim))).send(),
        404,
    );
    let a_claim = expect(
        a.post(&path("/claims")).json(&json!({"ttl": 60})).send(),
        201,
    )
    .json();
    let a_claimed: Vec<String> = a_claim["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| last_segment(m["href"].as_str().unwrap()))
        .collect();
    assert_eq!(a_claimed, a_ids);
    expect(
        a.post(&path("/subscriptions"))
            .json(&json!({"subscriber": hook_a.url("/a"), "ttl": 3600}))
            .send(),
        201,
    );

    // A message B posts is notified to B's subscriber only; one A posts
    // to A's only.
    expect(
        b.post(&path("/messages"))
            .json(&json!({"messages": [{"body": "for-b"}]}))
            .send(),
        201,
    );
    expect(
        a.post(&path("/messages"))
            .json(&json!({"messages": [{"body": "for-a"}]}))
            .send(),
        201,
    );
    let to_b = hook_b.wait_for(1, Duration::from_secs(10));
    let to_a = hook_a.wait_for(1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    let bodies = |hook: &Receiver| -> Vec<Value> {
        hook.received()
            .iter()
            .map(|r| r.json()["body"].clone())
            .collect()
    };
    assert_eq!(bodies(&hook_b), [json!("for-b")], "{to_b:?}");
    assert_eq!(bodies(&hook_a), [json!("for-a")], "{to_a:?}");

    // B's signed URL: only under B's project, only for what it signs.
    let signed = &owned.signed;
    let with_signature = |client: &Client, method: &str, p: &str| {
        client
            .request(method, p)
            .header("URL-Signature", signed["signature"].as_str().unwrap())
            .header("URL-Expires", signed["expires"].as_str().unwrap())
            .header("URL-Methods", "GET")
            .header("URL-Paths", &path("/messages"))
            .send()
    };
    let guest_of_b = isolated.guest("tenant-b");
    expect(with_signature(&guest_of_b, "GET", &path("/messages")), 200);
    expect(with_signature(&a, "GET", &path("/messages")), 404);
    expect(
        with_signature(&guest_of_b, "DELETE", &path("/messages?pop=10")),
        404,
    );
    expect(
        with_signature(&guest_of_b, "GET", &path("/subscriptions")),
        404,
    );
    expect(
        with_signature(&guest_of_b, "GET", "/v2/queues/other/messages"),
        404,
    );
    let b_messages = snapshot(&b, &owned)["messages"]["body"]["messages"].clone();
    assert_eq!(b_messages.as_array().unwrap().len(), 5, "{b_messages}");
}

/// Under an auth strategy, A's token with `X-Project-ID: tenant-b`: every
/// route is refused with 403 before it reads or changes anything.
fn a_forging_bs_project_is_refused_on_every_route(a: &Client, owned: &Owned, hook: &Receiver) {
    let forger = a.with_project("tenant-b");
    let message = &owned.messages[0];
    let ids = owned.messages.join(",");
    let claim = &owned.claim;
    let subscription = &owned.subscription;
    let none = Value::Null;
    let attempts: Vec<(&str, String, Value)> = vec![
        ("GET", "/v2/queues".into(), none.clone()),
        ("GET", path(""), none.clone()),
        ("PUT", path(""), json!({"owner": "a"})),
        ("DELETE", path(""), none.clone()),
        ("GET", path("/stats"), none.clone()),
        ("POST", path("/purge"), json!({})),
        (
            "POST",
            path("/share"),
            json!({"methods": ["GET"], "paths": ["messages"]}),
        ),
        (
            "GET",
            path("/messages?include_claimed=true&echo=true"),
            none.clone(),
        ),
        (
            "POST",
            path("/messages"),
            json!({"messages": [{"body": "forged"}]}),
        ),
        ("GET", path(&format!("/messages?ids={ids}")), none.clone()),
        (
            "DELETE",
            path(&format!("/messages?ids={ids}")),
            none.clone(),
        ),
        ("DELETE", path("/messages?pop=4"), none.clone()),
        ("GET", path(&format!("/messages/{message}")), none.clone()),
        (
            "DELETE",
            path(&format!("/messages/{message}")),
            none.clone(),
        ),
        (
            "DELETE",
            path(&format!("/messages/{message}?claim_id={claim}")),
            none.clone(),
        ),
        ("POST", path("/claims"), json!({"ttl": 60})),
        ("GET", path(&format!("/claims/{claim}")), none.clone()),
        (
            "PATCH",
            path(&format!("/claims/{claim}")),
            json!({"ttl": 100}),
        ),
        ("DELETE", path(&format!("/claims/{claim}")), none.clone()),
        ("GET", path("/subscriptions"), none.clone()),
        (
            "POST",
            path("/subscriptions"),
            json!({"subscriber": hook.url("/forged"), "ttl": 3600}),
        ),
        (
            "GET",
            path(&format!("/subscriptions/{subscription}")),
            none.clone(),
        ),
        (
            "PATCH",
            path(&format!("/subscriptions/{subscription}")),
            json!({"ttl": 100}),
        ),
        (
            "DELETE",
            path(&format!("/subscriptions/{subscription}")),
            none.clone(),
        ),
        (
            "PUT",
            path(&format!("/subscriptions/{subscription}/confirm")),
            json!({"confirmed": true}),
        ),
    ];
    for (method, target, body) in attempts {
        let mut request = forger.request(method, &target);
        if !body.is_null() {
            request = request.json(&body);
        }
        let refused = request.send();
        assert_eq!(refused.status, 403, "{method} {target}: {}", refused.text());
    }
    let patch_queue = forger
        .patch(&path(""))
        .header(
            "Content-Type",
            "application/openstack-messaging-v2.0-json-patch",
        )
        .body(json!([{"op": "add", "path": "/metadata/owner", "value": "a"}]).to_string())
        .send();
    assert_eq!(patch_queue.status, 403, "{}", patch_queue.text());
}

/// Under an auth strategy, a socket authenticated as A naming B's project:
/// every action is refused with 403.
fn a_socket_forging_bs_project_is_refused_on_every_action(a: &mut WsClient, owned: &Owned) {
    let q = QUEUE;
    let message = &owned.messages[0];
    let claim = &owned.claim;
    let subscription = &owned.subscription;
    a.set_header("X-Project-ID", "tenant-b");
    let attempts = [
        ("queue_list", json!({})),
        ("queue_create", json!({"queue_name": q})),
        ("queue_get", json!({"queue_name": q})),
        ("queue_get_stats", json!({"queue_name": q})),
        ("queue_purge", json!({"queue_name": q})),
        ("queue_delete", json!({"queue_name": q})),
        (
            "message_list",
            json!({"queue_name": q, "include_claimed": true, "echo": true}),
        ),
        (
            "message_post",
            json!({"queue_name": q, "messages": [{"body": "forged"}]}),
        ),
        (
            "message_get",
            json!({"queue_name": q, "message_id": message}),
        ),
        (
            "message_get_many",
            json!({"queue_name": q, "message_ids": owned.messages}),
        ),
        (
            "message_delete",
            json!({"queue_name": q, "message_id": message}),
        ),
        (
            "message_delete_many",
            json!({"queue_name": q, "message_ids": owned.messages}),
        ),
        ("message_delete_many", json!({"queue_name": q, "pop": 4})),
        ("claim_create", json!({"queue_name": q, "ttl": 60})),
        ("claim_get", json!({"queue_name": q, "claim_id": claim})),
        (
            "claim_update",
            json!({"queue_name": q, "claim_id": claim, "ttl": 100}),
        ),
        ("claim_delete", json!({"queue_name": q, "claim_id": claim})),
        ("subscription_list", json!({"queue_name": q})),
        ("subscription_create", json!({"queue_name": q, "ttl": 600})),
        (
            "subscription_get",
            json!({"queue_name": q, "subscription_id": subscription}),
        ),
        (
            "subscription_delete",
            json!({"queue_name": q, "subscription_id": subscription}),
        ),
    ];
    for (action, body) in attempts {
        let reply = a.request(action, body);
        assert_eq!(status(&reply), 403, "{action}: {reply}");
    }
    a.set_header("X-Project-ID", "tenant-a");
}

fn status(reply: &Value) -> u64 {
    reply["headers"]["status"].as_u64().expect("status")
}

#[test]
fn project_a_cannot_reach_project_b_over_websocket() {
    a_cannot_reach_b_over_websocket(Strategy::NoAuth);
}

#[test]
fn project_a_cannot_reach_project_b_over_websocket_with_static_tokens() {
    a_cannot_reach_b_over_websocket(Strategy::Static);
}

fn a_cannot_reach_b_over_websocket(strategy: Strategy) {
    let isolated = Isolated::start(strategy);
    let hook_b = Receiver::start();
    let b = isolated.client("tenant-b");
    let owned = set_up(&b, &hook_b);
    let before = snapshot(&b, &owned);
    let mut a = isolated.socket("tenant-a");
    let q = QUEUE;

    if strategy == Strategy::Static {
        a_socket_forging_bs_project_is_refused_on_every_action(&mut a, &owned);
        assert_eq!(snapshot(&b, &owned), before, "A changed nothing of B's");
    }

    let reply = a.request("queue_list", json!({}));
    assert_eq!(reply["body"]["queues"], json!([]), "{reply}");
    let reply = a.request("queue_get", json!({"queue_name": q}));
    assert!(reply["body"].get("owner").is_none(), "{reply}");
    let reply = a.request("queue_get_stats", json!({"queue_name": q}));
    assert_eq!(reply["body"]["messages"]["total"], 0, "{reply}");
    let reply = a.request(
        "message_list",
        json!({"queue_name": q, "include_claimed": true, "echo": true}),
    );
    assert_eq!(reply["body"]["messages"], json!([]), "{reply}");
    for id in &owned.messages {
        let reply = a.request("message_get", json!({"queue_name": q, "message_id": id}));
        assert_eq!(status(&reply), 404, "{reply}");
    }
    let reply = a.request(
        "message_get_many",
        json!({"queue_name": q, "message_ids": owned.messages}),
    );
    assert!(
        status(&reply) == 404 || reply["body"]["messages"] == json!([]),
        "{reply}"
    );
    let reply = a.request(
        "claim_get",
        json!({"queue_name": q, "claim_id": owned.claim}),
    );
    assert_eq!(status(&reply), 404, "{reply}");
    let reply = a.request(
        "claim_update",
        json!({"queue_name": q, "claim_id": owned.claim, "ttl": 100}),
    );
    assert_eq!(status(&reply), 404, "{reply}");
    let reply = a.request("subscription_list", json!({"queue_name": q}));
    assert_eq!(reply["body"]["subscriptions"], json!([]), "{reply}");
    let reply = a.request(
        "subscription_get",
        json!({"queue_name": q, "subscription_id": owned.subscription}),
    );
    assert_eq!(status(&reply), 404, "{reply}");

    for id in &owned.messages {
        a.request("message_delete", json!({"queue_name": q, "message_id": id}));
        a.request(
            "message_delete",
            json!({"queue_name": q, "message_id": id, "claim_id": owned.claim}),
        );
    }
    a.request(
        "message_delete_many",
        json!({"queue_name": q, "message_ids": owned.messages}),
    );
    a.request("message_delete_many", json!({"queue_name": q, "pop": 10}));
    a.request(
        "claim_delete",
        json!({"queue_name": q, "claim_id": owned.claim}),
    );
    a.request(
        "subscription_delete",
        json!({"queue_name": q, "subscription_id": owned.subscription}),
    );
    a.request("queue_purge", json!({"queue_name": q}));
    let reply = a.request("claim_create", json!({"queue_name": q, "ttl": 60}));
    assert_eq!(status(&reply), 204, "{reply}");
    a.request("queue_delete", json!({"queue_name": q}));
    assert_eq!(snapshot(&b, &owned), before, "A changed nothing of B's");
    assert!(
        owned.claimed.iter().all(|id| owned.messages.contains(id)),
        "the claimed ids are B's"
    );

    // Subscribed sockets: a message B posts is pushed to B's socket only.
    let mut b_socket = isolated.socket("tenant-b");
    let reply = b_socket.request("subscription_create", json!({"queue_name": q, "ttl": 600}));
    assert_eq!(status(&reply), 201, "{reply}");
    let reply = a.request("subscription_create", json!({"queue_name": q, "ttl": 600}));
    assert_eq!(status(&reply), 201, "{reply}");
    expect(
        b.post(&path("/messages"))
            .json(&json!({"messages": [{"body": "pushed-to-b"}]}))
            .send(),
        201,
    );
    let pushed = loop {
        match b_socket.recv(Duration::from_secs(10)) {
            Frame::Text(v) if v.get("request").is_none() => break v,
            Frame::Text(_) => continue,
            other => panic!("B's socket got no push: {other:?}"),
        }
    };
    assert_eq!(pushed["body"], "pushed-to-b");
    loop {
        match a.recv(Duration::from_millis(1500)) {
            Frame::Timeout => break,
            Frame::Text(v) if v.get("request").is_some() => continue,
            other => panic!("A's socket got something of B's: {other:?}"),
        }
    }

    // B's signed URL on A's socket, under A's project, reads nothing of B's.
    let signed = &owned.signed;
    a.set_header("URL-Signature", signed["signature"].as_str().unwrap());
    a.set_header("URL-Expires", signed["expires"].as_str().unwrap());
    a.set_header("URL-Methods", "GET");
    a.set_header("URL-Paths", &path("/messages"));
    let reply = a.request("message_list", json!({"queue_name": q, "echo": true}));
    assert!(
        status(&reply) >= 400 || reply["body"]["messages"] == json!([]),
        "{reply}"
    );
}
