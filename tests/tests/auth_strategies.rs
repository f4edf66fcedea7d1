//! `auth_strategy` in a running server: every HTTP request and WebSocket is
//! authenticated by the configured plugin (here the built-in `static`
//! strategy, with a real token file), the project comes from the identity,
//! roles come only from the identity, and pre-signed URLs still work.

use serde_json::{json, Value};
use zaqar_tests::{TestServer, WsClient};

const TOKENS: &str = r#"
[[tokens]]
token = "token-of-alice"
project = "alice-project"
user = "alice"
roles = ["member"]

[[tokens]]
token = "token-of-root"
project = "ops"
user = "root"
roles = ["admin"]
"#;

fn server(dir: &tempfile::TempDir) -> TestServer {
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(&tokens, TOKENS).unwrap();
    TestServer::start_with(&format!(
        r#"
[server]
auth_strategy = "static"
admin_mode = true
[drivers]
transports = ["wsgi", "websocket"]
[drivers.transport.websocket]
port = 0
[signed_url]
secret_key = "test-signing-key"
[drivers.auth.static]
tokens_file = {tokens:?}
"#,
        tokens = tokens.display().to_string()
    ))
}

#[test]
fn requests_without_a_valid_token_get_keystones_401_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(&dir);
    let client = server.client();
    for token in [None, Some("not-a-token")] {
        let mut request = client
            .put("/v2/queues/guarded")
            .header("X-Project-ID", "alice-project");
        if let Some(token) = token {
            request = request.header("X-Auth-Token", token);
        }
        let refused = request.send();
        assert_eq!(refused.status, 401, "{}", refused.text());
        assert_eq!(
            refused.json(),
            json!({"error": {"code": 401, "title": "Unauthorized",
                   "message": "The request you have made requires authentication."}})
        );
    }
    let listed = client
        .get("/v2/queues")
        .without_header("X-Project-ID")
        .header("X-Auth-Token", "token-of-alice")
        .send();
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert_eq!(listed.json()["queues"], json!([]), "nothing was created");
}

#[test]
fn the_project_comes_from_the_token_and_another_claimed_project_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(&dir);
    let client = server.client();
    let created = client
        .put("/v2/queues/mine")
        .without_header("X-Project-ID")
        .header("Authorization", "Bearer token-of-alice")
        .send();
    assert_eq!(created.status, 201, "{}", created.text());
    let spoofed = client
        .get("/v2/queues")
        .header("X-Project-ID", "ops")
        .header("X-Auth-Token", "token-of-alice")
        .send();
    assert_eq!(spoofed.status, 403, "{}", spoofed.text());
    let own = client
        .get("/v2/queues")
        .header("X-Project-ID", "alice-project")
        .header("X-Auth-Token", "token-of-alice")
        .send();
    let names: Vec<Value> = own.json()["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("mine")]);
    let others = client
        .get("/v2/queues")
        .without_header("X-Project-ID")
        .header("X-Auth-Token", "token-of-root")
        .send();
    assert_eq!(
        others.json()["queues"],
        json!([]),
        "ops sees none of alice's"
    );
}

#[test]
fn admin_routes_need_the_admin_role_from_the_identity_not_x_roles() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(&dir);
    let client = server.client();
    let member = client
        .get("/v2/health")
        .without_header("X-Project-ID")
        .header("X-Roles", "admin")
        .header("X-Auth-Token", "token-of-alice")
        .send();
    assert_eq!(member.status, 403, "{}", member.text());
    let admin = client
        .get("/v2/health")
        .without_header("X-Project-ID")
        .header("X-Auth-Token", "token-of-root")
        .send();
    assert_eq!(admin.status, 200, "{}", admin.text());
}

#[test]
fn a_pre_signed_url_works_without_a_token_for_what_it_signs() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(&dir);
    let client = server.client();
    let alice = |request: zaqar_tests::RequestBuilder| {
        request
            .without_header("X-Project-ID")
            .header("X-Auth-Token", "token-of-alice")
    };
    assert_eq!(alice(client.put("/v2/queues/shared")).send().status, 201);
    let share = alice(client.post("/v2/queues/shared/share"))
        .json(&json!({"methods": ["POST"], "paths": ["messages"]}))
        .send();
    assert_eq!(share.status, 200, "{}", share.text());
    let signed = share.json();
    let post = client
        .post("/v2/queues/shared/messages")
        .without_header("X-Project-ID")
        .header("X-Project-ID", signed["project"].as_str().unwrap())
        .header("URL-Signature", signed["signature"].as_str().unwrap())
        .header("URL-Expires", signed["expires"].as_str().unwrap())
        .header("URL-Methods", "POST")
        .header("URL-Paths", "/v2/queues/shared/messages")
        .json(&json!({"messages": [{"body": "via signed url"}]}))
        .send();
    assert_eq!(post.status, 201, "{}", post.text());
    let list = client
        .get("/v2/queues/shared/messages")
        .without_header("X-Project-ID")
        .header("X-Project-ID", signed["project"].as_str().unwrap())
        .header("URL-Signature", signed["signature"].as_str().unwrap())
        .header("URL-Expires", signed["expires"].as_str().unwrap())
        .header("URL-Methods", "POST")
        .header("URL-Paths", "/v2/queues/shared/messages")
        .send();
    assert_eq!(list.status, 404, "a GET was not signed: {}", list.text());
}

#[test]
fn a_socket_acts_only_after_it_authenticates_and_then_as_its_identity() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(&dir);
    let mut socket = WsClient::connect(server.address("websocket"));
    let early = socket.request("queue_list", json!({}));
    assert_eq!(early["headers"]["status"], 401, "{early}");
    assert_eq!(early["body"]["error"], "Not authenticated.");

    socket.set_header("X-Auth-Token", "wrong");
    let refused = socket.request("authenticate", json!({}));
    assert_eq!(refused["headers"]["status"], 401, "{refused}");

    socket.set_header("X-Auth-Token", "token-of-alice");
    let accepted = socket.request("authenticate", json!({}));
    assert_eq!(accepted["headers"]["status"], 200, "{accepted}");
    socket.set_header("X-Project-ID", "alice-project");
    let created = socket.request("queue_create", json!({"queue_name": "from-socket"}));
    assert_eq!(created["headers"]["status"], 201, "{created}");

    socket.set_header("X-Project-ID", "ops");
    let spoofed = socket.request("queue_list", json!({}));
    assert_eq!(spoofed["headers"]["status"], 403, "{spoofed}");

    let listed = server
        .client()
        .get("/v2/queues")
        .without_header("X-Project-ID")
        .header("X-Auth-Token", "token-of-alice")
        .send();
    assert_eq!(listed.json()["queues"][0]["name"], "from-socket");
}
