//! One scenario table, run over HTTP and over WebSocket with the same
//! expectations: both transports reach the same API layer, so a scenario
//! gives the same statuses and the same data over either.

use serde_json::{json, Value};
use zaqar_tests::{Client, TestServer, WsClient};

/// The operations the scenarios use, as each transport spells them.
trait Zaqar {
    fn create_queue(&mut self, queue: &str, metadata: Value) -> u16;
    fn queue_metadata(&mut self, queue: &str) -> (u16, Value);
    fn delete_queue(&mut self, queue: &str) -> u16;
    /// Status and ids of the posted messages.
    fn post(&mut self, queue: &str, messages: Value) -> (u16, Vec<String>);
    /// Status and bodies of the listed messages.
    fn list(&mut self, queue: &str, echo: bool, include_claimed: bool) -> (u16, Vec<Value>);
    /// Status, claim id and claimed message ids.
    fn claim(
        &mut self,
        queue: &str,
        limit: u32,
        ttl: u32,
        grace: u32,
    ) -> (u16, Option<String>, Vec<String>);
    fn delete_message(&mut self, queue: &str, id: &str, claim_id: Option<&str>) -> u16;
    fn release_claim(&mut self, queue: &str, claim_id: &str) -> u16;
    /// Status and (total, claimed, free).
    fn stats(&mut self, queue: &str) -> (u16, (u64, u64, u64));
}

struct Http(Client);

impl Zaqar for Http {
    fn create_queue(&mut self, queue: &str, metadata: Value) -> u16 {
        self.0
            .put(&format!("/v2/queues/{queue}"))
            .json(&metadata)
            .send()
            .status
    }
    fn queue_metadata(&mut self, queue: &str) -> (u16, Value) {
        let r = self.0.get(&format!("/v2/queues/{queue}")).send();
        (
            r.status,
            if r.status == 200 {
                r.json()
            } else {
                Value::Null
            },
        )
    }
    fn delete_queue(&mut self, queue: &str) -> u16 {
        self.0.delete(&format!("/v2/queues/{queue}")).send().status
    }
    fn post(&mut self, queue: &str, messages: Value) -> (u16, Vec<String>) {
        let r = self
            .0
            .post(&format!("/v2/queues/{queue}/messages"))
            .json(&json!({ "messages": messages }))
            .send();
        let ids = if r.status == 201 {
            r.json()["resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h.as_str().unwrap().rsplit('/').next().unwrap().to_string())
                .collect()
        } else {
            Vec::new()
        };
        (r.status, ids)
    }
    fn list(&mut self, queue: &str, echo: bool, include_claimed: bool) -> (u16, Vec<Value>) {
        let r = self
            .0
            .get(&format!(
                "/v2/queues/{queue}/messages?echo={echo}&include_claimed={include_claimed}"
            ))
            .send();
        let bodies = if r.status == 200 {
            r.json()["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["body"].clone())
                .collect()
        } else {
            Vec::new()
        };
        (r.status, bodies)
    }
    fn claim(
        &mut self,
        queue: &str,
        limit: u32,
        ttl: u32,
        grace: u32,
    ) -> (u16, Option<String>, Vec<String>) {
        let r = self
            .0
            .post(&format!("/v2/queues/{queue}/claims?limit={limit}"))
            .json(&json!({"ttl": ttl, "grace": grace}))
            .send();
        if r.status != 201 {
            return (r.status, None, Vec::new());
        }
        let claim_id = r
            .header("location")
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        let ids = r.json()["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect();
        (r.status, Some(claim_id), ids)
    }
    fn delete_message(&mut self, queue: &str, id: &str, claim_id: Option<&str>) -> u16 {
        let query = claim_id
            .map(|c| format!("?claim_id={c}"))
            .unwrap_or_default();
        self.0
            .delete(&format!("/v2/queues/{queue}/messages/{id}{query}"))
            .send()
            .status
    }
    fn release_claim(&mut self, queue: &str, claim_id: &str) -> u16 {
        self.0
            .delete(&format!("/v2/queues/{queue}/claims/{claim_id}"))
            .send()
            .status
    }
    fn stats(&mut self, queue: &str) -> (u16, (u64, u64, u64)) {
        let r = self.0.get(&format!("/v2/queues/{queue}/stats")).send();
        let m = r.json()["messages"].clone();
        (
            r.status,
            (
                m["total"].as_u64().unwrap(),
                m["claimed"].as_u64().unwrap(),
                m["free"].as_u64().unwrap(),
            ),
        )
    }
}

struct Ws(WsClient);

impl Ws {
    fn call(&mut self, action: &str, body: Value) -> (u16, Value) {
        let reply = self.0.request(action, body);
        let status = reply["headers"]["status"].as_u64().unwrap() as u16;
        (status, reply["body"].clone())
    }
}

impl Zaqar for Ws {
    fn create_queue(&mut self, queue: &str, metadata: Value) -> u16 {
        self.call(
            "queue_create",
            json!({"queue_name": queue, "metadata": metadata}),
        )
        .0
    }
    fn queue_metadata(&mut self, queue: &str) -> (u16, Value) {
        self.call("queue_get", json!({"queue_name": queue}))
    }
    fn delete_queue(&mut self, queue: &str) -> u16 {
        self.call("queue_delete", json!({"queue_name": queue})).0
    }
    fn post(&mut self, queue: &str, messages: Value) -> (u16, Vec<String>) {
        let (status, body) = self.call(
            "message_post",
            json!({"queue_name": queue, "messages": messages}),
        );
        let ids = body["message_ids"]
            .as_array()
            .map(|ids| {
                ids.iter()
                    .map(|i| i.as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        (status, ids)
    }
    fn list(&mut self, queue: &str, echo: bool, include_claimed: bool) -> (u16, Vec<Value>) {
        let (status, body) = self.call(
            "message_list",
            json!({"queue_name": queue, "echo": echo, "include_claimed": include_claimed}),
        );
        let bodies = body["messages"]
            .as_array()
            .map(|m| m.iter().map(|m| m["body"].clone()).collect())
            .unwrap_or_default();
        (status, bodies)
    }
    fn claim(
        &mut self,
        queue: &str,
        limit: u32,
        ttl: u32,
        grace: u32,
    ) -> (u16, Option<String>, Vec<String>) {
        let (status, body) = self.call(
            "claim_create",
            json!({"queue_name": queue, "limit": limit, "ttl": ttl, "grace": grace}),
        );
        if status != 201 {
            return (status, None, Vec::new());
        }
        let ids = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect();
        (status, body["claim_id"].as_str().map(String::from), ids)
    }
    fn delete_message(&mut self, queue: &str, id: &str, claim_id: Option<&str>) -> u16 {
        let mut body = json!({"queue_name": queue, "message_id": id});
        if let Some(claim_id) = claim_id {
            body["claim_id"] = json!(claim_id);
        }
        self.call("message_delete", body).0
    }
    fn release_claim(&mut self, queue: &str, claim_id: &str) -> u16 {
        self.call(
            "claim_delete",
            json!({"queue_name": queue, "claim_id": claim_id}),
        )
        .0
    }
    fn stats(&mut self, queue: &str) -> (u16, (u64, u64, u64)) {
        let (status, body) = self.call("queue_get_stats", json!({"queue_name": queue}));
        let m = &body["messages"];
        (
            status,
            (
                m["total"].as_u64().unwrap(),
                m["claimed"].as_u64().unwrap(),
                m["free"].as_u64().unwrap(),
            ),
        )
    }
}

fn queue_lifecycle(api: &mut dyn Zaqar) {
    assert_eq!(api.create_queue("lifecycle", json!({"color": "blue"})), 201);
    assert_eq!(api.create_queue("lifecycle", json!({})), 204);
    let (status, metadata) = api.queue_metadata("lifecycle");
    assert_eq!(status, 200);
    assert_eq!(metadata["color"], "blue");
    assert_eq!(api.delete_queue("lifecycle"), 204);
    assert_eq!(api.delete_queue("lifecycle"), 204);
}

fn posted_messages_list_in_order(api: &mut dyn Zaqar) {
    let (status, ids) = api.post(
        "ordered",
        json!([{"body": 1}, {"body": {"two": 2}}, {"body": "three", "ttl": 120}]),
    );
    assert_eq!(status, 201);
    assert_eq!(ids.len(), 3);
    let (status, bodies) = api.list("ordered", true, false);
    assert_eq!(status, 200);
    assert_eq!(bodies, vec![json!(1), json!({"two": 2}), json!("three")]);
    // echo=false hides this client's own messages.
    assert_eq!(api.list("ordered", false, false), (200, vec![]));
}

fn claims_hide_and_guard_messages(api: &mut dyn Zaqar) {
    let (_, ids) = api.post("work", json!([{"body": "a"}, {"body": "b"}]));
    let (status, claim_id, claimed) = api.claim("work", 1, 60, 60);
    assert_eq!(status, 201);
    let claim_id = claim_id.expect("claim id");
    assert_eq!(claimed, vec![ids[0].clone()]);
    assert_eq!(api.list("work", true, false).1, vec![json!("b")]);
    assert_eq!(api.list("work", true, true).1, vec![json!("a"), json!("b")]);
    assert_eq!(api.stats("work"), (200, (2, 1, 1)));
    assert_eq!(api.delete_message("work", &ids[0], None), 403);
    assert_eq!(api.delete_message("work", &ids[0], Some(&claim_id)), 204);
    assert_eq!(api.delete_message("work", &ids[1], Some(&claim_id)), 400);
    let (status, second, claimed) = api.claim("work", 5, 60, 60);
    assert_eq!((status, claimed), (201, vec![ids[1].clone()]));
    assert_eq!(api.release_claim("work", &second.unwrap()), 204);
    assert_eq!(api.stats("work"), (200, (1, 0, 1)));
}

fn nothing_to_claim_is_204(api: &mut dyn Zaqar) {
    assert_eq!(api.claim("empty-queue", 5, 60, 60).0, 204);
}

fn out_of_range_values_are_400_and_change_nothing(api: &mut dyn Zaqar) {
    assert_eq!(api.post("strict", json!([{"body": 1, "ttl": 5}])).0, 400);
    assert_eq!(
        api.post(
            "strict",
            json!([{"body": 1, "ttl": 60}, {"body": 2, "ttl": 9999999}])
        )
        .0,
        400
    );
    assert_eq!(api.claim("strict", 5, 10, 60).0, 400);
    assert_eq!(api.claim("strict", 50, 60, 60).0, 400);
    assert_eq!(api.create_queue("bad*name", json!({})), 400);
    assert_eq!(
        api.create_queue("strict", json!({"_default_message_ttl": 1})),
        400
    );
    assert_eq!(api.stats("strict"), (200, (0, 0, 0)));
}

/// A named scenario, written once against [`Zaqar`].
type Scenario = (&'static str, fn(&mut dyn Zaqar));

const SCENARIOS: &[Scenario] = &[
    ("queue lifecycle", queue_lifecycle),
    (
        "posted messages list in order",
        posted_messages_list_in_order,
    ),
    (
        "claims hide and guard messages",
        claims_hide_and_guard_messages,
    ),
    ("nothing to claim is 204", nothing_to_claim_is_204),
    (
        "out-of-range values are 400 and change nothing",
        out_of_range_values_are_400_and_change_nothing,
    ),
];

fn server() -> TestServer {
    TestServer::start_with(
        "[drivers]\ntransports = [\"wsgi\", \"websocket\"]\n[drivers.transport.websocket]\nport = 0\n",
    )
}

#[test]
fn scenarios_over_http() {
    let server = server();
    for (name, scenario) in SCENARIOS {
        // A project per scenario keeps them independent.
        let mut api = Http(
            server
                .client()
                .with_project(&format!("http-{}", name.replace(' ', "-"))),
        );
        scenario(&mut api);
    }
}

#[test]
fn scenarios_over_websocket() {
    let server = server();
    for (name, scenario) in SCENARIOS {
        let mut client = WsClient::connect(server.address("websocket"));
        client.set_header("X-Project-ID", &format!("ws-{}", name.replace(' ', "-")));
        scenario(&mut Ws(client));
    }
}
