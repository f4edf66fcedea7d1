//! Pushes to persistent connections: which open connection subscribed to
//! which queue, and the fan-out of new messages to them.
//!
//! A WebSocket `subscription_create` without a subscriber subscribes the
//! socket itself, as Zaqar does. The subscription is stored (so listings
//! show it) and indexed here by queue. Each queue with subscribed sockets on
//! this host has one **pump**: it waits on the queue's tail
//! ([`crate::events`]), reads the messages after the lowest cursor of the
//! queue's subscriptions from the store, and pushes each, in sequence
//! order, to every subscription whose cursor is behind it. Reading from the
//! store rather than from the post makes a push reach sockets on every
//! host sharing the store, keeps concurrent posts in sequence order, and
//! lets a wake-up be missed without a message being missed: the cursor says
//! where each socket stands.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::Duration,
};

use plugin_api::{
    storage::{MessageListQuery, MessageStore, MessageStoreBox, QueueRef, StoredMessage},
    transport::{PushFrame, PushSink, PushSinkBox},
    types::ROption,
};
use tokio::sync::Notify;

use crate::{
    api::clock,
    events::Events,
    notify::payload::{notification_json, notification_msgpack, Notified},
};

/// Messages read from the store per pump round.
const PAGE: u32 = 100;
/// A pump with nothing announced looks again after this long anyway.
const IDLE_RECHECK: Duration = Duration::from_secs(30);
/// Back-off after the store failed.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// One socket subscription.
#[derive(Clone)]
struct SocketSubscription {
    connection: String,
    subscription_id: String,
    binary: bool,
    /// The sequence number of the last message pushed (or owed to it
    /// before it subscribed); only later ones are pushed.
    delivered: Arc<AtomicU64>,
}

struct Connection {
    sink: Arc<PushSinkBox>,
    subscriptions: Vec<(QueueRef, String)>,
}

#[derive(Default)]
struct QueuePushes {
    subscriptions: Vec<SocketSubscription>,
    /// Wakes the queue's pump when a subscription is added.
    added: Arc<Notify>,
    pumping: bool,
}

#[derive(Default)]
struct State {
    connections: HashMap<String, Connection>,
    by_queue: HashMap<QueueRef, QueuePushes>,
}

/// The open connections of this node and what they subscribed to.
pub struct PushHub {
    state: Arc<Mutex<State>>,
    store: Arc<MessageStoreBox>,
    events: Arc<Events>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // The state stays consistent across a panic elsewhere: every mutation
    // below completes without calling out.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl PushHub {
    /// A hub reading messages from `store` when `events` announce them.
    pub fn new(store: Arc<MessageStoreBox>, events: Arc<Events>) -> Self {
        Self {
            state: Arc::default(),
            store,
            events,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// A connection opened.
    pub fn open(&self, connection: &str, sink: PushSinkBox) {
        self.state().connections.insert(
            connection.to_string(),
            Connection {
                sink: Arc::new(sink),
                subscriptions: Vec::new(),
            },
        );
    }

    /// A connection closed: forgets it and returns the subscriptions it
    /// held, for the caller to delete from the store.
    pub fn close(&self, connection: &str) -> Vec<(QueueRef, String)> {
        let mut state = self.state();
        let Some(closed) = state.connections.remove(connection) else {
            return Vec::new();
        };
        for (queue, _) in &closed.subscriptions {
            if let Some(pushes) = state.by_queue.get_mut(queue) {
                pushes.subscriptions.retain(|s| s.connection != connection);
            }
        }
        closed.subscriptions
    }

    /// Whether the connection is open on this node.
    pub fn is_open(&self, connection: &str) -> bool {
        self.state().connections.contains_key(connection)
    }

    /// Subscribes an open connection to a queue, from the message after
    /// `after_seq` on; pushes go out as binary (MsgPack) frames if
    /// `binary`. Returns false if the connection is not open (any more).
    pub fn subscribe(
        &self,
        connection: &str,
        queue: QueueRef,
        subscription_id: &str,
        binary: bool,
        after_seq: u64,
    ) -> bool {
        let mut state = self.state();
        let Some(open) = state.connections.get_mut(connection) else {
            return false;
        };
        if open
            .subscriptions
            .iter()
            .any(|(q, id)| q == &queue && id == subscription_id)
        {
            return true;
        }
        open.subscriptions
            .push((queue.clone(), subscription_id.to_string()));
        let pushes = state.by_queue.entry(queue.clone()).or_default();
        pushes.subscriptions.push(SocketSubscription {
            connection: connection.to_string(),
            subscription_id: subscription_id.to_string(),
            binary,
            delivered: Arc::new(AtomicU64::new(after_seq)),
        });
        pushes.added.notify_one();
        if !pushes.pumping {
            pushes.pumping = true;
            let pump = Pump {
                state: self.state.clone(),
                store: self.store.clone(),
                tail: self.events.tail(&queue),
                added: pushes.added.clone(),
                queue,
            };
            tokio::spawn(pump.run());
        }
        true
    }

    /// Forgets one socket subscription (deleted through the API).
    pub fn unsubscribe(&self, queue: &QueueRef, subscription_id: &str) {
        let mut state = self.state();
        let mut connection = None;
        if let Some(pushes) = state.by_queue.get_mut(queue) {
            pushes.subscriptions.retain(|s| {
                let matches = s.subscription_id == subscription_id;
                if matches {
                    connection = Some(s.connection.clone());
                }
                !matches
            });
        }
        if let Some(open) = connection.and_then(|c| state.connections.get_mut(&c)) {
            open.subscriptions
                .retain(|(q, id)| !(q == queue && id == subscription_id));
        }
    }

    /// Forgets every socket subscription of a deleted queue.
    pub fn forget_queue(&self, queue: &QueueRef) {
        let mut state = self.state();
        let Some(pushes) = state.by_queue.get_mut(queue) else {
            return;
        };
        let gone = std::mem::take(&mut pushes.subscriptions);
        pushes.added.notify_one();
        for subscription in gone {
            if let Some(open) = state.connections.get_mut(&subscription.connection) {
                open.subscriptions.retain(|(q, _)| q != queue);
            }
        }
    }
}

/// A subscription's target for one round.
struct Target {
    subscription: SocketSubscription,
    sink: Arc<PushSinkBox>,
    refused: bool,
}

/// The fan-out loop of one queue on this host.
struct Pump {
    state: Arc<Mutex<State>>,
    store: Arc<MessageStoreBox>,
    tail: tokio::sync::watch::Receiver<u64>,
    added: Arc<Notify>,
    queue: QueueRef,
}

impl Pump {
    async fn run(mut self) {
        loop {
            let Some(mut targets) = self.targets() else {
                return;
            };
            // Mark the tail seen before reading the store, never after: an
            // announcement that lands while the read is in flight must still
            // wake the wait below (marking it seen after the read would
            // swallow it, and the message would wait for the idle recheck).
            self.tail.borrow_and_update();
            let from = targets
                .iter()
                .map(|t| t.subscription.delivered.load(Ordering::SeqCst))
                .min()
                .unwrap_or(0);
            let query = MessageListQuery {
                after_seq: ROption::RSome(from),
                limit: PAGE,
                exclude_client: ROption::RNone,
                include_claimed: true,
                include_delayed: true,
            };
            let page = match self
                .store
                .message_list(self.queue.clone(), query, clock::now_ms())
                .await
            {
                Ok(page) => page,
                Err(error) => {
                    tracing::warn!(%error, queue = %self.queue.name, "cannot read messages to push; retrying");
                    tokio::time::sleep(STORE_RETRY).await;
                    continue;
                }
            };
            for message in page.iter() {
                self.push(&mut targets, message);
            }
            if page.len() as u32 == PAGE {
                continue;
            }
            tokio::select! {
                changed = self.tail.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep(IDLE_RECHECK).await;
                    }
                }
                _ = self.added.notified() => {}
                _ = tokio::time::sleep(IDLE_RECHECK) => {}
            }
        }
    }

    /// The queue's subscriptions now, or `None` (and the pump stops) when
    /// there are none left.
    fn targets(&self) -> Option<Vec<Target>> {
        let mut state = lock(&self.state);
        let State {
            connections,
            by_queue,
        } = &mut *state;
        let pushes = by_queue.get_mut(&self.queue)?;
        if pushes.subscriptions.is_empty() {
            by_queue.remove(&self.queue);
            return None;
        }
        Some(
            pushes
                .subscriptions
                .iter()
                .filter_map(|s| {
                    let sink = connections.get(&s.connection)?.sink.clone();
                    Some(Target {
                        subscription: s.clone(),
                        sink,
                        refused: false,
                    })
                })
                .collect(),
        )
    }

    /// Pushes one message to every subscription behind it. A sink that
    /// refuses a frame (its transport closes it as a slow consumer) gets no
    /// more this round.
    fn push(&self, targets: &mut [Target], message: &StoredMessage) {
        let notified = Notified {
            queue: self.queue.name.as_str(),
            id: message.id.as_str(),
            seq: message.seq,
            ttl: message.ttl,
            body: &message.body,
        };
        let (mut text, mut binary) = (None, None);
        for target in targets.iter_mut().filter(|t| !t.refused) {
            let delivered = &target.subscription.delivered;
            if delivered.load(Ordering::SeqCst) >= message.seq {
                continue;
            }
            let payload = if target.subscription.binary {
                binary.get_or_insert_with(|| notification_msgpack(&notified))
            } else {
                text.get_or_insert_with(|| notification_json(&notified))
            };
            let accepted = target.sink.push(PushFrame {
                binary: target.subscription.binary,
                payload: payload.clone().into(),
            });
            if accepted {
                delivered.store(message.seq, Ordering::SeqCst);
            } else {
                target.refused = true;
                tracing::debug!(
                    connection = %target.subscription.connection,
                    queue = %self.queue.name,
                    "push refused: connection closed or too slow"
                );
            }
        }
    }
}
