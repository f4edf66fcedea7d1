//! Finding plugins: built-ins registered with `inventory` and libraries
//! loaded from `[plugins] paths`, all reached through the same entry points
//! and ABI-stable trait objects.

mod check;
mod construct;
pub(crate) mod forward;
mod library;
mod registry;
mod services;
mod v1_0;

pub use check::{check_configured, check_library};
pub use construct::{
    build_authenticator, build_management_store, build_message_store, build_notifier,
    build_transport, describe_config_error,
};
pub use registry::{Conflict, Factory, Origin, Plugin, Refusal, Registry};
