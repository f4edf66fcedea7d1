//! One subscription's delivery loop: read the messages after the cursor,
//! deliver them in order with retries, advance the cursor.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use plugin_api::{
    notification::{Delivery, Notifier, NotifierBox},
    storage::{MessageListQuery, MessageStore, QueueRef, StoredMessage, SubscriptionRecord},
    types::ROption,
    ErrorCode,
};
use serde_json::Value;
use tokio::sync::{watch, Notify};

use super::{
    lease::{Lease, LEASE_TTL},
    payload::{notification_json, Notified},
    retry::RetryPolicy,
    scheme_of, Dispatcher, SOCKET_SCHEME,
};
use crate::api::clock;

/// Messages read from the store per round.
const PAGE: u32 = 20;
/// How long an idle worker sleeps before looking again anyway (posts on
/// other nodes, expiry).
const IDLE_RECHECK: Duration = Duration::from_secs(30);
/// Back-off after the store failed.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// Wakes or stops one worker.
#[derive(Default)]
pub struct Control {
    wake: Notify,
    stopped: AtomicBool,
}

impl Control {
    /// Makes the worker look at its subscription again.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Stops the worker at its next step (an attempt in flight finishes).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }
}

/// The delivery loop of one subscription.
pub struct Worker {
    pub dispatcher: Arc<Dispatcher>,
    pub queue: QueueRef,
    pub id: String,
    pub control: Arc<Control>,
    pub tail: watch::Receiver<u64>,
    pub lease: Lease,
}

/// How one message's delivery ended.
enum Outcome {
    Delivered,
    GaveUp,
    Stopped,
}

impl Worker {
    pub async fn run(mut self) {
        while !self.control.is_stopped() {
            if !self.lease.hold(&self.dispatcher.store).await {
                // Another host delivers this subscription; look again before
                // its lease could have expired.
                self.idle(LEASE_TTL / 2).await;
                continue;
            }
            match self.round().await {
                Ok(true) => {}
                Ok(false) => self.idle(IDLE_RECHECK).await,
                Err(Stop) => break,
            }
        }
        self.lease.release(&self.dispatcher.store).await;
        self.dispatcher
            .worker_done(&self.queue, &self.id, &self.control);
    }

    /// Waits for a post to the queue, a control event, or the timeout.
    async fn idle(&mut self, timeout: Duration) {
        let tail = &mut self.tail;
        let posted = async {
            // The queue's tail is dropped when the queue is deleted; then
            // only a control event or the timeout can end the wait.
            if tail.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            _ = posted => {}
            _ = self.control.wake.notified() => {}
            _ = tokio::time::sleep(timeout) => {}
        }
    }

    /// Handles one page. `Ok(true)` if it made progress, `Ok(false)` if there
    /// was nothing to do, `Err(Stop)` when the subscription is gone.
    async fn round(&mut self) -> Result<bool, Stop> {
        let store = self.dispatcher.store.clone();
        let now = clock::now_ms();
        let record = match store
            .subscription_get(self.queue.clone(), self.id.as_str().into(), now)
            .await
        {
            Ok(ROption::RSome(record)) => record,
            Ok(ROption::RNone) => return Err(Stop),
            Err(error) => {
                tracing::warn!(%error, "cannot read the subscription; retrying");
                tokio::time::sleep(STORE_RETRY).await;
                return Ok(true);
            }
        };
        let scheme = scheme_of(&record.subscriber);
        if scheme == SOCKET_SCHEME {
            return Err(Stop); // pushed by the host holding the socket
        }
        let Some(notifier) = self.dispatcher.notifiers.get(&scheme).cloned() else {
            tracing::warn!(
                scheme,
                "no notifier sink for this scheme: nothing is delivered"
            );
            return Ok(false);
        };
        let messages = match self.pending(record.delivered_seq, now).await {
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!(%error, "cannot read pending messages; retrying");
                tokio::time::sleep(STORE_RETRY).await;
                return Ok(true);
            }
        };
        if messages.is_empty() {
            return Ok(false);
        }
        // Unconfirmed subscriptions receive nothing (as in Zaqar), and what was
        // posted meanwhile is not owed to them later either.
        let deliver =
            record.confirmed || !self.dispatcher.options.notification.require_confirmation;
        let policy = if deliver {
            self.retry_policy(&record).await
        } else {
            RetryPolicy::default()
        };
        if !deliver {
            // Skip the whole page at once: nothing of it is owed later.
            let last = messages.last().map_or(record.delivered_seq, |m| m.seq);
            self.advance(last).await?;
            return Ok(true);
        }
        for message in messages.iter() {
            match self.deliver(&notifier, &record, message, &policy).await {
                Outcome::Delivered | Outcome::GaveUp => {}
                Outcome::Stopped => break,
            }
            // The cursor moves after each message, so a crash repeats at
            // most the attempt in flight.
            self.advance(message.seq).await?;
        }
        Ok(true)
    }

    /// The messages after `cursor` owed to the subscription: from the
    /// store's notification log, which keeps messages consumed before they
    /// were notified, or from the queue itself for a store without one.
    async fn pending(
        &self,
        cursor: u64,
        now: u64,
    ) -> plugin_api::PluginResult<plugin_api::types::RVec<StoredMessage>> {
        let store = &self.dispatcher.store;
        match store
            .notification_log(self.queue.clone(), cursor, PAGE, now)
            .await
        {
            Err(error) if error.is_unsupported() => {}
            logged => return logged,
        }
        let query = MessageListQuery {
            after_seq: ROption::RSome(cursor),
            limit: PAGE,
            exclude_client: ROption::RNone,
            include_claimed: true,
            include_delayed: true,
        };
        store.message_list(self.queue.clone(), query, now).await
    }

    /// Records durably that messages up to `seq` were handled.
    async fn advance(&self, seq: u64) -> Result<(), Stop> {
        let advanced = self
            .dispatcher
            .store
            .subscription_advance(
                self.queue.clone(),
                self.id.as_str().into(),
                seq,
                clock::now_ms(),
            )
            .await;
        match advanced {
            Ok(()) => Ok(()),
            Err(error) if error.code == ErrorCode::SUBSCRIPTION_NOT_FOUND => Err(Stop),
            Err(error) => {
                tracing::warn!(%error, "cannot record delivery progress; messages may be sent again");
                tokio::time::sleep(STORE_RETRY).await;
                Ok(())
            }
        }
    }

    async fn retry_policy(&self, record: &SubscriptionRecord) -> RetryPolicy {
        let options: Value = serde_json::from_slice(&record.options).unwrap_or_default();
        let metadata: Option<Value> = match self
            .dispatcher
            .store
            .queue_get_metadata(self.queue.clone())
            .await
        {
            Ok(ROption::RSome(bytes)) => serde_json::from_slice(&bytes).ok(),
            _ => None,
        };
        RetryPolicy::choose(
            options.get("_retry_policy"),
            metadata.as_ref().and_then(|m| m.get("_retry_policy")),
        )
    }

    async fn deliver(
        &mut self,
        notifier: &NotifierBox,
        record: &SubscriptionRecord,
        message: &StoredMessage,
        policy: &RetryPolicy,
    ) -> Outcome {
        let payload = notification_json(&Notified {
            queue: self.queue.name.as_str(),
            id: message.id.as_str(),
            seq: message.seq,
            ttl: message.ttl,
            body: &message.body,
        });
        let delivery = self.delivery(record, payload);
        let waits = policy.waits();
        let attempts = waits.len();
        for (attempt, wait) in waits.into_iter().enumerate() {
            if !wait.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.control.wake.notified() => {}
                }
            }
            if self.control.is_stopped() {
                return Outcome::Stopped;
            }
            let result = {
                let Ok(_permit) = self.dispatcher.in_flight.acquire().await else {
                    return Outcome::Stopped;
                };
                notifier.deliver(delivery.clone()).await
            };
            crate::metrics::global().notification_attempt(
                &record.subscriber,
                attempt,
                result.is_ok(),
            );
            match result {
                Ok(()) => return Outcome::Delivered,
                Err(error) if error.code == ErrorCode::DELIVERY_PERMANENT => {
                    tracing::warn!(%error, seq = message.seq, "notification refused for good; skipped");
                    crate::metrics::global().notification_gave_up(&record.subscriber);
                    return Outcome::GaveUp;
                }
                Err(error) if error.code == ErrorCode::PANICKED => {
                    // A panic is a bug in the sink, not a subscriber being
                    // down: the sink's author needs to see it.
                    let plugin = format!("zaqar.notification:{}", scheme_of(&record.subscriber));
                    tracing::warn!(%error, plugin, attempt = attempt + 1, attempts, seq = message.seq, "notifier sink panicked; retrying");
                }
                Err(error) => {
                    tracing::debug!(%error, attempt = attempt + 1, attempts, seq = message.seq, "notification attempt failed");
                }
            }
        }
        tracing::warn!(
            seq = message.seq,
            attempts,
            "notification not delivered after every retry; skipped"
        );
        crate::metrics::global().notification_gave_up(&record.subscriber);
        Outcome::GaveUp
    }

    fn delivery(&self, record: &SubscriptionRecord, payload: Vec<u8>) -> Delivery {
        delivery(&self.dispatcher, &self.queue, record, payload)
    }
}

/// The subscription is gone: the worker ends.
struct Stop;

fn delivery(
    dispatcher: &Dispatcher,
    queue: &QueueRef,
    record: &SubscriptionRecord,
    payload: Vec<u8>,
) -> Delivery {
    Delivery {
        subscriber: record.subscriber.clone(),
        project: queue.project.clone(),
        queue: queue.name.clone(),
        subscription_id: record.id.clone(),
        options: record.options.clone(),
        payload: payload.into(),
        allow_private_addresses: dispatcher.options.notification.allow_private_subscribers,
    }
}

/// Sends a confirmation request with the default retry policy (Zaqar sends
/// these once, and its retry path fails on them).
pub async fn send_confirmation(
    dispatcher: &Arc<Dispatcher>,
    queue: &QueueRef,
    id: &str,
    payload: Vec<u8>,
) {
    let record = match dispatcher
        .store
        .subscription_get(queue.clone(), id.into(), clock::now_ms())
        .await
    {
        Ok(ROption::RSome(record)) => record,
        _ => return,
    };
    let Some(notifier) = dispatcher
        .notifiers
        .get(&scheme_of(&record.subscriber))
        .cloned()
    else {
        return;
    };
    let delivery = delivery(dispatcher, queue, &record, payload);
    for wait in RetryPolicy::default().waits() {
        tokio::time::sleep(wait).await;
        match notifier.deliver(delivery.clone()).await {
            Ok(()) => return,
            Err(error) if error.code == ErrorCode::DELIVERY_PERMANENT => {
                tracing::warn!(%error, subscription = id, "confirmation request refused");
                return;
            }
            Err(_) => {}
        }
    }
    tracing::warn!(
        subscription = id,
        "confirmation request not delivered after every retry"
    );
}
