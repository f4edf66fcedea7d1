//! # zaqar-test-support: what tests of plugins share
//!
//! | item | for |
//! |---|---|
//! | [`Receiver`] | an async http/https receiver answering as the test says ([`Reply`]), recording every [`Received`] request |
//! | [`BlockingReceiver`] | the same for synchronous tests, with scripted statuses and delays |
//! | [`delivery`] | a [`plugin_api::notification::Delivery`] as the host builds it, field by field |
//! | [`fixtures`] | test TLS certificates (a CA and a server certificate for `localhost`) |
//! | [`keystone::Keystone`] | a real OpenStack Keystone (`scripts/keystone-env.sh`) with its test accounts |
//!
//! It depends on `plugin-api` only, never on the host, so a plugin crate the
//! host links can use it in its own tests without a dependency cycle. The
//! server spawner of the end-to-end tests (`zaqar_tests::TestServer`) runs
//! the `zaqar-server` binary as a process and lives in `tests/`.

mod blocking;
mod delivery;
pub mod keystone;
pub mod receiver;

pub use blocking::BlockingReceiver;
pub use delivery::{delivery, DeliveryBuilder};
pub use receiver::{fixtures, Received, Receiver, Reply};
