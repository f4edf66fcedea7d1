//! # plugin-api: the stable ABI of zaqar-server plugins
//!
//! The only crate a plugin depends on. A plugin library exports a root module
//! listing entry points `(namespace, name, constructor)`, as Zaqar's
//! stevedore entry points do; the host finds built-in plugins through the
//! same entry points and calls every plugin through the same ABI-stable
//! trait objects.
//!
//! | module | namespace | implement |
//! |---|---|---|
//! | [`transport`] | `zaqar.transport` | [`transport::Transport`] (and call [`transport::HostApi`]) |
//! | [`storage`] | `zaqar.storage.message` | [`storage::MessageStore`] |
//! | [`management`] | `zaqar.storage.management` | [`management::ManagementStore`] |
//! | [`notification`] | `zaqar.notification` | [`notification::Notifier`] |
//! | [`auth`] (since 1.1) | `zaqar.auth` | [`auth::Authenticator`] |
//!
//! A plugin author implements the role's native trait (ordinary Rust with
//! `async` methods) and lists a constructor in [`entry_points!`]; the crate
//! wraps the value in the role's ABI-stable trait object, catches panics at
//! every call ([`runtime::guard`]) and gives the plugin a tokio runtime its
//! futures can use even inside a dynamic library ([`runtime`]).
//!
//! Versioning: this crate is 1.x. Types that cross the boundary only grow by
//! appending (prefix types, trait methods after `last_prefix_field`); a
//! library built against another major version is refused by the host with
//! a readable reason, and one built against an older 1.x loads: methods
//! appended since answer [`ErrorCode::UNSUPPORTED`] for it, and the host
//! falls back as each method's documentation says. See
//! `docs/plugin-authors.md` in the repository.
//!
//! 1.1 appended: the storage change feed, notification log and leases
//! ([`storage::MessageStore::changes_watch`] and after), streamed responses
//! and the body's arrival state ([`transport::HostApi::serve`]), and the
//! [`auth`] role.

// abi_stable_derive 0.11's `#[sabi_trait]` expands to impls nested inside a
// const, which this lint flags; the expansion is sound and not ours to change.
#![allow(non_local_definitions)]
#![warn(missing_docs)]

mod macros;

pub mod auth;
pub mod error;
pub mod management;
pub mod module;
pub mod net;
pub mod notification;
pub mod runtime;
pub mod storage;
pub mod transport;

pub use error::{ErrorCode, PluginError, PluginResult};
pub use module::{
    builtin_plugins, wrap_host_services, AuthConstructor, AuthEntryPoint, BuiltinPlugin,
    Constructor, EntryPoint, HostServices, HostServicesBox, HostServices_TO, LogLevel,
    PluginContext, PluginModule, PluginModuleRef, NAMESPACE_AUTH, NAMESPACE_MANAGEMENT_STORE,
    NAMESPACE_MESSAGE_STORE, NAMESPACE_NOTIFICATION, NAMESPACE_TRANSPORT, PLUGIN_API_VERSION,
};

/// The FFI-safe types plugin code uses in signatures, re-exported so that a
/// plugin needs no other dependency.
pub mod types {
    pub use abi_stable::std_types::{RBox, ROption, RResult, RSlice, RStr, RString, RVec};
}

/// Items the exported macros expand to. Not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use abi_stable::library::{
        __call_root_module_loader as call_root_module_loader, CheckTypeLayout, LibHeader,
        RootModuleResult,
    };
    pub use abi_stable::std_types::{RResult, RString, RVec};
    pub use async_ffi::FfiFuture;
    pub use inventory;

    pub use crate::module::{no_auth_entry_points, no_entry_points, prefix_module};
}
