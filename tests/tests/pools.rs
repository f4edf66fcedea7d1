//! Pools and flavors (`[server] pooling = true`), end to end: the admin API
//! with Zaqar's bodies and errors, queues spread by weight over stores of
//! different drivers, every queue operation on every pool, flavors
//! restricting placement, placement kept across a restart, pool removal
//! refused while queues live on it, and the WebSocket `pool_*`/`flavor_*`
//! actions.
//!
//! Which pool holds a queue is read back the way an operator could: the
//! pooled server is stopped and a plain server is started on one pool's
//! store alone, listing what is there.

mod api_support;

use std::{collections::BTreeSet, path::Path, time::Duration};

use api_support::assert_error;
use serde_json::{json, Value};
use zaqar_tests::{
    postgres::TestDatabase, Client, Frame, Received, Receiver, RedisPrefix, TestServer, WsClient,
};

const POOLING: &str = "[server]\npooling = true\n";
const POOLING_WS: &str = "[server]\npooling = true\n[drivers]\ntransports = [\"wsgi\", \"websocket\"]\n[drivers.transport.websocket]\nport = 0\n";

fn admin(server: &TestServer) -> Client {
    server.client().with_roles("admin")
}

fn embedded_uri(dir: &Path) -> String {
    format!("embedded://{}", dir.display())
}

fn put_pool(client: &Client, name: &str, body: Value) {
    let response = client.put(&format!("/v2/pools/{name}")).json(&body).send();
    assert_eq!(response.status, 201, "PUT pool {name}: {}", response.text());
}

/// The queues of `project` a plain (unpooled) server finds in one store,
/// given as `[drivers.message_store]` TOML.
fn queues_in_store(store: &str, project: &str) -> BTreeSet<String> {
    let server = TestServer::start_with(store);
    let client = server.client().with_project(project);
    let mut names = BTreeSet::new();
    let mut path = "/v2/queues?limit=20".to_string();
    loop {
        let page = client.get(&path).send().json();
        let queues = page["queues"].as_array().expect("queues").clone();
        if queues.is_empty() {
            return names;
        }
        for queue in &queues {
            names.insert(queue["name"].as_str().unwrap().to_string());
        }
        path = page["links"][0]["href"].as_str().unwrap().to_string();
    }
}

fn embedded_store(dir: &Path) -> String {
    format!(
        "[drivers.message_store]\nname = \"embedded\"\n[drivers.message_store.embedded]\npath = {}\n",
        toml_string(&dir.display().to_string())
    )
}

fn redis_store(prefix: &RedisPrefix) -> String {
    format!(
        "[drivers.message_store]\nname = \"redis\"\n[drivers.message_store.redis]\n{}\n",
        prefix.settings()
    )
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

#[test]
fn without_pooling_the_pool_and_flavor_routes_do_not_exist() {
    let server = TestServer::start();
    for path in ["/v2/pools", "/v2/pools/p1", "/v2/flavors", "/v2/flavors/f1"] {
        let response = admin(&server).get(path).send();
        assert_eq!(response.status, 404, "{path}");
    }
}

#[test]
fn the_pools_admin_api_answers_as_zaqar() {
    let server = TestServer::start_with(POOLING);
    let dirs = tempfile::tempdir().unwrap();
    let client = admin(&server);

    let empty = client.get("/v2/pools").send();
    assert_eq!(empty.status, 200);
    assert_eq!(empty.json(), json!({"links": [], "pools": []}));
    assert_eq!(empty.header("content-location"), Some("/v2/pools"));

    // Admin only.
    let denied = server.client().get("/v2/pools").send();
    assert_error(
        &denied,
        403,
        "Not authorized",
        "You are not authorized to complete this action.",
    );

    let uri = embedded_uri(&dirs.path().join("one"));
    let created = client
        .put("/v2/pools/one")
        .json(&json!({"uri": uri, "weight": 10, "options": {}}))
        .send();
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.header("location"), Some("/v2/pools/one"));
    assert!(created.body.is_empty());

    let shown = client.get("/v2/pools/one").send();
    assert_eq!(shown.status, 200);
    assert_eq!(
        shown.text(),
        json!({"name": "one", "uri": uri, "weight": 10, "flavor": null, "href": "/v2/pools/one"})
            .to_string()
    );
    let detailed = client.get("/v2/pools/one?detailed=true").send().json();
    assert_eq!(detailed["options"], json!({}));

    let patched = client
        .patch("/v2/pools/one")
        .json(&json!({"weight": 20}))
        .send();
    assert_eq!(patched.status, 200);
    assert_eq!(patched.json()["weight"], 20);
    let nothing = client.patch("/v2/pools/one").json(&json!({})).send();
    assert_error(
        &nothing,
        400,
        "Invalid request body",
        "One of `uri`, `weight`, `flavor`, or `options` needs to be specified",
    );

    let listed = client.get("/v2/pools?detailed=true").send();
    assert_eq!(
        listed.header("content-location"),
        Some("/v2/pools?detailed=true")
    );
    assert_eq!(
        listed.json(),
        json!({
            "links": [{"rel": "next", "href": "/v2/pools?detailed=true&marker=one"}],
            "pools": [{"name": "one", "uri": uri, "weight": 20, "flavor": null, "options": {}, "href": "/v2/pools/one"}]
        })
    );

    // Validation, nothing registered on failure.
    let negative = client
        .put("/v2/pools/bad")
        .json(&json!({"uri": embedded_uri(&dirs.path().join("bad")), "weight": -1}))
        .send();
    assert_error(
        &negative,
        400,
        "Invalid request body",
        "-1 is less than the minimum of 0",
    );
    let missing = client
        .put("/v2/pools/bad")
        .json(&json!({"weight": 1}))
        .send();
    assert_error(
        &missing,
        400,
        "Invalid request body",
        "'uri' is a required property",
    );
    let extra = client
        .put("/v2/pools/bad")
        .json(&json!({"uri": "redis://127.0.0.1:6379", "weight": 1, "color": "red"}))
        .send();
    assert_error(
        &extra,
        400,
        "Invalid request body",
        "Additional properties are not allowed ('color' was unexpected)",
    );
    let unreachable = client
        .put("/v2/pools/bad")
        .json(&json!({"uri": "redis://127.0.0.1:1", "weight": 10}))
        .send();
    assert_error(
        &unreachable,
        400,
        "Invalid request body",
        "cannot connect to redis://127.0.0.1:1",
    );
    let unknown = client
        .put("/v2/pools/bad")
        .json(&json!({"uri": "mongodb://127.0.0.1:27017", "weight": 10}))
        .send();
    assert_eq!(unknown.status, 400);
    assert!(
        unknown.json()["description"]
            .as_str()
            .unwrap()
            .contains("No loaded message store serves the URI scheme"),
        "{}",
        unknown.text()
    );
    let in_use = client
        .put("/v2/pools/dup")
        .json(&json!({"uri": uri, "weight": 1}))
        .send();
    assert_error(
        &in_use,
        409,
        "Resource conflict",
        "The database URI is in use by another pool.",
    );
    for name in ["bad", "dup"] {
        let gone = client.get(&format!("/v2/pools/{name}")).send();
        assert_error(
            &gone,
            404,
            "Not found",
            &format!("Pool {name} does not exist"),
        );
    }

    // Paging.
    put_pool(
        &client,
        "two",
        json!({"uri": embedded_uri(&dirs.path().join("two")), "weight": 1}),
    );
    let first = client.get("/v2/pools?limit=1").send().json();
    assert_eq!(first["pools"][0]["name"], "one");
    let next = first["links"][0]["href"].as_str().unwrap().to_string();
    assert_eq!(next, "/v2/pools?limit=1&marker=one");
    let second = client.get(&next).send().json();
    assert_eq!(second["pools"][0]["name"], "two");
    let bad_limit = client.get("/v2/pools?limit=21").send();
    assert_error(
        &bad_limit,
        400,
        "Invalid API request",
        "Limit must be at least 1 and no greater than 20.",
    );

    // An empty pool goes; a missing one is fine too.
    assert_eq!(client.delete("/v2/pools/two").send().status, 204);
    assert_eq!(client.get("/v2/pools/two").send().status, 404);
    assert_eq!(client.delete("/v2/pools/two").send().status, 204);
}

#[test]
fn the_flavors_admin_api_answers_as_zaqar() {
    let server = TestServer::start_with(POOLING);
    let dirs = tempfile::tempdir().unwrap();
    let client = admin(&server);
    assert_eq!(
        client.get("/v2/flavors").send().json(),
        json!({"links": [], "flavors": []})
    );
    put_pool(
        &client,
        "p1",
        json!({"uri": embedded_uri(&dirs.path().join("p1")), "weight": 10}),
    );
    put_pool(
        &client,
        "p2",
        json!({"uri": embedded_uri(&dirs.path().join("p2")), "weight": 10}),
    );

    let created = client
        .put("/v2/flavors/gold")
        .json(&json!({"pool_list": ["p1"]}))
        .send();
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.header("location"), Some("/v2/flavors/gold"));
    let shown = client.get("/v2/flavors/gold").send();
    assert_eq!(
        shown.text(),
        json!({
            "name": "gold",
            "capabilities": ["FIFO", "CLAIMS", "DURABILITY", "AOD"],
            "pool_list": ["p1"],
            "href": "/v2/flavors/gold"
        })
        .to_string()
    );
    // The pool joined the flavor.
    assert_eq!(client.get("/v2/pools/p1").send().json()["flavor"], "gold");
    // Reading flavors is open to the project; changing them is not.
    assert_eq!(server.client().get("/v2/flavors/gold").send().status, 200);
    let denied = server
        .client()
        .put("/v2/flavors/x")
        .json(&json!({"pool_list": ["p1"]}))
        .send();
    assert_eq!(denied.status, 403);

    let unknown = client
        .put("/v2/flavors/bad")
        .json(&json!({"pool_list": ["nope"]}))
        .send();
    assert_error(
        &unknown,
        400,
        "Unable to create",
        "Flavor bad could not be created, error:Pool nope does not exist",
    );
    let empty = client
        .put("/v2/flavors/bad")
        .json(&json!({"pool_list": []}))
        .send();
    assert_error(&empty, 400, "Unable to create", "Bad Request");
    let no_list = client
        .patch("/v2/flavors/gold")
        .json(&json!({"capabilities": {"durable": true}}))
        .send();
    assert_error(
        &no_list,
        400,
        "Invalid request body",
        "`pool_list` needs to be specified",
    );
    let missing = client
        .patch("/v2/flavors/nope")
        .json(&json!({"pool_list": ["p1"]}))
        .send();
    assert_error(&missing, 404, "Not found", "Flavor nope does not exist");

    // Deleting the only pool of a flavor is refused.
    let only = client.delete("/v2/pools/p1").send();
    assert_error(
        &only,
        403,
        "Unable to delete",
        "This pool is used by flavors gold; It cannot be deleted.",
    );

    // PATCH moves the flavor to p2: p1 leaves it.
    let patched = client
        .patch("/v2/flavors/gold")
        .json(&json!({"pool_list": ["p2"]}))
        .send();
    assert_eq!(patched.status, 200);
    assert_eq!(patched.json()["pool_list"], json!(["p2"]));
    assert_eq!(
        client.get("/v2/pools/p1").send().json()["flavor"],
        Value::Null
    );
    assert_eq!(client.get("/v2/pools/p2").send().json()["flavor"], "gold");

    let listed = client.get("/v2/flavors?detailed=true").send().json();
    assert_eq!(
        listed,
        json!({
            "links": [{"rel": "next", "href": "/v2/flavors?marker=gold&detailed=true"}],
            "flavors": [{
                "name": "gold",
                "href": "/v2/flavors/gold",
                "pool_list": ["p2"],
                "capabilities": ["FIFO", "CLAIMS", "DURABILITY", "AOD"]
            }]
        })
    );
    // Flavors belong to their project.
    let other = client
        .with_project("other-project")
        .get("/v2/flavors")
        .send()
        .json();
    assert_eq!(other["flavors"], json!([]));

    // A queue may only name a flavor of its project.
    let bad_queue = server
        .client()
        .put("/v2/queues/q1")
        .json(&json!({"_flavor": "silver"}))
        .send();
    assert_error(
        &bad_queue,
        400,
        "Invalid API request",
        "Flavor silver does not exist",
    );

    assert_eq!(client.delete("/v2/flavors/gold").send().status, 204);
    assert_eq!(client.get("/v2/flavors/gold").send().status, 404);
    assert_eq!(
        client.get("/v2/pools/p2").send().json()["flavor"],
        Value::Null
    );
}

/// Every queue operation on `queue`, checked as a plain server answers it.
fn exercise_queue(client: &Client, queue: &str) {
    let base = format!("/v2/queues/{queue}");
    assert_eq!(client.put(&base).send().status, 201, "{queue}");
    let metadata = client
        .patch(&base)
        .json(&json!([{"op": "add", "path": "/metadata/color", "value": queue}]))
        .header(
            "Content-Type",
            "application/openstack-messaging-v2.0-json-patch",
        )
        .send();
    assert_eq!(metadata.status, 200, "{queue}: {}", metadata.text());
    assert_eq!(client.get(&base).send().json()["color"], queue);

    let posted = client
        .post(&format!("{base}/messages"))
        .json(&json!({"messages": [{"body": {"n": 1}, "ttl": 300}, {"body": {"n": 2}}, {"body": {"n": 3}}]}))
        .send();
    assert_eq!(posted.status, 201, "{queue}");
    let ids: Vec<String> = posted.json()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().rsplit('/').next().unwrap().to_string())
        .collect();
    let listed = client
        .get(&format!("{base}/messages?echo=true"))
        .send()
        .json();
    assert_eq!(listed["messages"].as_array().unwrap().len(), 3, "{queue}");
    let one = client.get(&format!("{base}/messages/{}", ids[0])).send();
    assert_eq!(one.json()["body"], json!({"n": 1}));
    let many = client
        .get(&format!("{base}/messages?ids={},{}", ids[0], ids[1]))
        .send();
    assert_eq!(many.json()["messages"].as_array().unwrap().len(), 2);

    let stats = client.get(&format!("{base}/stats")).send().json();
    assert_eq!(stats["messages"]["total"], 3, "{queue}");

    let claim = client
        .post(&format!("{base}/claims?limit=1"))
        .json(&json!({"ttl": 60, "grace": 60}))
        .send();
    assert_eq!(claim.status, 201, "{queue}");
    let claim_path = claim.header("location").unwrap().to_string();
    assert_eq!(client.get(&claim_path).send().status, 200);
    assert_eq!(
        client
            .patch(&claim_path)
            .json(&json!({"ttl": 120}))
            .send()
            .status,
        204
    );
    let claimed_id = claim.json()["messages"][0]["href"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(client.delete(&claimed_id).send().status, 204);
    assert_eq!(client.delete(&claim_path).send().status, 204);
    assert_eq!(
        client.get(&format!("{base}/stats")).send().json()["messages"]["total"],
        2
    );
    let popped = client.delete(&format!("{base}/messages?pop=1")).send();
    assert_eq!(popped.json()["messages"].as_array().unwrap().len(), 1);
    assert_eq!(
        client
            .delete(&format!("{base}/messages?ids={}", ids[2]))
            .send()
            .status,
        204
    );

    let subscription = client
        .post(&format!("{base}/subscriptions"))
        .json(&json!({"subscriber": "http://127.0.0.1:9/hook", "ttl": 3600}))
        .send();
    assert_eq!(subscription.status, 201, "{queue}");
    let id = subscription.json()["subscription_id"]
        .as_str()
        .unwrap()
        .to_string();
    let subscriptions = client.get(&format!("{base}/subscriptions")).send().json();
    assert_eq!(subscriptions["subscriptions"][0]["id"], id.as_str());
    let one = client.get(&format!("{base}/subscriptions/{id}")).send();
    assert_eq!(one.status, 200);
    assert_eq!(
        client
            .delete(&format!("{base}/subscriptions/{id}"))
            .send()
            .status,
        204
    );

    client
        .post(&format!("{base}/messages"))
        .json(&json!({"messages": [{"body": "left"}]}))
        .send();
    assert_eq!(client.post(&format!("{base}/purge")).send().status, 204);
    assert_eq!(
        client.get(&format!("{base}/stats")).send().json()["messages"]["total"],
        0
    );
    // One message stays, to find after a restart.
    let kept = client
        .post(&format!("{base}/messages"))
        .json(&json!({"messages": [{"body": {"kept": queue}}]}))
        .send();
    assert_eq!(kept.status, 201);
}

#[test]
fn queues_spread_over_an_embedded_and_a_redis_pool_and_stay_there() {
    let dirs = tempfile::tempdir().unwrap();
    let redis = RedisPrefix::create();
    let mut server = TestServer::start_with(POOLING);
    let admin = admin(&server);
    let embedded_dir = dirs.path().join("disk");
    put_pool(
        &admin,
        "disk",
        json!({"uri": embedded_uri(&embedded_dir), "weight": 1}),
    );
    put_pool(
        &admin,
        "memory",
        json!({"uri": redis.uri, "weight": 1, "options": {"key_prefix": redis.prefix}}),
    );

    let client = server.client().with_project("spread");
    let names: Vec<String> = (0..12).map(|i| format!("q{i:02}")).collect();
    for name in &names {
        exercise_queue(&client, name);
    }

    // The listing spans both pools, in name order, with working markers.
    let mut listed = Vec::new();
    let mut path = "/v2/queues?limit=5".to_string();
    loop {
        let page = client.get(&path).send().json();
        let queues = page["queues"].as_array().unwrap().clone();
        if queues.is_empty() {
            break;
        }
        listed.extend(
            queues
                .iter()
                .map(|q| q["name"].as_str().unwrap().to_string()),
        );
        path = page["links"][0]["href"].as_str().unwrap().to_string();
    }
    assert_eq!(listed, names);
    let counted = client.get("/v2/queues?with_count=true").send().json();
    assert_eq!(counted["count"], 12);

    // A pool holding queues stays.
    let refused = admin.delete("/v2/pools/memory").send();
    assert_error(
        &refused,
        403,
        "Unable to delete",
        "Pool memory still holds queues; queues never move between pools, so it cannot be deleted.",
    );
    let moved = admin
        .patch("/v2/pools/disk")
        .json(&json!({"uri": embedded_uri(&dirs.path().join("elsewhere"))}))
        .send();
    assert_error(
        &moved,
        409,
        "Resource conflict",
        "The pool holds queues, and queues never move between pools: its URI and options cannot change.",
    );

    // A restart keeps every placement.
    server.restart();
    let client = server.client().with_project("spread");
    for name in &names {
        let messages = client
            .get(&format!("/v2/queues/{name}/messages?echo=true"))
            .send()
            .json();
        assert_eq!(
            messages["messages"][0]["body"],
            json!({"kept": name}),
            "{name} after restart"
        );
    }
    drop(server);

    // Each pool holds some of the queues, none twice.
    let on_disk = queues_in_store(&embedded_store(&embedded_dir), "spread");
    let in_redis = queues_in_store(&redis_store(&redis), "spread");
    assert!(
        !on_disk.is_empty() && !in_redis.is_empty(),
        "disk {on_disk:?} redis {in_redis:?}"
    );
    assert!(on_disk.is_disjoint(&in_redis));
    let all: BTreeSet<String> = on_disk.union(&in_redis).cloned().collect();
    assert_eq!(all, names.iter().cloned().collect());
}

#[test]
fn a_pool_is_removed_once_its_queues_are_deleted_and_weight_zero_takes_none() {
    let dirs = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(POOLING);
    let admin = admin(&server);
    put_pool(
        &admin,
        "a",
        json!({"uri": embedded_uri(&dirs.path().join("a")), "weight": 1}),
    );
    put_pool(
        &admin,
        "b",
        json!({"uri": embedded_uri(&dirs.path().join("b")), "weight": 1}),
    );
    let client = server.client();
    let names: Vec<String> = (0..10).map(|i| format!("w{i}")).collect();
    for name in &names {
        assert_eq!(client.put(&format!("/v2/queues/{name}")).send().status, 201);
    }
    // With weight 0, b takes no new queue.
    let patched = admin
        .patch("/v2/pools/b")
        .json(&json!({"weight": 0}))
        .send();
    assert_eq!(patched.status, 200);
    for i in 0..10 {
        let name = format!("late{i}");
        assert_eq!(client.put(&format!("/v2/queues/{name}")).send().status, 201);
    }
    // b holds some of the first queues: it stays until they are deleted.
    assert_eq!(admin.delete("/v2/pools/b").send().status, 403);
    for name in &names {
        assert_eq!(
            client.delete(&format!("/v2/queues/{name}")).send().status,
            204
        );
    }
    // Every late queue went to a, so b is empty now.
    assert_eq!(admin.delete("/v2/pools/b").send().status, 204);
    assert_eq!(admin.get("/v2/pools/b").send().status, 404);
    // Queues still on a keep working.
    let late = client
        .post("/v2/queues/late9/messages")
        .json(&json!({"messages": [{"body": 1}]}))
        .send();
    assert_eq!(late.status, 201);
}

#[test]
fn flavors_restrict_placement() {
    let dirs = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(POOLING);
    let admin = admin(&server);
    let plain_dir = dirs.path().join("plain");
    let gold_dir = dirs.path().join("gold");
    put_pool(
        &admin,
        "plain",
        json!({"uri": embedded_uri(&plain_dir), "weight": 5}),
    );
    put_pool(
        &admin,
        "gold-1",
        json!({"uri": embedded_uri(&gold_dir), "weight": 5}),
    );
    // Flavors belong to a project: the queues' own.
    let flavor = admin
        .with_project("flavored")
        .put("/v2/flavors/gold")
        .json(&json!({"pool_list": ["gold-1"]}))
        .send();
    assert_eq!(flavor.status, 201);

    let client = server.client().with_project("flavored");
    let gold: BTreeSet<String> = (0..6).map(|i| format!("g{i}")).collect();
    let plain: BTreeSet<String> = (0..6).map(|i| format!("p{i}")).collect();
    for name in &gold {
        let created = client
            .put(&format!("/v2/queues/{name}"))
            .json(&json!({"_flavor": "gold"}))
            .send();
        assert_eq!(created.status, 201, "{}", created.text());
        assert_eq!(
            client.get(&format!("/v2/queues/{name}")).send().json()["_flavor"],
            "gold"
        );
    }
    for name in &plain {
        let posted = client
            .post(&format!("/v2/queues/{name}/messages"))
            .json(&json!({"messages": [{"body": name}]}))
            .send();
        assert_eq!(posted.status, 201);
    }
    drop(server);
    assert_eq!(
        queues_in_store(&embedded_store(&gold_dir), "flavored"),
        gold
    );
    assert_eq!(
        queues_in_store(&embedded_store(&plain_dir), "flavored"),
        plain
    );
}

fn status(reply: &Value) -> u64 {
    reply["headers"]["status"].as_u64().unwrap()
}

#[test]
fn websocket_pool_and_flavor_actions_are_answered() {
    let dirs = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(POOLING_WS);
    let mut socket = WsClient::connect(server.address("websocket"));
    let uri = embedded_uri(&dirs.path().join("ws"));

    // Admin only, like HTTP.
    let denied = socket.request("pool_list", json!({}));
    assert_eq!(status(&denied), 403, "{denied}");
    socket.set_header("X-Roles", "admin");

    let created = socket.request(
        "pool_create",
        json!({"pool_name": "ws", "uri": uri, "weight": 3}),
    );
    assert_eq!(status(&created), 201, "{created}");
    let got = socket.request("pool_get", json!({"pool_name": "ws", "detailed": true}));
    assert_eq!(status(&got), 200);
    assert_eq!(
        got["body"],
        json!({"name": "ws", "uri": uri, "weight": 3, "flavor": null, "options": {}, "href": "/v2/pools/ws"})
    );
    let updated = socket.request("pool_update", json!({"pool_name": "ws", "weight": 4}));
    assert_eq!(updated["body"]["weight"], 4);
    let listed = socket.request("pool_list", json!({"limit": 5}));
    assert_eq!(listed["body"]["pools"][0]["name"], "ws");
    let bad = socket.request(
        "pool_create",
        json!({"pool_name": "bad", "uri": "redis://127.0.0.1:1", "weight": 1}),
    );
    assert_eq!(status(&bad), 400);
    assert_eq!(
        bad["body"]["exception"],
        "cannot connect to redis://127.0.0.1:1"
    );

    let flavor = socket.request(
        "flavor_create",
        json!({"flavor_name": "fast", "pool_list": ["ws"]}),
    );
    assert_eq!(status(&flavor), 201, "{flavor}");
    let got = socket.request("flavor_get", json!({"flavor_name": "fast"}));
    assert_eq!(got["body"]["pool_list"], json!(["ws"]));
    let listed = socket.request("flavor_list", json!({"detailed": true}));
    assert_eq!(listed["body"]["flavors"][0]["name"], "fast");
    let updated = socket.request("flavor_update", json!({"flavor_name": "fast"}));
    assert_eq!(status(&updated), 400);

    // A queue of the flavor, and a socket push from it.
    let queue = socket.request(
        "queue_create",
        json!({"queue_name": "wsq", "metadata": {"_flavor": "fast"}}),
    );
    assert_eq!(status(&queue), 201, "{queue}");
    let subscribed = socket.request(
        "subscription_create",
        json!({"queue_name": "wsq", "ttl": 600}),
    );
    assert_eq!(status(&subscribed), 201);
    let posted = server
        .client()
        .post("/v2/queues/wsq/messages")
        .json(&json!({"messages": [{"body": "pushed"}]}))
        .send();
    assert_eq!(posted.status, 201);
    let push = loop {
        match socket.recv(Duration::from_secs(10)) {
            Frame::Text(value) if value.get("request").is_none() => break value,
            Frame::Text(_) => continue,
            other => panic!("expected a push, got {other:?}"),
        }
    };
    assert_eq!(push["body"], "pushed");
    assert_eq!(push["queue_name"], "wsq");

    // The pool holds the queue: it stays until the queue goes.
    let refused = socket.request("pool_delete", json!({"pool_name": "ws"}));
    assert_eq!(status(&refused), 403);
    assert_eq!(
        status(&socket.request("flavor_delete", json!({"flavor_name": "fast"}))),
        204
    );
    assert_eq!(
        status(&socket.request("queue_delete", json!({"queue_name": "wsq"}))),
        204
    );
    let removed = socket.request("pool_delete", json!({"pool_name": "ws"}));
    assert_eq!(status(&removed), 204, "{removed}");
    assert_eq!(
        status(&socket.request("pool_get", json!({"pool_name": "ws"}))),
        404
    );
}

#[test]
fn websocket_pool_actions_do_not_exist_without_pooling() {
    let server = TestServer::start_with(
        "[drivers]\ntransports = [\"wsgi\", \"websocket\"]\n[drivers.transport.websocket]\nport = 0\n",
    );
    let mut socket = WsClient::connect(server.address("websocket"));
    socket.set_header("X-Roles", "admin");
    let reply = socket.request("pool_list", json!({}));
    assert_eq!(status(&reply), 404, "{reply}");
}

#[test]
fn notifications_reach_subscribers_of_queues_on_an_embedded_and_a_postgresql_pool() {
    let dirs = tempfile::tempdir().unwrap();
    let database = TestDatabase::create();
    let mut server = TestServer::start_with(POOLING);
    let admin = admin(&server);
    let embedded_dir = dirs.path().join("disk");
    put_pool(
        &admin,
        "disk",
        json!({"uri": embedded_uri(&embedded_dir), "weight": 1}),
    );
    put_pool(
        &admin,
        "sql",
        json!({"uri": database.uri, "weight": 1, "options": {"pool_size": 2}}),
    );

    let receiver = Receiver::start();
    let client = server.client().with_project("notified");
    let names: Vec<String> = (0..8).map(|i| format!("n{i}")).collect();
    for name in &names {
        let subscribed = client
            .post(&format!("/v2/queues/{name}/subscriptions"))
            .json(&json!({"subscriber": receiver.url(&format!("/{name}")), "ttl": 3600}))
            .send();
        assert_eq!(subscribed.status, 201, "{}", subscribed.text());
    }
    let post_round = |client: &Client, round: u32| {
        for name in &names {
            let posted = client
                .post(&format!("/v2/queues/{name}/messages"))
                .json(&json!({"messages": [{"body": {"queue": name, "round": round}}]}))
                .send();
            assert_eq!(posted.status, 201);
        }
    };
    // Generous: after the restart, delivery waits for the killed host's
    // leases to expire, and CI machines are loaded. Counted in distinct
    // messages: one delivered just before the restart whose cursor was not
    // yet recorded is delivered again.
    let distinct = |received: &[Received]| -> BTreeSet<(String, u64)> {
        received
            .iter()
            .map(|r| {
                let body = r.json()["body"].clone();
                (
                    body["queue"].as_str().unwrap().to_string(),
                    body["round"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let delivered = |count: usize| -> BTreeSet<(String, u64)> {
        distinct(&receiver.wait_until(
            &format!("{count} distinct messages"),
            Duration::from_secs(90),
            |received| distinct(received).len() >= count,
        ))
    };
    post_round(&client, 1);
    let expected: BTreeSet<(String, u64)> = names.iter().map(|n| (n.clone(), 1)).collect();
    assert_eq!(delivered(8), expected);

    // After a restart, delivery resumes on every pool.
    server.restart();
    let client = server.client().with_project("notified");
    post_round(&client, 2);
    let mut expected = expected;
    expected.extend(names.iter().map(|n| (n.clone(), 2)));
    assert_eq!(delivered(16), expected);
    drop(server);

    let on_disk = queues_in_store(&embedded_store(&embedded_dir), "notified");
    let in_sql = queues_in_store(
        &format!(
            "[drivers.message_store]\nname = \"postgresql\"\n[drivers.message_store.postgresql]\nuri = {}\n",
            toml_string(&database.uri)
        ),
        "notified",
    );
    assert!(
        !on_disk.is_empty() && !in_sql.is_empty(),
        "disk {on_disk:?} sql {in_sql:?}"
    );
    assert!(on_disk.is_disjoint(&in_sql));
}

/// Two hosts share the management store (PostgreSQL) and two Redis pools.
/// A queue deleted through one host and placed again on another pool is
/// followed by the other host, which had cached its first placement: the
/// pool's change feed tells it the queue was deleted.
#[test]
fn hosts_sharing_the_catalog_follow_a_queue_placed_again_after_its_deletion() {
    let database = TestDatabase::create();
    let first_prefix = RedisPrefix::create();
    let second_prefix = RedisPrefix::create();
    let a = TestServer::start_on_postgresql(&database.uri, POOLING);
    let b = TestServer::start_on_postgresql(&database.uri, POOLING);
    let admin_a = admin(&a);
    let admin_b = admin(&b);
    // Two URIs for the same Redis (a pool's URI is unique), kept apart by
    // their key prefixes.
    put_pool(
        &admin_a,
        "x",
        json!({"uri": first_prefix.uri, "weight": 1, "options": {"key_prefix": first_prefix.prefix}}),
    );
    put_pool(
        &admin_a,
        "y",
        json!({"uri": format!("{}/0", second_prefix.uri.trim_end_matches('/')), "weight": 0, "options": {"key_prefix": second_prefix.prefix}}),
    );

    let on_a = a.client().with_project("shared");
    let on_b = b.client().with_project("shared");
    let post = |client: &Client, body: &str| {
        let posted = client
            .post("/v2/queues/moving/messages")
            .json(&json!({"messages": [{"body": body}]}))
            .send();
        assert_eq!(posted.status, 201, "{}", posted.text());
    };
    let bodies = |client: &Client| -> Vec<Value> {
        client
            .get("/v2/queues/moving/messages?echo=true")
            .send()
            .json()["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["body"].clone())
            .collect()
    };
    post(&on_a, "first");
    assert_eq!(bodies(&on_b), vec![json!("first")]);

    assert_eq!(on_b.delete("/v2/queues/moving").send().status, 204);
    for (pool, weight) in [("x", 0), ("y", 1)] {
        let patched = admin_b
            .patch(&format!("/v2/pools/{pool}"))
            .json(&json!({"weight": weight}))
            .send();
        assert_eq!(patched.status, 200);
    }
    assert_eq!(on_b.put("/v2/queues/moving").send().status, 201);
    // The deletion reaches host a through pool x's change feed.
    std::thread::sleep(Duration::from_secs(1));
    post(&on_a, "second");
    assert_eq!(bodies(&on_b), vec![json!("second")]);
    assert_eq!(bodies(&on_a), vec![json!("second")]);
    // Pool x is empty now, y holds the queue.
    assert_eq!(admin_a.delete("/v2/pools/x").send().status, 204);
    assert_eq!(admin_a.delete("/v2/pools/y").send().status, 403);
}
