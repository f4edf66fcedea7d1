//! Pushes to persistent connections: which open connection subscribed to
//! which queue, and the fan-out of newly posted messages to them.
//!
//! A WebSocket `subscription_create` without a subscriber subscribes the
//! socket itself (Zaqar §5.4). The subscription is stored like any other (so
//! listings show it) and indexed here by queue, so a post fans out to the
//! subscribed sockets of this node without a storage read.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use plugin_api::{
    storage::QueueRef,
    transport::{PushFrame, PushSink, PushSinkBox},
};
use serde_json::value::RawValue;

use crate::notify::payload::{notification_json, notification_msgpack, Notified};

/// A message as pushed: what the notification payload is built from.
pub struct Posted<'a> {
    /// The message id.
    pub id: &'a str,
    /// Its per-queue sequence number.
    pub seq: u64,
    /// Its ttl in seconds.
    pub ttl: u32,
    /// Its body, JSON.
    pub body: &'a RawValue,
}

impl Posted<'_> {
    fn notified<'q>(&'q self, queue: &'q QueueRef) -> Notified<'q> {
        Notified {
            queue: queue.name.as_str(),
            id: self.id,
            seq: self.seq,
            ttl: self.ttl,
            body: self.body.get().as_bytes(),
        }
    }
}

/// One socket subscription.
#[derive(Clone)]
struct SocketSubscription {
    connection: String,
    subscription_id: String,
    binary: bool,
}

struct Connection {
    sink: Arc<PushSinkBox>,
    subscriptions: Vec<(QueueRef, String)>,
}

#[derive(Default)]
struct State {
    connections: HashMap<String, Connection>,
    by_queue: HashMap<QueueRef, Vec<SocketSubscription>>,
}

/// The open connections of this node and what they subscribed to.
#[derive(Default)]
pub struct PushHub {
    state: Mutex<State>,
}

impl PushHub {
    fn state(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panic elsewhere: every
        // mutation below completes without calling out.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
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
            if let Some(list) = state.by_queue.get_mut(queue) {
                list.retain(|s| s.connection != connection);
                if list.is_empty() {
                    state.by_queue.remove(queue);
                }
            }
        }
        closed.subscriptions
    }

    /// Whether the connection is open on this node.
    pub fn is_open(&self, connection: &str) -> bool {
        self.state().connections.contains_key(connection)
    }

    /// Subscribes an open connection to a queue; pushes go out as binary
    /// (MsgPack) frames if `binary`. Returns false if the connection is not
    /// open (any more).
    pub fn subscribe(
        &self,
        connection: &str,
        queue: QueueRef,
        subscription_id: &str,
        binary: bool,
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
        state
            .by_queue
            .entry(queue)
            .or_default()
            .push(SocketSubscription {
                connection: connection.to_string(),
                subscription_id: subscription_id.to_string(),
                binary,
            });
        true
    }

    /// Forgets one socket subscription (deleted through the API).
    pub fn unsubscribe(&self, queue: &QueueRef, subscription_id: &str) {
        let mut state = self.state();
        let mut connection = None;
        if let Some(list) = state.by_queue.get_mut(queue) {
            list.retain(|s| {
                let matches = s.subscription_id == subscription_id;
                if matches {
                    connection = Some(s.connection.clone());
                }
                !matches
            });
            if list.is_empty() {
                state.by_queue.remove(queue);
            }
        }
        if let Some(open) = connection.and_then(|c| state.connections.get_mut(&c)) {
            open.subscriptions
                .retain(|(q, id)| !(q == queue && id == subscription_id));
        }
    }

    /// Forgets every socket subscription of a deleted queue.
    pub fn forget_queue(&self, queue: &QueueRef) {
        let mut state = self.state();
        let Some(list) = state.by_queue.remove(queue) else {
            return;
        };
        for subscription in list {
            if let Some(open) = state.connections.get_mut(&subscription.connection) {
                open.subscriptions.retain(|(q, _)| q != queue);
            }
        }
    }

    /// Whether any socket of this node listens to the queue (cheap check
    /// before building payloads).
    pub fn has_subscribers(&self, queue: &QueueRef) -> bool {
        self.state().by_queue.contains_key(queue)
    }

    /// Pushes newly posted messages to every socket subscribed to the
    /// queue, one frame per message in sequence order. A sink that refuses a
    /// frame (its transport closes it as a slow consumer) gets no more.
    pub fn publish(&self, queue: &QueueRef, messages: &[Posted<'_>]) {
        let targets: Vec<(SocketSubscription, Arc<PushSinkBox>)> = {
            let state = self.state();
            let Some(list) = state.by_queue.get(queue) else {
                return;
            };
            list.iter()
                .filter_map(|s| {
                    let sink = state.connections.get(&s.connection)?.sink.clone();
                    Some((s.clone(), sink))
                })
                .collect()
        };
        let mut text_frames: Option<Vec<Vec<u8>>> = None;
        let mut binary_frames: Option<Vec<Vec<u8>>> = None;
        for (subscription, sink) in targets {
            let frames = if subscription.binary {
                binary_frames.get_or_insert_with(|| {
                    messages
                        .iter()
                        .map(|m| notification_msgpack(&m.notified(queue)))
                        .collect()
                })
            } else {
                text_frames.get_or_insert_with(|| {
                    messages
                        .iter()
                        .map(|m| notification_json(&m.notified(queue)))
                        .collect()
                })
            };
            for frame in frames.iter() {
                let accepted = sink.push(PushFrame {
                    binary: subscription.binary,
                    payload: frame.clone().into(),
                });
                if !accepted {
                    tracing::debug!(
                        connection = %subscription.connection,
                        queue = %queue.name,
                        "push refused: connection closed or too slow"
                    );
                    break;
                }
            }
        }
    }
}
