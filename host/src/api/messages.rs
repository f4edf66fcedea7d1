//! Message actions: post, list, get (one or many), delete (one, many, pop).

use plugin_api::{
    storage::{MessageListQuery, MessageStore, NewMessage, QueueRef, StoredMessage},
    types::{ROption, RString, RVec},
    ErrorCode,
};

use crate::metrics::{self, StoreOp};

use super::{
    action::{Caller, PageQuery, Reply},
    command::{DeleteManyArgs, MessageListArgs, PostBody},
    errors::{ApiError, ApiResult},
    metadata::QueuePolicy,
    post_body::{read_post, read_post_messages},
    queues::queue_ref,
    validation::{message_delay, message_ttl, page_limit, PageKind, QueueName},
    Api,
};

/// Reads the queue's reserved metadata once (a missing queue has none).
async fn policy(api: &Api, queue: &QueueRef, what: &'static str) -> ApiResult<QueuePolicy> {
    let stored = api
        .stores
        .messages
        .queue_get_metadata(queue.clone())
        .await
        .map_err(|e| ApiError::storage(e, what))?;
    Ok(QueuePolicy::from_stored(
        stored.as_ref().into_option().map(|bytes| bytes.as_slice()),
    ))
}

/// `message_post`: validates every message, then enqueues them all (the
/// store creates a missing queue). One metadata read; bodies go to the
/// store as the bytes received.
pub async fn post(
    api: &Api,
    caller: &Caller,
    queue: &QueueName,
    body: &PostBody<'_>,
) -> ApiResult<Reply> {
    const FAILED: &str = "Messages could not be enqueued.";
    let queue = queue_ref(caller, queue);
    let policy = policy(api, &queue, FAILED).await?;
    let limits = &api.limits;

    let size = post_size(body);
    let configured = limits.max_messages_post_size;
    match policy.max_messages_post_size.filter(|&q| q > 0) {
        Some(queue_max) if size > configured.min(queue_max as u64) => {
            let effective = configured.min(queue_max as u64);
            return Err(ApiError::api(format!(
                "Message collection size is too large. The max size for current queue is {effective}. It is calculated by max size = min(max_messages_post_size_config: {configured}, max_messages_post_size_queue: {queue_max})."
            )));
        }
        None if size > configured => {
            return Err(ApiError::api(format!(
                "Message collection size is too large. Max size {configured}"
            )));
        }
        _ => {}
    }

    let incoming = match body {
        PostBody::Document(document) => read_post(*document)?,
        PostBody::Messages(messages) => read_post_messages(*messages)?,
    };
    let default_ttl = policy
        .default_message_ttl
        .filter(|&ttl| ttl > 0)
        .unwrap_or(i64::from(limits.default_message_ttl));
    let default_delay = policy
        .default_message_delay
        .unwrap_or(i64::from(limits.default_message_delay));
    let mut messages = Vec::with_capacity(incoming.len());
    for message in &incoming {
        // A per-message delay is always honoured and validated, whatever
        // the queue's default.
        let ttl = message_ttl(message.ttl.unwrap_or(default_ttl), limits)?;
        let delay = message_delay(message.delay.unwrap_or(default_delay), limits)?;
        messages.push(NewMessage {
            ttl,
            delay,
            body: RVec::from(message.body.as_bytes()),
        });
    }
    let posted = metrics::timed(
        StoreOp::MessagePost,
        api.stores.messages.message_post(
            queue.clone(),
            caller.client_id.as_str().into(),
            messages.into(),
            api.now_ms(),
        ),
        |posted| posted.len(),
    )
    .await
    .map_err(|e| ApiError::storage(e, FAILED))?;
    metrics::global().posted(posted.len());
    // Subscribers hear of it from the store's change feed once it has
    // committed (crate::events), on every host sharing the store.
    Ok(Reply::Posted(posted.into_vec()))
}

/// `message_list`: a page of messages in enqueue order. `echo=false` (the
/// default) hides the caller's own messages; delayed messages are shown
/// unless the queue has a default delay.
pub async fn list(
    api: &Api,
    caller: &Caller,
    queue: &QueueName,
    args: &MessageListArgs,
) -> ApiResult<Reply> {
    const FAILED: &str = "Messages could not be listed.";
    let marker = args.marker.clone();
    let requested_limit = args.limit;
    let echo = args.echo;
    let include_claimed = args.include_claimed;
    let mut include_delayed = args.include_delayed;
    let limit = page_limit(
        requested_limit,
        api.limits.max_messages_per_page,
        PageKind::Items,
    )?;
    let queue = queue_ref(caller, queue);
    if !policy(api, &queue, FAILED).await?.has_default_delay() {
        include_delayed = Some(true);
    }

    let mut page = PageQuery {
        pairs: Vec::new(),
        marker_first: marker.is_some(),
    };
    if let Some(limit) = requested_limit {
        page.pairs.push(("limit", limit.to_string()));
    }
    for (name, value) in [
        ("echo", echo),
        ("include_claimed", include_claimed),
        ("include_delayed", include_delayed),
    ] {
        if let Some(value) = value {
            page.pairs.push((name, value.to_string()));
        }
    }

    // Markers are sequence numbers; anything else reads as past the end
    // (MongoDB's answer to a non-integer marker is an empty page).
    let after_seq = match marker.as_deref().map(str::parse::<u64>) {
        None => None,
        Some(Ok(seq)) => Some(seq),
        Some(Err(_)) => {
            return Ok(Reply::MessageList {
                messages: Vec::new(),
                page,
            })
        }
    };
    let query = MessageListQuery {
        after_seq: after_seq.into(),
        limit,
        exclude_client: if echo == Some(true) {
            ROption::RNone
        } else {
            ROption::RSome(caller.client_id.as_str().into())
        },
        include_claimed: include_claimed == Some(true),
        include_delayed: include_delayed == Some(true),
    };
    let messages = api
        .stores
        .messages
        .message_list(queue, query, api.now_ms())
        .await
        .map_err(|e| ApiError::storage(e, FAILED))?;
    Ok(Reply::MessageList {
        messages: messages.into_vec(),
        page,
    })
}

/// `message_get_many`: the live messages among `ids`; none found is a 404.
pub async fn get_many(
    api: &Api,
    caller: &Caller,
    queue: &QueueName,
    ids: &[String],
) -> ApiResult<Reply> {
    let max = api.limits.max_messages_per_page;
    if ids.is_empty() || ids.len() > max as usize {
        return Err(ApiError::api(format!(
            "Limit must be at least 1 and may not be greater than {max}."
        )));
    }
    let queue = queue_ref(caller, queue);
    let found = fetch(api, &queue, ids, "Message could not be retrieved.").await?;
    if found.is_empty() {
        // Zaqar's sentence, with a JSON list where Zaqar prints a Python one.
        let listed = serde_json::to_string(&ids)
            .unwrap_or_default()
            .replace("\",\"", "\", \"");
        return Err(ApiError::NotFound(format!(
            "No messages with IDs: {listed} found in the queue {} for project {}.",
            queue.name, queue.project
        )));
    }
    Ok(Reply::MessageGetMany(found))
}

/// `message_get`: one message, claimed or delayed ones included.
pub async fn get(api: &Api, caller: &Caller, queue: &QueueName, id: &str) -> ApiResult<Reply> {
    let id = id.to_string();
    let queue = queue_ref(caller, queue);
    let found = fetch(
        api,
        &queue,
        std::slice::from_ref(&id),
        "Message could not be retrieved.",
    )
    .await?;
    match found.into_iter().next() {
        Some(message) => Ok(Reply::Message(message)),
        None => Err(ApiError::NotFound(format!(
            "Message {id} does not exist in queue {} for project {}",
            queue.name, queue.project
        ))),
    }
}

async fn fetch(
    api: &Api,
    queue: &QueueRef,
    ids: &[String],
    what: &'static str,
) -> ApiResult<Vec<StoredMessage>> {
    let ids: RVec<RString> = ids.iter().map(|id| RString::from(id.as_str())).collect();
    let found = api
        .stores
        .messages
        .message_get_many(queue.clone(), ids, api.now_ms())
        .await
        .map_err(|e| ApiError::storage(e, what))?;
    Ok(found.into_vec())
}

/// The size a post is measured by: the document's bytes (over WebSocket,
/// the `{"messages":...}` document the frame's field makes).
fn post_size(body: &PostBody<'_>) -> u64 {
    match body {
        PostBody::Document(document) => document.map_or(0, <[u8]>::len) as u64,
        PostBody::Messages(None) => 2,
        PostBody::Messages(Some(messages)) => {
            (messages.text.len() + r#"{"messages":}"#.len()) as u64
        }
    }
}

const CLAIMED: ApiError = ApiError::UnableToDelete {
    status: 403,
    description: "This message is claimed; it cannot be deleted without a valid claim ID.",
};
const NOT_CLAIMED: ApiError = ApiError::UnableToDelete {
    status: 400,
    description: "A claim was specified, but the message is not currently claimed.",
};
const NO_SUCH_CLAIM: ApiError = ApiError::UnableToDelete {
    status: 400,
    description: "The specified claim does not exist or has expired.",
};

/// `message_delete`: deletes one message; a claimed one only with its
/// live claim's id. A missing message is fine.
pub async fn delete(
    api: &Api,
    caller: &Caller,
    queue: &QueueName,
    id: &str,
    claim_id: Option<&str>,
) -> ApiResult<Reply> {
    let claim_id = claim_id.map(RString::from);
    let queue = queue_ref(caller, queue);
    let store = &api.stores.messages;
    let result = metrics::timed(
        StoreOp::MessageDelete,
        store.message_delete(
            queue.clone(),
            id.into(),
            claim_id.clone().into(),
            api.now_ms(),
        ),
        |_| 1,
    )
    .await;
    match result {
        Ok(()) => {
            metrics::global().deleted(1);
            Ok(Reply::Done)
        }
        Err(error) => Err(match error.code {
            // Zaqar tells a claim that does not exist (400) from another
            // live claim (403); the store reports both as "claimed".
            ErrorCode::MESSAGE_IS_CLAIMED => match claim_id {
                Some(claim_id) => match store.claim_get(queue, claim_id, api.now_ms()).await {
                    Ok(ROption::RNone) => NO_SUCH_CLAIM,
                    _ => CLAIMED,
                },
                None => CLAIMED,
            },
            ErrorCode::MESSAGE_NOT_CLAIMED => NOT_CLAIMED,
            ErrorCode::CLAIM_NOT_FOUND => NO_SUCH_CLAIM,
            _ => ApiError::storage(error, "Message could not be deleted."),
        }),
    }
}

/// `message_delete_many`: `ids` deletes those messages (claimed ones too,
/// unless `message_delete_with_claim_id` asks for their claims); `pop=N`
/// removes and returns up to N available messages.
pub async fn delete_many(
    api: &Api,
    caller: &Caller,
    queue: &QueueName,
    args: &DeleteManyArgs,
) -> ApiResult<Reply> {
    let limits = &api.limits;
    let DeleteManyArgs {
        ids,
        claim_ids,
        pop,
    } = args.clone();

    // Zaqar's `message_deletion`, in its order.
    if ids.is_some() && pop.is_some_and(|n| n != 0) {
        return Err(ApiError::api(
            "pop and id params cannot be present together in the delete request.",
        ));
    }
    if ids.is_none() && pop.is_none() {
        return Err(ApiError::api(
            "The request should have either \"ids\" or \"pop\" parameter in the request, to be able to delete.",
        ));
    }
    if limits.message_delete_with_claim_id && ids.is_some() != claim_ids.is_some() {
        return Err(ApiError::api(
            "The request should have both \"ids\" and \"claim_ids\" parameter in the request when message_delete_with_claim_id is True.",
        ));
    }
    let pop_max = limits.max_messages_per_claim_or_pop;
    if let Some(pop) = pop {
        if pop < 1 || pop > i64::from(pop_max) {
            return Err(ApiError::api(format!(
                "Pop value must be at least 1 and may not be greater than {pop_max}."
            )));
        }
    }
    let delete_max = limits.max_messages_per_page;
    if let Some(ids) = &ids {
        if ids.len() > delete_max as usize {
            return Err(ApiError::api(format!(
                "ids parameter should have at least 1 and not greater than {delete_max} values."
            )));
        }
    }

    let queue = queue_ref(caller, queue);
    let store = &api.stores.messages;
    let now = api.now_ms();
    match (ids, pop) {
        (Some(ids), _) => {
            if let Some(claim_ids) = &claim_ids {
                let messages = fetch(api, &queue, &ids, "Messages could not be deleted.").await?;
                check_claims_held(&messages, claim_ids, now)?;
            }
            let ids: RVec<RString> = ids.iter().map(|id| RString::from(id.as_str())).collect();
            let named = ids.len();
            metrics::timed(
                StoreOp::MessageDeleteMany,
                store.message_delete_many(queue, ids, now),
                |_| named,
            )
            .await
            .map_err(|e| ApiError::storage(e, "Messages could not be deleted."))?;
            // Ids already gone count too: the store does not say which were.
            metrics::global().deleted(named);
            Ok(Reply::Done)
        }
        (None, Some(pop)) => {
            let popped = metrics::timed(
                StoreOp::MessagePop,
                store.message_pop(queue, pop as u32, now),
                |popped| popped.len(),
            )
            .await
            .map_err(|e| ApiError::storage(e, "Messages could not be popped."))?;
            metrics::global().deleted(popped.len());
            Ok(Reply::Popped(popped.into_vec()))
        }
        (None, None) => Ok(Reply::Done),
    }
}

/// With `message_delete_with_claim_id`, every claimed message must be named
/// by its claim, and every claim named must hold one of the messages
/// (a client error, where Zaqar answers 503).
fn check_claims_held(
    messages: &[StoredMessage],
    claim_ids: &[String],
    now_ms: u64,
) -> ApiResult<()> {
    fn live_claim(message: &StoredMessage, now_ms: u64) -> Option<&str> {
        message
            .claim
            .as_ref()
            .into_option()
            .filter(|claim| claim.expires_ms > now_ms)
            .map(|claim| claim.id.as_str())
    }
    for claim_id in claim_ids {
        if !messages
            .iter()
            .any(|m| live_claim(m, now_ms) == Some(claim_id.as_str()))
        {
            return Err(NO_SUCH_CLAIM);
        }
    }
    for message in messages {
        if let Some(claim) = live_claim(message, now_ms) {
            if !claim_ids.iter().any(|id| id == claim) {
                return Err(CLAIMED);
            }
        }
    }
    Ok(())
}
