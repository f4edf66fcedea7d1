//! Replies as Zaqar's HTTP API renders them: statuses, `Location`
//! headers, bodies.

use plugin_api::storage::{QueueStats, StoredClaim, StoredMessage};

use super::{
    action::Reply,
    clock::format_utc,
    command::Command,
    health::HealthReport,
    http::HttpResponse,
    render::{
        age_seconds, push_body, push_checksum, push_key, push_links, push_messages, push_str,
        push_str_parts, push_subscription, push_value, MessageView,
    },
    router::Action,
    signed_url::SignedUrlDocument,
    Api,
};

/// Renders a reply; `path` is the decoded request path.
pub fn render(api: &Api, command: &Command<'_>, path: &str, reply: Reply) -> HttpResponse {
    let queue = command.queue().map(|q| q.as_str()).unwrap_or("");
    let view = MessageView {
        queue,
        now_ms: api.now_ms(),
        checksum: api.checksum,
    };
    let mut out = Vec::with_capacity(256);
    match reply {
        Reply::HomeDoc => {
            return HttpResponse {
                status: 200,
                headers: vec![("content-type", "application/json-home".into())],
                body: api.homedoc.clone(),
            }
            .with("cache-control", "max-age=86400".into());
        }
        Reply::Pong { alive } => return HttpResponse::empty(if alive { 204 } else { 503 }),
        Reply::Health(report) => push_health(&mut out, &report),
        Reply::QueueList {
            queues,
            count,
            page,
        } => {
            out.extend_from_slice(b"{\"queues\":[");
            for (index, (entry, metadata)) in queues.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"name\":");
                push_str(&mut out, &entry.name);
                if let Some(metadata) = metadata {
                    out.extend_from_slice(b",\"metadata\":");
                    push_value(&mut out, &serde_json::Value::Object(metadata.clone()));
                }
                out.extend_from_slice(b",\"href\":");
                push_str_parts(&mut out, &["/v2/queues/", &entry.name]);
                out.push(b'}');
            }
            out.extend_from_slice(b"],");
            push_links(
                &mut out,
                path,
                &page,
                queues.last().map(|(entry, _)| entry.name.as_str()),
            );
            if let Some(count) = count {
                out.extend_from_slice(format!(",\"count\":{count}").as_bytes());
            }
            out.push(b'}');
        }
        Reply::QueueCreated { created: true } => {
            return HttpResponse::empty(201)
                .with("location", format!("/v2/queues/{queue}"))
                .with("content-type", "application/json".into());
        }
        Reply::QueueCreated { created: false } => {
            return HttpResponse::empty(204).with("location", format!("/v2/queues/{queue}"));
        }
        Reply::QueueMetadata { shown, .. } => {
            push_value(&mut out, &serde_json::Value::Object(shown))
        }
        Reply::Stats(stats) => push_stats(&mut out, queue, view.now_ms, &stats),
        Reply::SignedUrl(document) => push_signed_url(&mut out, &document),
        Reply::MessageList { messages, page } => {
            out.extend_from_slice(b"{\"messages\":");
            push_messages(&mut out, view, &messages);
            out.push(b',');
            let marker = messages.last().map(|m| m.seq.to_string());
            push_links(&mut out, path, &page, marker.as_deref());
            out.push(b'}');
        }
        Reply::MessageGetMany(messages) => {
            out.extend_from_slice(b"{\"messages\":");
            push_messages(&mut out, view, &messages);
            out.push(b'}');
        }
        Reply::Message(message) => super::render::push_message(&mut out, view, &message),
        Reply::Posted(posted) => {
            out.reserve(posted.len() * (queue.len() + 48) + 16);
            out.extend_from_slice(b"{\"resources\":[");
            for (index, message) in posted.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                push_str_parts(&mut out, &["/v2/queues/", queue, "/messages/", &message.id]);
            }
            out.extend_from_slice(b"]}");
            return HttpResponse::json(201, out).with("location", posted_location(queue, &posted));
        }
        Reply::Popped(messages) => push_popped(&mut out, view, &messages),
        Reply::ClaimCreated(claim) if claim.messages.is_empty() => return HttpResponse::empty(204),
        Reply::ClaimCreated(claim) => {
            out.extend_from_slice(b"{\"messages\":");
            push_messages(&mut out, view, &claim.messages);
            out.push(b'}');
            let location = ["/v2/queues/", queue, "/claims/", &claim.id].concat();
            return HttpResponse::json(201, out).with("location", location);
        }
        Reply::Claim(claim) => push_claim(&mut out, view, &claim),
        Reply::SubscriptionList {
            subscriptions,
            page,
        } => {
            out.extend_from_slice(b"{\"subscriptions\":[");
            for (index, subscription) in subscriptions.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                push_subscription(&mut out, view.now_ms, subscription);
            }
            out.extend_from_slice(b"],");
            push_links(
                &mut out,
                path,
                &page,
                subscriptions.last().map(|s| s.id.as_str()),
            );
            out.push(b'}');
        }
        Reply::Subscription(subscription) => {
            push_subscription(&mut out, view.now_ms, &subscription)
        }
        Reply::SubscriptionCreated { id, .. } => {
            out.extend_from_slice(b"{\"subscription_id\":");
            push_str(&mut out, &id);
            out.push(b'}');
            return HttpResponse::json(201, out)
                .with("location", format!("/v2/queues/{queue}/subscriptions"));
        }
        Reply::Admin(reply) => {
            let mut response = match &reply.document {
                Some(document) => {
                    push_value(&mut out, document);
                    HttpResponse::json(reply.status, out)
                }
                // Zaqar's 201s carry `content-type` with their empty body.
                None => HttpResponse::empty(reply.status)
                    .with("content-type", "application/json".into()),
            };
            if let Some(location) = reply.location {
                response = response.with("location", location);
            }
            if let Some(location) = reply.content_location {
                response = response.with("content-location", location);
            }
            return response;
        }
        Reply::Done => {
            let response = HttpResponse::empty(204);
            return match command.action() {
                Action::SubscriptionUpdate | Action::SubscriptionConfirm => {
                    response.with("location", path.to_string())
                }
                _ => response,
            };
        }
    }
    HttpResponse::json(200, out)
}

/// The longest `Location` a post answers with the ids of its messages;
/// past it (about 150 messages), `Location` names the queue's messages
/// without ids, so every HTTP client can still read the answer (the body
/// lists every message either way).
pub const MAX_POST_LOCATION: usize = 4096;

/// A post's `Location`: `/v2/queues/{q}/messages?ids=a,b,...`, or without
/// the ids when they would make it longer than [`MAX_POST_LOCATION`].
fn posted_location(queue: &str, posted: &[plugin_api::storage::PostedMessage]) -> String {
    let base_len = "/v2/queues/".len() + queue.len() + "/messages".len();
    let ids_len: usize = posted.iter().map(|p| p.id.len() + 1).sum();
    let mut location = String::with_capacity(base_len + 5 + ids_len);
    location.push_str("/v2/queues/");
    location.push_str(queue);
    location.push_str("/messages");
    if base_len + 5 + ids_len > MAX_POST_LOCATION {
        return location;
    }
    location.push_str("?ids=");
    for (index, message) in posted.iter().enumerate() {
        if index > 0 {
            location.push(',');
        }
        location.push_str(&message.id);
    }
    location
}

pub fn push_health(out: &mut Vec<u8>, report: &HealthReport) {
    out.extend_from_slice(
        format!(
            "{{\"storage_reachable\":{},\"operation_status\":{{",
            report.storage_reachable
        )
        .as_bytes(),
    );
    for (index, op) in report.operations.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        push_key(out, op.name);
        out.extend_from_slice(
            format!(
                "{{\"succeeded\":{},\"seconds\":{},\"ref\":",
                op.succeeded, op.seconds
            )
            .as_bytes(),
        );
        match &op.reference {
            Some(reference) => push_str(out, reference),
            None => out.extend_from_slice(b"null"),
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"}}");
}

/// The stats shape of Zaqar's MongoDB driver: `oldest`/`newest` only when
/// the queue holds messages.
fn push_stats(out: &mut Vec<u8>, queue: &str, now_ms: u64, stats: &QueueStats) {
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
                out.extend_from_slice(
                    format!(
                        ",\"{name}\":{{\"age\":{},\"created\":",
                        age_seconds(now_ms, summary.created_ms)
                    )
                    .as_bytes(),
                );
                push_str(out, &format!("{}Z", format_utc(summary.created_ms as i64)));
                out.extend_from_slice(b",\"href\":");
                push_str_parts(out, &["/v2/queues/", queue, "/messages/", &summary.id]);
                out.push(b'}');
            }
        }
    }
    out.extend_from_slice(b"}}");
}

fn push_signed_url(out: &mut Vec<u8>, document: &SignedUrlDocument) {
    let list = |items: &[String]| serde_json::Value::from(items.to_vec());
    out.extend_from_slice(b"{\"paths\":");
    push_value(out, &list(&document.paths));
    out.extend_from_slice(b",\"methods\":");
    push_value(out, &list(&document.methods));
    out.extend_from_slice(b",\"project\":");
    push_str(out, &document.project);
    out.extend_from_slice(b",\"expires\":");
    push_str(out, &document.expires);
    out.extend_from_slice(b",\"signature\":");
    push_str(out, &document.signature);
    out.push(b'}');
}

/// Pop's raw storage shape: `{"id","age","ttl","body","claim_id","claim_count"}`
/// (popped messages are never under a live claim: `claim_id` is null).
fn push_popped(out: &mut Vec<u8>, view: MessageView<'_>, messages: &[StoredMessage]) {
    out.extend_from_slice(b"{\"messages\":[");
    for (index, message) in messages.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"id\":");
        push_str(out, &message.id);
        out.extend_from_slice(
            format!(
                ",\"age\":{},\"ttl\":{},\"body\":",
                age_seconds(view.now_ms, message.created_ms),
                message.ttl
            )
            .as_bytes(),
        );
        push_body(out, &message.body);
        out.extend_from_slice(
            format!(",\"claim_id\":null,\"claim_count\":{}", message.claim_count).as_bytes(),
        );
        push_checksum(out, view, &message.body);
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
}

/// `{"age","ttl","messages","href"}`; age counts from the last renewal.
fn push_claim(out: &mut Vec<u8>, view: MessageView<'_>, claim: &StoredClaim) {
    out.extend_from_slice(
        format!(
            "{{\"age\":{},\"ttl\":{},\"messages\":",
            age_seconds(view.now_ms, claim.updated_ms),
            claim.ttl
        )
        .as_bytes(),
    );
    push_messages(out, view, &claim.messages);
    out.extend_from_slice(b",\"href\":");
    push_str_parts(out, &["/v2/queues/", view.queue, "/claims/", &claim.id]);
    out.push(b'}');
}
