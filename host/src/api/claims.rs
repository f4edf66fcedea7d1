//! Claim actions: create (with the queue's dead-letter policy), get,
//! update, delete.

use plugin_api::{
    storage::{ClaimRequest, DeadLetterPolicy, MessageStore},
    types::ROption,
    ErrorCode,
};

use crate::metrics::{self, StoreOp};

use super::{
    action::{Caller, Reply},
    body::{int_field, parse_object, parse_optional_object},
    errors::{ApiError, ApiResult},
    metadata::QueuePolicy,
    queues::queue_ref,
    validation::{claim_grace, claim_limit, claim_ttl, QueueName},
    Api,
};

/// `claim_create`: claims up to `limit` available messages, oldest first.
/// An empty claim (nothing claimable, or a missing queue) is still a
/// success; the front end answers 204.
pub async fn create(
    api: &Api,
    caller: &Caller,
    queue: &QueueName,
    requested_limit: Option<i64>,
    body: Option<&[u8]>,
) -> ApiResult<Reply> {
    const FAILED: &str = "Claim could not be created.";
    let limits = &api.limits;
    let fields = parse_optional_object(body)?;
    let ttl = int_field(&fields, "ttl")?.unwrap_or(i64::from(limits.default_claim_ttl));
    let grace = int_field(&fields, "grace")?.unwrap_or(i64::from(limits.default_claim_grace));
    // Zaqar's `claim_creation` order: ttl, limit, grace.
    let ttl = claim_ttl(ttl, limits)?;
    let limit = claim_limit(requested_limit, limits)?;
    let grace = claim_grace(grace, limits)?;

    let queue = queue_ref(caller, queue);
    let store = &api.stores.messages;
    let stored = store
        .queue_get_metadata(queue.clone())
        .await
        .map_err(|e| ApiError::storage(e, FAILED))?;
    let policy =
        QueuePolicy::from_stored(stored.as_ref().into_option().map(|bytes| bytes.as_slice()));
    let request = ClaimRequest {
        ttl,
        grace,
        limit,
        dead_letter: dead_letter(&policy).into(),
    };
    let claim = metrics::timed(
        StoreOp::ClaimCreate,
        store.claim_create(queue, request, api.now_ms()),
        |claim| claim.messages.len(),
    )
    .await
    .map_err(|e| ApiError::storage(e, FAILED))?;
    metrics::global().claimed(claim.messages.len());
    Ok(Reply::ClaimCreated(claim))
}

/// The queue's dead-letter policy: a message claimed `_max_claim_count`
/// times moves to `_dead_letter_queue`; both must be set.
pub(crate) fn dead_letter(policy: &QueuePolicy) -> Option<DeadLetterPolicy> {
    let max_claim_count = u32::try_from(policy.max_claim_count?)
        .ok()
        .filter(|&count| count > 0)?;
    let queue = policy
        .dead_letter_queue
        .as_deref()
        .filter(|name| !name.is_empty())?;
    Some(DeadLetterPolicy {
        max_claim_count,
        queue: queue.into(),
        message_ttl: policy
            .dead_letter_queue_messages_ttl
            .and_then(|ttl| u32::try_from(ttl).ok())
            .into(),
    })
}

fn not_found(caller: &Caller, queue: &QueueName, claim_id: &str) -> ApiError {
    ApiError::NotFound(format!(
        "Claim {claim_id} does not exist in queue {queue} for project {}",
        caller.project
    ))
}

/// `claim_get`: a live claim with its messages.
pub async fn get(
    api: &Api,
    caller: &Caller,
    queue_name: &QueueName,
    claim_id: &str,
) -> ApiResult<Reply> {
    let queue = queue_ref(caller, queue_name);
    let found = api
        .stores
        .messages
        .claim_get(queue, claim_id.into(), api.now_ms())
        .await
        .map_err(|e| ApiError::storage(e, "Claim could not be queried."))?;
    match found {
        ROption::RSome(claim) => Ok(Reply::Claim(claim)),
        ROption::RNone => Err(not_found(caller, queue_name, claim_id)),
    }
}

/// `claim_update`: renews a live claim. `grace` is range-checked like on
/// creation (Zaqar does not check it on update).
pub async fn update(
    api: &Api,
    caller: &Caller,
    queue_name: &QueueName,
    claim_id: &str,
    body: Option<&[u8]>,
) -> ApiResult<Reply> {
    let limits = &api.limits;
    let fields = parse_object(body)?;
    let ttl = claim_ttl(
        int_field(&fields, "ttl")?.unwrap_or(i64::from(limits.default_claim_ttl)),
        limits,
    )?;
    let grace = claim_grace(
        int_field(&fields, "grace")?.unwrap_or(i64::from(limits.default_claim_grace)),
        limits,
    )?;
    let queue = queue_ref(caller, queue_name);
    match api
        .stores
        .messages
        .claim_update(queue, claim_id.into(), ttl, grace, api.now_ms())
        .await
    {
        Ok(()) => Ok(Reply::Done),
        Err(error)
            if error.code == ErrorCode::CLAIM_NOT_FOUND
                || error.code == ErrorCode::QUEUE_NOT_FOUND =>
        {
            Err(not_found(caller, queue_name, claim_id))
        }
        Err(error) => Err(ApiError::storage(error, "Claim could not be updated.")),
    }
}

/// `claim_delete`: releases the claim's messages; an unknown claim is fine.
pub async fn delete(
    api: &Api,
    caller: &Caller,
    queue: &QueueName,
    claim_id: &str,
) -> ApiResult<Reply> {
    let queue = queue_ref(caller, queue);
    api.stores
        .messages
        .claim_delete(queue, claim_id.into(), api.now_ms())
        .await
        .map_err(|e| ApiError::storage(e, "Claim could not be deleted."))?;
    Ok(Reply::Done)
}
