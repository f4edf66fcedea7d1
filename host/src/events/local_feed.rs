//! A change feed for a store that has none: announces this host's own
//! writes after they commit. Only right for a store no other host shares,
//! which is what a store without a feed can promise anyway.

use std::sync::Arc;

use plugin_api::{
    storage::{
        ChangeKind, ChangeSinkBox, ClaimRequest, MessageListQuery, MessageStore, MessageStoreBox,
        NewMessage, NewSubscription, PostedMessage, QueueChange, QueueEntry, QueueListQuery,
        QueueRef, QueueStats, StoredClaim, StoredMessage, SubscriptionCreated,
        SubscriptionListQuery, SubscriptionPatch, SubscriptionRecord, SubscriptionScanPage,
    },
    types::{ROption, RString, RVec},
    PluginResult,
};

use super::Announce;

/// A store whose writes this host announces itself.
pub struct LocalFeed {
    inner: MessageStoreBox,
    events: Arc<dyn Announce>,
}

impl LocalFeed {
    /// Wraps `inner`, announcing its writes to `events` (the host's
    /// [`super::Events`], or a pool's forwarder to them).
    pub fn new(inner: MessageStoreBox, events: Arc<dyn Announce>) -> Self {
        Self { inner, events }
    }

    fn subscription_changed(&self, queue: QueueRef, id: &str) {
        self.events
            .announce(QueueChange::new(ChangeKind::SUBSCRIPTIONS, queue, 0, id));
    }
}

impl MessageStore for LocalFeed {
    async fn queue_create(
        &self,
        queue: QueueRef,
        metadata: RVec<u8>,
        now_ms: u64,
    ) -> PluginResult<bool> {
        self.inner.queue_create(queue, metadata, now_ms).await
    }
    async fn queue_get_metadata(&self, queue: QueueRef) -> PluginResult<ROption<RVec<u8>>> {
        self.inner.queue_get_metadata(queue).await
    }
    async fn queue_set_metadata(&self, queue: QueueRef, metadata: RVec<u8>) -> PluginResult<()> {
        self.inner.queue_set_metadata(queue, metadata).await
    }
    async fn queue_delete(&self, queue: QueueRef) -> PluginResult<()> {
        self.inner.queue_delete(queue.clone()).await?;
        self.events
            .announce(QueueChange::new(ChangeKind::QUEUE_DELETED, queue, 0, ""));
        Ok(())
    }
    async fn queue_list(
        &self,
        project: RString,
        query: QueueListQuery,
    ) -> PluginResult<RVec<QueueEntry>> {
        self.inner.queue_list(project, query).await
    }
    async fn queue_count(&self, project: RString) -> PluginResult<u64> {
        self.inner.queue_count(project).await
    }
    async fn queue_stats(&self, queue: QueueRef, now_ms: u64) -> PluginResult<QueueStats> {
        self.inner.queue_stats(queue, now_ms).await
    }
    async fn message_post(
        &self,
        queue: QueueRef,
        client_id: RString,
        messages: RVec<NewMessage>,
        now_ms: u64,
    ) -> PluginResult<RVec<PostedMessage>> {
        let posted = self
            .inner
            .message_post(queue.clone(), client_id, messages, now_ms)
            .await?;
        if let Some(last) = posted.iter().map(|m| m.seq).max() {
            self.events.announce(QueueChange::messages(queue, last));
        }
        Ok(posted)
    }
    async fn message_list(
        &self,
        queue: QueueRef,
        query: MessageListQuery,
        now_ms: u64,
    ) -> PluginResult<RVec<StoredMessage>> {
        self.inner.message_list(queue, query, now_ms).await
    }
    async fn message_get_many(
        &self,
        queue: QueueRef,
        ids: RVec<RString>,
        now_ms: u64,
    ) -> PluginResult<RVec<StoredMessage>> {
        self.inner.message_get_many(queue, ids, now_ms).await
    }
    async fn message_delete(
        &self,
        queue: QueueRef,
        id: RString,
        claim_id: ROption<RString>,
        now_ms: u64,
    ) -> PluginResult<()> {
        self.inner.message_delete(queue, id, claim_id, now_ms).await
    }
    async fn message_delete_many(
        &self,
        queue: QueueRef,
        ids: RVec<RString>,
        now_ms: u64,
    ) -> PluginResult<()> {
        self.inner.message_delete_many(queue, ids, now_ms).await
    }
    async fn message_pop(
        &self,
        queue: QueueRef,
        limit: u32,
        now_ms: u64,
    ) -> PluginResult<RVec<StoredMessage>> {
        self.inner.message_pop(queue, limit, now_ms).await
    }
    async fn message_purge(&self, queue: QueueRef) -> PluginResult<()> {
        self.inner.message_purge(queue.clone()).await?;
        self.events
            .announce(QueueChange::new(ChangeKind::QUEUE_PURGED, queue, 0, ""));
        Ok(())
    }
    async fn claim_create(
        &self,
        queue: QueueRef,
        request: ClaimRequest,
        now_ms: u64,
    ) -> PluginResult<StoredClaim> {
        let dead_letter = match &request.dead_letter {
            ROption::RSome(policy) => Some(QueueRef {
                project: queue.project.clone(),
                name: policy.queue.clone(),
            }),
            ROption::RNone => None,
        };
        let claim = self.inner.claim_create(queue, request, now_ms).await?;
        // Messages claimed too often were moved: the dead-letter queue has
        // new ones (cheap to ask: this host only, no other shares the store).
        if let Some(target) = dead_letter {
            if let Ok(last) = self.inner.queue_last_seq(target.clone()).await {
                self.events.announce(QueueChange::messages(target, last));
            }
        }
        Ok(claim)
    }
    async fn claim_get(
        &self,
        queue: QueueRef,
        claim_id: RString,
        now_ms: u64,
    ) -> PluginResult<ROption<StoredClaim>> {
        self.inner.claim_get(queue, claim_id, now_ms).await
    }
    async fn claim_update(
        &self,
        queue: QueueRef,
        claim_id: RString,
        ttl: u32,
        grace: u32,
        now_ms: u64,
    ) -> PluginResult<()> {
        self.inner
            .claim_update(queue, claim_id, ttl, grace, now_ms)
            .await
    }
    async fn claim_delete(
        &self,
        queue: QueueRef,
        claim_id: RString,
        now_ms: u64,
    ) -> PluginResult<()> {
        self.inner.claim_delete(queue, claim_id, now_ms).await
    }
    async fn subscription_create(
        &self,
        queue: QueueRef,
        subscription: NewSubscription,
        now_ms: u64,
    ) -> PluginResult<SubscriptionCreated> {
        let created = self
            .inner
            .subscription_create(queue.clone(), subscription, now_ms)
            .await?;
        self.subscription_changed(queue, &created.id);
        Ok(created)
    }
    async fn subscription_list(
        &self,
        queue: QueueRef,
        query: SubscriptionListQuery,
        now_ms: u64,
    ) -> PluginResult<RVec<SubscriptionRecord>> {
        self.inner.subscription_list(queue, query, now_ms).await
    }
    async fn subscription_get(
        &self,
        queue: QueueRef,
        id: RString,
        now_ms: u64,
    ) -> PluginResult<ROption<SubscriptionRecord>> {
        self.inner.subscription_get(queue, id, now_ms).await
    }
    async fn subscription_update(
        &self,
        queue: QueueRef,
        id: RString,
        patch: SubscriptionPatch,
        now_ms: u64,
    ) -> PluginResult<()> {
        self.inner
            .subscription_update(queue.clone(), id.clone(), patch, now_ms)
            .await?;
        self.subscription_changed(queue, &id);
        Ok(())
    }
    async fn subscription_confirm(
        &self,
        queue: QueueRef,
        id: RString,
        confirmed: bool,
        now_ms: u64,
    ) -> PluginResult<()> {
        self.inner
            .subscription_confirm(queue.clone(), id.clone(), confirmed, now_ms)
            .await?;
        self.subscription_changed(queue, &id);
        Ok(())
    }
    async fn subscription_delete(&self, queue: QueueRef, id: RString) -> PluginResult<()> {
        self.inner
            .subscription_delete(queue.clone(), id.clone())
            .await?;
        self.subscription_changed(queue, &id);
        Ok(())
    }
    async fn subscription_scan(
        &self,
        marker: ROption<RString>,
        limit: u32,
        now_ms: u64,
    ) -> PluginResult<SubscriptionScanPage> {
        self.inner.subscription_scan(marker, limit, now_ms).await
    }
    async fn subscription_advance(
        &self,
        queue: QueueRef,
        id: RString,
        delivered_seq: u64,
        now_ms: u64,
    ) -> PluginResult<()> {
        self.inner
            .subscription_advance(queue, id, delivered_seq, now_ms)
            .await
    }
    async fn queue_last_seq(&self, queue: QueueRef) -> PluginResult<u64> {
        self.inner.queue_last_seq(queue).await
    }
    async fn is_alive(&self) -> PluginResult<bool> {
        self.inner.is_alive().await
    }
    async fn changes_watch(&self, sink: ChangeSinkBox) -> PluginResult<()> {
        // This wrapper is the feed; the host never asks it for another.
        let _ = sink;
        Ok(())
    }
    async fn notification_log(
        &self,
        queue: QueueRef,
        after_seq: u64,
        limit: u32,
        now_ms: u64,
    ) -> PluginResult<RVec<StoredMessage>> {
        self.inner
            .notification_log(queue, after_seq, limit, now_ms)
            .await
    }
    async fn lease_acquire(
        &self,
        key: RString,
        holder: RString,
        ttl_ms: u64,
        now_ms: u64,
    ) -> PluginResult<bool> {
        self.inner.lease_acquire(key, holder, ttl_ms, now_ms).await
    }
    async fn lease_release(&self, key: RString, holder: RString) -> PluginResult<()> {
        self.inner.lease_release(key, holder).await
    }
}
