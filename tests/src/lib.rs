//! Test support for end-to-end tests: build and spawn the real
//! `zaqar-server`, talk to it over real HTTP and WebSocket, build plugin libraries from
//! the workspace and hand back their paths.
//!
//! Every server gets its own temporary data directory and binds port 0; the
//! port is read from the server's `listening on` line, so tests run in
//! parallel.

mod build;
mod http;
mod receiver;
mod server;
mod ws;

pub use build::{
    plugin_library, plugin_library_release, plugin_library_v1_0, server_binary,
    server_binary_release, workspace_root,
};
pub use http::{Client, RequestBuilder, Response};
pub use receiver::{Received, Receiver};
pub use server::{Exited, TestServer};
pub use ws::{Frame, WsClient};
