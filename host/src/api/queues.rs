//! Queue actions: list, create, get, update (JSON patch), delete.

use plugin_api::{
    storage::{MessageStore, QueueEntry, QueueListQuery, QueueRef},
    types::{ROption, RVec},
    ErrorCode,
};
use serde_json::{Map, Value};

use super::{
    action::{Caller, PageQuery, Reply},
    body::{parse_document, parse_optional_object},
    claims::dead_letter,
    command::QueueListArgs,
    errors::{ApiError, ApiResult},
    metadata::{check_reserved, with_defaults, QueuePolicy},
    params::parse_python_int,
    queue_patch::{apply_patch, parse_patch},
    validation::{page_limit, PageKind, QueueName},
    Api,
};

/// The parameters `GET /queues` reads, in Zaqar's order; any other
/// parameter is a metadata filter.
pub const LIST_PARAMS: [&str; 5] = ["marker", "limit", "detailed", "name", "with_count"];

/// How many queues to fetch per storage round while filtering.
const FILTER_BATCH: u32 = 100;

/// The store's reference to the caller's queue.
pub fn queue_ref(caller: &Caller, queue: &QueueName) -> QueueRef {
    QueueRef::new(caller.project.as_str(), queue.as_str())
}

/// `queue_list`: a page of the project's queues, optionally filtered by a
/// name substring (matched literally, not as a pattern) and metadata values.
pub async fn list(api: &Api, caller: &Caller, args: &QueueListArgs) -> ApiResult<Reply> {
    let marker = args.marker.clone();
    let requested_limit = args.limit;
    let detailed = args.detailed;
    let name = args.name.clone();
    let with_count = args.with_count;
    let filters: Vec<(String, Value)> = args
        .filters
        .iter()
        .cloned()
        .map(|(key, value)| {
            // Zaqar compares a filter value as an integer when it parses as one.
            let value = parse_python_int(&value)
                .map(Value::from)
                .unwrap_or(Value::String(value));
            (key, value)
        })
        .collect();
    let limit = page_limit(
        requested_limit,
        api.limits.max_queues_per_page,
        PageKind::Catalogue,
    )?;

    let mut page = PageQuery {
        pairs: Vec::new(),
        marker_first: marker.is_some(),
    };
    if let Some(limit) = requested_limit {
        page.pairs.push(("limit", limit.to_string()));
    }
    if let Some(detailed) = detailed {
        page.pairs.push(("detailed", detailed.to_string()));
    }
    if let Some(name) = &name {
        page.pairs.push(("name", name.clone()));
    }
    if let Some(with_count) = with_count {
        page.pairs.push(("with_count", with_count.to_string()));
    }

    let detailed = detailed == Some(true);
    let filtering = name.is_some() || !filters.is_empty();
    let project = caller.project.as_str();
    let store = &api.stores.messages;
    let mut found: Vec<(QueueEntry, Option<Map<String, Value>>)> = Vec::new();
    let mut cursor = marker;
    'pages: loop {
        let batch_limit = if filtering {
            FILTER_BATCH.max(limit)
        } else {
            limit
        };
        let query = QueueListQuery {
            marker: cursor.clone().map(Into::into).into(),
            limit: batch_limit,
            with_metadata: detailed || !filters.is_empty(),
        };
        let batch = store
            .queue_list(project.into(), query)
            .await
            .map_err(|e| ApiError::storage(e, "Queues could not be listed."))?;
        let exhausted = batch.len() < batch_limit as usize;
        for entry in batch {
            cursor = Some(entry.name.to_string());
            if name
                .as_ref()
                .is_some_and(|needle| !entry.name.contains(needle.as_str()))
            {
                continue;
            }
            let metadata = (detailed || !filters.is_empty()).then(|| parse_map(&entry.metadata));
            if let Some(metadata) = &metadata {
                if !filters
                    .iter()
                    .all(|(key, value)| metadata.get(key) == Some(value))
                {
                    continue;
                }
            }
            let shown = if detailed {
                metadata.map(|m| with_defaults(m, &api.limits))
            } else {
                None
            };
            found.push((entry, shown));
            if found.len() >= limit as usize {
                break 'pages;
            }
        }
        if exhausted || !filtering {
            break;
        }
    }

    // `count` is emitted whenever asked for, zero included.
    let count = if with_count == Some(true) {
        let count = store
            .queue_count(project.into())
            .await
            .map_err(|e| ApiError::storage(e, "Queues could not be listed."))?;
        Some(count)
    } else {
        None
    };
    Ok(Reply::QueueList {
        queues: found,
        count,
        page,
    })
}

/// `queue_create`: creates the queue with the body as metadata. An existing
/// queue keeps its metadata (as Zaqar does) and answers 204.
pub async fn create(
    api: &Api,
    caller: &Caller,
    queue: &QueueName,
    body: Option<&[u8]>,
) -> ApiResult<Reply> {
    let queue = queue_ref(caller, queue);
    let max = api.limits.max_queue_metadata;
    if body.is_some_and(|body| body.len() as u64 > max) {
        return Err(ApiError::api(format!(
            "Queue metadata is too large. Max size: {max}"
        )));
    }
    let metadata = parse_optional_object(body)?;
    check_reserved(&metadata, &api.limits).map_err(ApiError::api)?;
    super::pools::check_queue_flavor(api, caller, &metadata).await?;
    check_dead_letter_cycle(api, &queue, &metadata)
        .await?
        .map_or(Ok(()), |cycle| Err(ApiError::api(cycle)))?;
    let document = to_bytes(&metadata);
    let created = api
        .stores
        .messages
        .queue_create(queue, document, api.now_ms())
        .await
        .map_err(|e| ApiError::storage(e, "Queue could not be created."))?;
    Ok(Reply::QueueCreated { created })
}

/// `queue_get`: the metadata; a missing queue reads as empty (queues exist
/// lazily: Zaqar answers for a queue never created as for an empty one).
pub async fn get(api: &Api, caller: &Caller, queue: &QueueName) -> ApiResult<Reply> {
    let queue = queue_ref(caller, queue);
    let stored = api
        .stores
        .messages
        .queue_get_metadata(queue)
        .await
        .map_err(|e| ApiError::storage(e, "Queue metadata could not be retrieved."))?;
    let raw = match stored {
        ROption::RSome(bytes) => parse_map(&bytes),
        ROption::RNone => Map::new(),
    };
    let shown = with_defaults(raw.clone(), &api.limits);
    Ok(Reply::QueueMetadata { raw, shown })
}

/// The size check queue PATCH makes before anything else (even before the
/// media type): a body error, unlike PUT's.
pub fn check_patch_size(api: &Api, body: Option<&[u8]>) -> ApiResult<()> {
    let max = api.limits.max_queue_metadata;
    if body.is_some_and(|body| body.len() as u64 > max) {
        return Err(ApiError::body(format!(
            "Queue metadata is too large. Max size: {max}"
        )));
    }
    Ok(())
}

/// `queue_update`: applies JSON-patch operations to the metadata.
pub async fn update(
    api: &Api,
    caller: &Caller,
    queue: &QueueName,
    body: Option<&[u8]>,
) -> ApiResult<Reply> {
    let queue = queue_ref(caller, queue);
    check_patch_size(api, body)?;
    if body.is_none_or(<[u8]>::is_empty) {
        return Err(ApiError::body("PATCH body could not be empty for update."));
    }
    let operations = parse_patch(parse_document(body)?)?;
    let missing = format!(
        "Queue {} does not exist for project {}",
        queue.name, queue.project
    );
    let not_found = || ApiError::NotFound(missing.clone());
    let store = &api.stores.messages;
    let stored = store
        .queue_get_metadata(queue.clone())
        .await
        .map_err(|e| ApiError::storage(e, "Queue could not be updated."))?;
    let ROption::RSome(stored) = stored else {
        return Err(not_found());
    };
    let mut metadata = parse_map(&stored);
    apply_patch(&mut metadata, operations)?;
    check_reserved(&metadata, &api.limits).map_err(ApiError::body)?;
    check_dead_letter_cycle(api, &queue, &metadata)
        .await?
        .map_or(Ok(()), |cycle| Err(ApiError::body(cycle)))?;
    match store.queue_set_metadata(queue, to_bytes(&metadata)).await {
        Ok(()) => {}
        Err(error) if error.code == ErrorCode::QUEUE_NOT_FOUND => return Err(not_found()),
        Err(error) => return Err(ApiError::storage(error, "Queue could not be updated.")),
    }
    let shown = with_defaults(metadata.clone(), &api.limits);
    Ok(Reply::QueueMetadata {
        raw: metadata,
        shown,
    })
}

/// `queue_delete`: deletes the queue, its messages, claims and
/// subscriptions; a missing queue is fine.
pub async fn delete(api: &Api, caller: &Caller, queue: &QueueName) -> ApiResult<Reply> {
    let queue = queue_ref(caller, queue);
    api.stores
        .messages
        .queue_delete(queue)
        .await
        .map_err(|e| ApiError::storage(e, "Queue could not be deleted."))?;
    Ok(Reply::Done)
}

/// How many dead-letter hops are followed looking for a cycle; a longer
/// chain is refused as if it were one (it would be too long to reason
/// about anyway).
const MAX_DEAD_LETTER_HOPS: usize = 32;

/// Refuses dead-letter policies that lead back to the queue: a message
/// claimed too often would then move in circles and never be claimable
/// again. Follows the chain of the queues' active policies (both
/// `_max_claim_count` and `_dead_letter_queue` set) in the project; returns
/// the validator's message for a cycle.
async fn check_dead_letter_cycle(
    api: &Api,
    queue: &QueueRef,
    metadata: &Map<String, Value>,
) -> ApiResult<Option<String>> {
    let policy = QueuePolicy::from_stored(Some(&to_bytes(metadata)));
    let Some(mut next) = dead_letter(&policy).map(|p| p.queue.into_string()) else {
        return Ok(None);
    };
    let mut chain = vec![queue.name.to_string()];
    for _ in 0..MAX_DEAD_LETTER_HOPS {
        chain.push(next.clone());
        if next == queue.name.as_str() {
            return Ok(Some(format!(
                "The dead letter queue may not lead back to the queue: {}.",
                chain.join(" -> ")
            )));
        }
        let stored = api
            .stores
            .messages
            .queue_get_metadata(QueueRef::new(queue.project.as_str(), &next))
            .await
            .map_err(|e| ApiError::storage(e, "Queue could not be updated."))?;
        let Some(hop) = dead_letter(&QueuePolicy::from_stored(
            stored.as_ref().into_option().map(|bytes| bytes.as_slice()),
        )) else {
            return Ok(None);
        };
        next = hop.queue.into_string();
    }
    Ok(Some(format!(
        "The dead letter queues of a queue may not chain more than {MAX_DEAD_LETTER_HOPS} queues."
    )))
}

/// Stored metadata as a map (stored documents are objects the host wrote).
pub fn parse_map(bytes: &[u8]) -> Map<String, Value> {
    serde_json::from_slice(bytes).unwrap_or_default()
}

/// A map as the compact JSON bytes a store keeps.
pub fn to_bytes(map: &Map<String, Value>) -> RVec<u8> {
    // Serializing a Value into memory cannot fail.
    serde_json::to_vec(map)
        .unwrap_or_else(|_| b"{}".to_vec())
        .into()
}
