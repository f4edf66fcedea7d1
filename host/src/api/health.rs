//! Ping and health: whether the store answers, and Zaqar's timed storage
//! probe.

use std::time::Instant;

use plugin_api::{
    storage::{ClaimRequest, MessageStore, NewMessage, QueueRef},
    types::{RString, RVec},
    PluginResult,
};

use super::{
    action::{Caller, Reply},
    errors::{ApiError, ApiResult},
    Api,
};

/// One timed storage operation of the health check.
#[derive(Debug, Clone)]
pub struct OperationStatus {
    /// Zaqar's operation name (`create_queue`, ...).
    pub name: &'static str,
    /// Whether it succeeded.
    pub succeeded: bool,
    /// How long it took.
    pub seconds: f64,
    /// On failure, an id under which the error was logged.
    pub reference: Option<String>,
}

/// The health report.
#[derive(Debug, Clone)]
pub struct HealthReport {
    /// Whether the store answers.
    pub storage_reachable: bool,
    /// The operations run, in order.
    pub operations: Vec<OperationStatus>,
}

/// `ping_node`: whether the store answers (a failure reads as "no").
pub async fn ping(api: &Api) -> ApiResult<Reply> {
    let alive = api.stores.messages.is_alive().await.unwrap_or(false);
    Ok(Reply::Pong { alive })
}

/// `check_node_health` (admin only): runs Zaqar's probe — create a queue in
/// a throw-away project, post 100 messages, claim, list, delete, release,
/// bulk delete, delete the queue — timing each step.
pub async fn check(api: &Api, caller: &Caller) -> ApiResult<Reply> {
    if !caller.admin {
        return Err(ApiError::Forbidden);
    }
    let store = &api.stores.messages;
    let storage_reachable = store.is_alive().await.unwrap_or(false);
    let mut operations = Vec::new();
    let queue = QueueRef::new(&uuid::Uuid::new_v4().to_string(), "health-check");
    let client = RString::from(uuid::Uuid::new_v4().to_string());

    let created = timed(
        &mut operations,
        "create_queue",
        store.queue_create(queue.clone(), RVec::from(b"{}".to_vec()), api.now_ms()),
    )
    .await;
    if created.is_some() {
        let messages: RVec<NewMessage> = (0..100)
            .map(|i| NewMessage {
                ttl: 600,
                delay: 0,
                body: RVec::from(format!("{{\"event\":\"p_{i}\"}}").into_bytes()),
            })
            .collect();
        let posted = timed(
            &mut operations,
            "post_messages",
            store.message_post(queue.clone(), client.clone(), messages, api.now_ms()),
        )
        .await;
        if let Some(posted) = posted.filter(|p| !p.is_empty()) {
            let request = ClaimRequest {
                ttl: 60,
                grace: 300,
                limit: 10,
                dead_letter: None.into(),
            };
            let claim = timed(
                &mut operations,
                "claim_messages",
                store.claim_create(queue.clone(), request, api.now_ms()),
            )
            .await;
            let query = plugin_api::storage::MessageListQuery {
                after_seq: None.into(),
                limit: 10,
                exclude_client: None.into(),
                include_claimed: true,
                include_delayed: true,
            };
            timed(
                &mut operations,
                "list_messages",
                store.message_list(queue.clone(), query, api.now_ms()),
            )
            .await;
            if let Some(claim) = claim.filter(|c| !c.messages.is_empty()) {
                for message in claim.messages.iter() {
                    let deleted = store.message_delete(
                        queue.clone(),
                        message.id.clone(),
                        Some(claim.id.clone()).into(),
                        api.now_ms(),
                    );
                    if timed(&mut operations, "delete_messages", deleted)
                        .await
                        .is_none()
                    {
                        break;
                    }
                }
                timed(
                    &mut operations,
                    "delete_claim",
                    store.claim_delete(queue.clone(), claim.id.clone(), api.now_ms()),
                )
                .await;
            }
            let ids: RVec<RString> = posted.iter().map(|p| p.id.clone()).collect();
            timed(
                &mut operations,
                "bulk_delete_messages",
                store.message_delete_many(queue.clone(), ids, api.now_ms()),
            )
            .await;
        }
        timed(&mut operations, "delete_queue", store.queue_delete(queue)).await;
    }
    Ok(Reply::Health(HealthReport {
        storage_reachable,
        operations,
    }))
}

/// Runs one probe step, recording (or replacing, for repeated deletes) its status.
async fn timed<T>(
    operations: &mut Vec<OperationStatus>,
    name: &'static str,
    step: impl std::future::Future<Output = PluginResult<T>>,
) -> Option<T> {
    let start = Instant::now();
    let result = step.await;
    let seconds = start.elapsed().as_secs_f64();
    let (succeeded, reference, value) = match result {
        Ok(value) => (true, None, Some(value)),
        Err(error) => {
            let reference = uuid::Uuid::new_v4().to_string();
            tracing::warn!(%error, reference = %reference, "health check step {name} failed");
            (false, Some(reference), None)
        }
    };
    let status = OperationStatus {
        name,
        succeeded,
        seconds,
        reference,
    };
    match operations.iter_mut().find(|op| op.name == name) {
        Some(existing) => *existing = status,
        None => operations.push(status),
    }
    value
}
