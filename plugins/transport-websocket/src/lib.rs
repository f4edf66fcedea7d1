//! The `websocket` transport: Zaqar's persistent transport on
//! tokio-tungstenite. One request per frame, JSON in text frames and MsgPack
//! in binary frames, each answered in the encoding it came in; messages
//! pushed to sockets that subscribed.
//!
//! It only translates: a frame becomes an
//! [`ApiRequest`](plugin_api::transport::ApiRequest) with
//! [`Protocol::WEBSOCKET`](plugin_api::transport::Protocol::WEBSOCKET); the
//! host decodes it, applies Zaqar's rules and encodes the reply. What lives
//! here is the socket: limits, keepalive, a bounded send queue per socket,
//! and closing slow consumers.

mod batch;
mod config;
mod connection;
mod listener;
mod push;

pub use config::WebSocketConfig;
pub use listener::WebSocketTransport;

plugin_api::entry_points! {
    pub fn entry_points;
    transport "websocket" => WebSocketTransport::from_context,
}

plugin_api::register_builtin!(entry_points);
