//! The `wsgi` transport: Zaqar's v2 HTTP API served by hyper (HTTP/1.1 with
//! keep-alive). Named after Zaqar's driver so configurations carry over.
//!
//! It only translates: an HTTP request becomes an
//! [`ApiRequest`](plugin_api::transport::ApiRequest), the host's answer
//! becomes the HTTP response. Every Zaqar rule lives in the host. What lives
//! here is the connection: time limits on headers and bodies, a memory
//! budget for bodies in flight, and caps on open connections.

mod body;
mod config;
mod connection;
mod head_clock;
mod listener;
mod repoll;

pub use config::WsgiConfig;
pub use listener::WsgiTransport;

plugin_api::entry_points! {
    pub fn entry_points;
    transport "wsgi" => WsgiTransport::from_context,
}

plugin_api::register_builtin!(entry_points);
