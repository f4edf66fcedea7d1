//! Request checks and their order: headers, routes, methods,
//! media types, and bad input of every kind answered with 4xx, never 5xx.

mod api_support;

use api_support::{assert_error, assert_title_only};
use serde_json::json;
use zaqar_tests::TestServer;

#[test]
fn missing_client_id_is_rejected() {
    let server = TestServer::start();
    let response = server
        .client()
        .get("/v2/queues")
        .without_header("Client-ID")
        .send();
    assert_error(
        &response,
        400,
        "Missing header value",
        "The \"Client-Id\" header is required.",
    );
    assert_eq!(response.header("vary"), Some("Accept"));
    assert!(response
        .header("x-openstack-request-id")
        .is_some_and(|id| id.starts_with("req-") && id.len() == 40));
}

#[test]
fn client_id_must_be_a_uuid_by_default() {
    let server = TestServer::start();
    let response = server
        .client()
        .with_client_id("not-a-uuid")
        .get("/v2/queues")
        .send();
    assert_error(
        &response,
        400,
        "Wrong UUID value",
        "Malformed hexadecimal UUID.",
    );
}

#[test]
fn relaxed_client_ids_are_checked_for_length_only() {
    let server = TestServer::start_with("[transport]\nclient_id_uuid_safe = \"off\"\n");
    let client = server.client();
    let short = client.with_client_id("short").get("/v2/queues").send();
    assert_eq!(short.status, 400);
    assert_eq!(
        short.json(),
        json!({"title": "Length of client id must be at least 10 and no greater than 36."})
    );
    let named = client.with_client_id("worker-number-one");
    let posted = named
        .post("/v2/queues/q/messages")
        .json(&json!({"messages": [{"body": 1}]}))
        .send();
    assert_eq!(
        posted.status,
        201,
        "a non-UUID client id is stored as given: {}",
        posted.text()
    );
    assert_eq!(
        named.get("/v2/queues/q/messages").send().json()["messages"],
        json!([]),
        "echo still applies"
    );
}

#[test]
fn project_header_is_required_and_non_empty() {
    let server = TestServer::start();
    let client = server.client();
    assert_error(
        &client
            .get("/v2/queues")
            .without_header("X-Project-ID")
            .send(),
        400,
        "Project-Id Missing",
        "The header X-PROJECT-ID was missing",
    );
    assert_error(
        &client.with_project("").get("/v2/queues").send(),
        400,
        "Empty project header not allowed",
        "X-PROJECT-ID cannot be an empty string. Specify the right header X-PROJECT-ID and retry.",
    );
}

#[test]
fn unknown_routes_are_404_before_any_header_check() {
    let server = TestServer::start();
    let client = server.client();
    for path in [
        "/v2/nope",
        "/v2",
        "/v2/queues/q1/",
        "/v2/queues/q/nope",
        "/v3/queues",
        "/v2/topics/t",
        "/v2/pools",
    ] {
        let response = client
            .get(path)
            .without_header("Client-ID")
            .without_header("X-Project-ID")
            .send();
        assert_title_only(&response, 404, "404 Not Found");
    }
}

#[test]
fn wrong_methods_are_405_after_the_header_checks() {
    let server = TestServer::start();
    let client = server.client();
    let response = client.post("/v2/queues/q1").send();
    assert_title_only(&response, 405, "405 Method Not Allowed");
    assert_eq!(
        response.header("allow"),
        Some("DELETE, GET, PATCH, PUT, OPTIONS")
    );
    let without_client = client
        .post("/v2/queues/q1")
        .without_header("Client-ID")
        .send();
    assert_eq!(without_client.status, 400, "header checks come first");
    let bad_name = client.post("/v2/queues/bad%20name").send();
    assert_eq!(bad_name.status, 400, "queue name check comes first");
    assert_eq!(client.head("/v2/queues").send().status, 405);
}

#[test]
fn options_lists_the_allowed_methods() {
    let server = TestServer::start();
    let response = server
        .client()
        .request("OPTIONS", "/v2/queues/q/messages")
        .send();
    assert_eq!(response.status, 200);
    assert_eq!(response.header("allow"), Some("DELETE, GET, POST, OPTIONS"));
}

#[test]
fn form_urlencoded_bodies_are_refused() {
    let server = TestServer::start();
    let response = server
        .client()
        .put("/v2/queues/q")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("a=1")
        .send();
    assert_error(
        &response,
        400,
        "Invalid Content-Type",
        "Endpoint does not accept `application/x-www-form-urlencoded` content; currently supported media type is `application/json`; specify proper client-side media type with the \"Content-Type\" header.",
    );
}

#[test]
fn clients_that_do_not_accept_json_get_an_empty_406() {
    let server = TestServer::start();
    let client = server.client();
    let refused = client
        .get("/v2/queues")
        .header("Accept", "text/html")
        .send();
    assert_eq!(refused.status, 406);
    assert!(refused.body.is_empty());
    for accept in [
        "application/json",
        "*/*",
        "application/*",
        "text/html, application/json;q=0.5",
    ] {
        assert_eq!(
            client
                .get("/v2/queues")
                .header("Accept", accept)
                .send()
                .status,
            200,
            "{accept}"
        );
    }
}

#[test]
fn content_type_is_ignored_for_json_bodies() {
    let server = TestServer::start();
    let client = server.client();
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/json; charset=utf-8"),
    ] {
        let mut request = client
            .post("/v2/queues/q/messages")
            .body(r#"{"messages": [{"body": 1}]}"#);
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        assert_eq!(request.send().status, 201, "{content_type:?}");
    }
}

#[test]
fn garbage_input_is_always_a_4xx_and_the_server_keeps_serving() {
    let server = TestServer::start();
    let client = server.client();
    let bodies: [&[u8]; 9] = [
        b"",
        b"\xff\xfe\x00",
        b"null",
        b"[[[[[[[[[[",
        b"{\"messages\": [{\"body\": 1, \"ttl\": 1e400}]}",
        b"{\"messages\": [{\"body\": \"\\ud800\"}]}",
        b"{\"ttl\": -1, \"grace\": 18446744073709551616}",
        b"{\"subscriber\": 5, \"ttl\": [], \"options\": null}",
        b"[{\"op\": 5, \"path\": {}}]",
    ];
    let paths = [
        ("PUT", "/v2/queues/q"),
        ("POST", "/v2/queues/q/messages"),
        ("POST", "/v2/queues/q/claims"),
        ("POST", "/v2/queues/q/subscriptions"),
        ("POST", "/v2/queues/q/share"),
        ("POST", "/v2/queues/q/purge"),
        ("PATCH", "/v2/queues/q/claims/c"),
        ("PATCH", "/v2/queues/q/subscriptions/s"),
        ("PUT", "/v2/queues/q/subscriptions/s/confirm"),
    ];
    for (method, path) in paths {
        for body in bodies {
            let response = client
                .request(method, path)
                .header("Content-Type", "application/json")
                .body(body.to_vec())
                .send();
            assert!(
                (200..500).contains(&response.status),
                "{method} {path} {:?} -> {} {}",
                String::from_utf8_lossy(body),
                response.status,
                response.text()
            );
        }
    }
    for query in [
        "limit=-1",
        "limit=1e3",
        "marker=%ff",
        "echo=2",
        "include_claimed=x",
        "ids=,,,",
        "pop=abc",
    ] {
        for path in [
            "/v2/queues",
            "/v2/queues/q/messages",
            "/v2/queues/q/subscriptions",
        ] {
            let status = client.get(&format!("{path}?{query}")).send().status;
            assert!((200..500).contains(&status), "{path}?{query} -> {status}");
        }
        let status = client
            .delete(&format!("/v2/queues/q/messages?{query}"))
            .send()
            .status;
        assert!((200..500).contains(&status), "DELETE ?{query} -> {status}");
    }
    assert_eq!(client.get("/v2/ping").send().status, 204);
}

#[test]
fn integers_too_large_are_reported() {
    let server = TestServer::start();
    assert_error(
        &server
            .client()
            .put("/v2/queues/q")
            .header("Content-Type", "application/json")
            .body(r#"{"n": 9223372036854775808}"#)
            .send(),
        400,
        "Invalid request body",
        "JSON contains integer that is too large.",
    );
}
