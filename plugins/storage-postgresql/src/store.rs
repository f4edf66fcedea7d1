//! [`PostgresMessageStore`]: the `zaqar.storage.message` contract on the
//! pool. Each call takes a pooled connection and runs one statement or one
//! transaction; a write's future resolves after its COMMIT returned.

use std::{sync::Mutex, time::Duration};

use plugin_api::{
    storage::{
        ChangeSinkBox, ClaimRequest, MessageListQuery, MessageStore, NewMessage, NewSubscription,
        PostedMessage, QueueEntry, QueueListQuery, QueueRef, QueueStats, StoredClaim,
        StoredMessage, SubscriptionCreated, SubscriptionListQuery, SubscriptionPatch,
        SubscriptionRecord, SubscriptionScanPage,
    },
    types::{ROption, RString, RVec},
    PluginResult,
};
use tokio::{sync::oneshot, task::JoinHandle};

use crate::{
    claims,
    db::{with_client, Database},
    feed, gc, leases, messages, notification_log, queues, subscriptions,
};

/// The postgresql message store.
pub struct PostgresMessageStore {
    db: Database,
    collector: JoinHandle<()>,
    /// The change feed's listener, once `changes_watch` started it.
    feed: Mutex<Option<JoinHandle<()>>>,
}

impl PostgresMessageStore {
    pub(crate) fn new(db: Database, gc_interval: Duration) -> Self {
        let collector = plugin_api::runtime::spawn(gc::run(db.clone(), gc_interval));
        Self {
            db,
            collector,
            feed: Mutex::new(None),
        }
    }

    /// Runs one collector pass now (as of `now_ms`), deleting at most
    /// `batch` expired rows per table; returns how many it deleted. The
    /// background collector does this on its own; tests call it to avoid
    /// waiting.
    pub async fn collect_expired(&self, now_ms: u64, batch: i64) -> PluginResult<u64> {
        gc::pass(&self.db, now_ms, batch)
            .await
            .map_err(crate::db::OpError::into_plugin)
    }
}

impl Drop for PostgresMessageStore {
    fn drop(&mut self) {
        self.collector.abort();
        if let Some(feed) = self.feed.lock().ok().and_then(|mut f| f.take()) {
            feed.abort();
        }
    }
}

impl std::fmt::Debug for PostgresMessageStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresMessageStore")
            .field("uri", &self.db.uri)
            .finish()
    }
}

impl MessageStore for PostgresMessageStore {
    async fn queue_create(
        &self,
        queue: QueueRef,
        metadata: RVec<u8>,
        now_ms: u64,
    ) -> PluginResult<bool> {
        with_client!(self.db, |c| queues::create(&c, &queue, &metadata, now_ms))
    }

    async fn queue_get_metadata(&self, queue: QueueRef) -> PluginResult<ROption<RVec<u8>>> {
        with_client!(self.db, |c| queues::get_metadata(&c, &queue))
            .map(|m| m.map(RVec::from).into())
    }

    async fn queue_set_metadata(&self, queue: QueueRef, metadata: RVec<u8>) -> PluginResult<()> {
        with_client!(self.db, |c| queues::set_metadata(&c, &queue, &metadata))
    }

    async fn queue_delete(&self, queue: QueueRef) -> PluginResult<()> {
        with_client!(self.db, |c| queues::delete(&mut c, &queue))
    }

    async fn queue_list(
        &self,
        project: RString,
        query: QueueListQuery,
    ) -> PluginResult<RVec<QueueEntry>> {
        with_client!(self.db, |c| queues::list(&c, &project, &query)).map(RVec::from)
    }

    async fn queue_count(&self, project: RString) -> PluginResult<u64> {
        with_client!(self.db, |c| queues::count(&c, &project))
    }

    async fn queue_stats(&self, queue: QueueRef, now_ms: u64) -> PluginResult<QueueStats> {
        with_client!(self.db, |c| messages::stats(&c, &queue, now_ms))
    }

    async fn message_post(
        &self,
        queue: QueueRef,
        client_id: RString,
        messages: RVec<NewMessage>,
        now_ms: u64,
    ) -> PluginResult<RVec<PostedMessage>> {
        with_client!(self.db, |c| messages::post(
            &mut c, &queue, &client_id, &messages, now_ms
        ))
        .map(RVec::from)
    }

    async fn message_list(
        &self,
        queue: QueueRef,
        query: MessageListQuery,
        now_ms: u64,
    ) -> PluginResult<RVec<StoredMessage>> {
        with_client!(self.db, |c| messages::list(&c, &queue, &query, now_ms)).map(RVec::from)
    }

    async fn message_get_many(
        &self,
        queue: QueueRef,
        ids: RVec<RString>,
        now_ms: u64,
    ) -> PluginResult<RVec<StoredMessage>> {
        with_client!(self.db, |c| messages::get_many(&c, &queue, &ids, now_ms)).map(RVec::from)
    }

    async fn message_delete(
        &self,
        queue: QueueRef,
        id: RString,
        claim_id: ROption<RString>,
        now_ms: u64,
    ) -> PluginResult<()> {
        let claim = claim_id.as_ref().map(|c| c.as_str()).into_option();
        with_client!(self.db, |c| messages::delete(
            &mut c, &queue, &id, claim, now_ms
        ))
    }

    async fn message_delete_many(
        &self,
        queue: QueueRef,
        ids: RVec<RString>,
        _now_ms: u64,
    ) -> PluginResult<()> {
        with_client!(self.db, |c| messages::delete_many(&c, &queue, &ids))
    }

    async fn message_pop(
        &self,
        queue: QueueRef,
        limit: u32,
        now_ms: u64,
    ) -> PluginResult<RVec<StoredMessage>> {
        with_client!(self.db, |c| messages::pop(&c, &queue, limit, now_ms)).map(RVec::from)
    }

    async fn message_purge(&self, queue: QueueRef) -> PluginResult<()> {
        with_client!(self.db, |c| messages::purge(&mut c, &queue))
    }

    async fn claim_create(
        &self,
        queue: QueueRef,
        request: ClaimRequest,
        now_ms: u64,
    ) -> PluginResult<StoredClaim> {
        with_client!(self.db, |c| claims::create(
            &mut c, &queue, &request, now_ms
        ))
    }

    async fn claim_get(
        &self,
        queue: QueueRef,
        claim_id: RString,
        now_ms: u64,
    ) -> PluginResult<ROption<StoredClaim>> {
        with_client!(self.db, |c| claims::get(&mut c, &queue, &claim_id, now_ms)).map(Into::into)
    }

    async fn claim_update(
        &self,
        queue: QueueRef,
        claim_id: RString,
        ttl: u32,
        grace: u32,
        now_ms: u64,
    ) -> PluginResult<()> {
        with_client!(self.db, |c| claims::update(
            &mut c, &queue, &claim_id, ttl, grace, now_ms
        ))
    }

    async fn claim_delete(
        &self,
        queue: QueueRef,
        claim_id: RString,
        _now_ms: u64,
    ) -> PluginResult<()> {
        with_client!(self.db, |c| claims::delete(&mut c, &queue, &claim_id))
    }

    async fn subscription_create(
        &self,
        queue: QueueRef,
        subscription: NewSubscription,
        now_ms: u64,
    ) -> PluginResult<SubscriptionCreated> {
        with_client!(self.db, |c| subscriptions::create(
            &mut c,
            &queue,
            &subscription,
            now_ms
        ))
    }

    async fn subscription_list(
        &self,
        queue: QueueRef,
        query: SubscriptionListQuery,
        now_ms: u64,
    ) -> PluginResult<RVec<SubscriptionRecord>> {
        with_client!(self.db, |c| subscriptions::list(&c, &queue, &query, now_ms)).map(RVec::from)
    }

    async fn subscription_get(
        &self,
        queue: QueueRef,
        id: RString,
        now_ms: u64,
    ) -> PluginResult<ROption<SubscriptionRecord>> {
        with_client!(self.db, |c| subscriptions::get(&c, &queue, &id, now_ms)).map(Into::into)
    }

    async fn subscription_update(
        &self,
        queue: QueueRef,
        id: RString,
        patch: SubscriptionPatch,
        now_ms: u64,
    ) -> PluginResult<()> {
        with_client!(self.db, |c| subscriptions::update(
            &mut c, &queue, &id, &patch, now_ms
        ))
    }

    async fn subscription_confirm(
        &self,
        queue: QueueRef,
        id: RString,
        confirmed: bool,
        now_ms: u64,
    ) -> PluginResult<()> {
        with_client!(self.db, |c| subscriptions::confirm(
            &mut c, &queue, &id, confirmed, now_ms
        ))
    }

    async fn subscription_delete(&self, queue: QueueRef, id: RString) -> PluginResult<()> {
        // The contract gives no clock here; the log prune judges liveness
        // of the remaining subscriptions by the wall clock.
        let now_ms = gc::now_ms();
        with_client!(self.db, |c| subscriptions::delete(
            &mut c, &queue, &id, now_ms
        ))
    }

    async fn subscription_scan(
        &self,
        marker: ROption<RString>,
        limit: u32,
        now_ms: u64,
    ) -> PluginResult<SubscriptionScanPage> {
        let marker = marker.as_ref().map(|m| m.as_str()).into_option();
        with_client!(self.db, |c| subscriptions::scan(&c, marker, limit, now_ms))
    }

    async fn subscription_advance(
        &self,
        queue: QueueRef,
        id: RString,
        delivered_seq: u64,
        now_ms: u64,
    ) -> PluginResult<()> {
        with_client!(self.db, |c| subscriptions::advance(
            &mut c,
            &queue,
            &id,
            delivered_seq,
            now_ms
        ))
    }

    async fn queue_last_seq(&self, queue: QueueRef) -> PluginResult<u64> {
        with_client!(self.db, |c| queues::last_seq(&c, &queue))
    }

    async fn is_alive(&self) -> PluginResult<bool> {
        Ok(self.db.is_alive().await)
    }

    async fn changes_watch(&self, sink: ChangeSinkBox) -> PluginResult<()> {
        let mut settings = self.db.settings.clone();
        // Notice a silently dead peer within about half a minute.
        settings.keepalives_idle(Duration::from_secs(15));
        let (listening, listened) = oneshot::channel();
        let task = plugin_api::runtime::spawn(feed::run(
            settings,
            sink,
            listening,
            self.db.uri.as_str().into(),
        ));
        if let Some(previous) = self.feed.lock().expect("feed lock").replace(task) {
            previous.abort();
        }
        // Changes committed after this returns are seen; if the database is
        // down now, the feed keeps trying and sends RESYNC once it is back.
        let _ = tokio::time::timeout(self.db.connect_timeout, listened).await;
        Ok(())
    }

    async fn notification_log(
        &self,
        queue: QueueRef,
        after_seq: u64,
        limit: u32,
        now_ms: u64,
    ) -> PluginResult<RVec<StoredMessage>> {
        with_client!(self.db, |c| notification_log::read(
            &c, &queue, after_seq, limit, now_ms
        ))
        .map(RVec::from)
    }

    async fn lease_acquire(
        &self,
        key: RString,
        holder: RString,
        ttl_ms: u64,
        now_ms: u64,
    ) -> PluginResult<bool> {
        with_client!(self.db, |c| leases::acquire(
            &c, &key, &holder, ttl_ms, now_ms
        ))
    }

    async fn lease_release(&self, key: RString, holder: RString) -> PluginResult<()> {
        with_client!(self.db, |c| leases::release(&c, &key, &holder))
    }

    async fn messages_expired(&self) -> PluginResult<u64> {
        Ok(self
            .db
            .messages_expired
            .load(std::sync::atomic::Ordering::Relaxed))
    }
}
