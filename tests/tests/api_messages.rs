//! Messages over HTTP: post, list, get, delete, pop.

mod api_support;

use api_support::{assert_error, claim, ids, post};
use serde_json::{json, Value};
use zaqar_tests::TestServer;

#[test]
fn post_answers_201_with_location_and_resources() {
    let server = TestServer::start();
    let client = server.client();
    let response = client
        .post("/v2/queues/q/messages")
        .json(&json!({"messages": [{"ttl": 300, "body": {"event": "BackupStarted"}}, {"body": "plain"}]}))
        .send();
    assert_eq!(response.status, 201, "{}", response.text());
    let resources: Vec<String> = response.json()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    assert_eq!(resources.len(), 2);
    let ids: Vec<&str> = resources
        .iter()
        .map(|r| r.strip_prefix("/v2/queues/q/messages/").unwrap())
        .collect();
    assert_eq!(
        response.header("location"),
        Some(format!("/v2/queues/q/messages?ids={}", ids.join(",")).as_str())
    );
}

#[test]
fn posting_creates_the_queue_lazily() {
    let server = TestServer::start();
    let client = server.client();
    post(&client, "lazy", json!([{"body": 1}]));
    assert_eq!(
        client.get("/v2/queues").send().json()["queues"][0]["name"],
        "lazy"
    );
}

#[test]
fn bodies_come_back_exactly_as_posted_with_ttl_and_age() {
    let server = TestServer::start();
    let client = server.client();
    let bodies = [
        json!({"event": "a", "nested": {"k": [1, 2.5, null, true]}}),
        json!("text"),
        json!([1, 2, 3]),
        json!(null),
        json!(42),
    ];
    let messages: Vec<Value> = bodies
        .iter()
        .map(|b| json!({"body": b, "ttl": 300}))
        .collect();
    let ids = post(&client, "q", Value::from(messages));
    let listing = client.get("/v2/queues/q/messages?echo=true").send().json();
    for (index, message) in listing["messages"].as_array().unwrap().iter().enumerate() {
        assert_eq!(message["id"], ids[index]);
        assert_eq!(
            message["href"],
            format!("/v2/queues/q/messages/{}", ids[index])
        );
        assert_eq!(message["body"], bodies[index]);
        assert_eq!(message["ttl"], 300);
        assert_eq!(message["age"], 0);
        assert!(message.get("checksum").is_none());
    }
}

#[test]
fn default_ttl_comes_from_the_queue_then_the_configuration() {
    let server = TestServer::start();
    let client = server.client();
    post(&client, "plain", json!([{"body": 1}]));
    assert_eq!(
        client
            .get("/v2/queues/plain/messages?echo=true")
            .send()
            .json()["messages"][0]["ttl"],
        3600
    );
    client
        .put("/v2/queues/short")
        .json(&json!({"_default_message_ttl": 120}))
        .send();
    post(&client, "short", json!([{"body": 1}]));
    assert_eq!(
        client
            .get("/v2/queues/short/messages?echo=true")
            .send()
            .json()["messages"][0]["ttl"],
        120
    );
}

#[test]
fn echo_false_hides_the_callers_own_messages() {
    let server = TestServer::start();
    let producer = server.client();
    let consumer = server.client();
    post(&producer, "q", json!([{"body": 1}]));
    assert_eq!(
        producer.get("/v2/queues/q/messages").send().json(),
        json!({"messages": [], "links": []})
    );
    assert_eq!(
        ids(&consumer.get("/v2/queues/q/messages").send().json()).len(),
        1
    );
    assert_eq!(
        ids(&producer
            .get("/v2/queues/q/messages?echo=true")
            .send()
            .json())
        .len(),
        1
    );
}

#[test]
fn listing_pages_follow_next_links_with_the_injected_include_delayed() {
    let server = TestServer::start();
    let client = server.client();
    let posted = post(&client, "q", json!([{"body": 1}, {"body": 2}, {"body": 3}]));
    let first = client
        .get("/v2/queues/q/messages?echo=true&limit=2")
        .send()
        .json();
    assert_eq!(ids(&first), posted[..2]);
    let next = first["links"][0]["href"].as_str().unwrap().to_string();
    assert!(
        next.starts_with("/v2/queues/q/messages?limit=2&echo=true&include_delayed=true&marker="),
        "{next}"
    );
    let second = client.get(&next).send().json();
    assert_eq!(ids(&second), posted[2..]);
    let last = client
        .get(second["links"][0]["href"].as_str().unwrap())
        .send()
        .json();
    assert_eq!(last, json!({"messages": [], "links": []}));
}

#[test]
fn listing_a_missing_queue_is_empty() {
    let server = TestServer::start();
    let listing = server
        .client()
        .get("/v2/queues/never/messages?echo=true")
        .send();
    assert_eq!(listing.status, 200);
    assert_eq!(listing.json(), json!({"messages": [], "links": []}));
}

#[test]
fn delayed_messages_are_hidden_only_on_queues_with_a_default_delay() {
    let server = TestServer::start();
    let client = server.client();
    client
        .put("/v2/queues/slow")
        .json(&json!({"_default_message_delay": 30}))
        .send();
    post(
        &client,
        "slow",
        json!([{"body": "delayed"}, {"body": "now", "delay": 0}]),
    );
    let visible = client
        .get("/v2/queues/slow/messages?echo=true")
        .send()
        .json();
    assert_eq!(visible["messages"].as_array().unwrap().len(), 1);
    assert_eq!(visible["messages"][0]["body"], "now");
    let all = client
        .get("/v2/queues/slow/messages?echo=true&include_delayed=true")
        .send()
        .json();
    assert_eq!(all["messages"].as_array().unwrap().len(), 2);
    // On a queue without a default delay, a per-message delay still holds
    // the message back from claims, but listings show it (Zaqar forces
    // include_delayed there).
    post(&client, "plain", json!([{"body": "later", "delay": 60}]));
    assert_eq!(
        client
            .get("/v2/queues/plain/messages?echo=true")
            .send()
            .json()["messages"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        client
            .post("/v2/queues/plain/claims")
            .json(&json!({}))
            .send()
            .status,
        204
    );
}

#[test]
fn post_validation_errors_follow_zaqar_and_store_nothing() {
    let server = TestServer::start();
    let client = server.client();
    let send = |body: &str| {
        client
            .post("/v2/queues/q/messages")
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
    };
    let api = "Invalid API request";
    let body = "Invalid request body";
    assert_error(
        &send(r#"[{"ttl": 300, "body": 1}]"#),
        400,
        api,
        "No messages were found in the request body.",
    );
    assert_error(
        &send(r#"{"messages": []}"#),
        400,
        api,
        "No messages to enqueu.",
    );
    assert_error(
        &send(r#"{"messages": [{"ttl": 300, "body": "#),
        400,
        body,
        "Request body could not be parsed.",
    );
    assert_error(
        &send(r#"{"messages": {"body": 1}}"#),
        400,
        body,
        "Document type not supported.",
    );
    assert_error(
        &send(r#"{"messages": [{"ttl": 300}]}"#),
        400,
        body,
        "Missing \"body\" field.",
    );
    assert_error(
        &send(r#"{"messages": [{"ttl": "300", "body": 1}]}"#),
        400,
        body,
        "The value of the \"ttl\" field must be a int.",
    );
    let ttl_range = "The TTL for a message may not exceed 1209600 seconds, and must be at least 60 seconds long.";
    assert_error(
        &send(r#"{"messages": [{"ttl": 59, "body": 1}]}"#),
        400,
        api,
        ttl_range,
    );
    assert_error(
        &send(r#"{"messages": [{"ttl": 1209601, "body": 1}]}"#),
        400,
        api,
        ttl_range,
    );
    assert_error(
        &send(r#"{"messages": [{"body": 1}, {"ttl": 300, "delay": 901, "body": 1}]}"#),
        400,
        api,
        "The Delay TTL for a message may not exceed 900 seconds,and must be at least 0 seconds long.",
    );
    assert_error(&send(""), 400, body, "Request body can not be empty");
    let oversized = format!(
        r#"{{"messages": [{{"ttl": 300, "body": "{}"}}]}}"#,
        "y".repeat(262144)
    );
    assert_error(
        &send(&oversized),
        400,
        api,
        "Message collection size is too large. Max size 262144",
    );
    assert_eq!(
        client.get("/v2/queues").send().json()["queues"],
        json!([]),
        "nothing was created"
    );
}

#[test]
fn queue_post_size_limit_is_the_smaller_of_queue_and_configuration() {
    let server = TestServer::start();
    let client = server.client();
    client
        .put("/v2/queues/small")
        .json(&json!({"_max_messages_post_size": 100}))
        .send();
    let message = json!({"messages": [{"body": "z".repeat(200)}]});
    assert_error(
        &client.post("/v2/queues/small/messages").json(&message).send(),
        400,
        "Invalid API request",
        "Message collection size is too large. The max size for current queue is 100. It is calculated by max size = min(max_messages_post_size_config: 262144, max_messages_post_size_queue: 100).",
    );
}

#[test]
fn more_than_a_page_of_messages_can_be_posted_at_once() {
    let server = TestServer::start();
    let client = server.client();
    let messages: Vec<Value> = (0..21).map(|i| json!({"ttl": 300, "body": i})).collect();
    assert_eq!(post(&client, "q", Value::from(messages)).len(), 21);
}

#[test]
fn get_one_message_and_missing_ones_404() {
    let server = TestServer::start();
    let client = server.client();
    let ids = post(&client, "q", json!([{"ttl": 300, "body": {"event": "a"}}]));
    let message = client
        .get(&format!("/v2/queues/q/messages/{}", ids[0]))
        .send();
    assert_eq!(message.status, 200);
    assert_eq!(
        message.json(),
        json!({"id": ids[0], "href": format!("/v2/queues/q/messages/{}", ids[0]), "ttl": 300, "age": 0, "body": {"event": "a"}})
    );
    assert_error(
        &client.get("/v2/queues/q/messages/not-an-id").send(),
        404,
        "Not found",
        "Message not-an-id does not exist in queue q for project test-project",
    );
    assert_eq!(
        client
            .get(&format!("/v2/queues/other/messages/{}", ids[0]))
            .send()
            .status,
        404
    );
}

#[test]
fn get_many_by_ids_returns_the_found_ones_without_links() {
    let server = TestServer::start();
    let client = server.client();
    let posted = post(&client, "q", json!([{"body": 1}, {"body": 2}, {"body": 3}]));
    let response = client
        .get(&format!(
            "/v2/queues/q/messages?ids={},{},unknown",
            posted[0], posted[2]
        ))
        .send();
    assert_eq!(response.status, 200);
    let listing = response.json();
    assert!(listing.get("links").is_none());
    let mut found = ids(&listing);
    found.sort();
    let mut expected = vec![posted[0].clone(), posted[2].clone()];
    expected.sort();
    assert_eq!(found, expected);
    assert_error(
        &client.get("/v2/queues/q/messages?ids=nope").send(),
        404,
        "Not found",
        "No messages with IDs: [\"nope\"] found in the queue q for project test-project.",
    );
    let too_many = vec!["x"; 21].join(",");
    assert_error(
        &client
            .get(&format!("/v2/queues/q/messages?ids={too_many}"))
            .send(),
        400,
        "Invalid API request",
        "Limit must be at least 1 and may not be greater than 20.",
    );
}

#[test]
fn list_parameters_are_validated() {
    let server = TestServer::start();
    let client = server.client();
    assert_error(
        &client
            .get("/v2/queues/q/messages?limit=21&echo=true")
            .send(),
        400,
        "Invalid API request",
        "Limit must be at least 1 and may not be greater than 20.",
    );
    assert_error(
        &client.get("/v2/queues/q/messages?echo=maybe").send(),
        400,
        "Invalid parameter",
        "The \"echo\" parameter is invalid. The value of the parameter must be \"true\" or \"false\".",
    );
}

#[test]
fn delete_one_message_is_idempotent() {
    let server = TestServer::start();
    let client = server.client();
    let ids = post(&client, "q", json!([{"body": 1}]));
    let path = format!("/v2/queues/q/messages/{}", ids[0]);
    assert_eq!(client.delete(&path).send().status, 204);
    assert_eq!(client.delete(&path).send().status, 204);
    assert_eq!(client.get(&path).send().status, 404);
}

#[test]
fn claimed_message_cannot_be_deleted_without_its_claim_id() {
    let server = TestServer::start();
    let client = server.client();
    let ids = post(&client, "q", json!([{"body": 1}, {"body": 2}]));
    let (claim_id, _) = claim(&client, "q", "?limit=1", json!({"ttl": 60}));
    let path = format!("/v2/queues/q/messages/{}", ids[0]);
    assert_error(
        &client.delete(&path).send(),
        403,
        "Unable to delete",
        "This message is claimed; it cannot be deleted without a valid claim ID.",
    );
    assert_error(
        &client
            .delete(&format!(
                "{path}?claim_id=c2da6692-e3f5-4884-8138-03122455c5c4"
            ))
            .send(),
        400,
        "Unable to delete",
        "The specified claim does not exist or has expired.",
    );
    assert_error(
        &client
            .delete(&format!(
                "/v2/queues/q/messages/{}?claim_id={claim_id}",
                ids[1]
            ))
            .send(),
        400,
        "Unable to delete",
        "A claim was specified, but the message is not currently claimed.",
    );
    assert_eq!(
        client
            .delete(&format!("{path}?claim_id={claim_id}"))
            .send()
            .status,
        204
    );
    assert_eq!(client.get(&path).send().status, 404);
}

#[test]
fn bulk_delete_by_ids_deletes_claimed_messages_too() {
    let server = TestServer::start();
    let client = server.client();
    let ids = post(&client, "q", json!([{"body": 1}, {"body": 2}, {"body": 3}]));
    claim(&client, "q", "?limit=1", json!({}));
    let response = client
        .delete(&format!(
            "/v2/queues/q/messages?ids={},{},unknown",
            ids[0], ids[1]
        ))
        .send();
    assert_eq!(response.status, 204);
    assert_eq!(
        self::ids(
            &client
                .get("/v2/queues/q/messages?echo=true&include_claimed=true")
                .send()
                .json()
        ),
        ids[2..]
    );
}

#[test]
fn bulk_delete_parameters_are_validated() {
    let server = TestServer::start();
    let client = server.client();
    let api = "Invalid API request";
    assert_error(
        &client.delete("/v2/queues/q/messages").send(),
        400,
        api,
        "The request should have either \"ids\" or \"pop\" parameter in the request, to be able to delete.",
    );
    assert_error(
        &client.delete("/v2/queues/q/messages?ids=a&pop=1").send(),
        400,
        api,
        "pop and id params cannot be present together in the delete request.",
    );
    for pop in ["0", "21"] {
        assert_error(
            &client
                .delete(&format!("/v2/queues/q/messages?pop={pop}"))
                .send(),
            400,
            api,
            "Pop value must be at least 1 and may not be greater than 20.",
        );
    }
    let too_many = vec!["x"; 21].join(",");
    assert_error(
        &client
            .delete(&format!("/v2/queues/q/messages?ids={too_many}"))
            .send(),
        400,
        api,
        "ids parameter should have at least 1 and not greater than 20 values.",
    );
}

#[test]
fn pop_removes_and_returns_the_oldest_unclaimed_messages() {
    let server = TestServer::start();
    let client = server.client();
    let ids = post(&client, "q", json!([{"body": 1}, {"body": 2}, {"body": 3}]));
    claim(&client, "q", "?limit=1", json!({}));
    let popped = client.delete("/v2/queues/q/messages?pop=1").send();
    assert_eq!(popped.status, 200);
    assert_eq!(
        popped.json(),
        json!({"messages": [{"id": ids[1], "age": 0, "ttl": 3600, "body": 2, "claim_id": null, "claim_count": 0}]})
    );
    assert_eq!(
        client
            .get(&format!("/v2/queues/q/messages/{}", ids[1]))
            .send()
            .status,
        404
    );
    let rest = client.delete("/v2/queues/q/messages?pop=5").send().json();
    assert_eq!(rest["messages"].as_array().unwrap().len(), 1);
    assert_eq!(
        client
            .delete("/v2/queues/never/messages?pop=2")
            .send()
            .json(),
        json!({"messages": []})
    );
}

#[test]
fn checksum_is_added_when_enabled() {
    let server = TestServer::start_with("[server]\nenable_checksum = true\n");
    let client = server.client();
    let ids = post(
        &client,
        "q",
        json!([{"body": {"event": "a"}}, {"body": "b"}]),
    );
    let first = client
        .get(&format!("/v2/queues/q/messages/{}", ids[0]))
        .send()
        .json();
    assert_eq!(first["checksum"], "MD5:e4db62ac1fe774afdcf38f2ef1a78efd");
    let second = client
        .get(&format!("/v2/queues/q/messages/{}", ids[1]))
        .send()
        .json();
    assert_eq!(second["checksum"], "MD5:5010cec3765a37ce4f516b0154a26baf");
}

#[test]
fn client_ids_are_compared_as_uuids_for_echo() {
    let server = TestServer::start();
    let id = "dde7c068-d4f2-48c1-9e99-a4fa7be16b67";
    let client = server.client().with_client_id(id);
    post(&client, "q", json!([{"body": 1}]));
    let same_client = server
        .client()
        .with_client_id(&id.replace('-', "").to_uppercase());
    assert_eq!(
        same_client.get("/v2/queues/q/messages").send().json()["messages"],
        json!([])
    );
}
