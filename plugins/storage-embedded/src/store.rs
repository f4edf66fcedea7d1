//! [`EmbeddedMessageStore`]: the `zaqar.storage.message` contract on the
//! engine. Reads run in a read transaction on the caller's task; writes go
//! through the group commit and resolve once durable.

use std::sync::{Arc, Mutex};

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

use crate::{
    claims,
    engine::Engine,
    ids, leases, messages, notification_log,
    post_log::{LoggedClaim, LoggedDelete, LoggedOp, LoggedPost},
    queues, subscriptions,
};

/// Rows past a listing's page it may walk on the caller's worker before
/// it is taken to tokio's blocking pool: a few microseconds of decoding.
const LISTING_ROWS_ON_WORKER: usize = 64;

/// The embedded message store.
pub struct EmbeddedMessageStore {
    engine: Arc<Engine>,
    /// This store's registration in the engine's change feed, if watching.
    watch: Mutex<Option<u64>>,
}

impl EmbeddedMessageStore {
    pub(crate) fn new(engine: Arc<Engine>) -> Self {
        Self {
            engine,
            watch: Mutex::new(None),
        }
    }

    /// The canonical data directory this store writes to.
    pub fn data_dir(&self) -> &std::path::Path {
        self.engine.dir()
    }

    /// Runs one sweeper pass now (as of `now_ms`), removing at most `budget`
    /// expired rows; returns how many it removed. The background sweeper
    /// does this on its own every few seconds; tests and tools call it to
    /// avoid waiting.
    pub async fn sweep(&self, now_ms: u64, budget: usize) -> PluginResult<usize> {
        let swept = self
            .engine
            .write(move |t| crate::sweeper::pass(t, now_ms, budget))
            .await?;
        self.engine.count_expired_messages(swept.expired_messages);
        Ok(swept.rows)
    }
}

impl Drop for EmbeddedMessageStore {
    fn drop(&mut self) {
        // The feed announces "until the store is dropped"; the engine may
        // live on for another store of the same directory.
        let watch = self.watch.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = watch.take() {
            self.engine.feed().unwatch(id);
        }
    }
}

impl std::fmt::Debug for EmbeddedMessageStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedMessageStore")
            .field("dir", &self.engine.dir())
            .finish()
    }
}

impl MessageStore for EmbeddedMessageStore {
    async fn queue_create(
        &self,
        queue: QueueRef,
        metadata: RVec<u8>,
        now_ms: u64,
    ) -> PluginResult<bool> {
        self.engine
            .write(move |t| queues::create(t, &queue, &metadata, now_ms))
            .await
    }

    async fn queue_get_metadata(&self, queue: QueueRef) -> PluginResult<ROption<RVec<u8>>> {
        // Every post asks for this (the queue's defaults): served from
        // memory, without a read transaction, once known.
        let metadata = self.engine.queue_metadata(&queue).await?;
        Ok(metadata.map(|bytes| RVec::from(&bytes[..])).into())
    }

    async fn queue_set_metadata(&self, queue: QueueRef, metadata: RVec<u8>) -> PluginResult<()> {
        self.engine
            .write(move |t| queues::set_metadata(t, &queue, &metadata))
            .await
    }

    async fn queue_delete(&self, queue: QueueRef) -> PluginResult<()> {
        self.engine.write(move |t| queues::delete(t, &queue)).await
    }

    async fn queue_list(
        &self,
        project: RString,
        query: QueueListQuery,
    ) -> PluginResult<RVec<QueueEntry>> {
        self.engine
            .read(|txn| Ok(queues::list(txn, &project, &query)?.into()))
            .await
    }

    async fn queue_count(&self, project: RString) -> PluginResult<u64> {
        self.engine.read(|txn| queues::count(txn, &project)).await
    }

    async fn queue_stats(&self, queue: QueueRef, now_ms: u64) -> PluginResult<QueueStats> {
        self.engine
            .read(|txn| messages::stats(txn, &queue, now_ms))
            .await
    }

    async fn message_post(
        &self,
        queue: QueueRef,
        client_id: RString,
        messages: RVec<NewMessage>,
        now_ms: u64,
    ) -> PluginResult<RVec<PostedMessage>> {
        let post = Arc::new(LoggedPost::new(queue, client_id, now_ms, messages));
        self.engine
            .write_logged(LoggedOp::Post(Arc::clone(&post)), move |t| {
                Ok(messages::post_logged(t, &post)?.into())
            })
            .await
    }

    async fn message_list(
        &self,
        queue: QueueRef,
        query: MessageListQuery,
        now_ms: u64,
    ) -> PluginResult<RVec<StoredMessage>> {
        // Most listings fill their page within a few rows of where they
        // start (a push from its cursor near the tail, a page of a queue
        // whose head is not claimed): those stay on the worker, where a
        // hand-off to the blocking pool and back would cost more than the
        // read, and on an idle machine two threads' wake-ups. One that has
        // to walk further (skipping claimed, delayed or expired messages)
        // goes there.
        let max_rows = query.limit as usize + LISTING_ROWS_ON_WORKER;
        let near = self
            .engine
            .read(|txn| messages::list_within(txn, &queue, &query, now_ms, max_rows))
            .await?;
        if let Some(found) = near {
            return Ok(found.into());
        }
        self.engine
            .read_off_worker(move |txn| Ok(messages::list(txn, &queue, &query, now_ms)?.into()))
            .await
    }

    async fn message_get_many(
        &self,
        queue: QueueRef,
        ids: RVec<RString>,
        now_ms: u64,
    ) -> PluginResult<RVec<StoredMessage>> {
        self.engine
            .read(|txn| Ok(messages::get_many(txn, &queue, &ids, now_ms)?.into()))
            .await
    }

    async fn message_delete(
        &self,
        queue: QueueRef,
        id: RString,
        claim_id: ROption<RString>,
        now_ms: u64,
    ) -> PluginResult<()> {
        let delete = Arc::new(LoggedDelete {
            queue,
            id,
            claim_id: claim_id.into_option(),
            now_ms,
        });
        self.engine
            .write_logged(LoggedOp::Delete(Arc::clone(&delete)), move |t| {
                delete.apply(t)
            })
            .await
    }

    async fn message_delete_many(
        &self,
        queue: QueueRef,
        ids: RVec<RString>,
        _now_ms: u64,
    ) -> PluginResult<()> {
        self.engine
            .write(move |t| messages::delete_many(t, &queue, &ids))
            .await
    }

    async fn message_pop(
        &self,
        queue: QueueRef,
        limit: u32,
        now_ms: u64,
    ) -> PluginResult<RVec<StoredMessage>> {
        self.engine
            .write(move |t| Ok(messages::pop(t, &queue, limit, now_ms)?.into()))
            .await
    }

    async fn message_purge(&self, queue: QueueRef) -> PluginResult<()> {
        self.engine.write(move |t| queues::purge(t, &queue)).await
    }

    async fn claim_create(
        &self,
        queue: QueueRef,
        request: ClaimRequest,
        now_ms: u64,
    ) -> PluginResult<StoredClaim> {
        let Some(claim) = LoggedClaim::of(queue.clone(), &request, now_ms) else {
            return self
                .engine
                .write(move |t| claims::create(t, &queue, &request, now_ms, ids::new_claim()))
                .await;
        };
        let claim = Arc::new(claim);
        self.engine
            .write_logged(LoggedOp::Claim(Arc::clone(&claim)), move |t| claim.apply(t))
            .await
    }

    async fn claim_get(
        &self,
        queue: QueueRef,
        claim_id: RString,
        now_ms: u64,
    ) -> PluginResult<ROption<StoredClaim>> {
        self.engine
            .read(|txn| Ok(claims::get(txn, &queue, &claim_id, now_ms)?.into()))
            .await
    }

    async fn claim_update(
        &self,
        queue: QueueRef,
        claim_id: RString,
        ttl: u32,
        grace: u32,
        now_ms: u64,
    ) -> PluginResult<()> {
        self.engine
            .write(move |t| claims::update(t, &queue, &claim_id, ttl, grace, now_ms))
            .await
    }

    async fn claim_delete(
        &self,
        queue: QueueRef,
        claim_id: RString,
        _now_ms: u64,
    ) -> PluginResult<()> {
        self.engine
            .write(move |t| claims::delete(t, &queue, &claim_id))
            .await
    }

    async fn subscription_create(
        &self,
        queue: QueueRef,
        subscription: NewSubscription,
        now_ms: u64,
    ) -> PluginResult<SubscriptionCreated> {
        self.engine
            .write(move |t| subscriptions::create(t, &queue, &subscription, now_ms))
            .await
    }

    async fn subscription_list(
        &self,
        queue: QueueRef,
        query: SubscriptionListQuery,
        now_ms: u64,
    ) -> PluginResult<RVec<SubscriptionRecord>> {
        self.engine
            .read(|txn| Ok(subscriptions::list(txn, &queue, &query, now_ms)?.into()))
            .await
    }

    async fn subscription_get(
        &self,
        queue: QueueRef,
        id: RString,
        now_ms: u64,
    ) -> PluginResult<ROption<SubscriptionRecord>> {
        self.engine
            .read(|txn| Ok(subscriptions::get(txn, &queue, &id, now_ms)?.into()))
            .await
    }

    async fn subscription_update(
        &self,
        queue: QueueRef,
        id: RString,
        patch: SubscriptionPatch,
        now_ms: u64,
    ) -> PluginResult<()> {
        self.engine
            .write(move |t| subscriptions::update(t, &queue, &id, &patch, now_ms))
            .await
    }

    async fn subscription_confirm(
        &self,
        queue: QueueRef,
        id: RString,
        confirmed: bool,
        now_ms: u64,
    ) -> PluginResult<()> {
        self.engine
            .write(move |t| subscriptions::confirm(t, &queue, &id, confirmed, now_ms))
            .await
    }

    async fn subscription_delete(&self, queue: QueueRef, id: RString) -> PluginResult<()> {
        self.engine
            .write(move |t| subscriptions::delete(t, &queue, &id))
            .await
    }

    async fn subscription_scan(
        &self,
        marker: ROption<RString>,
        limit: u32,
        now_ms: u64,
    ) -> PluginResult<SubscriptionScanPage> {
        self.engine
            .read(|txn| {
                let marker = marker.as_ref().map(|m| m.as_str()).into_option();
                subscriptions::scan(txn, marker, limit, now_ms)
            })
            .await
    }

    async fn subscription_advance(
        &self,
        queue: QueueRef,
        id: RString,
        delivered_seq: u64,
        now_ms: u64,
    ) -> PluginResult<()> {
        self.engine
            .write(move |t| subscriptions::advance(t, &queue, &id, delivered_seq, now_ms))
            .await
    }

    async fn queue_last_seq(&self, queue: QueueRef) -> PluginResult<u64> {
        self.engine
            .read(|txn| queues::read_last_seq(txn, &queue))
            .await
    }

    async fn is_alive(&self) -> PluginResult<bool> {
        Ok(self.engine.is_alive())
    }

    async fn changes_watch(&self, sink: ChangeSinkBox) -> PluginResult<()> {
        // Every write to this directory goes through this process's writer,
        // so the in-process feed sees every host's (there is only one)
        // changes, including those of other stores opened on the directory.
        let id = self.engine.feed().watch(sink);
        let mut watch = self.watch.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(previous) = watch.replace(id) {
            self.engine.feed().unwatch(previous);
        }
        Ok(())
    }

    async fn notification_log(
        &self,
        queue: QueueRef,
        after_seq: u64,
        limit: u32,
        now_ms: u64,
    ) -> PluginResult<RVec<StoredMessage>> {
        self.engine
            .read(|txn| Ok(notification_log::read(txn, &queue, after_seq, limit, now_ms)?.into()))
            .await
    }

    async fn lease_acquire(
        &self,
        key: RString,
        holder: RString,
        ttl_ms: u64,
        now_ms: u64,
    ) -> PluginResult<bool> {
        self.engine
            .write(move |t| leases::acquire(t, &key, &holder, ttl_ms, now_ms))
            .await
    }

    async fn lease_release(&self, key: RString, holder: RString) -> PluginResult<()> {
        self.engine
            .write(move |t| leases::release(t, &key, &holder))
            .await
    }

    async fn messages_expired(&self) -> PluginResult<u64> {
        Ok(self.engine.expired_messages())
    }
}

#[cfg(test)]
mod tests {
    use plugin_api::{
        storage::{ClaimRequest, MessageListQuery, MessageStore, NewMessage, QueueRef},
        types::ROption::RNone,
    };

    use super::LISTING_ROWS_ON_WORKER;
    use crate::{messages, test_support, EmbeddedMessageStore};

    /// A listing whose page lies past more claimed messages than a worker
    /// walks gives up there and is answered, the same page, off the
    /// worker; one whose page starts where it does is answered on it.
    #[test]
    fn a_listing_that_walks_far_is_answered_off_the_worker_with_the_same_page() {
        let (_dir, config, runtime) = test_support::data_dir();
        let store = EmbeddedMessageStore::open(&config).unwrap();
        let queue = QueueRef::new("p", "q");
        runtime.block_on(async {
            let batch: Vec<NewMessage> = (0..300)
                .map(|i| NewMessage {
                    ttl: 60,
                    delay: 0,
                    body: i.to_string().into_bytes().into(),
                })
                .collect();
            let posted = store
                .message_post(queue.clone(), "c".into(), batch.into(), 10)
                .await
                .unwrap();
            let claim = ClaimRequest {
                ttl: 60,
                grace: 60,
                limit: 200,
                dead_letter: RNone,
            };
            let claimed = store.claim_create(queue.clone(), claim, 11).await.unwrap();
            assert_eq!(claimed.messages.len(), 200);

            let unclaimed = MessageListQuery {
                include_claimed: false,
                ..test_support::every_message()
            };
            let max_rows = unclaimed.limit as usize + LISTING_ROWS_ON_WORKER;
            let near = store
                .engine
                .read(|txn| messages::list_within(txn, &queue, &unclaimed, 12, max_rows))
                .await
                .unwrap();
            assert!(
                near.is_none(),
                "200 claimed rows are more than a worker walks"
            );
            let listed = store
                .message_list(queue.clone(), unclaimed, 12)
                .await
                .unwrap();
            let ids: Vec<_> = listed.iter().map(|m| m.id.clone()).collect();
            let expected: Vec<_> = posted[200..210].iter().map(|m| m.id.clone()).collect();
            assert_eq!(ids, expected);

            let every = test_support::every_message();
            let near = store
                .engine
                .read(|txn| messages::list_within(txn, &queue, &every, 12, max_rows))
                .await
                .unwrap()
                .expect("a page from the head is found on the worker");
            let ids: Vec<_> = near.iter().map(|m| m.id.clone()).collect();
            let expected: Vec<_> = posted[..10].iter().map(|m| m.id.clone()).collect();
            assert_eq!(ids, expected);
        });
    }
}
