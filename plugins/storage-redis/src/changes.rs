//! The change feed over Redis pub/sub: every script that commits a change
//! publishes it on `<prefix>zaqar-rs.changes` in the same atomic step; each
//! store that watches keeps one subscriber connection, re-opened when lost,
//! and reports [`Change::RESYNC`] once it is back (changes published while
//! it was away are gone).

use std::{sync::Arc, time::Duration};

use futures_util::StreamExt;
use tokio::task::AbortHandle;

use crate::connection::Conn;

/// One announced change (the fields of the contract's `QueueChange`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// 0 messages posted, 1 queue deleted, 2 queue purged, 3 subscription
    /// changed, 255 resync.
    pub kind: u8,
    /// The queue's project (empty for a resync).
    pub project: String,
    /// The queue (empty for a resync).
    pub queue: String,
    /// For posts: the queue's last sequence number.
    pub last_seq: u64,
    /// For subscription changes: the subscription id.
    pub subscription: String,
}

impl Change {
    /// The kind of a resync.
    pub const RESYNC: u8 = 255;

    fn resync() -> Self {
        Self {
            kind: Self::RESYNC,
            project: String::new(),
            queue: String::new(),
            last_seq: 0,
            subscription: String::new(),
        }
    }

    /// Parses a payload written by the scripts' `announce`.
    fn parse(payload: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(payload).ok()?;
        let mut parts = text.split('\n');
        Some(Self {
            kind: parts.next()?.parse().ok()?,
            project: parts.next()?.to_owned(),
            queue: parts.next()?.to_owned(),
            last_seq: parts.next()?.parse().ok()?,
            subscription: parts.next()?.to_owned(),
        })
    }
}

/// Stops the feed task when the last clone of the store is dropped.
#[derive(Debug, Default)]
pub(crate) struct FeedGuard(std::sync::Mutex<Option<AbortHandle>>);

impl FeedGuard {
    pub(crate) fn set(&self, handle: AbortHandle) {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = slot.replace(handle) {
            old.abort();
        }
    }
}

impl Drop for FeedGuard {
    fn drop(&mut self) {
        if let Some(handle) = self.0.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
            handle.abort();
        }
    }
}

async fn subscribe(conn: &Conn, channel: &str) -> Option<redis::aio::PubSub> {
    let client = conn
        .client()
        .await
        .map_err(|error| tracing::debug!(%error, "redis store: change feed has no server"))
        .ok()?;
    let mut pubsub = client.get_async_pubsub().await.ok()?;
    pubsub.subscribe(channel).await.ok()?;
    Some(pubsub)
}

/// Subscribes (so that every change committed after this returns is
/// seen), then starts the task that passes every change to `sink`, and a
/// resync after a lost and re-established feed.
pub(crate) async fn start(
    conn: Conn,
    channel: String,
    sink: Arc<dyn Fn(Change) + Send + Sync>,
) -> AbortHandle {
    let mut first = subscribe(&conn, &channel).await;
    let task = async move {
        loop {
            // Only the subscription made before `start` returned has seen
            // every change since; any later one (a reconnection, or the
            // first one when that failed) may have missed some.
            let (subscribed, may_have_missed) = match first.take() {
                Some(pubsub) => (Some(pubsub), false),
                None => (subscribe(&conn, &channel).await, true),
            };
            match subscribed {
                Some(mut pubsub) => {
                    if may_have_missed {
                        tracing::info!("redis store: change feed (re)connected, resyncing");
                        sink(Change::resync());
                    }
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        match Change::parse(message.get_payload_bytes()) {
                            Some(change) => sink(change),
                            None => {
                                tracing::warn!("redis store: unreadable change announcement")
                            }
                        }
                    }
                    tracing::warn!("redis store: change feed lost, reconnecting");
                }
                None => tracing::debug!("redis store: change feed not connected"),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    plugin_api::runtime::handle().spawn(task).abort_handle()
}
