//! `Api::handle` driven directly, without a socket: failure mapping of the
//! storage boundary, and the WebSocket front end reaching the same actions.

use std::{future::Future, path::PathBuf};

use plugin_api::{
    management::wrap_management_store,
    storage::*,
    transport::{ApiRequest, ApiResponse, Header, HostApi, Protocol},
    types::{ROption, RString, RVec},
    ErrorCode, PluginError, PluginResult,
};
use serde_json::{json, Value};
use storage_embedded::{EmbeddedConfig, EmbeddedManagementStore, EmbeddedMessageStore};

use super::{Api, Stores};
use crate::config::Config;

const CLIENT: &str = "dde7c068-d4f2-48c1-9e99-a4fa7be16b67";

/// A data directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("zaqar-api-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).expect("temp dir");
        Self(path)
    }

    fn config(&self) -> EmbeddedConfig {
        EmbeddedConfig {
            path: self.0.clone(),
            ..EmbeddedConfig::default()
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn api_with(messages: MessageStoreBox, dir: &TempDir) -> Api {
    api_in_mode(messages, dir, true).await
}

async fn api_in_mode(messages: MessageStoreBox, dir: &TempDir, admin_mode: bool) -> Api {
    let management = std::sync::Arc::new(wrap_management_store(
        EmbeddedManagementStore::open(&dir.config()).expect("management store"),
    ));
    let mut config = Config::default();
    config.server.admin_mode = admin_mode;
    let (messages, events) = crate::events::attach(messages).await;
    let dispatcher = crate::notify::Dispatcher::new(
        messages.clone(),
        events,
        Default::default(),
        Default::default(),
    );
    dispatcher.listen();
    Api::new(
        &config,
        Stores {
            messages,
            management,
        },
        dispatcher,
    )
}

async fn embedded_api(dir: &TempDir) -> Api {
    api_with(
        wrap_message_store(EmbeddedMessageStore::open(&dir.config()).expect("message store")),
        dir,
    )
    .await
}

fn http(method: &str, path: &str, query: &str, body: &[u8]) -> ApiRequest {
    ApiRequest {
        protocol: Protocol::HTTP,
        method: method.into(),
        path: path.into(),
        query: query.into(),
        headers: vec![
            Header::new("client-id", CLIENT),
            Header::new("x-project-id", "p"),
        ]
        .into(),
        body: RVec::from(body.to_vec()),
        peer: "test".into(),
        connection: "c1".into(),
    }
}

async fn send(api: &Api, request: ApiRequest) -> ApiResponse {
    api.handle(request).await.expect("handle never fails")
}

fn header<'a>(response: &'a ApiResponse, name: &str) -> Option<&'a str> {
    response
        .headers
        .iter()
        .find(|h| h.name.as_str() == name)
        .map(|h| h.value.as_str())
}

fn json_body(response: &ApiResponse) -> Value {
    serde_json::from_slice(&response.body).expect("JSON body")
}

/// A store whose every call fails with `code` (or panics, for `PANICKED`).
struct FailingStore(ErrorCode);

impl FailingStore {
    fn fail<T: Send>(&self) -> impl Future<Output = PluginResult<T>> + Send + use<T> {
        if self.0 == ErrorCode::PANICKED {
            panic!("the store fell over");
        }
        std::future::ready(Err(PluginError::new(self.0, "backend says no")))
    }
}

impl MessageStore for FailingStore {
    fn queue_create(
        &self,
        _: QueueRef,
        _: RVec<u8>,
        _: u64,
    ) -> impl Future<Output = PluginResult<bool>> + Send {
        self.fail()
    }
    fn queue_get_metadata(
        &self,
        _: QueueRef,
    ) -> impl Future<Output = PluginResult<ROption<RVec<u8>>>> + Send {
        self.fail()
    }
    fn queue_set_metadata(
        &self,
        _: QueueRef,
        _: RVec<u8>,
    ) -> impl Future<Output = PluginResult<()>> + Send {
        self.fail()
    }
    fn queue_delete(&self, _: QueueRef) -> impl Future<Output = PluginResult<()>> + Send {
        self.fail()
    }
    fn queue_list(
        &self,
        _: RString,
        _: QueueListQuery,
    ) -> impl Future<Output = PluginResult<RVec<QueueEntry>>> + Send {
        self.fail()
    }
    fn queue_count(&self, _: RString) -> impl Future<Output = PluginResult<u64>> + Send {
        self.fail()
    }
    fn queue_stats(
        &self,
        _: QueueRef,
        _: u64,
    ) -> impl Future<Output = PluginResult<QueueStats>> + Send {
        self.fail()
    }
    fn message_post(
        &self,
        _: QueueRef,
        _: RString,
        _: RVec<NewMessage>,
        _: u64,
    ) -> impl Future<Output = PluginResult<RVec<PostedMessage>>> + Send {
        self.fail()
    }
    fn message_list(
        &self,
        _: QueueRef,
        _: MessageListQuery,
        _: u64,
    ) -> impl Future<Output = PluginResult<RVec<StoredMessage>>> + Send {
        self.fail()
    }
    fn message_get_many(
        &self,
        _: QueueRef,
        _: RVec<RString>,
        _: u64,
    ) -> impl Future<Output = PluginResult<RVec<StoredMessage>>> + Send {
        self.fail()
    }
    fn message_delete(
        &self,
        _: QueueRef,
        _: RString,
        _: ROption<RString>,
        _: u64,
    ) -> impl Future<Output = PluginResult<()>> + Send {
        self.fail()
    }
    fn message_delete_many(
        &self,
        _: QueueRef,
        _: RVec<RString>,
        _: u64,
    ) -> impl Future<Output = PluginResult<()>> + Send {
        self.fail()
    }
    fn message_pop(
        &self,
        _: QueueRef,
        _: u32,
        _: u64,
    ) -> impl Future<Output = PluginResult<RVec<StoredMessage>>> + Send {
        self.fail()
    }
    fn message_purge(&self, _: QueueRef) -> impl Future<Output = PluginResult<()>> + Send {
        self.fail()
    }
    fn claim_create(
        &self,
        _: QueueRef,
        _: ClaimRequest,
        _: u64,
    ) -> impl Future<Output = PluginResult<StoredClaim>> + Send {
        self.fail()
    }
    fn claim_get(
        &self,
        _: QueueRef,
        _: RString,
        _: u64,
    ) -> impl Future<Output = PluginResult<ROption<StoredClaim>>> + Send {
        self.fail()
    }
    fn claim_update(
        &self,
        _: QueueRef,
        _: RString,
        _: u32,
        _: u32,
        _: u64,
    ) -> impl Future<Output = PluginResult<()>> + Send {
        self.fail()
    }
    fn claim_delete(
        &self,
        _: QueueRef,
        _: RString,
        _: u64,
    ) -> impl Future<Output = PluginResult<()>> + Send {
        self.fail()
    }
    fn subscription_create(
        &self,
        _: QueueRef,
        _: NewSubscription,
        _: u64,
    ) -> impl Future<Output = PluginResult<SubscriptionCreated>> + Send {
        self.fail()
    }
    fn subscription_list(
        &self,
        _: QueueRef,
        _: SubscriptionListQuery,
        _: u64,
    ) -> impl Future<Output = PluginResult<RVec<SubscriptionRecord>>> + Send {
        self.fail()
    }
    fn subscription_get(
        &self,
        _: QueueRef,
        _: RString,
        _: u64,
    ) -> impl Future<Output = PluginResult<ROption<SubscriptionRecord>>> + Send {
        self.fail()
    }
    fn subscription_update(
        &self,
        _: QueueRef,
        _: RString,
        _: SubscriptionPatch,
        _: u64,
    ) -> impl Future<Output = PluginResult<()>> + Send {
        self.fail()
    }
    fn subscription_confirm(
        &self,
        _: QueueRef,
        _: RString,
        _: bool,
        _: u64,
    ) -> impl Future<Output = PluginResult<()>> + Send {
        self.fail()
    }
    fn subscription_delete(
        &self,
        _: QueueRef,
        _: RString,
    ) -> impl Future<Output = PluginResult<()>> + Send {
        self.fail()
    }
    fn subscription_scan(
        &self,
        _: ROption<RString>,
        _: u32,
        _: u64,
    ) -> impl Future<Output = PluginResult<plugin_api::storage::SubscriptionScanPage>> + Send {
        self.fail()
    }
    fn subscription_advance(
        &self,
        _: QueueRef,
        _: RString,
        _: u64,
        _: u64,
    ) -> impl Future<Output = PluginResult<()>> + Send {
        self.fail()
    }
    fn queue_last_seq(&self, _: QueueRef) -> impl Future<Output = PluginResult<u64>> + Send {
        self.fail()
    }
    fn is_alive(&self) -> impl Future<Output = PluginResult<bool>> + Send {
        self.fail()
    }
}

#[tokio::test]
async fn unavailable_store_answers_503_with_zaqars_sentence() {
    let dir = TempDir::new();
    let api = api_with(
        wrap_message_store(FailingStore(ErrorCode::UNAVAILABLE)),
        &dir,
    )
    .await;
    let response = send(&api, http("PUT", "/v2/queues/q", "", b"")).await;
    assert_eq!(response.status, 503);
    assert_eq!(
        json_body(&response),
        json!({"title": "Service temporarily unavailable", "description": "Queue could not be created. Please try again in a few seconds."})
    );
    assert!(header(&response, "x-openstack-request-id").is_some_and(|id| id.starts_with("req-")));
    let post = send(
        &api,
        http(
            "POST",
            "/v2/queues/q/messages",
            "",
            br#"{"messages": [{"body": 1}]}"#,
        ),
    )
    .await;
    assert_eq!(post.status, 503);
    let ping = send(&api, http("GET", "/v2/ping", "", b"")).await;
    assert_eq!(ping.status, 503);
    assert!(ping.body.is_empty());
}

#[tokio::test]
async fn panicking_store_answers_500_and_the_api_keeps_serving() {
    let dir = TempDir::new();
    let api = api_with(wrap_message_store(FailingStore(ErrorCode::PANICKED)), &dir).await;
    for _ in 0..2 {
        let response = send(&api, http("GET", "/v2/queues/q/stats", "", b"")).await;
        assert_eq!(response.status, 500);
        assert_eq!(
            json_body(&response),
            json!({"title": "Internal server error", "description": "Queue stats could not be read."})
        );
    }
    assert_eq!(
        send(&api, http("GET", "/v2/queues/q/stats", "limit=x", b""))
            .await
            .status,
        500
    );
}

#[tokio::test]
async fn input_errors_are_reported_before_the_store_is_touched() {
    let dir = TempDir::new();
    let api = api_with(
        wrap_message_store(FailingStore(ErrorCode::UNAVAILABLE)),
        &dir,
    )
    .await;
    let response = send(&api, http("POST", "/v2/queues/q/claims", "limit=99", b"{}")).await;
    assert_eq!(response.status, 400);
    let response = send(
        &api,
        http("PUT", "/v2/queues/q", "", b"{\"_default_message_ttl\": 1}"),
    )
    .await;
    assert_eq!(response.status, 400);
}

#[tokio::test]
async fn head_answers_carry_no_body() {
    let dir = TempDir::new();
    let api = embedded_api(&dir).await;
    let response = send(&api, http("HEAD", "/v2/queues", "", b"")).await;
    assert_eq!(response.status, 405);
    assert!(response.body.is_empty());
}

fn frame(value: &Value, msgpack: bool) -> ApiRequest {
    let (body, content_type) = if msgpack {
        (
            rmp_serde::to_vec_named(value).unwrap(),
            "application/x-msgpack",
        )
    } else {
        (serde_json::to_vec(value).unwrap(), "application/json")
    };
    ApiRequest {
        protocol: Protocol::WEBSOCKET,
        method: "".into(),
        path: "".into(),
        query: "".into(),
        headers: vec![Header::new("content-type", content_type)].into(),
        body: body.into(),
        peer: "test".into(),
        connection: "ws1".into(),
    }
}

async fn ws(api: &Api, action: &str, body: Value, msgpack: bool) -> Value {
    let request = json!({"action": action, "headers": {"Client-ID": CLIENT, "X-Project-ID": "p"}, "body": body});
    let response = send(api, frame(&request, msgpack)).await;
    let envelope: Value = if msgpack {
        rmp_serde::from_slice(&response.body).expect("msgpack envelope")
    } else {
        serde_json::from_slice(&response.body).expect("json envelope")
    };
    assert_eq!(envelope["request"]["action"], action);
    assert_eq!(envelope["request"]["api"], "v2");
    assert_eq!(envelope["headers"]["status"], response.status);
    envelope
}

#[tokio::test]
async fn websocket_frames_run_the_same_actions_as_http() {
    let dir = TempDir::new();
    let api = embedded_api(&dir).await;
    let created = ws(
        &api,
        "queue_create",
        json!({"queue_name": "wsq", "metadata": {"m": 1}}),
        false,
    )
    .await;
    assert_eq!(
        (
            created["headers"]["status"].clone(),
            created["body"].clone()
        ),
        (json!(201), json!("Queue wsq created."))
    );
    assert_eq!(
        ws(&api, "queue_create", json!({"queue_name": "wsq"}), false).await["headers"]["status"],
        204
    );
    assert_eq!(
        ws(&api, "queue_get", json!({"queue_name": "wsq"}), false).await["body"],
        json!({"m": 1})
    );

    let posted = ws(
        &api,
        "message_post",
        json!({"queue_name": "wsq", "messages": [{"ttl": 300, "body": {"k": "v"}}]}),
        true,
    )
    .await;
    assert_eq!(posted["headers"]["status"], 201);
    let id = posted["body"]["message_ids"][0]
        .as_str()
        .unwrap()
        .to_string();

    let listed = ws(
        &api,
        "message_list",
        json!({"queue_name": "wsq", "echo": true}),
        false,
    )
    .await;
    assert_eq!(
        listed["body"],
        json!({"messages": [{"id": id, "claim_id": null, "ttl": 300, "age": 0, "body": {"k": "v"}}]})
    );
    let got = ws(
        &api,
        "message_get",
        json!({"queue_name": "wsq", "message_id": id}),
        false,
    )
    .await;
    assert_eq!(got["body"]["messages"]["id"], id.as_str());

    let claimed = ws(
        &api,
        "claim_create",
        json!({"queue_name": "wsq", "ttl": 60, "grace": 60, "limit": 1}),
        false,
    )
    .await;
    assert_eq!(claimed["headers"]["status"], 201);
    let claim_id = claimed["body"]["claim_id"].as_str().unwrap().to_string();
    assert_eq!(
        claimed["body"]["messages"][0]["claim_id"],
        claim_id.as_str()
    );
    let refused = ws(
        &api,
        "message_delete",
        json!({"queue_name": "wsq", "message_id": id}),
        false,
    )
    .await;
    assert_eq!(refused["headers"]["status"], 403);
    assert_eq!(
        refused["body"]["error"],
        "This message is claimed; it cannot be deleted without a valid claim ID."
    );
    let updated = ws(
        &api,
        "claim_update",
        json!({"queue_name": "wsq", "claim_id": claim_id, "ttl": 120}),
        false,
    )
    .await;
    assert_eq!(updated["body"], json!(format!("Claim {claim_id} updated.")));
    let deleted = ws(
        &api,
        "message_delete",
        json!({"queue_name": "wsq", "message_id": id, "claim_id": claim_id}),
        false,
    )
    .await;
    assert_eq!(deleted["headers"]["status"], 204);
    let none = ws(
        &api,
        "message_get_many",
        json!({"queue_name": "wsq", "message_ids": [id]}),
        false,
    )
    .await;
    assert_eq!(none["body"], json!({"messages": []}));
    assert_eq!(
        ws(&api, "queue_delete", json!({"queue_name": "wsq"}), false).await["body"],
        "Queue wsq removed."
    );
}

#[tokio::test]
async fn websocket_errors_use_zaqars_envelope() {
    let dir = TempDir::new();
    let api = embedded_api(&dir).await;
    let unknown = ws(&api, "frobnicate", json!({}), false).await;
    assert_eq!(
        (
            unknown["headers"]["status"].clone(),
            unknown["body"].clone()
        ),
        (
            json!(400),
            json!({"error": "frobnicate is not a valid action"})
        )
    );
    let invalid = ws(
        &api,
        "message_post",
        json!({"queue_name": "q", "messages": [{"ttl": 5, "body": 1}]}),
        false,
    )
    .await;
    assert_eq!(
        invalid["body"],
        json!({"exception": "The TTL for a message may not exceed 1209600 seconds, and must be at least 60 seconds long.", "error": null})
    );
    let missing_client = send(
        &api,
        frame(
            &json!({"action": "queue_list", "headers": {"X-Project-ID": "p"}, "body": {}}),
            false,
        ),
    )
    .await;
    assert_eq!(missing_client.status, 400);
    assert_eq!(
        json_body(&missing_client)["body"],
        json!({"error": "Schema validation failed."})
    );
    let mut garbage = frame(&json!(null), false);
    garbage.body = RVec::from(b"{oops".to_vec());
    let undecodable = send(&api, garbage).await;
    let envelope = json_body(&undecodable);
    assert_eq!(
        envelope["request"],
        json!({"action": null, "body": {}, "headers": {}, "api": "v2"})
    );
    assert!(envelope["body"]["error"]
        .as_str()
        .unwrap()
        .starts_with("Can't decode text (JSON) request."));
    let list = send(&api, frame(&json!([1]), true)).await;
    assert_eq!(
        rmp_serde::from_slice::<Value>(&list.body).unwrap()["body"]["error"],
        "Unexpected body type. Expected dict or dict like."
    );
}

#[derive(Clone, Default)]
struct Recorder(std::sync::Arc<std::sync::Mutex<Vec<plugin_api::transport::PushFrame>>>);

impl Recorder {
    /// The frames once there are `count` (pushes follow the commit
    /// asynchronously), or what arrived within two seconds.
    async fn wait_for(&self, count: usize) -> Vec<plugin_api::transport::PushFrame> {
        for _ in 0..200 {
            let frames = self.0.lock().unwrap().clone();
            if frames.len() >= count {
                return frames;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        self.0.lock().unwrap().clone()
    }
}

impl plugin_api::transport::PushSink for Recorder {
    fn push(&self, frame: plugin_api::transport::PushFrame) -> bool {
        self.0.lock().unwrap().push(frame);
        true
    }
}

#[tokio::test]
async fn a_subscribed_socket_receives_posts_until_it_closes() {
    let dir = TempDir::new();
    let api = embedded_api(&dir).await;
    // No session is kept, so closing deletes at once, as Zaqar does.
    api.notify.pushes.configure(&crate::streams::StreamsConfig {
        session_ttl: 0,
        ..Default::default()
    });
    let recorder = Recorder::default();
    api.connection_opened(
        "ws1".into(),
        plugin_api::transport::wrap_push_sink(recorder.clone()),
    )
    .await
    .unwrap();
    let subscribed = ws(
        &api,
        "subscription_create",
        json!({"queue_name": "pushq", "ttl": 600}),
        true,
    )
    .await;
    assert_eq!(subscribed["headers"]["status"], 201, "{subscribed}");
    assert_eq!(subscribed["body"]["message"], "Subscription pushq created.");
    let listed = ws(
        &api,
        "subscription_list",
        json!({"queue_name": "pushq"}),
        false,
    )
    .await;
    let subscriber = listed["body"]["subscriptions"][0]["subscriber"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        subscriber.starts_with("websocket:host-") && subscriber.ends_with("/ws1"),
        "a socket subscriber names its host and connection: {subscriber}"
    );

    let posted = send(
        &api,
        http(
            "POST",
            "/v2/queues/pushq/messages",
            "",
            br#"{"messages": [{"ttl": 300, "body": "ping"}]}"#,
        ),
    )
    .await;
    assert_eq!(posted.status, 201);
    let frames = recorder.wait_for(1).await;
    assert_eq!(frames.len(), 1);
    assert!(
        frames[0].binary,
        "pushed in the encoding of the subscribe frame"
    );
    let pushed: Value = rmp_serde::from_slice(&frames[0].payload).unwrap();
    assert_eq!(pushed["body"], "ping");
    assert_eq!(pushed["queue_name"], "pushq");
    assert_eq!(pushed["Message_Type"], "Notification");
    assert!(pushed["sequence"].is_u64());

    api.connection_closed("ws1".into()).await.unwrap();
    let listed = send(&api, http("GET", "/v2/queues/pushq/subscriptions", "", b"")).await;
    assert_eq!(json_body(&listed)["subscriptions"], json!([]));
    send(
        &api,
        http(
            "POST",
            "/v2/queues/pushq/messages",
            "",
            br#"{"messages": [{"body": 2}]}"#,
        ),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(recorder.0.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_socket_the_transport_did_not_announce_cannot_subscribe() {
    let dir = TempDir::new();
    let api = embedded_api(&dir).await;
    let refused = ws(
        &api,
        "subscription_create",
        json!({"queue_name": "q"}),
        false,
    )
    .await;
    assert_eq!(refused["headers"]["status"], 400);
}

#[tokio::test]
async fn a_panic_while_serving_a_frame_answers_it_with_a_500_envelope() {
    let dir = TempDir::new();
    let api = embedded_api(&dir).await;
    for msgpack in [false, true, false] {
        let envelope = ws(&api, "test_panic", json!({"queue_name": "q"}), msgpack).await;
        assert_eq!(envelope["headers"]["status"], 500);
        assert_eq!(
            envelope["body"],
            json!({"exception": "The request could not be served.", "error": null})
        );
        assert_eq!(envelope["request"]["body"], json!({"queue_name": "q"}));
        let after = ws(&api, "queue_get_stats", json!({"queue_name": "q"}), msgpack).await;
        assert_eq!(after["headers"]["status"], 200);
    }
}

#[tokio::test]
async fn check_node_health_over_websocket_exists_only_in_admin_mode() {
    let dir = TempDir::new();
    // The probe would reach this store and panic: a 404 proves it did not run.
    let api = api_in_mode(
        wrap_message_store(FailingStore(ErrorCode::PANICKED)),
        &dir,
        false,
    )
    .await;
    let mut request = http("GET", "/v2/health", "", b"");
    request.headers.push(Header::new("x-roles", "admin"));
    assert_eq!(send(&api, request).await.status, 404);
    for msgpack in [false, true] {
        let frame = json!({"action": "check_node_health", "headers": {"Client-ID": CLIENT, "X-Project-ID": "p", "X-Roles": "admin"}, "body": {}});
        let response = send(&api, super::tests::frame(&frame, msgpack)).await;
        assert_eq!(response.status, 404);
    }
    let admin = TempDir::new();
    let api = api_in_mode(
        wrap_message_store(EmbeddedMessageStore::open(&admin.config()).expect("store")),
        &admin,
        true,
    )
    .await;
    let frame = json!({"action": "check_node_health", "headers": {"Client-ID": CLIENT, "X-Project-ID": "p", "X-Roles": "admin"}, "body": {}});
    let response = send(&api, super::tests::frame(&frame, false)).await;
    assert_eq!(response.status, 200);
    assert_eq!(json_body(&response)["body"]["storage_reachable"], true);
}

/// Bodies some transport or encoding could not carry faithfully are refused
/// at post, over every transport, and nothing is stored.
#[tokio::test]
async fn bodies_no_transport_could_carry_are_refused_everywhere() {
    let dir = TempDir::new();
    let api = embedded_api(&dir).await;
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    for body in [
        deep.as_str(),
        r#""\ud800""#,
        "123456789012345678901234567890",
        "1e400",
    ] {
        let post = format!(r#"{{"messages": [{{"body": {body}}}]}}"#);
        let response = send(
            &api,
            http("POST", "/v2/queues/odd/messages", "", post.as_bytes()),
        )
        .await;
        assert_eq!(response.status, 400, "{body}");
        let mut text = frame(&json!(null), false);
        text.body = RVec::from(
            format!(
                r#"{{"action": "message_post", "headers": {{"Client-ID": "{CLIENT}", "X-Project-ID": "p"}}, "body": {{"queue_name": "odd", "messages": [{{"body": {body}}}]}}}}"#
            )
            .into_bytes(),
        );
        // The echo repeats the frame, which a strict JSON reader may refuse.
        assert_eq!(send(&api, text).await.status, 400, "{body}");
    }
    let deep_value: Value = (0..150).fold(json!(1), |inner, _| json!([inner]));
    // Over MessagePack too (a frame this deep is refused as it is decoded).
    let request = json!({"action": "message_post", "headers": {"Client-ID": CLIENT, "X-Project-ID": "p"}, "body": {"queue_name": "odd", "messages": [{"body": deep_value}]}});
    assert_eq!(send(&api, frame(&request, true)).await.status, 400);
    let stats = send(&api, http("GET", "/v2/queues/odd/stats", "", b"")).await;
    assert_eq!(json_body(&stats)["messages"]["total"], 0);
}

#[tokio::test]
async fn dead_letter_policies_that_lead_back_to_the_queue_are_refused() {
    let dir = TempDir::new();
    let api = embedded_api(&dir).await;
    let put = |queue: &str, metadata: Value| {
        http(
            "PUT",
            &format!("/v2/queues/{queue}"),
            "",
            metadata.to_string().as_bytes(),
        )
    };
    let to = |queue: &str| json!({"_max_claim_count": 2, "_dead_letter_queue": queue});
    let refused = send(&api, put("self", to("self"))).await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        json_body(&refused)["description"],
        "The dead letter queue may not lead back to the queue: self -> self."
    );
    assert_eq!(send(&api, put("a", to("b"))).await.status, 201);
    assert_eq!(send(&api, put("c", json!({}))).await.status, 201);
    let refused = send(&api, put("b", to("a"))).await;
    assert_eq!(
        json_body(&refused)["description"],
        "The dead letter queue may not lead back to the queue: b -> a -> b."
    );
    // A queue whose dead letters stay put (no claim count) closes no cycle.
    assert_eq!(
        send(&api, put("b", json!({"_dead_letter_queue": "a"})))
            .await
            .status,
        201
    );
    let mut patch = http(
        "PATCH",
        "/v2/queues/c",
        "",
        br#"[{"op": "add", "path": "/metadata/_max_claim_count", "value": 1}, {"op": "add", "path": "/metadata/_dead_letter_queue", "value": "a"}]"#,
    );
    patch.headers.push(Header::new(
        "content-type",
        "application/openstack-messaging-v2.0-json-patch",
    ));
    assert_eq!(send(&api, patch.clone()).await.status, 200, "c -> a -> b");
    let mut closing = patch;
    closing.path = "/v2/queues/b".into();
    closing.body = RVec::from(
        br#"[{"op": "add", "path": "/metadata/_max_claim_count", "value": 1}]"#.to_vec(),
    );
    let refused = send(&api, closing).await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        json_body(&refused)["description"],
        "The dead letter queue may not lead back to the queue: b -> a -> b."
    );
    let b = send(&api, http("GET", "/v2/queues/b", "", b"")).await;
    assert!(json_body(&b)
        .get("_max_claim_count")
        .is_none_or(Value::is_null));
}

#[tokio::test]
async fn a_huge_post_answers_a_location_every_client_can_read() {
    let dir = TempDir::new();
    let api = embedded_api(&dir).await;
    let messages: Vec<Value> = (0..10_000).map(|i| json!({ "body": i })).collect();
    let body = json!({ "messages": messages }).to_string();
    let response = send(
        &api,
        http("POST", "/v2/queues/huge/messages", "", body.as_bytes()),
    )
    .await;
    assert_eq!(response.status, 201);
    assert_eq!(
        header(&response, "location"),
        Some("/v2/queues/huge/messages")
    );
    assert_eq!(
        json_body(&response)["resources"].as_array().unwrap().len(),
        10_000
    );
    let small = send(
        &api,
        http(
            "POST",
            "/v2/queues/huge/messages",
            "",
            br#"{"messages": [{"body": 1}, {"body": 2}]}"#,
        ),
    )
    .await;
    let resources = json_body(&small)["resources"].clone();
    let ids: Vec<&str> = resources
        .as_array()
        .unwrap()
        .iter()
        .map(|href| href.as_str().unwrap().rsplit('/').next().unwrap())
        .collect();
    assert_eq!(
        header(&small, "location").unwrap(),
        format!("/v2/queues/huge/messages?ids={}", ids.join(","))
    );
}
