//! Queue statistics and purge.

use plugin_api::storage::{MessageStore, SubscriptionListQuery};
use serde_json::Value;

use super::{
    action::{Caller, Reply},
    body::parse_optional_object,
    errors::{ApiError, ApiResult},
    queues::queue_ref,
    validation::QueueName,
    Api,
};

/// `queue_get_stats`: counts and the oldest/newest message; a missing queue
/// has zero counts.
pub async fn get(api: &Api, caller: &Caller, queue: &QueueName) -> ApiResult<Reply> {
    let queue = queue_ref(caller, queue);
    let stats = api
        .stores
        .messages
        .queue_stats(queue, api.now_ms())
        .await
        .map_err(|e| ApiError::storage(e, "Queue stats could not be read."))?;
    Ok(Reply::Stats(stats))
}

/// How many subscriptions to delete per round of a purge.
const PURGE_PAGE: u32 = 100;
/// At most this many rounds of subscription deletion per purge.
const MAX_PURGE_ROUNDS: usize = 10_000;

/// `queue_purge`: deletes the messages and/or subscriptions of a queue
/// (all of them, however many), keeping the queue.
pub async fn purge(
    api: &Api,
    caller: &Caller,
    queue: &QueueName,
    body: Option<&[u8]>,
) -> ApiResult<Reply> {
    const FAILED: &str = "Queue could not be purged.";
    let document = parse_optional_object(body)?;
    let (messages, subscriptions) = if body.is_none_or(<[u8]>::is_empty) {
        (true, true)
    } else {
        resource_types(document.get("resource_types"))?
    };
    let queue = queue_ref(caller, queue);
    let store = &api.stores.messages;
    if messages {
        store
            .message_purge(queue.clone())
            .await
            .map_err(|e| ApiError::storage(e, FAILED))?;
    }
    if subscriptions {
        // Bounded, so a store that fails to delete cannot spin us forever.
        for _ in 0..MAX_PURGE_ROUNDS {
            let query = SubscriptionListQuery {
                marker: None.into(),
                limit: PURGE_PAGE,
            };
            let page = store
                .subscription_list(queue.clone(), query, api.now_ms())
                .await
                .map_err(|e| ApiError::storage(e, FAILED))?;
            for subscription in page.iter() {
                store
                    .subscription_delete(queue.clone(), subscription.id.clone())
                    .await
                    .map_err(|e| ApiError::storage(e, FAILED))?;
            }
            if page.len() < PURGE_PAGE as usize {
                break;
            }
        }
    }
    Ok(Reply::Done)
}

/// Zaqar's `queue_purging`: which of `messages` / `subscriptions` to purge.
fn resource_types(value: Option<&Value>) -> ApiResult<(bool, bool)> {
    let Some(value) = value else {
        return Err(ApiError::api(
            "Post body must contain key \"resource_types\".",
        ));
    };
    let invalid =
        || ApiError::api("Resource types must be a sub set of {'subscriptions', 'messages'}.");
    let Value::Array(items) = value else {
        return Err(invalid());
    };
    let (mut messages, mut subscriptions) = (false, false);
    for item in items {
        match item.as_str() {
            Some("messages") => messages = true,
            Some("subscriptions") => subscriptions = true,
            _ => return Err(invalid()),
        }
    }
    Ok((messages, subscriptions))
}
