//! Resumable event streams (an extension of Zaqar's API): history options
//! and filters for WebSocket subscriptions, server-sent events and
//! long-poll over HTTP, long-polling message listings and claims, CORS,
//! acks and resumable sessions.
//!
//! Every message of a queue has a sequence number; a stream's *cursor* is
//! the last one its client has seen. All kinds of stream read the store
//! from their cursor, so a stream is exactly-once and in order across the
//! seam between history and live messages. Fan-out to persistent streams
//! (sockets and server-sent events) goes through [`crate::push::PushHub`];
//! long-polls read the store themselves, woken by the queue's tail
//! ([`crate::events`]).

pub mod cors;
pub mod events;
pub mod filter;
pub mod options;
pub mod socket;
pub mod wait;

use serde::{Deserialize, Serialize};

/// `[streams]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamsConfig {
    /// Subscriptions one socket may hold; one more is refused (400) and
    /// the socket stays.
    pub max_subscriptions_per_socket: usize,
    /// Seconds an acked subscription's push may stay unacked before it is
    /// sent again.
    pub ack_timeout: u64,
    /// Unacked pushes one subscription may have; further pushes wait for
    /// acks.
    pub max_unacked: usize,
    /// Seconds a socket's session (its subscriptions, cursors and unacked
    /// pushes) is kept after the socket closes, for `session_resume`.
    pub session_ttl: u64,
    /// Seconds between keep-alive comments on a server-sent event stream.
    pub heartbeat: u64,
    /// Longest `wait` (seconds) of a long-poll.
    pub max_wait: u64,
}

impl Default for StreamsConfig {
    fn default() -> Self {
        Self {
            max_subscriptions_per_socket: 100,
            ack_timeout: 30,
            max_unacked: 1000,
            session_ttl: 120,
            heartbeat: 15,
            max_wait: 20,
        }
    }
}

impl StreamsConfig {
    /// Refuses values that would make streams misbehave.
    pub fn validate(&self) -> Result<(), String> {
        if self.ack_timeout == 0 || self.heartbeat == 0 || self.max_unacked == 0 {
            return Err(
                "`streams.ack_timeout`, `streams.heartbeat` and `streams.max_unacked` must be at least 1"
                    .into(),
            );
        }
        Ok(())
    }
}
