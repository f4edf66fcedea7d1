//! The WebSocket front end: a frame `{"action", "headers", "body"}` in
//! JSON (text frame) or MessagePack (binary frame) becomes the same
//! [`Command`] an HTTP request would, and the [`Reply`] comes back in
//! Zaqar's envelope `{"request", "body", "headers": {"status"}}`, in the
//! frame's encoding. No rule is re-implemented here: only names and shapes
//! differ. The envelope is written straight from the request's bytes and
//! the reply, never through a JSON tree (MessagePack: the request's members
//! as the client sent them, the reply transcoded).

use std::borrow::Cow;

use plugin_api::{
    storage::{QueueStats, StoredMessage, SubscriptionRecord},
    transport::{ApiRequest, Protocol},
};
use serde_json::value::RawValue;

use crate::streams::socket::{self, Extension};

use super::{
    action::{Caller, Reply},
    clock::format_utc,
    command::Command,
    errors::ApiError,
    frame::{self, Decoded, Fields, Frame, Headers, Member, Members},
    http::HttpResponse,
    http_render::push_health,
    packed::{self, PackedFrame},
    render::{
        age_seconds, push_body, push_int, push_key, push_raw, push_str, push_subscription,
        push_value,
    },
    router::Action,
    subscriptions,
    validation::{ClientId, ProjectId, QueueName},
    Api,
};
use crate::metrics::Route;

const MSGPACK: &str = "application/x-msgpack";

/// The actions Zaqar's WebSocket API offers (plus the three it only
/// declares, which Zaqar answers by dropping the connection).
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
    Action::PoolList,
    Action::PoolGet,
    Action::PoolCreate,
    Action::PoolUpdate,
    Action::PoolDelete,
    Action::FlavorList,
    Action::FlavorGet,
    Action::FlavorCreate,
    Action::FlavorUpdate,
    Action::FlavorDelete,
];

/// Serves one WebSocket frame; `route` learns the action it named (for
/// the metrics).
pub async fn handle(api: &Api, request: &ApiRequest, route: &mut Route) -> HttpResponse {
    let binary = is_msgpack(request);
    let mut result = Vec::with_capacity(256);
    // A MessagePack frame made of the values JSON has is read where it
    // lies: no JSON text of the whole frame is written and read again.
    if let Some(frame) = binary
        .then(|| packed::plain_members(&request.body))
        .flatten()
    {
        let (hide, status) = serve_members(
            api,
            request,
            &Members::packed(&frame),
            binary,
            &mut result,
            route,
        )
        .await;
        return answer(
            request,
            Echo::Packed(Some(frame.spans())),
            hide,
            &result,
            status,
        );
    }
    let transcoded;
    let text: Result<&[u8], String> = if binary {
        match frame::msgpack_to_json(&request.body) {
            Ok(text) => {
                transcoded = text;
                Ok(&transcoded)
            }
            Err(error) => Err(format!(
                "Can't decode binary (MessagePack) request. {error}"
            )),
        }
    } else {
        Ok(&request.body)
    };
    let decoded = text.and_then(|text| {
        frame::decode(text).map_err(|e| format!("Can't decode text (JSON) request. {e}"))
    });
    // What the answer echoes (`None`: nothing, the frame could not be
    // read), whether it hides the frame's headers and body, the result.
    let (echoed, hide, status) = match &decoded {
        Err(error) => {
            error_body(&mut result, error);
            (None, false, 400)
        }
        Ok(Decoded::NotAnObject) => {
            error_body(
                &mut result,
                "Unexpected body type. Expected dict or dict like.",
            );
            (None, false, 400)
        }
        Ok(Decoded::Frame(frame)) => {
            let members = Members::json(frame);
            let (hide, status) =
                serve_members(api, request, &members, binary, &mut result, route).await;
            (Some(frame), hide, status)
        }
    };
    let echo = Echo::of_decoded(request, binary, echoed);
    answer(request, echo, hide, &result, status)
}

/// Serves a frame that could be read: `authenticate`, or an action.
/// Returns whether the answer hides the frame's headers and body, and the
/// status.
async fn serve_members(
    api: &Api,
    request: &ApiRequest,
    members: &Members<'_>,
    binary: bool,
    out: &mut Vec<u8>,
    route: &mut Route,
) -> (bool, u16) {
    if members.action.and_then(Member::as_string).as_deref() != Some("authenticate") {
        let connection = request.connection.as_str();
        let status = serve(api, members, connection, binary, out, route).await;
        return (false, status);
    }
    // `authenticate` checks the frame's credentials with the auth
    // strategy; the socket then acts as that identity. With no strategy
    // there is nothing to check and it succeeds (Zaqar drops the
    // connection). The echo leaves out the frame's headers and body,
    // which carry the token.
    *route = Route::Authenticate;
    let checked = match &api.auth {
        Some(auth) => auth
            .authenticate(
                &Headers::read(members.headers).to_http(),
                Protocol::WEBSOCKET,
                request.peer.as_str(),
                api.now_ms(),
            )
            .await
            .map(|identity| auth.socket_authenticated(request.connection.as_str(), identity)),
        None => Ok(()),
    };
    let status = match checked {
        Ok(()) => {
            out.extend_from_slice(br#"{"message":"Authentified."}"#);
            200
        }
        Err(error) => failure(out, &error),
    };
    (true, status)
}

/// Whether the frame is MessagePack (a binary frame).
fn is_msgpack(request: &ApiRequest) -> bool {
    request
        .headers
        .iter()
        .any(|h| h.name.as_str() == "content-type" && h.value.as_str().starts_with(MSGPACK))
}

/// What an answer echoes of its request: the members of a JSON frame, or
/// of a MessagePack one as the client sent them (`None`: nothing, the
/// frame could not be read).
enum Echo<'a> {
    Json(Option<&'a Frame<'a>>),
    Packed(Option<PackedFrame<'a>>),
}

impl<'a> Echo<'a> {
    /// The echo of a frame read through its JSON text (`None`: it could
    /// not be read). A MessagePack frame read that way was transcoded from
    /// the bytes the client sent, so they start with a whole map: its
    /// members are found again there without a second transcode.
    fn of_decoded(request: &'a ApiRequest, binary: bool, frame: Option<&'a Frame<'a>>) -> Self {
        if binary {
            Echo::Packed(frame.and_then(|_| packed::members(&request.body)))
        } else {
            Echo::Json(frame)
        }
    }
}

/// The answer envelope in the frame's encoding: echoing `echo` (`hide`
/// leaves out its headers and body), carrying `result` (JSON text) and
/// `status`.
fn answer(
    request: &ApiRequest,
    echo: Echo<'_>,
    hide: bool,
    result: &[u8],
    status: u16,
) -> HttpResponse {
    let (body, status, content_type) = match echo {
        Echo::Packed(members) => {
            let (body, status) =
                packed_answer(members.as_ref(), request.body.len(), hide, result, status);
            (body, status, MSGPACK)
        }
        Echo::Json(echoed) => {
            let mut out = Vec::with_capacity(128 + result.len());
            let no_frame = Frame::default();
            envelope(&mut out, echoed.unwrap_or(&no_frame), hide, result, status);
            (out, status, "application/json")
        }
    };
    HttpResponse {
        status,
        headers: vec![("content-type", content_type.into())],
        body,
    }
}

/// The MessagePack answer: the request's `members` echoed as the client
/// sent them (its payload was `sent` bytes long), the result transcoded; a
/// 500 envelope if the result cannot be encoded (a message body nested too
/// deeply for it).
fn packed_answer(
    members: Option<&PackedFrame<'_>>,
    sent: usize,
    hide: bool,
    result: &[u8],
    status: u16,
) -> (Vec<u8>, u16) {
    let no_members = PackedFrame::default();
    let mut out = Vec::with_capacity(64 + sent + result.len());
    match packed::envelope(
        &mut out,
        members.unwrap_or(&no_members),
        hide,
        result,
        status,
    ) {
        Ok(()) => (out, status),
        Err(error) => {
            tracing::error!(%error, "a WebSocket answer could not be encoded as MessagePack");
            let mut result = Vec::new();
            error_body(
                &mut result,
                "The answer could not be encoded as MessagePack.",
            );
            out.clear();
            let _ = packed::envelope(&mut out, &no_members, false, &result, 500);
            (out, 500)
        }
    }
}

/// The answer to a frame whose serving panicked: a 500 envelope in the
/// frame's encoding (echoing what can be decoded of it), so the client
/// learns its request failed and the socket stays usable.
pub fn internal_error(request: &ApiRequest) -> HttpResponse {
    let binary = is_msgpack(request);
    let text = if binary {
        frame::msgpack_to_json(&request.body).unwrap_or_default()
    } else {
        request.body.to_vec()
    };
    let frame = match frame::decode(&text) {
        Ok(Decoded::Frame(frame)) => Some(frame),
        _ => None,
    };
    let mut result = Vec::new();
    let status = failure(
        &mut result,
        &ApiError::Internal("The request could not be served."),
    );
    let echo = Echo::of_decoded(request, binary, frame.as_ref());
    answer(request, echo, false, &result, status)
}

/// Writes `{"request":{...},"body":<result>,"headers":{"status":N}}`,
/// echoing the frame's members as received (`hide` leaves out its headers
/// and body). Returns the status.
fn envelope(out: &mut Vec<u8>, frame: &Frame<'_>, hide: bool, result: &[u8], status: u16) -> u16 {
    fn member(raw: Option<&RawValue>, hide: bool) -> &str {
        raw.filter(|raw| !hide && frame::is_object(raw))
            .map_or("{}", |raw| raw.get())
    }
    out.extend_from_slice(b"{\"request\":{\"action\":");
    out.extend_from_slice(frame.action.map_or("null", |raw| raw.get()).as_bytes());
    out.extend_from_slice(b",\"body\":");
    out.extend_from_slice(member(frame.body, hide).as_bytes());
    out.extend_from_slice(b",\"headers\":");
    out.extend_from_slice(member(frame.headers, hide).as_bytes());
    out.extend_from_slice(b",\"api\":\"v2\"},\"body\":");
    out.extend_from_slice(result);
    out.extend_from_slice(b",\"headers\":{\"status\":");
    push_int(out, status);
    out.extend_from_slice(b"}}");
    status
}

/// `{"error":<text>}`.
fn error_body(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"{\"error\":");
    push_str(out, text);
    out.push(b'}');
}

fn schema_failed(out: &mut Vec<u8>) -> u16 {
    error_body(out, "Schema validation failed.");
    400
}

/// Zaqar's handler error shape: `{"exception": <text>, "error": <summary>}`.
fn failure(out: &mut Vec<u8>, error: &ApiError) -> u16 {
    let text = error.description().unwrap_or_else(|| error.title());
    out.extend_from_slice(b"{\"exception\":");
    push_str(out, &text);
    out.extend_from_slice(b",\"error\":");
    match error {
        ApiError::UnableToDelete { .. } | ApiError::NotFound(_) => push_str(out, &text),
        _ => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    error.status()
}

/// Runs a frame's action, writing the reply's body; returns the status.
async fn serve(
    api: &Api,
    frame: &Members<'_>,
    connection: &str,
    binary: bool,
    out: &mut Vec<u8>,
    route: &mut Route,
) -> u16 {
    let name = match frame.action {
        None => Cow::Borrowed("None"),
        Some(member) if member.is_null() => Cow::Borrowed("None"),
        Some(member) => member.as_string().unwrap_or_else(|| member.json()),
    };
    // Host code has no known panic to trigger; tests reach the recovery
    // path through this action, which exists only in test builds.
    #[cfg(test)]
    if name == "test_panic" {
        panic!("a test asked for a panic");
    }
    // The streams extension's actions need an identity and no queue, as
    // `queue_list` does; they are served once the caller is known.
    let extension = Extension::from_name(&name);
    let action = match extension {
        Some(_) => Action::QueueList,
        None => match Action::from_name(&name).filter(|a| WEBSOCKET_ACTIONS.contains(a)) {
            Some(action) => action,
            None => {
                error_body(out, &format!("{name} is not a valid action"));
                return 400;
            }
        },
    };
    *route = Route::Action(action);
    // The health probe exists only in admin mode, as `/v2/health` does; it
    // is not even announced otherwise.
    if action == Action::CheckNodeHealth && !api.admin_mode {
        return failure(out, &ApiError::RouteNotFound);
    }
    // So do the pools and flavors actions, with pooling on too.
    if action.is_pooling_admin() && !(api.admin_mode && api.pooling()) {
        return failure(out, &ApiError::RouteNotFound);
    }
    // Under an auth strategy a socket acts only as what it authenticated.
    let identity = match &api.auth {
        Some(auth) => match auth.socket_identity(connection, api.now_ms()) {
            Some(identity) => Some(identity),
            None => {
                error_body(out, "Not authenticated.");
                return 401;
            }
        },
        None => None,
    };
    let headers = Headers::read(frame.headers);
    let needs_identity = !matches!(
        action,
        Action::GetHomeDoc | Action::PingNode | Action::CheckNodeHealth
    );
    let client_header = headers.get("Client-ID");
    let project_header = match &identity {
        Some(identity) => match identity.project_for(headers.get("X-Project-ID")) {
            Ok(project) => Some(project),
            Err(error) => return failure(out, &error),
        },
        None => headers.get("X-Project-ID"),
    };
    if needs_identity && (client_header.is_none() || project_header.is_none()) {
        return schema_failed(out);
    }
    let client_id = match ClientId::from_header(
        Some(client_header.unwrap_or("00000000000000000000000000000000")),
        api.client_id_rule,
    ) {
        Ok(id) => id,
        Err(_) => {
            out.extend_from_slice(
                br#"{"exception":"badly formed hexadecimal UUID string","error":null}"#,
            );
            return 400;
        }
    };
    let project = match ProjectId::from_header(Some(project_header.unwrap_or("none"))) {
        Ok(project) => project,
        Err(error) => return failure(out, &error),
    };
    if let Err(error) = api.admit(&project) {
        return failure(out, &error);
    }
    let fields = Fields::read(frame.body);
    let queue = if needs_identity && action != Action::QueueList && !action.is_pooling_admin() {
        let Some(name) = fields.queue_name.and_then(Member::as_string) else {
            return schema_failed(out);
        };
        match QueueName::parse(&name, &project) {
            Ok(queue) => Some(queue),
            Err(error) => return failure(out, &error),
        }
    } else {
        None
    };
    let id_field = match action {
        Action::MessageGet | Action::MessageDelete => Some(fields.message_id),
        Action::ClaimGet | Action::ClaimUpdate | Action::ClaimDelete => Some(fields.claim_id),
        Action::SubscriptionGet | Action::SubscriptionDelete => Some(fields.subscription_id),
        Action::PoolGet | Action::PoolCreate | Action::PoolUpdate | Action::PoolDelete => {
            Some(fields.pool_name)
        }
        Action::FlavorGet | Action::FlavorCreate | Action::FlavorUpdate | Action::FlavorDelete => {
            Some(fields.flavor_name)
        }
        _ => None,
    };
    let id = match id_field.map(|member| member.and_then(Member::as_string)) {
        None => None,
        Some(Some(id)) => Some(id.into_owned()),
        Some(None) => return schema_failed(out),
    };
    // Roles come from the identity; `X-Roles` only counts without auth.
    let admin = match &identity {
        Some(identity) => identity.admin,
        None => Caller::roles_grant_admin(headers.get("X-Roles")),
    };
    let caller = Caller {
        project,
        client_id,
        admin,
    };
    if let Some(extension) = extension {
        let body = frame.body.map(Member::raw);
        return match socket::serve(api, extension, &caller, body.as_deref(), connection, out) {
            Ok(status) => status,
            Err(error) => failure(out, &error),
        };
    }
    let command = match Command::build(api, action, queue, id, &fields) {
        Ok(command) => command,
        Err(error) => return failure(out, &error),
    };
    let result = match &command {
        Command::SubscriptionCreate { queue, .. } if fields.subscriber.is_none() => {
            subscriptions::create_for_socket(
                api,
                &caller,
                queue,
                frame.body.map(Member::json).as_deref().map(str::as_bytes),
                connection,
                binary,
            )
            .await
        }
        _ => api.dispatch(&caller, &command).await,
    };
    match result {
        Ok(reply) => render(api, &command, reply, out),
        // Zaqar's WebSocket message_get_many answers an empty list, not 404.
        Err(ApiError::NotFound(_)) if action == Action::MessageGetMany => {
            out.extend_from_slice(br#"{"messages":[]}"#);
            200
        }
        Err(error) => failure(out, &error),
    }
}

/// A message in the WebSocket shape `{"id","claim_id","ttl","age","body"}`,
/// its body spliced in as stored; `popped` adds `claim_count` (and shows no
/// claim).
fn push_message(out: &mut Vec<u8>, message: &StoredMessage, now_ms: u64, popped: bool) {
    out.extend_from_slice(b"{\"id\":");
    push_str(out, &message.id);
    out.extend_from_slice(b",\"claim_id\":");
    match message.claim.as_ref().into_option() {
        Some(claim) if !popped => push_str(out, &claim.id),
        _ => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"ttl\":");
    push_int(out, message.ttl);
    out.extend_from_slice(b",\"age\":");
    push_int(out, age_seconds(now_ms, message.created_ms));
    out.extend_from_slice(b",\"body\":");
    push_body(out, &message.body);
    if popped {
        out.extend_from_slice(b",\"claim_count\":");
        push_int(out, message.claim_count);
    }
    out.push(b'}');
}

fn push_messages(out: &mut Vec<u8>, list: &[StoredMessage], now_ms: u64, popped: bool) {
    out.push(b'[');
    for (index, message) in list.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        push_message(out, message, now_ms, popped);
    }
    out.push(b']');
}

fn push_stats(out: &mut Vec<u8>, stats: &QueueStats, now_ms: u64) {
    out.extend_from_slice(
        format!(
            "{{\"messages\":{{\"claimed\":{},\"free\":{},\"total\":{}",
            stats.claimed, stats.free, stats.total
        )
        .as_bytes(),
    );
    if stats.total != 0 {
        for (name, summary) in [("oldest", &stats.oldest), ("newest", &stats.newest)] {
            if let Some(summary) = summary.as_ref().into_option() {
                out.push(b',');
                push_key(out, name);
                out.extend_from_slice(b"{\"id\":");
                push_str(out, &summary.id);
                out.extend_from_slice(b",\"age\":");
                out.extend_from_slice(
                    age_seconds(now_ms, summary.created_ms)
                        .to_string()
                        .as_bytes(),
                );
                out.extend_from_slice(b",\"created\":");
                push_str(out, &format!("{}Z", format_utc(summary.created_ms as i64)));
                out.push(b'}');
            }
        }
    }
    out.extend_from_slice(b"}}");
}

fn push_subscriptions(out: &mut Vec<u8>, list: &[SubscriptionRecord], now_ms: u64) {
    out.extend_from_slice(b"{\"subscriptions\":[");
    for (index, subscription) in list.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        push_subscription(out, now_ms, subscription);
    }
    out.extend_from_slice(b"]}");
}

/// Writes a reply's body in the WebSocket shapes; returns the status.
fn render(api: &Api, command: &Command<'_>, reply: Reply, out: &mut Vec<u8>) -> u16 {
    let now = api.now_ms();
    let queue = command.queue().map(|q| q.as_str()).unwrap_or("");
    let id = command.id().unwrap_or("");
    match reply {
        Reply::HomeDoc => {
            out.extend_from_slice(&api.homedoc);
            200
        }
        Reply::Pong { alive } => {
            out.extend_from_slice(b"{}");
            if alive {
                204
            } else {
                503
            }
        }
        Reply::Health(report) => {
            push_health(out, &report);
            200
        }
        Reply::QueueList { queues, .. } => {
            out.extend_from_slice(b"{\"queues\":[");
            for (index, (entry, shown)) in queues.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"name\":");
                push_str(out, &entry.name);
                if shown.is_some() {
                    out.extend_from_slice(b",\"metadata\":");
                    push_raw(out, &entry.metadata);
                }
                out.push(b'}');
            }
            out.extend_from_slice(b"]}");
            200
        }
        Reply::QueueCreated { created } => {
            push_str(out, &format!("Queue {queue} created."));
            if created {
                201
            } else {
                204
            }
        }
        Reply::QueueMetadata { raw, .. } => {
            push_value(out, &serde_json::Value::Object(raw));
            200
        }
        Reply::Stats(counts) => {
            push_stats(out, &counts, now);
            200
        }
        Reply::SignedUrl(_) => {
            error_body(out, "Not supported.");
            400
        }
        Reply::MessageList { messages, .. } | Reply::MessageGetMany(messages) => {
            out.extend_from_slice(b"{\"messages\":");
            push_messages(out, &messages, now, false);
            out.push(b'}');
            200
        }
        Reply::Message(found) => {
            out.extend_from_slice(b"{\"messages\":");
            push_message(out, &found, now, false);
            out.push(b'}');
            200
        }
        Reply::Posted(posted) => {
            out.extend_from_slice(b"{\"message_ids\":[");
            for (index, message) in posted.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                push_str(out, &message.id);
            }
            out.extend_from_slice(b"]}");
            201
        }
        Reply::Popped(list) => {
            out.extend_from_slice(b"{\"messages\":");
            push_messages(out, &list, now, true);
            out.push(b'}');
            200
        }
        Reply::ClaimCreated(claim) if claim.messages.is_empty() => {
            out.extend_from_slice(br#"{"claim_id":null}"#);
            204
        }
        Reply::ClaimCreated(claim) => {
            out.extend_from_slice(b"{\"claim_id\":");
            push_str(out, &claim.id);
            out.extend_from_slice(b",\"messages\":");
            push_messages(out, &claim.messages, now, false);
            out.push(b'}');
            201
        }
        Reply::Claim(claim) => {
            out.extend_from_slice(
                format!(
                    "{{\"age\":{},\"ttl\":{},\"messages\":",
                    age_seconds(now, claim.updated_ms),
                    claim.ttl
                )
                .as_bytes(),
            );
            push_messages(out, &claim.messages, now, false);
            out.push(b'}');
            200
        }
        Reply::SubscriptionList { subscriptions, .. } => {
            push_subscriptions(out, &subscriptions, now);
            200
        }
        Reply::Subscription(found) => {
            push_subscription(out, now, &found);
            200
        }
        // Zaqar's WebSocket API refuses duplicates with 409 and a sentence.
        Reply::SubscriptionCreated { created: false, .. } => {
            push_str(out, &format!("Subscription {queue} not created."));
            409
        }
        Reply::SubscriptionCreated {
            id: new_id, stream, ..
        } => {
            out.extend_from_slice(b"{\"subscription_id\":");
            push_str(out, &new_id);
            out.extend_from_slice(b",\"message\":");
            push_str(out, &format!("Subscription {queue} created."));
            if let Some(stream) = stream {
                out.extend_from_slice(b",\"session_id\":");
                push_str(out, &stream.session_id);
                out.extend_from_slice(format!(",\"last_seq\":{}", stream.last_seq).as_bytes());
            }
            out.push(b'}');
            201
        }
        Reply::Done => {
            match command.action() {
                Action::QueueDelete => push_str(out, &format!("Queue {queue} removed.")),
                Action::ClaimUpdate => push_str(out, &format!("Claim {id} updated.")),
                Action::ClaimDelete => push_str(out, &format!("Claim {id} deleted.")),
                Action::SubscriptionDelete => push_str(out, &format!("Subscription {id} removed.")),
                Action::PoolDelete => push_str(out, &format!("Pool {id} removed.")),
                Action::FlavorDelete => push_str(out, &format!("Flavor {id} removed.")),
                _ => out.extend_from_slice(b"{}"),
            }
            204
        }
        Reply::Admin(reply) => {
            match (&reply.document, &reply.message) {
                (Some(document), _) => push_value(out, document),
                (None, Some(message)) => push_str(out, message),
                (None, None) => out.extend_from_slice(b"{}"),
            }
            reply.status
        }
    }
}
