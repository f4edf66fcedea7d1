//! The push sink the host writes to: a bounded queue per socket. A full
//! queue means the client reads slower than messages arrive; the socket is
//! closed (code 1008) instead of buffering without bound.

use plugin_api::transport::{PushFrame, PushSink};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::{protocol::frame::coding::CloseCode, Message};

/// Why the server closes a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason {
    /// The WebSocket close code.
    pub code: CloseCode,
    /// The reason text sent with it.
    pub reason: String,
}

/// The host's handle on one socket's send queue.
pub struct SocketSink {
    pub frames: mpsc::Sender<Message>,
    pub close: watch::Sender<Option<CloseReason>>,
    pub queue_limit: usize,
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
        match self.frames.try_send(message) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.close.send_if_modified(|reason| {
                    if reason.is_some() {
                        return false;
                    }
                    *reason = Some(CloseReason {
                        code: CloseCode::Policy,
                        reason: format!(
                            "slow consumer: more than {} frames waiting to be sent",
                            self.queue_limit
                        ),
                    });
                    true
                });
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}
