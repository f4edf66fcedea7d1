//! # zaqar-server
//!
//! A Zaqar v2 compatible messaging server assembled at start-up from plugins.
//!
//! | module | what it does |
//! |---|---|
//! | [`config`] | defaults ← `zaqar.toml` ← `ZAQAR_` environment (figment) |
//! | [`plugins`] | finds built-in and dynamic plugins, refuses incompatible ones, constructs the selected ones |
//! | [`api`] | Zaqar's API: every rule, limit and error body, shared by all transports |
//! | [`events`] | what committed in the message store, from this host or any other sharing it: per-queue tails and change notices |
//! | [`notify`] | notification dispatch: durable per-subscription delivery through notifier sinks, with Zaqar's retry policy |
//! | [`pools`] | pooling: queues placed on several message stores, the catalog, the store that routes each call to its queue's pool |
//! | [`push`] | pushes to persistent connections (WebSocket subscriptions) |
//! | [`server`] | wires stores, API and transports together; graceful shutdown |
//! | [`logging`] | structured logs (`tracing`) |
//! | [`metrics`] | Prometheus metrics: counters on the request, push, notification and store paths |
//!
//! Built-in plugins are linked below so their `inventory` registrations are
//! part of the binary; they are reached through the same ABI-stable entry
//! points as plugins loaded from disk.

pub mod allocator;
pub mod api;
pub mod config;
pub mod console;
pub mod events;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod plugins;
pub mod pools;
pub mod push;
pub mod server;
pub mod streams;

// Linked for their `register_builtin!` side effect.
use auth_keystone as _;
use auth_static as _;
use notifier_mailto as _;
use notifier_webhook as _;
use storage_embedded as _;
use storage_postgresql as _;
use storage_redis as _;
use transport_websocket as _;
use transport_wsgi as _;
