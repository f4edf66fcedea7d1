//! One scenario table, run over HTTP, WebSocket with JSON frames and
//! WebSocket with MessagePack frames, with the same expectations: every
//! transport reaches the same API layer, so a scenario gives the same
//! statuses, data and error sentences over each.

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
    /// Status and the message's body.
    fn get_message(&mut self, queue: &str, id: &str) -> (u16, Value);
    /// Status and the ids found.
    fn get_messages(&mut self, queue: &str, ids: &[String]) -> (u16, Vec<String>);
    fn delete_messages(&mut self, queue: &str, ids: &[String]) -> u16;
    /// Status and the bodies popped.
    fn pop(&mut self, queue: &str, count: u32) -> (u16, Vec<Value>);
    /// Status, ttl and message ids of a claim.
    fn get_claim(&mut self, queue: &str, claim_id: &str) -> (u16, u64, Vec<String>);
    fn update_claim(&mut self, queue: &str, claim_id: &str, ttl: u32) -> u16;
    /// Status and queue names of a page of the project's queues.
    fn list_queues(&mut self, limit: u32, marker: Option<&str>) -> (u16, Vec<String>);
    /// `resource_types` as given (`None`: no body).
    fn purge(&mut self, queue: &str, resource_types: Option<Value>) -> u16;
    /// Status and id of the new subscription.
    fn subscribe(&mut self, queue: &str, subscriber: &str, ttl: u32) -> (u16, Option<String>);
    /// Status and `(id, subscriber, ttl)` of the queue's subscriptions.
    fn subscriptions(&mut self, queue: &str) -> (u16, Vec<(String, String, u64)>);
    /// Status and `(subscriber, ttl)` of one subscription.
    fn subscription(&mut self, queue: &str, id: &str) -> (u16, Option<(String, u64)>);
    fn unsubscribe(&mut self, queue: &str, id: &str) -> u16;
    /// An action with parameters (query parameters over HTTP, body fields
    /// over WebSocket): its status and, for an error, its description.
    fn call(&mut self, action: Call, queue: &str, params: Value) -> (u16, Option<String>);
}

/// Actions [`Zaqar::call`] can make with arbitrary parameters.
#[derive(Clone, Copy)]
enum Call {
    ListMessages,
    ListQueues,
    DeleteMessages,
    Claim,
    Post,
    CreateQueue,
    Subscribe,
}

/// `k=v&...` from a JSON object (strings as they are, lists comma-joined).
fn query(params: &Value) -> String {
    params
        .as_object()
        .map(|fields| {
            fields
                .iter()
                .map(|(key, value)| {
                    let value = match value {
                        Value::String(text) => text.clone(),
                        Value::Array(items) => items
                            .iter()
                            .map(|i| i.as_str().map(String::from).unwrap_or(i.to_string()))
                            .collect::<Vec<_>>()
                            .join(","),
                        other => other.to_string(),
                    };
                    format!("{key}={value}")
                })
                .collect::<Vec<_>>()
                .join("&")
        })
        .unwrap_or_default()
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
    fn get_message(&mut self, queue: &str, id: &str) -> (u16, Value) {
        let r = self
            .0
            .get(&format!("/v2/queues/{queue}/messages/{id}"))
            .send();
        let body = if r.status == 200 {
            r.json()["body"].clone()
        } else {
            Value::Null
        };
        (r.status, body)
    }
    fn get_messages(&mut self, queue: &str, ids: &[String]) -> (u16, Vec<String>) {
        let r = self
            .0
            .get(&format!(
                "/v2/queues/{queue}/messages?ids={}",
                ids.join(",")
            ))
            .send();
        (r.status, ids_of(&r.json()["messages"]))
    }
    fn delete_messages(&mut self, queue: &str, ids: &[String]) -> u16 {
        self.0
            .delete(&format!(
                "/v2/queues/{queue}/messages?ids={}",
                ids.join(",")
            ))
            .send()
            .status
    }
    fn pop(&mut self, queue: &str, count: u32) -> (u16, Vec<Value>) {
        let r = self
            .0
            .delete(&format!("/v2/queues/{queue}/messages?pop={count}"))
            .send();
        (r.status, bodies_of(&r.json()["messages"]))
    }
    fn get_claim(&mut self, queue: &str, claim_id: &str) -> (u16, u64, Vec<String>) {
        let r = self
            .0
            .get(&format!("/v2/queues/{queue}/claims/{claim_id}"))
            .send();
        if r.status != 200 {
            return (r.status, 0, Vec::new());
        }
        let claim = r.json();
        (
            r.status,
            claim["ttl"].as_u64().unwrap(),
            ids_of(&claim["messages"]),
        )
    }
    fn update_claim(&mut self, queue: &str, claim_id: &str, ttl: u32) -> u16 {
        self.0
            .patch(&format!("/v2/queues/{queue}/claims/{claim_id}"))
            .json(&json!({ "ttl": ttl }))
            .send()
            .status
    }
    fn list_queues(&mut self, limit: u32, marker: Option<&str>) -> (u16, Vec<String>) {
        let marker = marker.map(|m| format!("&marker={m}")).unwrap_or_default();
        let r = self
            .0
            .get(&format!("/v2/queues?limit={limit}{marker}"))
            .send();
        (r.status, names_of(&r.json()["queues"]))
    }
    fn purge(&mut self, queue: &str, resource_types: Option<Value>) -> u16 {
        let request = self.0.post(&format!("/v2/queues/{queue}/purge"));
        match resource_types {
            Some(types) => request.json(&json!({ "resource_types": types })),
            None => request,
        }
        .send()
        .status
    }
    fn subscribe(&mut self, queue: &str, subscriber: &str, ttl: u32) -> (u16, Option<String>) {
        let r = self
            .0
            .post(&format!("/v2/queues/{queue}/subscriptions"))
            .json(&json!({"subscriber": subscriber, "ttl": ttl}))
            .send();
        let id = (r.status == 201)
            .then(|| r.json()["subscription_id"].as_str().map(String::from))
            .flatten();
        (r.status, id)
    }
    fn subscriptions(&mut self, queue: &str) -> (u16, Vec<(String, String, u64)>) {
        let r = self
            .0
            .get(&format!("/v2/queues/{queue}/subscriptions"))
            .send();
        (r.status, subscriptions_of(&r.json()["subscriptions"]))
    }
    fn subscription(&mut self, queue: &str, id: &str) -> (u16, Option<(String, u64)>) {
        let r = self
            .0
            .get(&format!("/v2/queues/{queue}/subscriptions/{id}"))
            .send();
        let found = (r.status == 200).then(|| {
            let s = r.json();
            (
                s["subscriber"].as_str().unwrap().to_string(),
                s["ttl"].as_u64().unwrap(),
            )
        });
        (r.status, found)
    }
    fn unsubscribe(&mut self, queue: &str, id: &str) -> u16 {
        self.0
            .delete(&format!("/v2/queues/{queue}/subscriptions/{id}"))
            .send()
            .status
    }
    fn call(&mut self, action: Call, queue: &str, params: Value) -> (u16, Option<String>) {
        let client = &self.0;
        let r = match action {
            Call::ListMessages => {
                client.get(&format!("/v2/queues/{queue}/messages?{}", query(&params)))
            }
            Call::ListQueues => client.get(&format!("/v2/queues?{}", query(&params))),
            Call::DeleteMessages => {
                client.delete(&format!("/v2/queues/{queue}/messages?{}", query(&params)))
            }
            Call::Claim => {
                let mut body = params.clone();
                let limit = body.as_object_mut().unwrap().remove("limit");
                let limit = limit.map(|l| format!("?limit={l}")).unwrap_or_default();
                client
                    .post(&format!("/v2/queues/{queue}/claims{limit}"))
                    .json(&body)
            }
            Call::Post => client
                .post(&format!("/v2/queues/{queue}/messages"))
                .json(&params),
            Call::CreateQueue => client
                .put(&format!("/v2/queues/{queue}"))
                .json(&params["metadata"]),
            Call::Subscribe => client
                .post(&format!("/v2/queues/{queue}/subscriptions"))
                .json(&params),
        }
        .send();
        Self::described(r)
    }
}

fn ids_of(messages: &Value) -> Vec<String> {
    messages
        .as_array()
        .map(|list| {
            list.iter()
                .map(|m| m["id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn bodies_of(messages: &Value) -> Vec<Value> {
    messages
        .as_array()
        .map(|list| list.iter().map(|m| m["body"].clone()).collect())
        .unwrap_or_default()
}

fn names_of(queues: &Value) -> Vec<String> {
    queues
        .as_array()
        .map(|list| {
            list.iter()
                .map(|q| q["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn subscriptions_of(list: &Value) -> Vec<(String, String, u64)> {
    list.as_array()
        .map(|list| {
            list.iter()
                .map(|s| {
                    (
                        s["id"].as_str().unwrap().to_string(),
                        s["subscriber"].as_str().unwrap().to_string(),
                        s["ttl"].as_u64().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Http {
    fn described(r: zaqar_tests::Response) -> (u16, Option<String>) {
        let description = (r.status >= 400 && !r.body.is_empty())
            .then(|| r.json()["description"].as_str().map(String::from))
            .flatten();
        (r.status, description)
    }
}

struct Ws {
    client: WsClient,
    msgpack: bool,
}

impl Ws {
    fn call(&mut self, action: &str, body: Value) -> (u16, Value) {
        let reply = if self.msgpack {
            self.client.request_msgpack(action, body)
        } else {
            self.client.request(action, body)
        };
        assert_eq!(reply["request"]["action"], action);
        let status = reply["headers"]["status"].as_u64().unwrap() as u16;
        (status, reply["body"].clone())
    }

    fn queue_call(&mut self, action: &str, queue: &str, mut body: Value) -> (u16, Value) {
        body["queue_name"] = json!(queue);
        self.call(action, body)
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
    fn get_message(&mut self, queue: &str, id: &str) -> (u16, Value) {
        let (status, body) = self.queue_call("message_get", queue, json!({"message_id": id}));
        (status, body["messages"]["body"].clone())
    }
    fn get_messages(&mut self, queue: &str, ids: &[String]) -> (u16, Vec<String>) {
        let (status, body) =
            self.queue_call("message_get_many", queue, json!({"message_ids": ids}));
        (status, ids_of(&body["messages"]))
    }
    fn delete_messages(&mut self, queue: &str, ids: &[String]) -> u16 {
        self.queue_call("message_delete_many", queue, json!({"message_ids": ids}))
            .0
    }
    fn pop(&mut self, queue: &str, count: u32) -> (u16, Vec<Value>) {
        let (status, body) = self.queue_call("message_delete_many", queue, json!({"pop": count}));
        (status, bodies_of(&body["messages"]))
    }
    fn get_claim(&mut self, queue: &str, claim_id: &str) -> (u16, u64, Vec<String>) {
        let (status, body) = self.queue_call("claim_get", queue, json!({"claim_id": claim_id}));
        if status != 200 {
            return (status, 0, Vec::new());
        }
        (
            status,
            body["ttl"].as_u64().unwrap(),
            ids_of(&body["messages"]),
        )
    }
    fn update_claim(&mut self, queue: &str, claim_id: &str, ttl: u32) -> u16 {
        self.queue_call(
            "claim_update",
            queue,
            json!({"claim_id": claim_id, "ttl": ttl}),
        )
        .0
    }
    fn list_queues(&mut self, limit: u32, marker: Option<&str>) -> (u16, Vec<String>) {
        let mut body = json!({ "limit": limit });
        if let Some(marker) = marker {
            body["marker"] = json!(marker);
        }
        let (status, body) = self.call("queue_list", body);
        (status, names_of(&body["queues"]))
    }
    fn purge(&mut self, queue: &str, resource_types: Option<Value>) -> u16 {
        let body = match resource_types {
            Some(types) => json!({ "resource_types": types }),
            None => json!({}),
        };
        self.queue_call("queue_purge", queue, body).0
    }
    fn subscribe(&mut self, queue: &str, subscriber: &str, ttl: u32) -> (u16, Option<String>) {
        let (status, body) = self.queue_call(
            "subscription_create",
            queue,
            json!({"subscriber": subscriber, "ttl": ttl}),
        );
        (status, body["subscription_id"].as_str().map(String::from))
    }
    fn subscriptions(&mut self, queue: &str) -> (u16, Vec<(String, String, u64)>) {
        let (status, body) = self.queue_call("subscription_list", queue, json!({}));
        (status, subscriptions_of(&body["subscriptions"]))
    }
    fn subscription(&mut self, queue: &str, id: &str) -> (u16, Option<(String, u64)>) {
        let (status, body) =
            self.queue_call("subscription_get", queue, json!({ "subscription_id": id }));
        let found = (status == 200).then(|| {
            (
                body["subscriber"].as_str().unwrap().to_string(),
                body["ttl"].as_u64().unwrap(),
            )
        });
        (status, found)
    }
    fn unsubscribe(&mut self, queue: &str, id: &str) -> u16 {
        self.queue_call(
            "subscription_delete",
            queue,
            json!({ "subscription_id": id }),
        )
        .0
    }
    fn call(&mut self, action: Call, queue: &str, params: Value) -> (u16, Option<String>) {
        let name = match action {
            Call::ListMessages => "message_list",
            Call::ListQueues => "queue_list",
            Call::DeleteMessages => "message_delete_many",
            Call::Claim => "claim_create",
            Call::Post => "message_post",
            Call::CreateQueue => "queue_create",
            Call::Subscribe => "subscription_create",
        };
        let mut params = params;
        if let Some(ids) = params.as_object_mut().unwrap().remove("ids") {
            params["message_ids"] = ids;
        }
        let (status, body) = self.queue_call(name, queue, params);
        let description = (status >= 400).then(|| {
            body["exception"]
                .as_str()
                .or(body["error"].as_str())
                .map(String::from)
        });
        (status, description.flatten())
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

/// A post applies the queue's metadata as it is at that moment, whatever
/// came before: the store may keep the metadata in memory for posts, so
/// every change of it (create, delete, lazy create by a post) must show.
fn posts_follow_the_queues_current_metadata(api: &mut dyn Zaqar) {
    let big = json!([{"body": "x".repeat(300)}]);
    let limited = json!({"_max_messages_post_size": 200});
    assert_eq!(api.create_queue("limits", limited.clone()), 201);
    assert_eq!(api.post("limits", big.clone()).0, 400);
    assert_eq!(api.delete_queue("limits"), 204);
    // The post creates the queue again, without the limit.
    assert_eq!(api.post("limits", big.clone()).0, 201);
    assert_eq!(api.delete_queue("limits"), 204);
    assert_eq!(api.create_queue("limits", limited), 201);
    assert_eq!(api.post("limits", big).0, 400);
    assert_eq!(api.stats("limits"), (200, (0, 0, 0)));
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

fn messages_by_id(api: &mut dyn Zaqar) {
    let (_, ids) = api.post(
        "by-id",
        json!([{"body": "a"}, {"body": "b"}, {"body": "c"}]),
    );
    assert_eq!(api.get_message("by-id", &ids[0]), (200, json!("a")));
    let wanted = vec![ids[0].clone(), ids[2].clone()];
    let (status, mut found) = api.get_messages("by-id", &wanted);
    found.sort();
    let mut expected = wanted.clone();
    expected.sort();
    assert_eq!((status, found), (200, expected));
    assert_eq!(api.delete_messages("by-id", &ids[..1]), 204);
    assert_eq!(api.get_message("by-id", &ids[0]).0, 404);
    assert_eq!(
        api.list("by-id", true, false).1,
        vec![json!("b"), json!("c")]
    );
}

fn pop_returns_and_removes(api: &mut dyn Zaqar) {
    api.post("popped", json!([{"body": 1}, {"body": 2}, {"body": 3}]));
    assert_eq!(api.pop("popped", 2), (200, vec![json!(1), json!(2)]));
    assert_eq!(api.stats("popped"), (200, (1, 0, 1)));
}

fn claims_renew_and_release(api: &mut dyn Zaqar) {
    let (_, ids) = api.post("renewed", json!([{"body": 1}, {"body": 2}]));
    let (_, claim_id, _) = api.claim("renewed", 2, 60, 60);
    let claim_id = claim_id.expect("claim id");
    assert_eq!(api.get_claim("renewed", &claim_id), (200, 60, ids.clone()));
    assert_eq!(api.update_claim("renewed", &claim_id, 120), 204);
    assert_eq!(api.get_claim("renewed", &claim_id), (200, 120, ids));
    assert_eq!(api.update_claim("renewed", &claim_id, 5), 400);
    assert_eq!(api.release_claim("renewed", &claim_id), 204);
    assert_eq!(api.get_claim("renewed", &claim_id).0, 404);
    assert_eq!(api.update_claim("renewed", &claim_id, 120), 404);
}

fn queues_are_listed_in_pages(api: &mut dyn Zaqar) {
    for name in ["page-a", "page-b", "page-c"] {
        assert_eq!(api.create_queue(name, json!({})), 201);
    }
    assert_eq!(
        api.list_queues(2, None),
        (200, vec!["page-a".to_string(), "page-b".to_string()])
    );
    assert_eq!(
        api.list_queues(2, Some("page-b")),
        (200, vec!["page-c".to_string()])
    );
}

fn purge_removes_what_it_names(api: &mut dyn Zaqar) {
    api.post("purged", json!([{"body": 1}, {"body": 2}]));
    assert_eq!(api.subscribe("purged", HOOK, 600).0, 201);
    assert_eq!(api.purge("purged", Some(json!(["messages"]))), 204);
    assert_eq!(api.stats("purged"), (200, (0, 0, 0)));
    assert_eq!(api.subscriptions("purged").1.len(), 1);
    assert_eq!(api.purge("purged", Some(json!(["bogus"]))), 400);
    assert_eq!(api.purge("purged", None), 204);
    assert_eq!(api.subscriptions("purged"), (200, vec![]));
}

fn subscription_lifecycle(api: &mut dyn Zaqar) {
    let (status, id) = api.subscribe("watched", HOOK, 600);
    assert_eq!(status, 201);
    let id = id.expect("subscription id");
    assert_eq!(
        api.subscriptions("watched"),
        (200, vec![(id.clone(), HOOK.to_string(), 600)])
    );
    assert_eq!(
        api.subscription("watched", &id),
        (200, Some((HOOK.to_string(), 600)))
    );
    assert_eq!(api.unsubscribe("watched", &id), 204);
    assert_eq!(api.subscription("watched", &id), (404, None));
    assert_eq!(api.subscriptions("watched"), (200, vec![]));
}

fn message_bodies_round_trip(api: &mut dyn Zaqar) {
    let bodies = vec![
        json!(1.5),
        json!(-3),
        json!(18446744073709551615u64),
        json!("é\n\"quoted\" \u{1F600}"),
        json!({"a": [null, true, {"b": []}], "c": {}}),
        json!(null),
    ];
    let messages: Vec<Value> = bodies.iter().map(|b| json!({ "body": b })).collect();
    assert_eq!(api.post("bodies", json!(messages)).0, 201);
    assert_eq!(api.list("bodies", true, false), (200, bodies));
}

fn messages_claimed_too_often_move_to_the_dead_letter_queue(api: &mut dyn Zaqar) {
    assert_eq!(api.create_queue("dead", json!({})), 201);
    let policy = json!({"_max_claim_count": 1, "_dead_letter_queue": "dead"});
    assert_eq!(api.create_queue("poisoned", policy), 201);
    let (_, ids) = api.post("poisoned", json!([{"body": "poison"}]));
    let (_, claim_id, _) = api.claim("poisoned", 5, 60, 60);
    assert_eq!(api.release_claim("poisoned", &claim_id.unwrap()), 204);
    assert_eq!(
        api.claim("poisoned", 5, 60, 60).0,
        204,
        "moved, not claimed"
    );
    assert_eq!(api.list("dead", true, false), (200, vec![json!("poison")]));
    assert_eq!(api.get_message("poisoned", &ids[0]).0, 404);
}

fn dead_letter_cycles_are_refused(api: &mut dyn Zaqar) {
    let to = |queue: &str| json!({"_max_claim_count": 2, "_dead_letter_queue": queue});
    assert_eq!(api.create_queue("loop", to("loop")), 400);
    assert_eq!(api.create_queue("ping", to("pong")), 201);
    assert_eq!(api.create_queue("pong", to("ping")), 400);
    assert_eq!(
        api.call(Call::CreateQueue, "pong", json!({"metadata": to("ping")})),
        (
            400,
            Some(
                "The dead letter queue may not lead back to the queue: pong -> ping -> pong."
                    .into()
            )
        )
    );
    assert_eq!(api.create_queue("pong", json!({})), 201);
}

fn delayed_messages_wait(api: &mut dyn Zaqar) {
    assert_eq!(api.post("later", json!([{"body": 1, "delay": 60}])).0, 201);
    assert_eq!(api.claim("later", 5, 60, 60).0, 204);
    assert_eq!(api.pop("later", 5), (200, vec![]));
    assert_eq!(api.post("later", json!([{"body": 2, "delay": 901}])).0, 400);
}

/// The first fault a request has is the one reported, whatever the
/// transport, with the same sentence.
fn input_errors_read_the_same(api: &mut dyn Zaqar) {
    let error = |text: &str| (400, Some(text.to_string()));
    let not_integer = "The \"limit\" parameter is invalid. The value must be an integer.";
    assert_eq!(
        api.call(Call::ListMessages, "errs", json!({"limit": "x"})),
        error(not_integer)
    );
    assert_eq!(
        api.call(
            Call::ListMessages,
            "errs",
            json!({"limit": "x", "echo": "maybe"})
        ),
        error(not_integer)
    );
    assert_eq!(
        api.call(Call::ListMessages, "errs", json!({"echo": "maybe"})),
        error("The \"echo\" parameter is invalid. The value of the parameter must be \"true\" or \"false\".")
    );
    assert_eq!(
        api.call(Call::ListMessages, "errs", json!({"limit": 0})),
        error("Limit must be at least 1 and may not be greater than 20.")
    );
    assert_eq!(
        api.call(Call::ListQueues, "errs", json!({"limit": 21})),
        error("Limit must be at least 1 and no greater than 20.")
    );
    assert_eq!(
        api.call(Call::DeleteMessages, "errs", json!({})),
        error("The request should have either \"ids\" or \"pop\" parameter in the request, to be able to delete.")
    );
    assert_eq!(
        api.call(
            Call::DeleteMessages,
            "errs",
            json!({"ids": ["a"], "pop": 2})
        ),
        error("pop and id params cannot be present together in the delete request.")
    );
    assert_eq!(
        api.call(Call::DeleteMessages, "errs", json!({"pop": 0})),
        error("Pop value must be at least 1 and may not be greater than 20.")
    );
    let claim_ttl =
        "The TTL for a claim may not exceed 43200 seconds, and must be at least 60 seconds long.";
    assert_eq!(
        api.call(Call::Claim, "errs", json!({"ttl": 10, "limit": 99})),
        error(claim_ttl)
    );
    assert_eq!(
        api.call(Call::Claim, "errs", json!({"ttl": 60, "limit": 99})),
        error("Limit must be at least 1 and may not be greater than 20.")
    );
    assert_eq!(
        api.call(Call::Claim, "errs", json!({"ttl": "60"})),
        error("The value of the \"ttl\" field must be a int.")
    );
    assert_eq!(
        api.call(Call::Post, "errs", json!({})),
        error("No messages were found in the request body.")
    );
    assert_eq!(
        api.call(Call::Post, "errs", json!({"messages": []})),
        error("No messages to enqueu.")
    );
    assert_eq!(
        api.call(Call::Post, "errs", json!({"messages": [{"ttl": 300}]})),
        error("Missing \"body\" field.")
    );
    assert_eq!(
        api.call(
            Call::Post,
            "errs",
            json!({"messages": [{"body": 1, "ttl": "x"}]})
        ),
        error("The value of the \"ttl\" field must be a int.")
    );
    assert_eq!(
        api.call(Call::Post, "errs", json!({"messages": {"body": 1}})),
        error("Document type not supported.")
    );
    assert_eq!(
        api.call(
            Call::CreateQueue,
            "errs",
            json!({"metadata": {"_default_message_ttl": 1}})
        )
        .0,
        400
    );
    assert_eq!(
        api.call(
            Call::Subscribe,
            "errs",
            json!({"subscriber": "http://example.com/x", "ttl": 10})
        ),
        error("The TTL for a subscription must be at least 60 seconds long.")
    );
    assert_eq!(
        api.call(Call::Subscribe, "errs", json!({"subscriber": "gopher://x"})),
        error("The subscriber type of subscription must be supported in the list ['http', 'https', 'mailto'].")
    );
    assert_eq!(api.stats("errs"), (200, (0, 0, 0)));
}

/// A subscriber that refuses connections at once (nothing is delivered in
/// these scenarios; a name to resolve would only slow the server's stop).
const HOOK: &str = "http://127.0.0.1:9/hook";

/// A named scenario, written once against [`Zaqar`].
type Scenario = (&'static str, fn(&mut dyn Zaqar));

const SCENARIOS: &[Scenario] = &[
    ("queue lifecycle", queue_lifecycle),
    (
        "posts follow the queue's current metadata",
        posts_follow_the_queues_current_metadata,
    ),
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
    ("messages by id", messages_by_id),
    ("pop returns and removes", pop_returns_and_removes),
    ("claims renew and release", claims_renew_and_release),
    ("queues are listed in pages", queues_are_listed_in_pages),
    ("purge removes what it names", purge_removes_what_it_names),
    ("subscription lifecycle", subscription_lifecycle),
    ("message bodies round trip", message_bodies_round_trip),
    ("input errors read the same", input_errors_read_the_same),
    (
        "messages claimed too often move to the dead letter queue",
        messages_claimed_too_often_move_to_the_dead_letter_queue,
    ),
    (
        "dead letter cycles are refused",
        dead_letter_cycles_are_refused,
    ),
    ("delayed messages wait", delayed_messages_wait),
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

fn over_websocket(msgpack: bool) {
    let server = server();
    let prefix = if msgpack { "msgpack" } else { "ws" };
    for (name, scenario) in SCENARIOS {
        let mut client = WsClient::connect(server.address("websocket"));
        client.set_header(
            "X-Project-ID",
            &format!("{prefix}-{}", name.replace(' ', "-")),
        );
        scenario(&mut Ws { client, msgpack });
    }
}

#[test]
fn scenarios_over_websocket() {
    over_websocket(false);
}

#[test]
fn scenarios_over_websocket_msgpack() {
    over_websocket(true);
}
