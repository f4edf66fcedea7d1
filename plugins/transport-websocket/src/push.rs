//! The push sink the host writes to: a queue per socket bounded in frames
//! and in bytes. A full queue means the client reads slower than messages
//! arrive; the socket is closed (code 1008) instead of buffering without
//! bound.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use plugin_api::transport::{PushFrame, PushSink};
use tokio::sync::{mpsc, watch, Notify};
use tokio_tungstenite::tungstenite::{protocol::frame::coding::CloseCode, Message};

/// Why the server closes a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason {
    /// The WebSocket close code.
    pub code: CloseCode,
    /// The reason text sent with it.
    pub reason: String,
}

/// Asks for the socket to be closed with `reason`, unless a reason is
/// already set.
pub fn request_close(close: &watch::Sender<Option<CloseReason>>, reason: CloseReason) {
    close.send_if_modified(|current| {
        if current.is_some() {
            return false;
        }
        *current = Some(reason);
        true
    });
}

/// The bytes waiting in one socket's send queue.
#[derive(Default)]
pub struct QueuedBytes {
    bytes: AtomicUsize,
    drained: Notify,
}

impl QueuedBytes {
    /// Counts `len` more bytes if they fit under `limit` (or the queue is
    /// empty: one frame always fits).
    pub fn try_add(&self, len: usize, limit: usize) -> bool {
        self.bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                (queued == 0 || queued + len <= limit).then_some(queued + len)
            })
            .is_ok()
    }

    /// Counts `len` bytes as sent (or dropped).
    pub fn remove(&self, len: usize) {
        self.bytes.fetch_sub(len, Ordering::AcqRel);
        self.drained.notify_waiters();
    }

    /// Waits until `len` more bytes fit under `limit`, then counts them.
    pub async fn add_when_room(&self, len: usize, limit: usize) {
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.try_add(len, limit) {
                return;
            }
            drained.await;
        }
    }
}

/// The host's handle on one socket's send queue.
pub struct SocketSink {
    pub frames: mpsc::Sender<Message>,
    pub close: watch::Sender<Option<CloseReason>>,
    pub queue_limit: usize,
    pub bytes: Arc<QueuedBytes>,
    pub bytes_limit: usize,
}

impl PushSink for SocketSink {
    fn push(&self, frame: PushFrame) -> bool {
        let message = if frame.binary {
            Message::Binary(frame.payload.into_vec().into())
        } else {
            match String::from_utf8(frame.payload.into_vec()) {
                Ok(text) => Message::Text(text.into()),
                Err(_) => return false,
            }
        };
        let len = message.len();
        if !self.bytes.try_add(len, self.bytes_limit) {
            self.slow_consumer(format!(
                "slow consumer: more than {} bytes waiting to be sent",
                self.bytes_limit
            ));
            return false;
        }
        match self.frames.try_send(message) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.bytes.remove(len);
                self.slow_consumer(format!(
                    "slow consumer: more than {} frames waiting to be sent",
                    self.queue_limit
                ));
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.bytes.remove(len);
                false
            }
        }
    }
}

impl SocketSink {
    fn slow_consumer(&self, reason: String) {
        request_close(
            &self.close,
            CloseReason {
                code: CloseCode::Policy,
                reason,
            },
        );
    }
}
