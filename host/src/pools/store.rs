//! [`PooledStore`]: the one `MessageStore` the host talks to when pooling
//! is on. Each call goes to the pool of the queue it names; calls that
//! create a queue place it first; calls about every queue (listings,
//! subscription scans) visit every pool.

use std::sync::Arc;

use crate::plugins::forward::forward_message_store;
use plugin_api::{
    storage::{
        ChangeSinkBox, ClaimRequest, NewMessage, NewSubscription, PostedMessage, QueueEntry,
        QueueListQuery, QueueRef, StoredClaim, SubscriptionCreated, SubscriptionScanPage,
    },
    types::{ROption, RString, RVec},
    PluginError, PluginResult,
};

use super::{Pool, Pools};

/// Separates the pool from the pool store's own marker in a subscription
/// scan marker.
const SCAN_MARKER_SEPARATOR: char = '\u{1f}';

/// The message store of a pooled host.
pub struct PooledStore(pub Arc<Pools>);

/// The `_flavor` a queue's metadata asks for.
fn flavor_of(metadata: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(metadata).ok()?;
    value
        .get("_flavor")
        .and_then(serde_json::Value::as_str)
        .filter(|f| !f.is_empty())
        .map(str::to_string)
}

impl PooledStore {
    async fn read(&self, queue: &QueueRef) -> PluginResult<Arc<Pool>> {
        self.0.for_reading(queue).await
    }

    /// The pool a lease lives on: a subscription's delivery lease
    /// (`notify/<project>/<queue>/<id>`, see `notify::lease`) on its
    /// queue's pool, so the hosts sharing that store agree; anything else
    /// (host liveness) on the first pool.
    async fn lease_pool(&self, key: &str) -> PluginResult<Arc<Pool>> {
        if let Some(rest) = key.strip_prefix("notify/") {
            let mut parts = rest.rsplitn(3, '/');
            let (_id, queue, project) = (parts.next(), parts.next(), parts.next());
            if let (Some(queue), Some(project)) = (queue, project) {
                return self.read(&QueueRef::new(project, queue)).await;
            }
        }
        self.0.first().await
    }
}

forward_message_store! {
    impl MessageStore for PooledStore {
        // Everything else acts on one queue, on the pool it was placed on.
        forward |self, queue| self.read(&queue).await?.store;

        async fn queue_create(
            &self,
            queue: QueueRef,
            metadata: RVec<u8>,
            now_ms: u64,
        ) -> PluginResult<bool> {
            let flavor = flavor_of(&metadata);
            let pool = self.0.place(&queue, flavor.as_deref()).await?;
            pool.store.queue_create(queue, metadata, now_ms).await
        }
        async fn queue_delete(&self, queue: QueueRef) -> PluginResult<()> {
            // A queue placed nowhere exists nowhere: nothing to delete.
            let Some(pool) = self.0.lookup(&queue).await? else {
                return Ok(());
            };
            pool.store.queue_delete(queue.clone()).await?;
            self.0.catalog_remove(&queue, &pool.name).await
        }
        async fn queue_list(
            &self,
            project: RString,
            query: QueueListQuery,
        ) -> PluginResult<RVec<QueueEntry>> {
            // Each pool's first `limit` names after the marker, merged: the
            // page is the first `limit` of all of them, in name order.
            let mut all: Vec<QueueEntry> = Vec::new();
            for pool in self.0.current().await? {
                let page = pool
                    .store
                    .queue_list(project.clone(), query.clone())
                    .await?;
                all.extend(page);
            }
            all.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
            all.dedup_by(|a, b| a.name == b.name);
            all.truncate(query.limit as usize);
            Ok(all.into())
        }
        async fn queue_count(&self, project: RString) -> PluginResult<u64> {
            let mut count = 0;
            for pool in self.0.current().await? {
                count += pool.store.queue_count(project.clone()).await?;
            }
            Ok(count)
        }
        async fn message_post(
            &self,
            queue: QueueRef,
            client_id: RString,
            messages: RVec<NewMessage>,
            now_ms: u64,
        ) -> PluginResult<RVec<PostedMessage>> {
            let pool = self.0.place(&queue, None).await?;
            pool.store
                .message_post(queue, client_id, messages, now_ms)
                .await
        }
        async fn claim_create(
            &self,
            queue: QueueRef,
            mut request: ClaimRequest,
            now_ms: u64,
        ) -> PluginResult<StoredClaim> {
            let pool = self.read(&queue).await?;
            // A store moves dead letters within itself: the dead-letter queue
            // must live on the same pool. One placed nowhere is placed there;
            // one on another pool cannot receive, so nothing is moved.
            if let ROption::RSome(policy) = &request.dead_letter {
                let target = QueueRef {
                    project: queue.project.clone(),
                    name: policy.queue.clone(),
                };
                match self.0.lookup(&target).await? {
                    None => {
                        self.0.place_on(&target, &pool.name).await?;
                    }
                    Some(other) if other.name != pool.name => {
                        tracing::warn!(
                            queue = %queue.name,
                            dead_letter_queue = %target.name,
                            "the dead-letter queue lives on another pool: messages claimed too often stay where they are"
                        );
                        request.dead_letter = ROption::RNone;
                    }
                    Some(_) => {}
                }
            }
            pool.store.claim_create(queue, request, now_ms).await
        }
        async fn subscription_create(
            &self,
            queue: QueueRef,
            subscription: NewSubscription,
            now_ms: u64,
        ) -> PluginResult<SubscriptionCreated> {
            let pool = self.0.place(&queue, None).await?;
            pool.store
                .subscription_create(queue, subscription, now_ms)
                .await
        }
        /// Pool after pool, by name; the marker is `<pool>\u{1f}<its marker>`.
        async fn subscription_scan(
            &self,
            marker: ROption<RString>,
            limit: u32,
            now_ms: u64,
        ) -> PluginResult<SubscriptionScanPage> {
            // A pool that cannot be reached is left out (and logged) rather
            // than holding back the subscriptions of every other pool.
            self.0.refresh().await?;
            let pools = self.0.built();
            let (start, inner) = match marker.as_ref().into_option() {
                Some(marker) => match marker.split_once(SCAN_MARKER_SEPARATOR) {
                    Some((pool, inner)) => (Some(pool.to_string()), Some(inner.to_string())),
                    None => (None, None),
                },
                None => (None, None),
            };
            let remaining: Vec<&Arc<Pool>> = pools
                .iter()
                .filter(|p| start.as_deref().is_none_or(|s| p.name.as_str() >= s))
                .collect();
            for (index, pool) in remaining.iter().enumerate() {
                let own_marker = match (&start, &inner) {
                    (Some(start), Some(inner)) if *start == pool.name && !inner.is_empty() => {
                        ROption::RSome(RString::from(inner.as_str()))
                    }
                    _ => ROption::RNone,
                };
                let page = pool
                    .store
                    .subscription_scan(own_marker, limit, now_ms)
                    .await?;
                let next = match page.next_marker.as_ref().into_option() {
                    Some(next) => Some(format!("{}{SCAN_MARKER_SEPARATOR}{next}", pool.name)),
                    None => remaining
                        .get(index + 1)
                        .map(|p| format!("{}{SCAN_MARKER_SEPARATOR}", p.name)),
                };
                if !page.entries.is_empty() || page.next_marker.is_some() || next.is_none() {
                    return Ok(SubscriptionScanPage {
                        entries: page.entries,
                        next_marker: next.map(RString::from).into(),
                    });
                }
            }
            Ok(SubscriptionScanPage {
                entries: RVec::new(),
                next_marker: ROption::RNone,
            })
        }
        async fn is_alive(&self) -> PluginResult<bool> {
            self.0.is_alive().await
        }
        /// Each pool store's feed is routed to `sink` as the store is built.
        async fn changes_watch(&self, sink: ChangeSinkBox) -> PluginResult<()> {
            self.0.attach(sink);
            Ok(())
        }
        async fn lease_acquire(
            &self,
            key: RString,
            holder: RString,
            ttl_ms: u64,
            now_ms: u64,
        ) -> PluginResult<bool> {
            self.lease_pool(&key)
                .await?
                .store
                .lease_acquire(key, holder, ttl_ms, now_ms)
                .await
        }
        /// The sum over the pools that can tell; unsupported when none can.
        async fn messages_expired(&self) -> PluginResult<u64> {
            let mut total = None;
            for pool in self.0.built() {
                if let Ok(count) = pool.store.messages_expired().await {
                    total = Some(total.unwrap_or(0) + count);
                }
            }
            total.ok_or_else(|| PluginError::unsupported("messages_expired"))
        }
        async fn lease_release(&self, key: RString, holder: RString) -> PluginResult<()> {
            self.lease_pool(&key)
                .await?
                .store
                .lease_release(key, holder)
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flavor_comes_from_the_metadata() {
        assert_eq!(
            flavor_of(br#"{"_flavor": "gold", "a": 1}"#).as_deref(),
            Some("gold")
        );
        assert_eq!(flavor_of(br#"{"_flavor": ""}"#), None);
        assert_eq!(flavor_of(b"{}"), None);
    }
}
