//! The WebSocket actions streams add to Zaqar's: `subscription_ack` and
//! `session_resume`. (Subscribing with history, filters and acks is
//! Zaqar's `subscription_create`, see
//! [`crate::api::subscriptions::create_for_socket`].)

use serde_json::{value::RawValue, Map, Value};

use crate::{
    api::{
        action::Caller,
        errors::{ApiError, ApiResult},
        render::push_str,
        Api,
    },
    push::{Ack, AckRefused, ResumeRefused},
};

/// An action of this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extension {
    /// `subscription_ack`.
    Ack,
    /// `session_resume`.
    Resume,
}

impl Extension {
    /// The action a frame names, if it is one of these.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "subscription_ack" => Some(Self::Ack),
            "session_resume" => Some(Self::Resume),
            _ => None,
        }
    }
}

fn body_object(body: Option<&RawValue>) -> ApiResult<Map<String, Value>> {
    match body.map(|raw| serde_json::from_str::<Value>(raw.get())) {
        Some(Ok(Value::Object(map))) => Ok(map),
        None => Ok(Map::new()),
        _ => Err(ApiError::api("The body must be an object.")),
    }
}

fn seq_value(value: &Value, what: &str) -> ApiResult<u64> {
    value
        .as_u64()
        .ok_or_else(|| ApiError::api(format!("{what} must be a non-negative integer.")))
}

/// Runs one extension action; writes the answer's body and returns its
/// status.
pub fn serve(
    api: &Api,
    extension: Extension,
    caller: &Caller,
    body: Option<&RawValue>,
    connection: &str,
    out: &mut Vec<u8>,
) -> ApiResult<u16> {
    let body = body_object(body)?;
    match extension {
        Extension::Ack => ack(api, &body, connection).map(|()| {
            out.extend_from_slice(b"{}");
            204
        }),
        Extension::Resume => resume(api, caller, &body, connection, out).map(|()| 200),
    }
}

/// `subscription_ack`: `{"subscription_id", "seqs": [..]}` or
/// `{"subscription_id", "up_to": N}`.
fn ack(api: &Api, body: &Map<String, Value>, connection: &str) -> ApiResult<()> {
    if let Some(unknown) = body
        .keys()
        .find(|k| !matches!(k.as_str(), "subscription_id" | "seqs" | "up_to"))
    {
        return Err(ApiError::api(format!("Unknown ack option {unknown:?}.")));
    }
    let Some(Value::String(id)) = body.get("subscription_id") else {
        return Err(ApiError::api("Missing parameter subscription_id in body."));
    };
    let ack = match (body.get("seqs"), body.get("up_to")) {
        (Some(Value::Array(seqs)), None) => Ack::Seqs(
            seqs.iter()
                .map(|s| seq_value(s, "seqs"))
                .collect::<ApiResult<_>>()?,
        ),
        (None, Some(up_to)) => Ack::UpTo(seq_value(up_to, "up_to")?),
        _ => {
            return Err(ApiError::api(
                "An ack names either seqs (a list) or up_to (a seq).",
            ))
        }
    };
    match api.notify.pushes.ack(connection, id, &ack) {
        Ok(()) => Ok(()),
        Err(AckRefused::Unknown) => Err(ApiError::NotFound(format!(
            "Subscription {id} is not a subscription of this socket"
        ))),
        Err(AckRefused::NotAcked) => Err(ApiError::api(format!(
            "Subscription {id} was made without acks."
        ))),
    }
}

/// `session_resume`: `{"session_id"}` → `{"session_id", "subscriptions":
/// [{"subscription_id", "queue_name", "cursor"}]}`.
fn resume(
    api: &Api,
    caller: &Caller,
    body: &Map<String, Value>,
    connection: &str,
    out: &mut Vec<u8>,
) -> ApiResult<()> {
    if let Some(unknown) = body.keys().find(|k| k.as_str() != "session_id") {
        return Err(ApiError::api(format!("Unknown resume option {unknown:?}.")));
    }
    let Some(Value::String(session_id)) = body.get("session_id") else {
        return Err(ApiError::api("Missing parameter session_id in body."));
    };
    let resumed = api
        .notify
        .pushes
        .resume(
            connection,
            session_id,
            caller.project.as_str(),
            caller.client_id.as_str(),
        )
        .map_err(|refused| match refused {
            ResumeRefused::Unknown => {
                ApiError::NotFound(format!("Session {session_id} does not exist"))
            }
            ResumeRefused::NotOwner => ApiError::Forbidden,
        })?;
    out.extend_from_slice(b"{\"session_id\":");
    push_str(out, session_id);
    out.extend_from_slice(b",\"subscriptions\":[");
    for (index, subscription) in resumed.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"subscription_id\":");
        push_str(out, &subscription.subscription_id);
        out.extend_from_slice(b",\"queue_name\":");
        push_str(out, &subscription.queue.name);
        out.extend_from_slice(format!(",\"cursor\":{}}}", subscription.cursor).as_bytes());
    }
    out.extend_from_slice(b"]}");
    Ok(())
}
