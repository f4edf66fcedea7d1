//! Test support for end-to-end tests: build and spawn the real
//! `zaqar-server`, talk to it over real HTTP and WebSocket, build plugin libraries from
//! the workspace and hand back their paths.
//!
//! Every server gets its own temporary data directory and binds port 0; the
//! port is read from the server's `listening on` line, so tests run in
//! parallel.

mod build;
pub mod dylib_plugins;
mod http;
pub mod postgres;
pub mod process_stats;
mod redis_prefix;
mod server;
mod stores;
mod ws;

pub use build::{
    cargo_out_of_tree, example_library, plugin_libraries, plugin_library, plugin_library_release,
    plugin_library_v1_0, server_binary, server_binary_release, workspace_root,
};
pub use http::{Client, RequestBuilder, Response};
pub use redis_prefix::RedisPrefix;
pub use server::{Exited, TestServer};
pub use stores::selected as selected_store;
pub use ws::{Frame, WsClient};
/// The webhook receiver of the end-to-end tests (from `zaqar-test-support`).
pub use zaqar_test_support::{BlockingReceiver as Receiver, Received};

/// What a finished child process printed, stdout then stderr, for a test's
/// assertions and failure messages.
pub fn output_text(output: &std::process::Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
