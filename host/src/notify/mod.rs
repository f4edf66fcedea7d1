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
//! Sockets subscribed on this node are pushed to at once, from the post
//! itself, without a storage read.

pub mod payload;
pub mod retry;
mod worker;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use plugin_api::{
    notification::NotifierBox,
    storage::{MessageStore, MessageStoreBox, QueueRef},
    types::ROption,
};
use tokio::sync::{watch, Semaphore};
use tracing::Instrument;

use crate::{
    api::clock,
    config::NotificationOptions,
    push::{Posted, PushHub},
};

use self::{
    payload::Confirmation,
    worker::{Control, Worker},
};

/// The subscriber scheme of subscriptions that are sockets of this node.
pub const SOCKET_SCHEME: &str = "websocket";

/// Deliveries in flight at once, over all subscriptions.
const MAX_IN_FLIGHT: usize = 64;

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
    notifiers: HashMap<String, Arc<NotifierBox>>,
    options: DispatchOptions,
    /// Sockets of this node and what they subscribed to.
    pub pushes: PushHub,
    tails: Mutex<HashMap<QueueRef, watch::Sender<u64>>>,
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
    /// A dispatcher over `store` with the notifier sinks by scheme.
    pub fn new(
        store: Arc<MessageStoreBox>,
        notifiers: HashMap<String, Arc<NotifierBox>>,
        options: DispatchOptions,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            notifiers,
            options,
            pushes: PushHub::default(),
            tails: Mutex::new(HashMap::new()),
            workers: Mutex::new(HashMap::new()),
            in_flight: Semaphore::new(MAX_IN_FLIGHT),
        })
    }

    /// The schemes a sink is loaded for.
    pub fn schemes(&self) -> impl Iterator<Item = &str> {
        self.notifiers.keys().map(String::as_str)
    }

    /// Resumes every stored subscription: a worker per subscription with a
    /// sink; socket subscriptions left by a previous run are deleted (their
    /// sockets are gone).
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
                    let _ = self
                        .store
                        .subscription_delete(queue, entry.record.id.clone())
                        .await;
                    stale += 1;
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

    /// Messages were posted (and committed): push them to this node's
    /// sockets and wake the queue's delivery workers.
    pub fn posted(&self, queue: &QueueRef, messages: &[Posted<'_>]) {
        self.pushes.publish(queue, messages);
        if let Some(last) = messages.iter().map(|m| m.seq).max() {
            if let Some(tail) = lock(&self.tails).get(queue) {
                tail.send_replace(last);
            }
        }
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
        lock(&self.tails).remove(queue);
    }

    /// Stops every worker (server shutdown); cursors are already durable.
    pub fn shutdown(&self) {
        for (_, control) in lock(&self.workers).drain() {
            control.stop();
        }
    }

    fn tail(&self, queue: &QueueRef) -> watch::Receiver<u64> {
        lock(&self.tails)
            .entry(queue.clone())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
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
            tail: self.tail(&queue),
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
