//! Claims over HTTP: create, get, update, delete, dead-letter queues.

mod api_support;

use api_support::{assert_error, claim, ids, post};
use serde_json::json;
use zaqar_tests::TestServer;

#[test]
fn claim_takes_the_oldest_messages_and_answers_with_location() {
    let server = TestServer::start();
    let client = server.client();
    let posted = post(
        &client,
        "q",
        json!([{"ttl": 300, "body": {"job": 0}}, {"ttl": 300, "body": {"job": 1}}, {"ttl": 300, "body": {"job": 2}}]),
    );
    let response = client
        .post("/v2/queues/q/claims?limit=2")
        .json(&json!({"ttl": 60, "grace": 60}))
        .send();
    assert_eq!(response.status, 201, "{}", response.text());
    let location = response.header("location").unwrap().to_string();
    let claim_id = location
        .strip_prefix("/v2/queues/q/claims/")
        .expect("claim location")
        .to_string();
    let messages = response.json()["messages"].as_array().unwrap().clone();
    assert_eq!(messages.len(), 2);
    for (index, message) in messages.iter().enumerate() {
        assert_eq!(message["id"], posted[index]);
        assert_eq!(
            message["href"],
            format!(
                "/v2/queues/q/messages/{}?claim_id={claim_id}",
                posted[index]
            )
        );
        assert_eq!(message["ttl"], 300);
        assert_eq!(message["body"], json!({"job": index}));
    }
}

#[test]
fn nothing_to_claim_answers_204_even_for_a_missing_queue() {
    let server = TestServer::start();
    let client = server.client();
    let empty = client
        .post("/v2/queues/never/claims")
        .json(&json!({"ttl": 60}))
        .send();
    assert_eq!(empty.status, 204);
    assert!(empty.body.is_empty());
    post(&client, "q", json!([{"body": 1}]));
    claim(&client, "q", "", json!({}));
    assert_eq!(
        client.post("/v2/queues/q/claims").send().status,
        204,
        "no body means the defaults"
    );
}

#[test]
fn claimed_messages_are_hidden_from_listings_unless_include_claimed() {
    let server = TestServer::start();
    let producer = server.client();
    let consumer = server.client();
    let posted = post(&producer, "q", json!([{"body": 1}, {"body": 2}]));
    claim(&consumer, "q", "?limit=1", json!({}));
    assert_eq!(
        ids(&consumer.get("/v2/queues/q/messages").send().json()),
        posted[1..]
    );
    assert_eq!(
        ids(&consumer
            .get("/v2/queues/q/messages?include_claimed=true")
            .send()
            .json()),
        posted
    );
    let claimed = consumer
        .get(&format!("/v2/queues/q/messages/{}", posted[0]))
        .send()
        .json();
    assert!(claimed["href"].as_str().unwrap().contains("?claim_id="));
}

#[test]
fn get_claim_shows_age_ttl_messages_and_href() {
    let server = TestServer::start();
    let client = server.client();
    post(&client, "q", json!([{"ttl": 300, "body": {"job": 0}}]));
    let (claim_id, _) = claim(&client, "q", "", json!({"ttl": 60, "grace": 60}));
    let response = client
        .get(&format!("/v2/queues/q/claims/{claim_id}"))
        .send();
    assert_eq!(response.status, 200);
    let body = response.json();
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["age", "ttl", "messages", "href"]);
    assert_eq!(body["age"], 0);
    assert_eq!(body["ttl"], 60);
    assert_eq!(body["href"], format!("/v2/queues/q/claims/{claim_id}"));
    assert_eq!(body["messages"][0]["body"], json!({"job": 0}));
}

#[test]
fn unknown_claims_are_404_on_get_and_update_but_delete_succeeds() {
    let server = TestServer::start();
    let client = server.client();
    post(&client, "q", json!([{"body": 1}]));
    let unknown = "069875c7-794d-4f6c-bf39-5da8f00eee08";
    let description = format!("Claim {unknown} does not exist in queue q for project test-project");
    assert_error(
        &client.get(&format!("/v2/queues/q/claims/{unknown}")).send(),
        404,
        "Not found",
        &description,
    );
    assert_error(
        &client
            .patch(&format!("/v2/queues/q/claims/{unknown}"))
            .json(&json!({"ttl": 100}))
            .send(),
        404,
        "Not found",
        &description,
    );
    assert_eq!(
        client
            .delete(&format!("/v2/queues/q/claims/{unknown}"))
            .send()
            .status,
        204
    );
}

#[test]
fn update_renews_the_claim_ttl() {
    let server = TestServer::start();
    let client = server.client();
    post(&client, "q", json!([{"ttl": 300, "body": 1}]));
    let (claim_id, _) = claim(&client, "q", "", json!({"ttl": 60, "grace": 60}));
    let path = format!("/v2/queues/q/claims/{claim_id}");
    let updated = client
        .patch(&path)
        .json(&json!({"ttl": 120, "grace": 30 + 30}))
        .send();
    assert_eq!(updated.status, 204, "{}", updated.text());
    assert_eq!(client.get(&path).send().json()["ttl"], 120);
    assert_error(
        &client.patch(&path).send(),
        400,
        "Invalid request body",
        "Request body can not be empty",
    );
}

#[test]
fn release_makes_messages_claimable_again() {
    let server = TestServer::start();
    let client = server.client();
    post(&client, "q", json!([{"body": 1}]));
    let (claim_id, _) = claim(&client, "q", "", json!({}));
    let path = format!("/v2/queues/q/claims/{claim_id}");
    assert_eq!(client.delete(&path).send().status, 204);
    assert_eq!(client.get(&path).send().status, 404);
    claim(&client, "q", "", json!({}));
}

#[test]
fn claim_parameters_are_range_checked_with_zaqars_messages() {
    let server = TestServer::start();
    let client = server.client();
    let api = "Invalid API request";
    let ttl =
        "The TTL for a claim may not exceed 43200 seconds, and must be at least 60 seconds long.";
    let grace =
        "The grace for a claim may not exceed 43200 seconds, and must be at least 60 seconds long.";
    let create = |query: &str, body: serde_json::Value| {
        client
            .post(&format!("/v2/queues/q/claims{query}"))
            .json(&body)
            .send()
    };
    assert_error(&create("", json!({"ttl": 59, "grace": 60})), 400, api, ttl);
    assert_error(&create("", json!({"ttl": 43201})), 400, api, ttl);
    assert_error(
        &create("", json!({"ttl": 60, "grace": 43201})),
        400,
        api,
        grace,
    );
    assert_error(
        &create("?limit=21", json!({"ttl": 60})),
        400,
        api,
        "Limit must be at least 1 and may not be greater than 20.",
    );
    assert_error(
        &create("", json!({"ttl": "60"})),
        400,
        "Invalid request body",
        "The value of the \"ttl\" field must be a int.",
    );
    assert_error(
        &client
            .post("/v2/queues/q/claims")
            .header("Content-Type", "application/json")
            .body("ttl=60")
            .send(),
        400,
        "Invalid request body",
        "Request body could not be parsed.",
    );
    post(&client, "q", json!([{"body": 1}]));
    let (claim_id, _) = claim(&client, "q", "", json!({}));
    let path = format!("/v2/queues/q/claims/{claim_id}");
    assert_error(
        &client.patch(&path).json(&json!({"ttl": 43201})).send(),
        400,
        api,
        ttl,
    );
    assert_error(
        &client
            .patch(&path)
            .json(&json!({"ttl": 60, "grace": -1}))
            .send(),
        400,
        api,
        grace,
    );
}

#[test]
fn messages_claimed_too_often_move_to_the_dead_letter_queue() {
    let server = TestServer::start();
    let client = server.client();
    client.put("/v2/queues/dlq").send();
    client
        .put("/v2/queues/work")
        .json(&json!({"_max_claim_count": 1, "_dead_letter_queue": "dlq", "_dead_letter_queue_messages_ttl": 120}))
        .send();
    let posted = post(&client, "work", json!([{"body": "poison"}]));
    let (first, _) = claim(&client, "work", "", json!({}));
    assert_eq!(
        client
            .delete(&format!("/v2/queues/work/claims/{first}"))
            .send()
            .status,
        204
    );
    assert_eq!(
        client
            .post("/v2/queues/work/claims")
            .json(&json!({}))
            .send()
            .status,
        204,
        "moved instead of claimed"
    );
    let dead = client
        .get("/v2/queues/dlq/messages?echo=true")
        .send()
        .json();
    assert_eq!(dead["messages"].as_array().unwrap().len(), 1, "{dead}");
    assert_eq!(dead["messages"][0]["body"], "poison");
    assert_eq!(
        client
            .get(&format!("/v2/queues/work/messages/{}", posted[0]))
            .send()
            .status,
        404
    );
}
