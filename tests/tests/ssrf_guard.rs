//! Subscriber addresses that reach the server's own network through an
//! IPv6 form carrying an IPv4 address are refused like the IPv4 address.

use serde_json::json;
use zaqar_tests::TestServer;

#[test]
fn ipv6_forms_embedding_private_ipv4_addresses_are_refused_as_subscribers() {
    let server = TestServer::start_with("[notification]\nallow_private_subscribers = false\n");
    let client = server.client();
    for subscriber in [
        "http://[::127.0.0.1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[64:ff9b::127.0.0.1]:8080/hook",
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",
        "https://[2002:7f00:1::1]/hook",
        "http://[64:ff9b:1::808:808]/hook",
    ] {
        let response = client
            .post("/v2/queues/ssrf/subscriptions")
            .json(&json!({"subscriber": subscriber, "ttl": 3600}))
            .send();
        assert_eq!(response.status, 400, "{subscriber}: {}", response.text());
        assert!(
            response.json()["description"]
                .as_str()
                .unwrap()
                .contains("private address"),
            "{subscriber}"
        );
    }
    let public = client
        .post("/v2/queues/ssrf/subscriptions")
        .json(&json!({"subscriber": "http://[64:ff9b::808:808]/hook", "ttl": 3600}))
        .send();
    assert_eq!(public.status, 201, "{}", public.text());
}
