//! Versions, home document, ping, health and pre-signed URLs.

mod api_support;

use api_support::{assert_error, assert_title_only, post};
use serde_json::{json, Value};
use zaqar_tests::TestServer;

const SIGNING: &str = "[signed_url]\nsecret_key = \"test\"\n";

#[test]
fn root_is_the_version_document_with_status_300_and_no_headers_needed() {
    let server = TestServer::start();
    let response = server
        .client()
        .get("/")
        .without_header("Client-ID")
        .without_header("X-Project-ID")
        .send();
    assert_eq!(response.status, 300);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(
        response.json(),
        json!({"versions": [{
            "id": "2",
            "status": "CURRENT",
            "updated": "2014-9-24T04:06:47Z",
            "media-types": [{"base": "application/json", "type": "application/vnd.openstack.messaging-v2+json"}],
            "links": [{"href": "/v2/", "rel": "self"}]
        }]})
    );
}

#[test]
fn home_document_is_json_home_and_cacheable() {
    let server = TestServer::start();
    let response = server.client().get("/v2/").send();
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("application/json-home")
    );
    assert_eq!(response.header("cache-control"), Some("max-age=86400"));
    assert_eq!(
        response.body.len(),
        11457,
        "Zaqar's admin-mode document, byte for byte"
    );
    let document = response.json();
    assert_eq!(
        document["resources"]["rel/messages"]["href-template"],
        "/v2/queues/{queue_name}/messages{?marker,limit,echo,include_claimed}"
    );
    assert_eq!(document["resources"]["rel/health"]["href"], "/v2/health");
}

#[test]
fn home_document_hides_admin_resources_outside_admin_mode() {
    let server = TestServer::start_with("[server]\nadmin_mode = false\n");
    let document = server.client().get("/v2/").send().json();
    assert!(document["resources"].get("rel/health").is_none());
    assert!(document["resources"].get("rel/pools").is_none());
    assert_title_only(
        &server.client().get("/v2/health").send(),
        404,
        "404 Not Found",
    );
}

#[test]
fn ping_answers_204_with_no_body_for_get_and_head() {
    let server = TestServer::start();
    let client = server.client();
    for response in [
        client.get("/v2/ping").send(),
        client.head("/v2/ping").send(),
    ] {
        assert_eq!(response.status, 204);
        assert!(response.body.is_empty());
    }
}

#[test]
fn health_requires_the_admin_role() {
    let server = TestServer::start();
    let client = server.client();
    assert_error(
        &client.get("/v2/health").send(),
        403,
        "Not authorized",
        "You are not authorized to complete this action.",
    );
    let response = client
        .get("/v2/health")
        .header("X-Roles", "member,admin")
        .send();
    assert_eq!(response.status, 200, "{}", response.text());
    let report = response.json();
    assert_eq!(report["storage_reachable"], true);
    let operations: Vec<&String> = report["operation_status"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        operations,
        [
            "create_queue",
            "post_messages",
            "claim_messages",
            "list_messages",
            "delete_messages",
            "delete_claim",
            "bulk_delete_messages",
            "delete_queue"
        ]
    );
    for (name, status) in report["operation_status"].as_object().unwrap() {
        assert_eq!(status["succeeded"], true, "{name}");
        assert!(status["seconds"].is_number());
        assert_eq!(status["ref"], Value::Null);
    }
    assert_eq!(
        client.get("/v2/queues").send().json()["queues"],
        json!([]),
        "the probe cleans up after itself"
    );
}

#[test]
fn share_signs_sorted_paths_and_methods() {
    let server = TestServer::start_with(SIGNING);
    let client = server.client();
    let response = client
        .post("/v2/queues/fizbit/share")
        .json(&json!({"methods": ["POST", "GET"], "paths": ["messages", "claims"], "expires": "2099-11-23T09:58:54"}))
        .send();
    assert_eq!(response.status, 200, "{}", response.text());
    let document = response.json();
    assert_eq!(
        document["paths"],
        json!(["/v2/queues/fizbit/claims", "/v2/queues/fizbit/messages"])
    );
    assert_eq!(document["methods"], json!(["GET", "POST"]));
    assert_eq!(document["project"], "test-project");
    assert_eq!(document["expires"], "2099-11-23T09:58:54");
    assert_eq!(document["signature"].as_str().unwrap().len(), 64);
    let keys: Vec<&String> = document.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["paths", "methods", "project", "expires", "signature"]
    );
}

#[test]
fn share_defaults_to_get_on_messages_for_a_day_and_normalises_zones() {
    let server = TestServer::start_with(SIGNING);
    let client = server.client();
    let document = client
        .post("/v2/queues/q/share")
        .json(&json!({}))
        .send()
        .json();
    assert_eq!(document["paths"], json!(["/v2/queues/q/messages"]));
    assert_eq!(document["methods"], json!(["GET"]));
    let zoned = client
        .post("/v2/queues/q/share")
        .json(&json!({"expires": "2099-01-01T02:00:00+02:00"}))
        .send()
        .json();
    assert_eq!(zoned["expires"], "2099-01-01T00:00:00");
}

#[test]
fn share_errors_follow_zaqar() {
    let server = TestServer::start_with(SIGNING);
    let client = server.client();
    let api = "Invalid API request";
    let share = |body: Value| client.post("/v2/queues/q/share").json(&body).send();
    assert_error(
        &share(json!({"expires": "2000-01-01T00:00:00"})),
        400,
        api,
        "`expires` is lower than the current time",
    );
    assert_error(
        &share(json!({"expires": "1700000000"})),
        400,
        api,
        "`expires` should be date format, for example 2016-01-01T00:00:00, not integer value: 1700000000",
    );
    assert_error(
        &share(json!({"expires": "garbage"})),
        400,
        api,
        "Unable to parse date string 'garbage'",
    );
    assert_error(
        &share(json!({"methods": "GET"})),
        400,
        api,
        "`methods` should be a list",
    );
    assert_error(
        &share(json!({"foo": 1})),
        400,
        api,
        "Unknown keys: [\"foo\"]",
    );
    assert_error(
        &share(json!({"paths": ["stats"]})),
        400,
        api,
        "Invalid paths: [\"stats\"]",
    );
    assert_error(
        &share(json!([])),
        400,
        "Invalid request body",
        "Document type not supported.",
    );
    assert_error(
        &client.post("/v2/queues/q/share").send(),
        400,
        "Invalid request body",
        "Request body can not be empty",
    );
}

#[test]
fn share_without_a_secret_key_is_refused() {
    let server = TestServer::start();
    assert_error(
        &server
            .client()
            .post("/v2/queues/q/share")
            .json(&json!({}))
            .send(),
        400,
        "Invalid API request",
        "The `key` can't be None",
    );
}

#[test]
fn pre_signed_headers_grant_the_signed_paths_only() {
    let server = TestServer::start_with(SIGNING);
    let owner = server.client();
    let ids = post(&owner, "shq", json!([{"body": "shared"}]));
    let signed = owner
        .post("/v2/queues/shq/share")
        .json(&json!({"methods": ["GET"], "paths": ["messages"]}))
        .send()
        .json();
    let guest = server.client();
    let with_signature = |method: &str, path: &str, signature: &str| {
        guest
            .request(method, path)
            .header("URL-Signature", signature)
            .header("URL-Expires", signed["expires"].as_str().unwrap())
            .header("URL-Methods", "GET")
            .header("URL-Paths", "/v2/queues/shq/messages")
            .send()
    };
    let signature = signed["signature"].as_str().unwrap();
    let listing = with_signature("GET", "/v2/queues/shq/messages", signature);
    assert_eq!(listing.status, 200);
    assert_eq!(listing.json()["messages"][0]["body"], "shared");
    assert_eq!(
        with_signature(
            "GET",
            &format!("/v2/queues/shq/messages/{}", ids[0]),
            signature
        )
        .status,
        200
    );
    assert_title_only(
        &with_signature("GET", "/v2/queues/shq/stats", signature),
        404,
        "404 Not Found",
    );
    assert_title_only(
        &with_signature("DELETE", "/v2/queues/shq/messages?pop=1", signature),
        404,
        "404 Not Found",
    );
    let forged = format!(
        "{}{}",
        if signature.starts_with('0') { "1" } else { "0" },
        &signature[1..]
    );
    assert_title_only(
        &with_signature("GET", "/v2/queues/shq/messages", &forged),
        404,
        "404 Not Found",
    );
    let other_project = guest
        .with_project("another")
        .get("/v2/queues/shq/messages")
        .header("URL-Signature", signature)
        .header("URL-Expires", signed["expires"].as_str().unwrap())
        .header("URL-Methods", "GET")
        .header("URL-Paths", "/v2/queues/shq/messages")
        .send();
    assert_eq!(other_project.status, 404, "the signature binds the project");
}
