//! The server with `auth_strategy = "keystone"` against a real Keystone
//! (`scripts/keystone-env.sh`), over HTTP and WebSocket: the project comes
//! from the token, another claimed project is refused, a missing or invalid
//! token gets keystonemiddleware's 401, the admin role comes from the
//! token, a socket acts after `authenticate` as the identity it last
//! authenticated as, and Keystone going away gives 503, not 401.
//!
//! Starting Keystone takes seconds: one Keystone serves the whole story,
//! told in order in one test (stopping Keystone comes last).

use std::time::Duration;

use serde_json::{json, Value};
use zaqar_test_support::keystone::Keystone;
use zaqar_tests::{Client, Frame, RequestBuilder, TestServer, WsClient};

const UNAUTHORIZED: &str = "The request you have made requires authentication.";

fn server(keystone: &Keystone) -> TestServer {
    TestServer::start_with(&format!(
        r#"
[server]
auth_strategy = "keystone"
[drivers]
transports = ["wsgi", "websocket"]
[drivers.transport.websocket]
port = 0
[drivers.auth.keystone]
auth_url = "{url}/v3"
username = "zaqar"
password = "zaqarpw"
project_name = "service"
http_connect_timeout = 2
http_request_timeout = 30
"#,
        url = keystone.url
    ))
}

/// A request carrying `token` and no `X-Project-ID` (the project comes
/// from the token).
fn with_token(request: RequestBuilder, token: &str) -> RequestBuilder {
    request
        .without_header("X-Project-ID")
        .header("X-Auth-Token", token)
}

fn project_of(document: &Value) -> String {
    document["token"]["project"]["id"]
        .as_str()
        .expect("a project-scoped token")
        .to_string()
}

fn queue_names(listed: &Value) -> Vec<String> {
    listed["queues"]
        .as_array()
        .map(|queues| {
            queues
                .iter()
                .map(|q| q["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn status(reply: &Value) -> u64 {
    reply["headers"]["status"].as_u64().expect("a status")
}

#[track_caller]
fn assert_unauthorized(client: &Client, token: Option<&str>) {
    let mut request = client
        .put("/v2/queues/never")
        .without_header("X-Project-ID");
    if let Some(token) = token {
        request = request.header("X-Auth-Token", token);
    }
    let refused = request.send();
    assert_eq!(refused.status, 401, "{}", refused.text());
    assert_eq!(
        refused.json(),
        json!({"error": {"code": 401, "title": "Unauthorized", "message": UNAUTHORIZED}})
    );
}

#[test]
fn keystone_tokens_decide_project_and_roles_over_http_and_websocket() {
    let keystone = Keystone::start();
    let server = server(&keystone);
    let client = server.client();
    let demo = keystone.issue("demo");
    let demo_project = project_of(&demo.document);
    let admin = keystone.issue("admin");
    let admin_project = project_of(&admin.document);
    assert_ne!(demo_project, admin_project);

    // Missing, unknown and tampered tokens: keystonemiddleware's 401, and
    // nothing created.
    assert_unauthorized(&client, None);
    assert_unauthorized(&client, Some("not-a-keystone-token"));
    let mut tampered = demo.token.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    assert_unauthorized(&client, Some(&String::from_utf8(tampered).unwrap()));

    // A valid token acts on its own project, whatever else is claimed.
    let created = with_token(client.put("/v2/queues/of-demo"), &demo.token).send();
    assert_eq!(created.status, 201, "{}", created.text());
    let own = with_token(client.get("/v2/queues"), &demo.token)
        .header("X-Project-ID", &demo_project)
        .send();
    assert_eq!(own.status, 200, "{}", own.text());
    assert_eq!(queue_names(&own.json()), ["of-demo"]);
    let claimed = with_token(client.get("/v2/queues"), &demo.token)
        .header("X-Project-ID", &admin_project)
        .send();
    assert_eq!(claimed.status, 403, "{}", claimed.text());
    let of_admin = with_token(client.get("/v2/queues"), &admin.token).send();
    assert_eq!(of_admin.status, 200, "{}", of_admin.text());
    assert!(
        !queue_names(&of_admin.json()).contains(&"of-demo".to_string()),
        "the admin's project sees none of demo's: {}",
        of_admin.text()
    );

    // Roles come from the token: X-Roles opens nothing.
    let member = with_token(client.get("/v2/health"), &demo.token)
        .header("X-Roles", "admin")
        .send();
    assert_eq!(member.status, 403, "{}", member.text());
    let health = with_token(client.get("/v2/health"), &admin.token).send();
    assert_eq!(health.status, 200, "{}", health.text());

    // WebSocket: nothing before `authenticate`, nothing with a bad token.
    let mut socket = WsClient::connect(server.address("websocket"));
    socket.set_header("X-Project-ID", &demo_project);
    let early = socket.request("queue_list", json!({}));
    assert_eq!(status(&early), 401, "{early}");
    socket.set_header("X-Auth-Token", "not-a-keystone-token");
    let refused = socket.request("authenticate", json!({}));
    assert_eq!(status(&refused), 401, "{refused}");
    let still_early = socket.request("queue_list", json!({}));
    assert_eq!(status(&still_early), 401, "{still_early}");

    // Authenticated as demo: frames act on demo's project, pushes arrive.
    socket.set_header("X-Auth-Token", &demo.token);
    let accepted = socket.request("authenticate", json!({}));
    assert_eq!(status(&accepted), 200, "{accepted}");
    let listed = socket.request("queue_list", json!({}));
    assert_eq!(queue_names(&listed["body"]), ["of-demo"], "{listed}");
    let subscribed = socket.request(
        "subscription_create",
        json!({"queue_name": "of-demo", "ttl": 600}),
    );
    assert_eq!(status(&subscribed), 201, "{subscribed}");
    let over_http = with_token(client.post("/v2/queues/of-demo/messages"), &demo.token)
        .json(&json!({"messages": [{"body": "over http"}]}))
        .send();
    assert_eq!(over_http.status, 201, "{}", over_http.text());
    let pushed = loop {
        match socket.recv(Duration::from_secs(10)) {
            Frame::Text(frame) if frame.get("request").is_none() => break frame,
            Frame::Text(_) => continue,
            other => panic!("no push: {other:?}"),
        }
    };
    assert_eq!(pushed["body"], "over http", "{pushed}");
    let posted = socket.request(
        "message_post",
        json!({"queue_name": "of-demo", "messages": [{"body": "over the socket"}]}),
    );
    assert_eq!(status(&posted), 201, "{posted}");
    let listed = socket.request(
        "message_list",
        json!({"queue_name": "of-demo", "echo": true}),
    );
    let bodies: Vec<&Value> = listed["body"]["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .map(|m| &m["body"])
        .collect();
    assert_eq!(
        bodies,
        [&json!("over http"), &json!("over the socket")],
        "{listed}"
    );
    let health = socket.request("check_node_health", json!({}));
    assert_eq!(status(&health), 403, "demo is no admin: {health}");
    socket.set_header("X-Project-ID", &admin_project);
    let claimed = socket.request("queue_list", json!({}));
    assert_eq!(status(&claimed), 403, "{claimed}");

    // Re-authenticating replaces the identity: now the admin's project and
    // role.
    socket.set_header("X-Auth-Token", &admin.token);
    let again = socket.request("authenticate", json!({}));
    assert_eq!(status(&again), 200, "{again}");
    let listed = socket.request("queue_list", json!({}));
    assert_eq!(status(&listed), 200, "{listed}");
    assert!(
        !queue_names(&listed["body"]).contains(&"of-demo".to_string()),
        "{listed}"
    );
    let health = socket.request("check_node_health", json!({}));
    assert_eq!(status(&health), 200, "{health}");
    socket.set_header("X-Project-ID", &demo_project);
    let claimed = socket.request("queue_list", json!({}));
    assert_eq!(status(&claimed), 403, "{claimed}");

    // Keystone goes away: a token it never validated gets 503 (it may be
    // fine), over HTTP and WebSocket; one validated before is still served
    // from the cache.
    let unseen = keystone.issue("demo").token;
    keystone.stop();
    let unavailable = with_token(client.get("/v2/queues"), &unseen).send();
    assert_eq!(unavailable.status, 503, "{}", unavailable.text());
    assert_eq!(
        unavailable.json(),
        json!({"title": "Service temporarily unavailable",
               "description": "The identity service could not be reached. Please try again in a few seconds."})
    );
    let mut late = WsClient::connect(server.address("websocket"));
    late.set_header("X-Project-ID", &demo_project);
    late.set_header("X-Auth-Token", &unseen);
    let unavailable = late.request("authenticate", json!({}));
    assert_eq!(status(&unavailable), 503, "{unavailable}");
    let cached = with_token(client.get("/v2/queues"), &demo.token).send();
    assert_eq!(cached.status, 200, "{}", cached.text());
    assert_eq!(queue_names(&cached.json()), ["of-demo"]);
}
