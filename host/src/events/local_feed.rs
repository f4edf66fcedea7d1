//! A change feed for a store that has none: announces this host's own
//! writes after they commit. Only right for a store no other host shares,
//! which is what a store without a feed can promise anyway.

use std::sync::Arc;

use crate::plugins::forward::forward_message_store;
use plugin_api::{
    storage::{
        ChangeKind, ChangeSinkBox, ClaimRequest, MessageStoreBox, NewMessage, NewSubscription,
        PostedMessage, QueueChange, QueueRef, StoredClaim, SubscriptionCreated, SubscriptionPatch,
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

forward_message_store! {
    impl MessageStore for LocalFeed {
        forward |self, _queue| self.inner;

        async fn queue_delete(&self, queue: QueueRef) -> PluginResult<()> {
            self.inner.queue_delete(queue.clone()).await?;
            self.events
                .announce(QueueChange::new(ChangeKind::QUEUE_DELETED, queue, 0, ""));
            Ok(())
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
        async fn changes_watch(&self, sink: ChangeSinkBox) -> PluginResult<()> {
            // This wrapper is the feed; the host never asks it for another.
            let _ = sink;
            Ok(())
        }
    }
}
