//! Queues over HTTP: create, list, get, PATCH, delete, stats, purge.

mod api_support;

use api_support::{assert_error, post};
use serde_json::{json, Value};
use zaqar_tests::TestServer;

const PATCH_TYPE: &str = "application/openstack-messaging-v2.0-json-patch";

fn defaults() -> Value {
    json!({
        "_max_messages_post_size": 262144,
        "_default_message_ttl": 3600,
        "_default_message_delay": 0,
        "_dead_letter_queue": null,
        "_dead_letter_queue_messages_ttl": null,
        "_max_claim_count": null,
        "_enable_encrypt_messages": false
    })
}

#[test]
fn put_creates_a_queue_then_answers_204_with_location() {
    let server = TestServer::start();
    let client = server.client();
    let created = client.put("/v2/queues/fizbit").send();
    assert_eq!(created.status, 201);
    assert_eq!(created.header("location"), Some("/v2/queues/fizbit"));
    assert_eq!(created.header("content-type"), Some("application/json"));
    assert!(created.body.is_empty());
    assert!(created
        .header("x-openstack-request-id")
        .is_some_and(|id| id.starts_with("req-")));
    let again = client.put("/v2/queues/fizbit").send();
    assert_eq!(again.status, 204);
    assert_eq!(again.header("location"), Some("/v2/queues/fizbit"));
}

#[test]
fn queue_metadata_is_shown_with_reserved_defaults_after_stored_keys() {
    let server = TestServer::start();
    let client = server.client();
    let metadata = json!({"_default_message_ttl": 300, "_max_messages_post_size": 65536, "description": "kitkat queue"});
    assert_eq!(
        client
            .put("/v2/queues/kitkat")
            .json(&metadata)
            .send()
            .status,
        201
    );
    let shown = client.get("/v2/queues/kitkat").send();
    assert_eq!(shown.status, 200);
    let keys: Vec<String> = shown.json().as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "_default_message_ttl",
            "_max_messages_post_size",
            "description",
            "_default_message_delay",
            "_dead_letter_queue",
            "_dead_letter_queue_messages_ttl",
            "_max_claim_count",
            "_enable_encrypt_messages"
        ]
    );
    assert_eq!(shown.json()["description"], "kitkat queue");
}

#[test]
fn a_queue_that_was_never_created_reads_as_defaults() {
    let server = TestServer::start();
    let shown = server.client().get("/v2/queues/never-created").send();
    assert_eq!(shown.status, 200);
    assert_eq!(shown.json(), defaults());
}

#[test]
fn put_on_an_existing_queue_keeps_its_metadata() {
    let server = TestServer::start();
    let client = server.client();
    client.put("/v2/queues/q").json(&json!({"a": 1})).send();
    assert_eq!(
        client
            .put("/v2/queues/q")
            .json(&json!({"a": 2}))
            .send()
            .status,
        204
    );
    assert_eq!(client.get("/v2/queues/q").send().json()["a"], 1);
}

#[test]
fn invalid_queue_names_are_rejected() {
    let server = TestServer::start();
    let client = server.client();
    for path in [
        "/v2/queues/bad%20name!",
        &format!("/v2/queues/{}", "q".repeat(65)),
        "/v2/queues/",
    ] {
        assert_error(
            &client.put(path).send(),
            400,
            "Invalid queue identification",
            "The format of the submitted queue name or project id is not valid.",
        );
    }
    let long_project = client.with_project(&"p".repeat(257));
    assert_eq!(long_project.get("/v2/queues/q").send().status, 400);
}

#[test]
fn put_rejects_bad_metadata_and_creates_nothing() {
    let server = TestServer::start();
    let client = server.client();
    assert_error(
        &client
            .put("/v2/queues/q")
            .header("Content-Type", "application/json")
            .body("{not json")
            .send(),
        400,
        "Invalid request body",
        "Request body could not be parsed.",
    );
    assert_error(
        &client.put("/v2/queues/q").json(&json!({"_default_message_ttl": 10})).send(),
        400,
        "Invalid API request",
        "_default_message_ttl can not exceed 1209600 seconds, and must be at least 60 seconds long.",
    );
    assert_error(
        &client.put("/v2/queues/q").json(&json!([1])).send(),
        400,
        "Invalid request body",
        "Document type not supported.",
    );
    let big = format!("{{\"big\": \"{}\"}}", "x".repeat(65536));
    assert_error(
        &client
            .put("/v2/queues/q")
            .header("Content-Type", "application/json")
            .body(big)
            .send(),
        400,
        "Invalid API request",
        "Queue metadata is too large. Max size: 65536",
    );
    assert_eq!(client.get("/v2/queues").send().json()["queues"], json!([]));
}

#[test]
fn list_pages_by_name_with_next_links() {
    let server = TestServer::start();
    let client = server.client();
    for name in ["a1", "b2", "c3"] {
        client.put(&format!("/v2/queues/{name}")).send();
    }
    let all = client.get("/v2/queues").send();
    assert_eq!(
        all.json(),
        json!({
            "queues": [
                {"name": "a1", "href": "/v2/queues/a1"},
                {"name": "b2", "href": "/v2/queues/b2"},
                {"name": "c3", "href": "/v2/queues/c3"}
            ],
            "links": [{"rel": "next", "href": "/v2/queues?marker=c3"}]
        })
    );
    let first = client.get("/v2/queues?limit=1").send().json();
    assert_eq!(first["queues"][0]["name"], "a1");
    let next = first["links"][0]["href"].as_str().unwrap().to_string();
    assert_eq!(next, "/v2/queues?limit=1&marker=a1");
    let second = client.get(&next).send().json();
    assert_eq!(second["queues"][0]["name"], "b2");
    let end = client.get("/v2/queues?marker=c3").send().json();
    assert_eq!(end, json!({"queues": [], "links": []}));
}

#[test]
fn detailed_list_with_count_shows_metadata_and_count() {
    let server = TestServer::start();
    let client = server.client();
    client
        .put("/v2/queues/a")
        .json(&json!({"color": "red"}))
        .send();
    client.put("/v2/queues/b").send();
    let listing = client
        .get("/v2/queues?detailed=true&with_count=true")
        .send()
        .json();
    assert_eq!(listing["count"], 2);
    assert_eq!(listing["queues"][0]["metadata"]["color"], "red");
    assert_eq!(listing["queues"][1]["metadata"], defaults());
    assert_eq!(
        listing["links"][0]["href"],
        "/v2/queues?detailed=true&with_count=true&marker=b"
    );
    let empty = server
        .client()
        .with_project("other")
        .get("/v2/queues?with_count=true")
        .send()
        .json();
    assert_eq!(empty["count"], 0, "count is emitted even when zero");
}

#[test]
fn list_filters_by_name_substring_and_metadata_values() {
    let server = TestServer::start();
    let client = server.client();
    client
        .put("/v2/queues/orders-eu")
        .json(&json!({"size": 3, "color": "red"}))
        .send();
    client
        .put("/v2/queues/orders-us")
        .json(&json!({"size": 4}))
        .send();
    client
        .put("/v2/queues/logs")
        .json(&json!({"color": "red"}))
        .send();
    let names = |query: &str| -> Vec<String> {
        let listing = client.get(&format!("/v2/queues{query}")).send().json();
        listing["queues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names("?name=orders"), ["orders-eu", "orders-us"]);
    assert_eq!(
        names("?name=."),
        Vec::<String>::new(),
        "the name filter is literal, not a regex"
    );
    assert_eq!(names("?color=red"), ["logs", "orders-eu"]);
    assert_eq!(names("?size=4"), ["orders-us"]);
}

#[test]
fn list_limit_must_be_between_1_and_20() {
    let server = TestServer::start();
    let client = server.client();
    for limit in ["0", "21"] {
        assert_error(
            &client.get(&format!("/v2/queues?limit={limit}")).send(),
            400,
            "Invalid API request",
            "Limit must be at least 1 and no greater than 20.",
        );
    }
    assert_error(
        &client.get("/v2/queues?limit=x").send(),
        400,
        "Invalid parameter",
        "The \"limit\" parameter is invalid. The value must be an integer.",
    );
}

#[test]
fn queues_are_private_to_their_project() {
    let server = TestServer::start();
    let client = server.client();
    client
        .put("/v2/queues/mine")
        .json(&json!({"secret": 1}))
        .send();
    let other = client.with_project("another-project");
    assert_eq!(other.get("/v2/queues").send().json()["queues"], json!([]));
    assert_eq!(other.get("/v2/queues/mine").send().json(), defaults());
}

#[test]
fn patch_applies_operations_in_order_and_returns_the_metadata() {
    let server = TestServer::start();
    let client = server.client();
    client
        .put("/v2/queues/kitkat")
        .json(&json!({"_default_message_ttl": 300, "_max_messages_post_size": 65536, "description": "kitkat queue"}))
        .send();
    let patch = json!([
        {"op": "replace", "path": "/metadata/description", "value": "new"},
        {"op": "add", "path": "/metadata/color", "value": "red"},
        {"op": "remove", "path": "/metadata/_max_messages_post_size"}
    ]);
    let response = client
        .patch("/v2/queues/kitkat")
        .header("Content-Type", PATCH_TYPE)
        .body(serde_json::to_vec(&patch).unwrap())
        .send();
    assert_eq!(response.status, 200, "{}", response.text());
    let expected = json!({
        "_default_message_ttl": 300,
        "description": "new",
        "color": "red",
        "_max_messages_post_size": 262144,
        "_default_message_delay": 0,
        "_dead_letter_queue": null,
        "_dead_letter_queue_messages_ttl": null,
        "_max_claim_count": null,
        "_enable_encrypt_messages": false
    });
    assert_eq!(response.json(), expected);
    assert_eq!(client.get("/v2/queues/kitkat").send().json(), expected);
}

#[test]
fn patch_accepts_charset_parameters_and_refuses_other_media_types_with_accept_patch() {
    let server = TestServer::start();
    let client = server.client();
    client.put("/v2/queues/q").send();
    let body = br#"[{"op": "add", "path": "/metadata/x", "value": 1}]"#.to_vec();
    let refused = client
        .patch("/v2/queues/q")
        .header("Content-Type", "application/json")
        .body(body.clone())
        .send();
    assert_error(
        &refused,
        415,
        "415 Unsupported Media Type",
        "Accepted media type for PATCH: {'Accept-Patch': 'application/openstack-messaging-v2.0-json-patch'}.",
    );
    assert_eq!(refused.header("accept-patch"), Some(PATCH_TYPE));
    let accepted = client
        .patch("/v2/queues/q")
        .header("Content-Type", &format!("{PATCH_TYPE}; charset=utf-8"))
        .body(body)
        .send();
    assert_eq!(accepted.status, 200);
    assert_eq!(accepted.json()["x"], 1);
}

#[test]
fn patch_errors_follow_zaqar() {
    let server = TestServer::start();
    let client = server.client();
    client.put("/v2/queues/q").send();
    let patch = |body: &str| {
        client
            .patch("/v2/queues/q")
            .header("Content-Type", PATCH_TYPE)
            .body(body.to_string())
            .send()
    };
    assert_error(
        &patch(r#"[{"op": "move", "path": "/metadata/color", "value": 1}]"#),
        400,
        "Invalid request body",
        "Invalid operation: `move`. It must be one of the following: add, remove, replace.",
    );
    assert_error(
        &patch(r#"[{"op": "remove", "path": "/metadata/nosuchkey"}]"#),
        409,
        "Resource conflict",
        "Can't remove non-existent object nosuchkey.",
    );
    assert_error(
        &patch(r#"[{"op": "replace", "path": "/metadata/zz", "value": 1}]"#),
        409,
        "Resource conflict",
        "Can't replace non-existent object zz.",
    );
    assert_error(
        &patch(r#"{"op": "add"}"#),
        400,
        "Invalid request body",
        "Request body must be a JSON array of operation objects.",
    );
    assert_error(
        &patch(""),
        400,
        "Invalid request body",
        "PATCH body could not be empty for update.",
    );
    assert_error(
        &patch(r#"[{"op": "add", "path": "/metadata/_default_message_ttl", "value": 5}]"#),
        400,
        "Invalid request body",
        "_default_message_ttl can not exceed 1209600 seconds, and must be at least 60 seconds long.",
    );
    assert_eq!(patch("[]").status, 200, "an empty patch changes nothing");
    let missing = client
        .patch("/v2/queues/nope")
        .header("Content-Type", PATCH_TYPE)
        .body(r#"[{"op": "add", "path": "/metadata/a", "value": 1}]"#)
        .send();
    assert_error(
        &missing,
        404,
        "Not found",
        "Queue nope does not exist for project test-project",
    );
}

#[test]
fn delete_removes_the_queue_and_its_messages_and_is_idempotent() {
    let server = TestServer::start();
    let client = server.client();
    post(&client, "q", json!([{"body": 1}]));
    assert_eq!(client.delete("/v2/queues/q").send().status, 204);
    assert_eq!(client.get("/v2/queues").send().json()["queues"], json!([]));
    assert_eq!(
        client.get("/v2/queues/q/stats").send().json()["messages"]["total"],
        0
    );
    assert_eq!(client.delete("/v2/queues/never-created").send().status, 204);
}

#[test]
fn stats_count_free_and_claimed_messages_with_oldest_and_newest() {
    let server = TestServer::start();
    let client = server.client();
    let empty = client.get("/v2/queues/never/stats").send();
    assert_eq!(empty.status, 200);
    assert_eq!(
        empty.json(),
        json!({"messages": {"claimed": 0, "free": 0, "total": 0}})
    );
    let ids = post(&client, "q", json!([{"body": 1}, {"body": 2}, {"body": 3}]));
    client
        .post("/v2/queues/q/claims?limit=1")
        .json(&json!({}))
        .send();
    let stats = client.get("/v2/queues/q/stats").send().json();
    let messages = &stats["messages"];
    assert_eq!(
        (
            messages["claimed"].as_u64(),
            messages["free"].as_u64(),
            messages["total"].as_u64()
        ),
        (Some(1), Some(2), Some(3))
    );
    assert_eq!(
        messages["oldest"]["href"],
        format!("/v2/queues/q/messages/{}", ids[0])
    );
    assert_eq!(
        messages["newest"]["href"],
        format!("/v2/queues/q/messages/{}", ids[2])
    );
    let created = messages["oldest"]["created"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.len() == 20, "{created}");
    assert_eq!(messages["oldest"]["age"], 0);
}

#[test]
fn purge_removes_messages_and_or_subscriptions() {
    let server = TestServer::start();
    let client = server.client();
    post(&client, "q", json!([{"body": 1}, {"body": 2}]));
    let subscription = json!({"subscriber": "http://127.0.0.1:9/hook"});
    client
        .post("/v2/queues/q/subscriptions")
        .json(&subscription)
        .send();
    let purge = client
        .post("/v2/queues/q/purge")
        .json(&json!({"resource_types": ["messages"]}))
        .send();
    assert_eq!(purge.status, 204);
    assert_eq!(
        client.get("/v2/queues/q/stats").send().json()["messages"]["total"],
        0
    );
    assert_eq!(
        client.get("/v2/queues/q/subscriptions").send().json()["subscriptions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        client.post("/v2/queues/q/purge").send().status,
        204,
        "no body purges both"
    );
    assert_eq!(
        client.get("/v2/queues/q/subscriptions").send().json()["subscriptions"],
        json!([])
    );
    assert_error(
        &client
            .post("/v2/queues/q/purge")
            .json(&json!({"resource_types": ["claims"]}))
            .send(),
        400,
        "Invalid API request",
        "Resource types must be a sub set of {'subscriptions', 'messages'}.",
    );
    assert_error(
        &client.post("/v2/queues/q/purge").json(&json!({})).send(),
        400,
        "Invalid API request",
        "Post body must contain key \"resource_types\".",
    );
}
