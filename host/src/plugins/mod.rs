//! Finding plugins: built-ins registered with `inventory` and libraries
//! loaded from `[plugins] paths`, all reached through the same entry points
//! and ABI-stable trait objects.

mod construct;
mod library;
mod registry;
mod services;

pub use construct::{build_management_store, build_message_store, build_notifier, build_transport};
pub use registry::{Conflict, Origin, Plugin, Refusal, Registry};
