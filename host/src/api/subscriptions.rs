//! Subscription actions: list, create, get, update, confirm, delete.
//! Confirmations and notifications are the notifier's business.

use plugin_api::{
    storage::{
        MessageStore, NewSubscription, QueueRef, SubscriptionCreated, SubscriptionListQuery,
        SubscriptionPatch,
    },
    types::{ROption, RVec},
    ErrorCode,
};
use serde_json::{Map, Value};

use crate::{
    push::{Format, StreamSpec},
    streams::options::{self, StreamOptions},
};

use super::{
    action::{Caller, PageQuery, Reply, SocketStream},
    body::{int_value, parse_optional_object},
    command::PageArgs,
    errors::{ApiError, ApiResult},
    metadata::check_retry_policy,
    queues::queue_ref,
    validation::{page_limit, PageKind, QueueName, MIN_SUBSCRIPTION_TTL},
    Api,
};

/// A subscription document's fields, validated (Zaqar's
/// `subscription_patching`, with strict types).
#[derive(Debug, Default)]
struct SubscriptionFields {
    subscriber: Option<String>,
    ttl: Option<u32>,
    options: Option<Vec<u8>>,
}

fn validate(document: &Map<String, Value>, api: &Api) -> ApiResult<SubscriptionFields> {
    if document.is_empty() {
        return Err(ApiError::api("No subscription to create."));
    }
    let mut fields = SubscriptionFields::default();
    if let Some(subscriber) = document.get("subscriber") {
        let supported = &api.limits.subscriber_types;
        match subscriber.as_str() {
            Some(uri) if url_scheme(uri).is_some_and(|scheme| supported.contains(&scheme)) => {
                if !api.allow_private_subscribers {
                    check_public_address(uri)?;
                }
                fields.subscriber = Some(uri.to_string());
            }
            _ => {
                // Zaqar prints the list as a Python list; kept for clients that match on it.
                let listed: Vec<String> = supported.iter().map(|s| format!("'{s}'")).collect();
                return Err(ApiError::api(format!(
                    "The subscriber type of subscription must be supported in the list [{}].",
                    listed.join(", ")
                )));
            }
        }
    }
    match document.get("options") {
        None | Some(Value::Null) => {}
        Some(Value::Object(options)) => {
            check_retry_policy(options.get("_retry_policy")).map_err(ApiError::api)?;
            fields.options = Some(serde_json::to_vec(options).unwrap_or_else(|_| b"{}".to_vec()));
        }
        Some(_) => return Err(ApiError::api("Options must be a dict.")),
    }
    match document.get("ttl") {
        None | Some(Value::Null) => {}
        Some(value) => {
            let ttl = int_value(value).ok_or_else(|| ApiError::api("TTL must be an integer."))?;
            // A ttl of 0 is too short like any other below the minimum.
            if ttl < MIN_SUBSCRIPTION_TTL {
                return Err(ApiError::api(format!(
                    "The TTL for a subscription must be at least {MIN_SUBSCRIPTION_TTL} seconds long."
                )));
            }
            let ttl = u32::try_from(ttl).map_err(|_| {
                ApiError::api(
                    "The TTL seconds for a subscription plus current time must be less than 9999-12-31 23:59:59.999999.",
                )
            })?;
            fields.ttl = Some(ttl);
        }
    }
    Ok(fields)
}

/// The scheme of a URI as Python's `urlparse` finds it, lowercased.
/// Refuses web subscribers whose host is a loopback, link-local or private
/// address (or `localhost`): otherwise a tenant could make the server POST
/// into the operator's network. Names are checked again by the webhook sink
/// on every resolved address, so DNS cannot get around this.
fn check_public_address(uri: &str) -> ApiResult<()> {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Ok(());
    };
    if !matches!(
        scheme.to_ascii_lowercase().as_str(),
        "http" | "https" | "trust+http" | "trust+https"
    ) {
        return Ok(());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    let lowered = host.to_ascii_lowercase();
    let private = lowered == "localhost"
        || lowered.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(plugin_api::net::is_private_address);
    if private {
        return Err(ApiError::api(format!(
            "The subscriber {uri} is not allowed: {host} is a loopback, link-local or private address."
        )));
    }
    Ok(())
}

/// The scheme of a subscriber URI, lowercased, as Python's `urlparse` finds
/// it; `None` when there is none.
pub(crate) fn url_scheme(uri: &str) -> Option<String> {
    let (scheme, _) = uri.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then(|| scheme.to_ascii_lowercase())
}

/// `subscription_list`: a page of the queue's live subscriptions.
pub async fn list(
    api: &Api,
    caller: &Caller,
    queue: &QueueName,
    args: &PageArgs,
) -> ApiResult<Reply> {
    let marker = args.marker.clone();
    let requested_limit = args.limit;
    let limit = page_limit(
        requested_limit,
        api.limits.max_subscriptions_per_page,
        PageKind::Items,
    )?;
    let mut page = PageQuery {
        pairs: Vec::new(),
        marker_first: marker.is_some(),
    };
    if let Some(limit) = requested_limit {
        page.pairs.push(("limit", limit.to_string()));
    }
    let queue = queue_ref(caller, queue);
    let query = SubscriptionListQuery {
        marker: marker.map(Into::into).into(),
        limit,
    };
    let subscriptions = api
        .stores
        .messages
        .subscription_list(queue, query, api.now_ms())
        .await
        .map_err(|e| ApiError::storage(e, "Subscriptions could not be listed."))?;
    Ok(Reply::SubscriptionList {
        subscriptions: subscriptions.into_vec(),
        page,
    })
}

/// Creates the queue if missing, then stores the subscription (or
/// finds the existing one for the same subscriber).
async fn store_subscription(
    api: &Api,
    queue: &QueueRef,
    subscriber: String,
    fields: SubscriptionFields,
) -> ApiResult<SubscriptionCreated> {
    const FAILED: &str = "Subscription could not be created.";
    let store = &api.stores.messages;
    let now = api.now_ms();
    store
        .queue_create(queue.clone(), RVec::from(b"{}".to_vec()), now)
        .await
        .map_err(|e| ApiError::storage(e, FAILED))?;
    let subscription = NewSubscription {
        subscriber: subscriber.into(),
        ttl: fields.ttl.unwrap_or(api.limits.default_subscription_ttl),
        options: fields.options.unwrap_or_else(|| b"{}".to_vec()).into(),
    };
    store
        .subscription_create(queue.clone(), subscription, now)
        .await
        .map_err(|e| ApiError::storage(e, FAILED))
}

/// `subscription_create`: validates first (before anything is written),
/// creates the queue if missing, then stores the subscription. A duplicate
/// of an unconfirmed subscription answers with the existing id; of a
/// confirmed one, 409.
pub async fn create(
    api: &Api,
    caller: &Caller,
    queue_name: &QueueName,
    body: Option<&[u8]>,
) -> ApiResult<Reply> {
    let document = parse_optional_object(body)?;
    if !document.contains_key("subscriber") {
        return Err(ApiError::api("Missing parameter subscriber in body."));
    }
    let mut fields = validate(&document, api)?;
    let queue = queue_ref(caller, queue_name);
    let subscriber = fields.subscriber.take().unwrap_or_default();
    let ttl = fields.ttl.unwrap_or(api.limits.default_subscription_ttl);
    let outcome = store_subscription(api, &queue, subscriber, fields).await?;
    if !outcome.created && outcome.confirmed {
        return Err(ApiError::Conflict {
            description: "Such subscription already exists.Subscriptions are unique by project + queue + subscriber URI."
                .into(),
            location: Some(format!("/v2/queues/{queue_name}/subscriptions")),
        });
    }
    // New, or re-posted while unconfirmed: deliver, and ask for
    // confirmation (again) when required.
    api.notify
        .subscription_created(&queue, outcome.id.as_str(), ttl);
    Ok(Reply::SubscriptionCreated {
        id: outcome.id.into_string(),
        created: outcome.created,
        stream: None,
    })
}

/// `subscription_create` without `subscriber` over WebSocket: the socket
/// itself subscribes. The subscription is stored (listings show it,
/// with subscriber `websocket:<connection>`) and deleted when the socket
/// closes (or its session expires); posts to the queue are pushed to the
/// socket in the encoding of this request (`binary` = MessagePack). The
/// body (`body`, the frame's whole body) may ask for history, a filter and
/// acks (see [`crate::streams`]).
pub async fn create_for_socket(
    api: &Api,
    caller: &Caller,
    queue: &QueueName,
    body: Option<&[u8]>,
    connection: &str,
    binary: bool,
) -> ApiResult<Reply> {
    let mut document = parse_optional_object(body)?;
    let options = StreamOptions::from_socket_body(&document)?;
    for member in [
        "subscriber",
        "queue_name",
        "since_seq",
        "last_n",
        "since",
        "filter",
        "ack",
    ] {
        document.remove(member);
    }
    let fields = if document.is_empty() {
        SubscriptionFields::default()
    } else {
        validate(&document, api)?
    };
    let pushes = &api.notify.pushes;
    if !pushes.is_open(connection) {
        return Err(ApiError::api(
            "This connection cannot receive notifications.",
        ));
    }
    let cap = api.streams.max_subscriptions_per_socket;
    if pushes.subscription_count(connection) >= cap {
        return Err(ApiError::api(format!(
            "This connection already holds {cap} subscriptions, the most one socket may hold."
        )));
    }
    let queue = queue_ref(caller, queue);
    // Pushes start after the last message posted before this request,
    // unless the body asked for history.
    let start = options::resolve(&api.stores.messages, &queue, options.start).await?;
    let subscriber = api.notify.socket_subscriber(connection);
    let outcome = store_subscription(api, &queue, subscriber, fields).await?;
    let id = outcome.id.into_string();
    let spec = StreamSpec {
        format: if binary {
            Format::MsgPack
        } else {
            Format::Json
        },
        after_seq: start.after_seq,
        gap: start.gap,
        filter: options.filter,
        acks: options.ack,
    };
    let owner = Some((
        caller.project.as_str().to_string(),
        caller.client_id.as_str().to_string(),
    ));
    if outcome.created && !pushes.subscribe_with(connection, queue.clone(), &id, owner, spec) {
        // The socket closed meanwhile: nothing else would delete it.
        let _ = api
            .stores
            .messages
            .subscription_delete(queue, id.clone().into())
            .await;
        return Err(ApiError::api(
            "This connection cannot receive notifications.",
        ));
    }
    Ok(Reply::SubscriptionCreated {
        id,
        created: outcome.created,
        stream: pushes
            .session_id(connection)
            .map(|session_id| SocketStream {
                session_id,
                last_seq: start.last_seq,
            }),
    })
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("Subscription {id} does not exist"))
}

/// `subscription_get`: one live subscription.
pub async fn get(api: &Api, caller: &Caller, queue: &QueueName, id: &str) -> ApiResult<Reply> {
    let queue = queue_ref(caller, queue);
    let found = api
        .stores
        .messages
        .subscription_get(queue, id.into(), api.now_ms())
        .await
        .map_err(|e| ApiError::storage(e, "Subscription could not be retrieved."))?;
    match found {
        ROption::RSome(subscription) => Ok(Reply::Subscription(subscription)),
        ROption::RNone => Err(not_found(id)),
    }
}

/// `subscription_update`: changes subscriber, ttl and/or options.
pub async fn update(
    api: &Api,
    caller: &Caller,
    queue: &QueueName,
    id: &str,
    body: Option<&[u8]>,
) -> ApiResult<Reply> {
    let document = parse_optional_object(body)?;
    let fields = validate(&document, api)?;
    // Zaqar's storage refuses unknown fields with this answer (kept here
    // for input errors only).
    if document
        .keys()
        .any(|key| !matches!(key.as_str(), "subscriber" | "ttl" | "options"))
    {
        return Err(ApiError::UnableToUpdateSubscription { id: id.to_string() });
    }
    let patch = SubscriptionPatch {
        subscriber: fields.subscriber.map(Into::into).into(),
        ttl: fields.ttl.into(),
        options: fields.options.map(RVec::from).into(),
    };
    let queue = queue_ref(caller, queue);
    match api
        .stores
        .messages
        .subscription_update(queue.clone(), id.into(), patch, api.now_ms())
        .await
    {
        Ok(()) => Ok(Reply::Done),
        Err(error) => Err(match error.code {
            ErrorCode::SUBSCRIPTION_NOT_FOUND | ErrorCode::QUEUE_NOT_FOUND => not_found(id),
            ErrorCode::CONFLICT => ApiError::Conflict {
                description:
                    "Such subscription already exists. Subscriptions are unique by project + queue + subscriber URI."
                        .into(),
                location: None,
            },
            _ => ApiError::storage(error, "Subscription could not be updated."),
        }),
    }
}

/// `subscription_confirm`: sets the confirmed flag.
pub async fn confirm(
    api: &Api,
    caller: &Caller,
    queue: &QueueName,
    id: &str,
    body: Option<&[u8]>,
) -> ApiResult<Reply> {
    let document = parse_optional_object(body)?;
    let Some(Value::Bool(confirmed)) = document.get("confirmed") else {
        return Err(ApiError::api("The 'confirmed' should be boolean."));
    };
    let queue = queue_ref(caller, queue);
    match api
        .stores
        .messages
        .subscription_confirm(queue.clone(), id.into(), *confirmed, api.now_ms())
        .await
    {
        Ok(()) => {
            api.notify.subscription_confirmed(&queue, id, *confirmed);
            Ok(Reply::Done)
        }
        Err(error)
            if matches!(
                error.code,
                ErrorCode::SUBSCRIPTION_NOT_FOUND | ErrorCode::QUEUE_NOT_FOUND
            ) =>
        {
            Err(not_found(id))
        }
        Err(error) => Err(ApiError::storage(
            error,
            "Subscription could not be confirmed.",
        )),
    }
}

/// `subscription_delete`: an unknown subscription is fine.
pub async fn delete(api: &Api, caller: &Caller, queue: &QueueName, id: &str) -> ApiResult<Reply> {
    let queue = queue_ref(caller, queue);
    api.stores
        .messages
        .subscription_delete(queue, id.into())
        .await
        .map_err(|e| ApiError::storage(e, "Subscription could not be deleted."))?;
    Ok(Reply::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_scheme_is_what_python_urlparse_finds() {
        assert_eq!(url_scheme("HTTP://x").as_deref(), Some("http"));
        assert_eq!(url_scheme("mailto:a@b").as_deref(), Some("mailto"));
        assert_eq!(
            url_scheme("trust+https://x").as_deref(),
            Some("trust+https")
        );
        assert_eq!(url_scheme("1http://x"), None);
        assert_eq!(url_scheme("no-scheme"), None);
    }

    #[test]
    fn web_subscribers_in_private_ranges_are_refused() {
        for uri in [
            "http://127.0.0.1:8080/hook",
            "https://localhost/x",
            "http://api.localhost/x",
            "http://user:pw@10.0.0.5/x",
            "http://[::1]:9000/",
            "http://169.254.169.254/latest/meta-data",
            "trust+http://192.168.0.1/",
        ] {
            assert!(check_public_address(uri).is_err(), "{uri}");
        }
        for uri in [
            "http://example.com/hook",
            "https://8.8.8.8/x",
            "mailto:ops@example.com",
        ] {
            assert!(check_public_address(uri).is_ok(), "{uri}");
        }
    }
}
