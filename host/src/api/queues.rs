//! Queue actions (`transport/wsgi/v2_0/queues.py`, §3.1): list, create,
//! get, update (JSON patch), delete.

use plugin_api::{
    storage::{MessageStore, QueueEntry, QueueListQuery, QueueRef},
    types::{ROption, RVec},
    ErrorCode,
};
use serde_json::{Map, Value};

use super::{
    action::{Call, PageQuery, Reply},
    body::{parse_document, parse_optional_object},
    errors::{ApiError, ApiResult},
    metadata::{check_reserved, with_defaults},
    params::parse_python_int,
    queue_patch::{apply_patch, parse_patch},
    validation::{page_limit, PageKind},
    Api,
};

/// The parameters `GET /queues` reads, in Zaqar's order; any other
/// parameter is a metadata filter.
const LIST_PARAMS: [&str; 5] = ["marker", "limit", "detailed", "name", "with_count"];

/// How many queues to fetch per storage round while filtering.
const FILTER_BATCH: u32 = 100;

/// The store's reference to the call's queue.
pub fn queue_ref(api_call: &Call<'_>) -> ApiResult<QueueRef> {
    Ok(QueueRef::new(
        api_call.caller.project.as_str(),
        api_call.queue()?.as_str(),
    ))
}

/// `queue_list`: a page of the project's queues, optionally filtered by a
/// name substring (literal, §8 #25) and metadata values.
pub async fn list(api: &Api, call: &Call<'_>) -> ApiResult<Reply> {
    let params = call.params;
    let marker = params.text("marker")?.map(|m| m.into_owned());
    let requested_limit = params.int("limit")?;
    let detailed = params.boolean("detailed")?;
    let name = params.text("name")?.map(|n| n.into_owned());
    let with_count = params.boolean("with_count")?;
    let filters: Vec<(String, Value)> = params
        .others(&LIST_PARAMS)
        .into_iter()
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
    let project = call.caller.project.as_str();
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

    // §8 #24: `count` is always emitted when asked for, zero included.
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
/// queue keeps its metadata (Zaqar's behaviour, §8 #5) and answers 204.
pub async fn create(api: &Api, call: &Call<'_>) -> ApiResult<Reply> {
    let queue = queue_ref(call)?;
    let max = api.limits.max_queue_metadata;
    if call.body.is_some_and(|body| body.len() as u64 > max) {
        return Err(ApiError::api(format!(
            "Queue metadata is too large. Max size: {max}"
        )));
    }
    let metadata = parse_optional_object(call.body)?;
    check_reserved(&metadata, &api.limits).map_err(ApiError::api)?;
    let document = to_bytes(&metadata);
    let created = api
        .stores
        .messages
        .queue_create(queue, document, api.now_ms())
        .await
        .map_err(|e| ApiError::storage(e, "Queue could not be created."))?;
    Ok(Reply::QueueCreated { created })
}

/// `queue_get`: the metadata; a missing queue reads as empty (lazy queues, §1.7).
pub async fn get(api: &Api, call: &Call<'_>) -> ApiResult<Reply> {
    let queue = queue_ref(call)?;
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
pub async fn update(api: &Api, call: &Call<'_>) -> ApiResult<Reply> {
    let queue = queue_ref(call)?;
    check_patch_size(api, call.body)?;
    if call.body.is_none_or(<[u8]>::is_empty) {
        return Err(ApiError::body("PATCH body could not be empty for update."));
    }
    let operations = parse_patch(parse_document(call.body)?)?;
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
/// subscriptions (§8 #20); a missing queue is fine.
pub async fn delete(api: &Api, call: &Call<'_>) -> ApiResult<Reply> {
    let queue = queue_ref(call)?;
    api.stores
        .messages
        .queue_delete(queue)
        .await
        .map_err(|e| ApiError::storage(e, "Queue could not be deleted."))?;
    Ok(Reply::Done)
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
