//! CORS through real requests: preflights and answer headers for allowed
//! origins (HTTP API and event streams), nothing by default, and the
//! WebSocket transport's Origin check at the handshake.

use serde_json::json;
use tungstenite::client::IntoClientRequest;
use zaqar_tests::TestServer;

const DASH: &str = "https://dash.example";

fn server(cors: &str) -> TestServer {
    TestServer::start_with(&format!(
        "[drivers]\ntransports = [\"wsgi\", \"websocket\"]\n[drivers.transport.websocket]\nport = 0\n[server.cors]\n{cors}\n"
    ))
}

#[test]
fn allowed_origins_get_preflights_and_headers_others_get_nothing() {
    let server = server(&format!("allowed_origins = [\"{DASH}\"]"));
    let http = server.client();
    let preflight = http
        .request("OPTIONS", "/v2/queues/q/messages")
        .without_header("Client-ID")
        .without_header("X-Project-ID")
        .header("Origin", DASH)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "client-id, x-project-id, content-type",
        )
        .send();
    assert_eq!(preflight.status, 204, "{}", preflight.text());
    assert_eq!(preflight.header("access-control-allow-origin"), Some(DASH));
    let methods = preflight.header("access-control-allow-methods").unwrap();
    assert!(
        methods.contains("POST") && methods.contains("DELETE"),
        "{methods}"
    );
    let headers = preflight.header("access-control-allow-headers").unwrap();
    for needed in [
        "Client-ID",
        "X-Project-ID",
        "X-Auth-Token",
        "Content-Type",
        "Last-Event-ID",
    ] {
        assert!(headers.contains(needed), "{needed} in {headers}");
    }
    assert!(preflight
        .header("access-control-expose-headers")
        .unwrap()
        .contains("Location"));

    let posted = http
        .post("/v2/queues/q/messages")
        .header("Origin", DASH)
        .json(&json!({"messages": [{"body": 1}]}))
        .send();
    assert_eq!(posted.status, 201);
    assert_eq!(posted.header("access-control-allow-origin"), Some(DASH));
    let events = http
        .get("/v2/queues/q/events?since_seq=0")
        .header("Origin", DASH)
        .send();
    assert_eq!(events.status, 200);
    assert_eq!(events.header("access-control-allow-origin"), Some(DASH));
    let refused = http
        .post("/v2/queues/q/messages")
        .header("Origin", "https://evil.example")
        .json(&json!({"messages": [{"body": 2}]}))
        .send();
    assert_eq!(refused.header("access-control-allow-origin"), None);
    let evil_preflight = http
        .request("OPTIONS", "/v2/queues/q/messages")
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "POST")
        .send();
    assert_eq!(evil_preflight.header("access-control-allow-origin"), None);
}

#[test]
fn by_default_no_origin_is_allowed() {
    let server = server("");
    let http = server.client();
    let answer = http.get("/v2/queues").header("Origin", DASH).send();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("access-control-allow-origin"), None);
}

fn handshake(address: &str, origin: Option<&str>) -> Result<(), u16> {
    let mut request = format!("ws://{address}/").into_client_request().unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("Origin", origin.parse().unwrap());
    }
    match tungstenite::connect(request) {
        Ok(_) => Ok(()),
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(other) => panic!("handshake failed: {other}"),
    }
}

#[test]
fn the_websocket_transport_checks_origin_against_the_same_list() {
    let server = server(&format!("allowed_origins = [\"{DASH}\"]"));
    let address = server.address("websocket");
    assert_eq!(handshake(address, Some("https://evil.example")), Err(403));
    assert_eq!(handshake(address, Some(DASH)), Ok(()));
    assert_eq!(handshake(address, None), Ok(()), "not a browser");
    let own_page = format!("http://{}", server.address("wsgi"));
    assert_eq!(
        handshake(address, Some(&own_page)),
        Ok(()),
        "the server's own pages"
    );

    let closed = self::server("");
    assert_eq!(handshake(closed.address("websocket"), Some(DASH)), Err(403));
}
