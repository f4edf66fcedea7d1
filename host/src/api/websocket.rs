//! The WebSocket front end (§5): a frame `{"action", "headers", "body"}`
//! in JSON (text frame) or MessagePack (binary frame) becomes the same
//! [`Call`] an HTTP request would, and the [`Reply`] comes back in Zaqar's
//! envelope `{"request", "body", "headers": {"status"}}`, in the frame's
//! encoding. No rule is re-implemented here: only names and shapes differ.

use plugin_api::{
    storage::{QueueStats, StoredMessage},
    transport::ApiRequest,
};
use serde_json::{json, Map, Value};

use super::{
    action::{Call, Caller, Reply},
    errors::ApiError,
    http::HttpResponse,
    params::BodyParams,
    render::age_seconds,
    router::Action,
    subscriptions,
    validation::{ClientId, ProjectId, QueueName},
    Api,
};

const MSGPACK: &str = "application/x-msgpack";

/// The actions Zaqar's WebSocket API offers (plus the three it only
/// declares, which Zaqar answers by dropping the connection, §8 #28).
const WEBSOCKET_ACTIONS: &[Action] = &[
    Action::GetHomeDoc,
    Action::PingNode,
    Action::CheckNodeHealth,
    Action::QueueList,
    Action::QueueCreate,
    Action::QueueDelete,
    Action::QueueGet,
    Action::QueueGetStats,
    Action::QueuePurge,
    Action::MessageList,
    Action::MessageGet,
    Action::MessageGetMany,
    Action::MessagePost,
    Action::MessageDelete,
    Action::MessageDeleteMany,
    Action::ClaimCreate,
    Action::ClaimGet,
    Action::ClaimUpdate,
    Action::ClaimDelete,
    Action::SubscriptionList,
    Action::SubscriptionCreate,
    Action::SubscriptionGet,
    Action::SubscriptionDelete,
];

/// Serves one WebSocket frame.
pub async fn handle(api: &Api, request: &ApiRequest) -> HttpResponse {
    let binary = request
        .headers
        .iter()
        .any(|h| h.name.as_str() == "content-type" && h.value.as_str().starts_with(MSGPACK));
    let (status, envelope) = match decode(&request.body, binary) {
        Err(error) => (
            400,
            envelope(
                &Value::Null,
                &Map::new(),
                &Map::new(),
                json!({ "error": error }),
                400,
            ),
        ),
        // Zaqar §5.3: with no auth strategy configured there is nothing to
        // check, so `authenticate` succeeds (upstream drops the connection,
        // §8 #28). The echo leaves out the frame's headers and body, which
        // carry the token.
        Ok(frame) if frame.action == "authenticate" => (
            200,
            envelope(
                &frame.action,
                &Map::new(),
                &Map::new(),
                json!({"message": "Authentified."}),
                200,
            ),
        ),
        Ok(frame) => {
            let (status, body) = serve(api, &frame, request.connection.as_str(), binary).await;
            (
                status,
                envelope(&frame.action, &frame.body, &frame.headers, body, status),
            )
        }
    };
    let payload = if binary {
        rmp_serde::to_vec_named(&envelope).unwrap_or_default()
    } else {
        serde_json::to_vec(&envelope).unwrap_or_default()
    };
    let content_type = if binary { MSGPACK } else { "application/json" };
    HttpResponse {
        status,
        headers: vec![("content-type", content_type.into())],
        body: payload,
    }
}

struct Frame {
    action: Value,
    headers: Map<String, Value>,
    body: Map<String, Value>,
}

fn decode(payload: &[u8], binary: bool) -> Result<Frame, String> {
    let value: Value = if binary {
        rmp_serde::from_slice(payload)
            .map_err(|e| format!("Can't decode binary (MessagePack) request. {e}"))?
    } else {
        serde_json::from_slice(payload)
            .map_err(|e| format!("Can't decode text (JSON) request. {e}"))?
    };
    let Value::Object(mut frame) = value else {
        return Err("Unexpected body type. Expected dict or dict like.".into());
    };
    let object = |value: Option<Value>| match value {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    Ok(Frame {
        action: frame.remove("action").unwrap_or(Value::Null),
        headers: object(frame.remove("headers")),
        body: object(frame.remove("body")),
    })
}

fn envelope(
    action: &Value,
    body: &Map<String, Value>,
    headers: &Map<String, Value>,
    result: Value,
    status: u16,
) -> Value {
    json!({
        "request": {"action": action, "body": body, "headers": headers, "api": "v2"},
        "body": result,
        "headers": {"status": status}
    })
}

fn schema_failed() -> (u16, Value) {
    (400, json!({"error": "Schema validation failed."}))
}

fn header<'a>(headers: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .and_then(|(_, value)| value.as_str())
}

/// Zaqar's handler error shape: `{"exception": <text>, "error": <summary>}`.
fn failure(error: &ApiError) -> (u16, Value) {
    let text = error.description().unwrap_or_else(|| error.title());
    let summary = match error {
        ApiError::UnableToDelete { .. } | ApiError::NotFound(_) => Value::from(text.clone()),
        _ => Value::Null,
    };
    (error.status(), json!({"exception": text, "error": summary}))
}

async fn serve(api: &Api, frame: &Frame, connection: &str, binary: bool) -> (u16, Value) {
    let name = match &frame.action {
        Value::String(name) => name.clone(),
        Value::Null => "None".to_string(),
        other => other.to_string(),
    };
    let Some(action) = Action::from_name(&name).filter(|a| WEBSOCKET_ACTIONS.contains(a)) else {
        return (
            400,
            json!({ "error": format!("{name} is not a valid action") }),
        );
    };
    let needs_identity = !matches!(
        action,
        Action::GetHomeDoc | Action::PingNode | Action::CheckNodeHealth
    );
    let (client_header, project_header) = (
        header(&frame.headers, "Client-ID"),
        header(&frame.headers, "X-Project-ID"),
    );
    if needs_identity && (client_header.is_none() || project_header.is_none()) {
        return schema_failed();
    }
    let client_id = match ClientId::from_header(
        Some(client_header.unwrap_or("00000000000000000000000000000000")),
        api.client_id_rule,
    ) {
        Ok(id) => id,
        Err(_) => {
            return (
                400,
                json!({"exception": "badly formed hexadecimal UUID string", "error": null}),
            )
        }
    };
    let project = match ProjectId::from_header(Some(project_header.unwrap_or("none"))) {
        Ok(project) => project,
        Err(error) => return failure(&error),
    };
    let body = &frame.body;
    let queue = match (
        needs_identity && action != Action::QueueList,
        body.get("queue_name"),
    ) {
        (false, _) => None,
        (true, Some(Value::String(name))) => match QueueName::parse(name, &project) {
            Ok(queue) => Some(queue),
            Err(error) => return failure(&error),
        },
        (true, _) => return schema_failed(),
    };
    let id_field = match action {
        Action::MessageGet | Action::MessageDelete => Some("message_id"),
        Action::ClaimGet | Action::ClaimUpdate | Action::ClaimDelete => Some("claim_id"),
        Action::SubscriptionGet | Action::SubscriptionDelete => Some("subscription_id"),
        _ => None,
    };
    let id = match id_field.map(|field| body.get(field)) {
        None => None,
        Some(Some(Value::String(id))) => Some(id.clone()),
        Some(_) => return schema_failed(),
    };
    let document = action_document(action, body);
    let admin = Caller::roles_grant_admin(header(&frame.headers, "X-Roles"));
    let caller = Caller {
        project,
        client_id,
        admin,
    };
    let params = BodyParams::new(body);
    let call = Call {
        action,
        caller: &caller,
        queue,
        id,
        params: &params,
        body: document.as_deref(),
    };
    let result = if action == Action::SubscriptionCreate && !body.contains_key("subscriber") {
        subscriptions::create_for_socket(api, &call, connection, binary).await
    } else {
        api.dispatch(&call).await
    };
    match result {
        Ok(reply) => render(api, &call, reply),
        // Zaqar's WebSocket message_get_many answers an empty list, not 404.
        Err(ApiError::NotFound(_)) if action == Action::MessageGetMany => {
            (200, json!({"messages": []}))
        }
        Err(error) => failure(&error),
    }
}

/// The JSON document an action reads, cut from the frame's body.
fn action_document(action: Action, body: &Map<String, Value>) -> Option<Vec<u8>> {
    let pick = |keys: &[&str]| {
        let picked: Map<String, Value> = keys
            .iter()
            .filter_map(|k| body.get(*k).map(|v| (k.to_string(), v.clone())))
            .collect();
        serde_json::to_vec(&picked).ok()
    };
    match action {
        Action::QueueCreate => body
            .get("metadata")
            .and_then(|m| serde_json::to_vec(m).ok()),
        Action::MessagePost => pick(&["messages"]),
        Action::ClaimCreate | Action::ClaimUpdate => pick(&["ttl", "grace"]),
        Action::SubscriptionCreate => pick(&["subscriber", "ttl", "options"]),
        Action::QueuePurge if body.contains_key("resource_types") => pick(&["resource_types"]),
        _ => None,
    }
}

/// A message in the WebSocket shape `{"id","claim_id","ttl","age","body"}`.
fn message(message: &StoredMessage, now_ms: u64) -> Value {
    let claim = message
        .claim
        .as_ref()
        .into_option()
        .map(|c| Value::from(c.id.as_str()))
        .unwrap_or(Value::Null);
    json!({
        "id": message.id.as_str(),
        "claim_id": claim,
        "ttl": message.ttl,
        "age": age_seconds(now_ms, message.created_ms),
        "body": serde_json::from_slice::<Value>(&message.body).unwrap_or(Value::Null),
    })
}

fn messages(list: &[StoredMessage], now_ms: u64) -> Value {
    Value::from(list.iter().map(|m| message(m, now_ms)).collect::<Vec<_>>())
}

fn stats(stats: &QueueStats, now_ms: u64) -> Value {
    let mut counts = json!({"claimed": stats.claimed, "free": stats.free, "total": stats.total});
    if stats.total != 0 {
        for (name, summary) in [("oldest", &stats.oldest), ("newest", &stats.newest)] {
            if let Some(summary) = summary.as_ref().into_option() {
                counts[name] = json!({
                    "id": summary.id.as_str(),
                    "age": age_seconds(now_ms, summary.created_ms),
                    "created": format!("{}Z", super::clock::format_utc(summary.created_ms as i64)),
                });
            }
        }
    }
    json!({ "messages": counts })
}

fn render(api: &Api, call: &Call<'_>, reply: Reply) -> (u16, Value) {
    let now = api.now_ms();
    let queue = call.queue.as_ref().map(|q| q.as_str()).unwrap_or("");
    let id = call.id.as_deref().unwrap_or("");
    match reply {
        Reply::HomeDoc => (
            200,
            serde_json::from_slice(&api.homedoc).unwrap_or(Value::Null),
        ),
        Reply::Pong { alive } => (if alive { 204 } else { 503 }, json!({})),
        Reply::Health(report) => {
            let operations: Map<String, Value> = report
                .operations
                .iter()
                .map(|op| (op.name.to_string(), json!({"succeeded": op.succeeded, "seconds": op.seconds, "ref": op.reference})))
                .collect();
            (
                200,
                json!({"storage_reachable": report.storage_reachable, "operation_status": operations}),
            )
        }
        Reply::QueueList { queues, .. } => {
            let list: Vec<Value> = queues
                .iter()
                .map(|(entry, shown)| match shown {
                    Some(_) => json!({"name": entry.name.as_str(), "metadata": super::queues::parse_map(&entry.metadata)}),
                    None => json!({"name": entry.name.as_str()}),
                })
                .collect();
            (200, json!({ "queues": list }))
        }
        Reply::QueueCreated { created } => (
            if created { 201 } else { 204 },
            json!(format!("Queue {queue} created.")),
        ),
        Reply::QueueMetadata { raw, .. } => (200, Value::Object(raw)),
        Reply::Stats(counts) => (200, stats(&counts, now)),
        Reply::SignedUrl(_) => (400, json!({"error": "Not supported."})),
        Reply::MessageList { messages: list, .. } => {
            (200, json!({ "messages": messages(&list, now) }))
        }
        Reply::MessageGetMany(list) => (200, json!({ "messages": messages(&list, now) })),
        Reply::Message(found) => (200, json!({ "messages": message(&found, now) })),
        Reply::Posted(posted) => {
            let ids: Vec<&str> = posted.iter().map(|p| p.id.as_str()).collect();
            (201, json!({ "message_ids": ids }))
        }
        Reply::Popped(list) => {
            let popped: Vec<Value> = list
                .iter()
                .map(|m| {
                    let mut shown = message(m, now);
                    shown["claim_id"] = Value::Null;
                    shown["claim_count"] = Value::from(m.claim_count);
                    shown
                })
                .collect();
            (200, json!({ "messages": popped }))
        }
        Reply::ClaimCreated(claim) if claim.messages.is_empty() => (204, json!({"claim_id": null})),
        Reply::ClaimCreated(claim) => (
            201,
            json!({"claim_id": claim.id.as_str(), "messages": messages(&claim.messages, now)}),
        ),
        Reply::Claim(claim) => (
            200,
            json!({"age": age_seconds(now, claim.updated_ms), "ttl": claim.ttl, "messages": messages(&claim.messages, now)}),
        ),
        Reply::SubscriptionList { subscriptions, .. } => {
            let list: Vec<Value> = subscriptions.iter().map(|s| subscription(s, now)).collect();
            (200, json!({ "subscriptions": list }))
        }
        Reply::Subscription(found) => (200, subscription(&found, now)),
        // Zaqar's WebSocket API refuses duplicates with 409 and a sentence (§8 #16).
        Reply::SubscriptionCreated { created: false, .. } => {
            (409, json!(format!("Subscription {queue} not created.")))
        }
        Reply::SubscriptionCreated { id: new_id, .. } => (
            201,
            json!({"subscription_id": new_id, "message": format!("Subscription {queue} created.")}),
        ),
        Reply::Done => match call.action {
            Action::QueueDelete => (204, json!(format!("Queue {queue} removed."))),
            Action::ClaimUpdate => (204, json!(format!("Claim {id} updated."))),
            Action::ClaimDelete => (204, json!(format!("Claim {id} deleted."))),
            Action::SubscriptionDelete => (204, json!(format!("Subscription {id} removed."))),
            _ => (204, json!({})),
        },
    }
}

fn subscription(record: &plugin_api::storage::SubscriptionRecord, now_ms: u64) -> Value {
    let mut out = Vec::new();
    super::render::push_subscription(&mut out, now_ms, record);
    serde_json::from_slice(&out).unwrap_or(Value::Null)
}
