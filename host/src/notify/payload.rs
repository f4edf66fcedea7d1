//! The documents notifications carry: Zaqar's notification (the webhook
//! body, also pushed to subscribed sockets) and the subscription
//! confirmation messages.

use serde_json::{json, Value};

use crate::api::{clock, signed_url};

/// One message as notified.
pub struct Notified<'a> {
    /// The queue name.
    pub queue: &'a str,
    /// The message id.
    pub id: &'a str,
    /// Its per-queue sequence number.
    pub seq: u64,
    /// Its ttl in seconds.
    pub ttl: u32,
    /// Its body, JSON bytes as stored.
    pub body: &'a [u8],
}

/// Zaqar's notification document, `{"ttl", "body", "Message_Type",
/// "queue_name"}`, plus the message id and per-queue sequence number so a
/// receiver can deduplicate and tell where it is. The body is copied as
/// stored, never re-serialized.
pub fn notification_json(message: &Notified<'_>) -> Vec<u8> {
    let quoted = |text: &str| serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into());
    let mut out = Vec::with_capacity(message.body.len() + 160);
    out.extend_from_slice(b"{\"ttl\":");
    out.extend_from_slice(message.ttl.to_string().as_bytes());
    out.extend_from_slice(b",\"body\":");
    out.extend_from_slice(message.body);
    out.extend_from_slice(b",\"Message_Type\":\"Notification\",\"queue_name\":");
    out.extend_from_slice(quoted(message.queue).as_bytes());
    out.extend_from_slice(b",\"message_id\":");
    out.extend_from_slice(quoted(message.id).as_bytes());
    out.extend_from_slice(b",\"sequence\":");
    out.extend_from_slice(message.seq.to_string().as_bytes());
    out.push(b'}');
    out
}

/// The same document as MessagePack, for sockets that subscribed with a
/// binary frame.
pub fn notification_msgpack(message: &Notified<'_>) -> Vec<u8> {
    let value: Value = serde_json::from_slice(&notification_json(message)).unwrap_or_default();
    rmp_serde::to_vec_named(&value).unwrap_or_default()
}

/// Which confirmation message to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    /// After a subscription is created (or re-posted while unconfirmed).
    Subscribe,
    /// After `PUT .../confirm {"confirmed": false}`.
    Unsubscribe,
}

/// Zaqar's SubscriptionConfirmation / UnsubscribeConfirmation document
/// with a pre-signed `PUT` on the subscription's confirm path valid
/// for `valid_for_secs`.
pub fn confirmation_json(
    kind: Confirmation,
    key: &str,
    project: &str,
    queue: &str,
    subscription_id: &str,
    now_ms: u64,
    valid_for_secs: u32,
) -> Vec<u8> {
    let path = format!("/v2/queues/{queue}/subscriptions/{subscription_id}/confirm");
    let expires = clock::format_utc(now_ms as i64 + i64::from(valid_for_secs) * 1000);
    let signed = signed_url::sign(
        key,
        vec![path.clone()],
        vec!["PUT".into()],
        project,
        &expires,
    );
    let (message_type, message) = match kind {
        Confirmation::Subscribe => (
            "SubscriptionConfirmation",
            format!("You have chosen to subscribe to the queue: {queue}"),
        ),
        Confirmation::Unsubscribe => (
            "UnsubscribeConfirmation",
            format!(
                "You have unsubscribed successfully to the queue: {queue}, you can resubscribe it by using confirmed=True."
            ),
        ),
    };
    let document = json!({
        "Message_Type": message_type,
        "Message": message,
        "URL-Signature": signed.signature,
        "URL-Methods": "PUT",
        "URL-Paths": path,
        "X-Project-ID": project,
        "URL-Expires": signed.expires,
        "SubscribeBody": {"confirmed": true},
        "UnsubscribeBody": {"confirmed": false},
        "queue_name": queue,
    });
    serde_json::to_vec(&document).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_is_zaqars_document_plus_position() {
        let payload = notification_json(&Notified {
            queue: "q\"x",
            id: "m1",
            seq: 7,
            ttl: 300,
            body: b"{\"a\":1}",
        });
        let value: Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(
            value,
            json!({"ttl": 300, "body": {"a": 1}, "Message_Type": "Notification",
                "queue_name": "q\"x", "message_id": "m1", "sequence": 7})
        );
    }

    #[test]
    fn confirmation_carries_a_signature_the_api_accepts() {
        let payload = confirmation_json(Confirmation::Subscribe, "k", "p1", "q1", "s1", 0, 3600);
        let value: Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(value["URL-Paths"], "/v2/queues/q1/subscriptions/s1/confirm");
        assert_eq!(value["URL-Expires"], "1970-01-01T01:00:00");
        let expected = signed_url::sign(
            "k",
            vec!["/v2/queues/q1/subscriptions/s1/confirm".into()],
            vec!["PUT".into()],
            "p1",
            "1970-01-01T01:00:00",
        );
        assert_eq!(value["URL-Signature"], expected.signature.as_str());
    }
}
