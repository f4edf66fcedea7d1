//! Notifications: every message posted to a queue goes to the queue's
//! subscribers, through the notifier sink their URI scheme picks (webhook,
//! mailto, third-party plugins), or pushed to the socket that subscribed.
//!
//! Delivery is durable and resumable: each subscription has a cursor in the
//! store (`delivered_seq`, the per-queue sequence number of the last message
//! handled for it). One worker task per subscription reads the messages
//! after its cursor, delivers them in order with Zaqar's retry policy, and
//! advances the cursor once they are handled, so a restart resumes exactly
//! where delivery stood and a receiver that was down still gets every
//! notification. Workers are independent: a dead endpoint only holds back
//! its own subscription, and a global limit bounds deliveries in flight.
//!
//! Workers wake when the queue's tail moves ([`crate::events`]), so posts
//! through any host sharing the store are delivered. Each worker holds a
//! lease on its subscription in the store while it delivers, so one host
//! at a time delivers a subscription; when a host dies its lease expires
//! and another takes over from the durable cursor. Sockets subscribed on
//! this host are pushed to by [`crate::push`].

mod lease;
pub mod payload;
pub mod retry;
mod worker;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use plugin_api::{
    notification::NotifierBox,
    storage::{ChangeKind, MessageStore, MessageStoreBox, QueueChange, QueueRef},
    types::ROption,
};
use tokio::sync::{broadcast::error::RecvError, Semaphore};
use tracing::Instrument;

use crate::{api::clock, config::NotificationOptions, events::Events, push::PushHub};

use self::{
    payload::Confirmation,
    worker::{Control, Worker},
};

/// The subscriber scheme of subscriptions that are sockets of this node.
pub const SOCKET_SCHEME: &str = "websocket";

/// Deliveries in flight at once, over all subscriptions.
const MAX_IN_FLIGHT: usize = 64;
/// How often a host renews its liveness lease (it lasts three times this).
const HOST_HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(5);

/// What the dispatcher needs beyond the store and the sinks.
#[derive(Debug, Clone, Default)]
pub struct DispatchOptions {
    /// Zaqar's `[notification]` options.
    pub notification: NotificationOptions,
    /// `[signed_url] secret_key`, for confirmation links.
    pub signing_key: Option<String>,
    /// `default_subscription_ttl`, the validity of unsubscribe links.
    pub default_subscription_ttl: u32,
}

type WorkerKey = (QueueRef, String);

/// Routes posted messages to subscribers.
pub struct Dispatcher {
    store: Arc<MessageStoreBox>,
    events: Arc<Events>,
    notifiers: HashMap<String, Arc<NotifierBox>>,
    options: DispatchOptions,
    /// This host's name in delivery leases.
    host_id: String,
    /// Sockets of this node and what they subscribed to.
    pub pushes: PushHub,
    workers: Mutex<HashMap<WorkerKey, Arc<Control>>>,
    in_flight: Semaphore,
}

/// The scheme of a subscriber URI (`http` of `http://...`, `mailto` of
/// `mailto:...`), lowercased; empty when there is none.
pub fn scheme_of(subscriber: &str) -> String {
    crate::api::subscriptions::url_scheme(subscriber).unwrap_or_default()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section below completes without calling out, so the
    // data stays consistent even if a panic poisoned the lock.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Dispatcher {
    /// A dispatcher over `store`, woken by `events`, with the notifier
    /// sinks by scheme.
    pub fn new(
        store: Arc<MessageStoreBox>,
        events: Arc<Events>,
        notifiers: HashMap<String, Arc<NotifierBox>>,
        options: DispatchOptions,
    ) -> Arc<Self> {
        let host_id = format!("host-{}", uuid::Uuid::new_v4());
        tracing::info!(%host_id, "notification dispatcher ready");
        Arc::new(Self {
            pushes: PushHub::new(store.clone(), events.clone()),
            store,
            events,
            notifiers,
            options,
            host_id,
            workers: Mutex::new(HashMap::new()),
            in_flight: Semaphore::new(MAX_IN_FLIGHT),
        })
    }

    /// Follows the store's changes: subscriptions created, changed or
    /// deleted through any host start or stop their workers here too; a
    /// deleted queue stops its workers; a resync rescans every
    /// subscription.
    pub fn listen(self: &Arc<Self>) {
        let mut changes = self.events.changes();
        let dispatcher = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let change = match changes.recv().await {
                    Ok(change) => change,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "store changes came faster than they were followed: rescanning subscriptions");
                        QueueChange::resync()
                    }
                    Err(RecvError::Closed) => return,
                };
                let Some(dispatcher) = dispatcher.upgrade() else {
                    return;
                };
                dispatcher.follow(change).await;
            }
        });
    }

    async fn follow(self: &Arc<Self>, change: QueueChange) {
        match change.kind {
            ChangeKind::SUBSCRIPTIONS => {
                let id = change.subscription.as_str();
                let found = self
                    .store
                    .subscription_get(change.queue.clone(), id.into(), clock::now_ms())
                    .await;
                match found {
                    Ok(ROption::RSome(record)) => {
                        if scheme_of(&record.subscriber) != SOCKET_SCHEME {
                            self.ensure_worker(change.queue, id);
                        }
                    }
                    Ok(ROption::RNone) => self.subscription_deleted(&change.queue, id),
                    Err(error) => {
                        tracing::warn!(%error, "cannot read a changed subscription; its worker looks again on its own")
                    }
                }
            }
            ChangeKind::QUEUE_DELETED => self.queue_deleted(&change.queue),
            ChangeKind::RESYNC => self.resume().await,
            _ => {}
        }
    }

    /// The schemes a sink is loaded for.
    pub fn schemes(&self) -> impl Iterator<Item = &str> {
        self.notifiers.keys().map(String::as_str)
    }

    /// The subscriber URI of a socket subscription of `connection` on this
    /// host. It names the host, so connection ids of different hosts never
    /// collide and a host can tell whose sockets a subscription belongs to.
    /// Its `websocket:` prefix also tells the store that the host pushes to
    /// it from the queue, so no notification log is kept for it (plugin-api,
    /// `notification_log`).
    pub fn socket_subscriber(&self, connection: &str) -> String {
        format!("{SOCKET_SCHEME}:{}/{connection}", self.host_id)
    }

    /// Keeps this host's liveness lease, so other hosts sharing the store
    /// leave its socket subscriptions alone while it runs.
    pub fn keep_alive(self: &Arc<Self>) {
        let dispatcher = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(dispatcher) = dispatcher.upgrade() else {
                    return;
                };
                let key = format!("host/{}", dispatcher.host_id);
                let ttl_ms = 3 * HOST_HEARTBEAT.as_millis() as u64;
                let renewed = dispatcher
                    .store
                    .lease_acquire(
                        key.into(),
                        dispatcher.host_id.as_str().into(),
                        ttl_ms,
                        clock::now_ms(),
                    )
                    .await;
                if renewed.is_err_and(|e| e.is_unsupported()) {
                    return; // no leases: no other host to tell
                }
                drop(dispatcher);
                tokio::time::sleep(HOST_HEARTBEAT).await;
            }
        });
    }

    /// Whether the host that made a socket subscription is gone: its
    /// liveness lease can be taken (or the store has no leases, so there
    /// is no other host and the subscription is a previous run's).
    async fn socket_host_gone(&self, subscriber: &str) -> bool {
        let Some(host) = subscriber
            .strip_prefix(SOCKET_SCHEME)
            .and_then(|rest| rest.strip_prefix(':'))
            .and_then(|rest| rest.split_once('/'))
            .map(|(host, _)| host)
        else {
            return true; // not made by this version: a previous run's
        };
        if host == self.host_id {
            return false;
        }
        let key = format!("host/{host}");
        let probe = format!("{}-probe", self.host_id);
        match self
            .store
            .lease_acquire(
                key.as_str().into(),
                probe.as_str().into(),
                1,
                clock::now_ms(),
            )
            .await
        {
            Ok(taken) => taken,
            Err(error) => error.is_unsupported(),
        }
    }

    /// Resumes every stored subscription: a worker per subscription with a
    /// sink; socket subscriptions whose host is gone are deleted (their
    /// sockets are gone with it).
    pub async fn resume(self: &Arc<Self>) {
        let mut marker = ROption::RNone;
        let (mut resumed, mut stale) = (0usize, 0usize);
        loop {
            let page = match self
                .store
                .subscription_scan(marker, 200, clock::now_ms())
                .await
            {
                Ok(page) => page,
                Err(error) => {
                    tracing::error!(%error, "cannot list subscriptions: notifications are not resumed");
                    return;
                }
            };
            for entry in page.entries.iter() {
                let queue = QueueRef {
                    project: entry.project.clone(),
                    name: entry.record.queue.clone(),
                };
                if scheme_of(&entry.record.subscriber) == SOCKET_SCHEME {
                    if self.socket_host_gone(&entry.record.subscriber).await {
                        let _ = self
                            .store
                            .subscription_delete(queue, entry.record.id.clone())
                            .await;
                        stale += 1;
                    }
                } else {
                    self.ensure_worker(queue, entry.record.id.as_str());
                    resumed += 1;
                }
            }
            match page.next_marker {
                ROption::RSome(next) => marker = ROption::RSome(next),
                ROption::RNone => break,
            }
        }
        tracing::info!(
            resumed,
            stale_socket_subscriptions = stale,
            "notification delivery resumed"
        );
    }

    /// A subscription was created (or re-posted while unconfirmed): start
    /// delivering to it and, when confirmation is required, ask the
    /// subscriber to confirm.
    pub fn subscription_created(self: &Arc<Self>, queue: &QueueRef, id: &str, ttl: u32) {
        self.ensure_worker(queue.clone(), id);
        if self.options.notification.require_confirmation {
            self.send_confirmation(queue, id, Confirmation::Subscribe, ttl);
        }
    }

    /// A subscription changed (subscriber, options, ttl): the worker reads it
    /// again.
    pub fn subscription_changed(&self, queue: &QueueRef, id: &str) {
        if let Some(control) = lock(&self.workers).get(&(queue.clone(), id.to_string())) {
            control.wake();
        }
    }

    /// A subscription was confirmed or unconfirmed.
    pub fn subscription_confirmed(self: &Arc<Self>, queue: &QueueRef, id: &str, confirmed: bool) {
        self.subscription_changed(queue, id);
        if !confirmed && self.options.notification.require_confirmation {
            let ttl = self.options.default_subscription_ttl;
            self.send_confirmation(queue, id, Confirmation::Unsubscribe, ttl);
        }
    }

    /// A subscription was deleted.
    pub fn subscription_deleted(&self, queue: &QueueRef, id: &str) {
        self.pushes.unsubscribe(queue, id);
        if let Some(control) = lock(&self.workers).remove(&(queue.clone(), id.to_string())) {
            control.stop();
        }
    }

    /// A queue was deleted with its subscriptions.
    pub fn queue_deleted(&self, queue: &QueueRef) {
        self.pushes.forget_queue(queue);
        let mut workers = lock(&self.workers);
        workers.retain(|(q, _), control| {
            if q == queue {
                control.stop();
                false
            } else {
                true
            }
        });
    }

    /// Stops every worker (server shutdown); cursors are already durable.
    pub fn shutdown(&self) {
        for (_, control) in lock(&self.workers).drain() {
            control.stop();
        }
    }

    fn ensure_worker(self: &Arc<Self>, queue: QueueRef, id: &str) {
        let key = (queue.clone(), id.to_string());
        let control = {
            let mut workers = lock(&self.workers);
            if let Some(existing) = workers.get(&key) {
                existing.wake();
                return;
            }
            let control = Arc::new(Control::default());
            workers.insert(key, control.clone());
            control
        };
        let worker = Worker {
            dispatcher: self.clone(),
            tail: self.events.tail(&queue),
            lease: lease::Lease::new(&queue, id, &self.host_id),
            queue,
            id: id.to_string(),
            control,
        };
        let span =
            tracing::info_span!("notify", queue = %worker.queue.name, subscription = %worker.id);
        tokio::spawn(worker.run().instrument(span));
    }

    /// Worker exit: forget it unless a newer worker took its place.
    fn worker_done(&self, queue: &QueueRef, id: &str, control: &Arc<Control>) {
        let mut workers = lock(&self.workers);
        let key = (queue.clone(), id.to_string());
        if workers.get(&key).is_some_and(|c| Arc::ptr_eq(c, control)) {
            workers.remove(&key);
        }
    }

    fn send_confirmation(
        self: &Arc<Self>,
        queue: &QueueRef,
        id: &str,
        kind: Confirmation,
        ttl: u32,
    ) {
        let Some(key) = self.options.signing_key.clone() else {
            // Zaqar logs this too: without a key there is no link to send.
            tracing::error!(
                queue = %queue.name,
                subscription = id,
                "require_confirmation is on but [signed_url] secret_key is unset: no confirmation sent"
            );
            return;
        };
        let dispatcher = self.clone();
        let queue = queue.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            let payload = payload::confirmation_json(
                kind,
                &key,
                queue.project.as_str(),
                queue.name.as_str(),
                &id,
                clock::now_ms(),
                ttl,
            );
            worker::send_confirmation(&dispatcher, &queue, &id, payload).await;
        });
    }
}
