//! What a plugin library exports: its entry points, and the root module the
//! host loads them from.

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings,
    sabi_types::VersionStrings,
    std_types::{RResult, RStr, RString, RVec},
    StableAbi,
};
use async_ffi::FfiFuture;
use serde::de::DeserializeOwned;

use crate::{
    error::{PluginError, PluginResult},
    management::ManagementStoreBox,
    notification::NotifierBox,
    storage::MessageStoreBox,
    transport::TransportBox,
};

/// The namespace of transports, picked by `[drivers] transports`.
pub const NAMESPACE_TRANSPORT: &str = "zaqar.transport";
/// The namespace of message stores, picked by `[drivers] message_store`.
pub const NAMESPACE_MESSAGE_STORE: &str = "zaqar.storage.message";
/// The namespace of management stores, picked by `[drivers] management_store`.
pub const NAMESPACE_MANAGEMENT_STORE: &str = "zaqar.storage.management";
/// The namespace of notifier sinks, picked by a subscriber URI's scheme.
pub const NAMESPACE_NOTIFICATION: &str = "zaqar.notification";

/// The version of this crate, which is the plugin ABI version.
pub const PLUGIN_API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Severity of a log line a plugin sends to the host.
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogLevel(pub u8);

impl LogLevel {
    /// Errors.
    pub const ERROR: Self = Self(1);
    /// Warnings.
    pub const WARN: Self = Self(2);
    /// Information.
    pub const INFO: Self = Self(3);
    /// Debugging detail.
    pub const DEBUG: Self = Self(4);
}

/// Services the host offers a plugin.
#[abi_stable::sabi_trait]
pub trait HostServices: Send + Sync {
    /// Writes a line to the host's structured log, attributed to the plugin.
    #[sabi(last_prefix_field)]
    fn log(&self, level: LogLevel, message: RStr<'_>);
}

/// A boxed [`HostServices`].
pub type HostServicesBox = HostServices_TO<'static, abi_stable::std_types::RBox<()>>;

/// Boxes host services for the boundary (the host does this; tests and
/// plugins that construct other plugins may too).
pub fn wrap_host_services<T: HostServices + 'static>(value: T) -> HostServicesBox {
    HostServices_TO::from_value(value, abi_stable::sabi_trait::TD_Opaque)
}

/// What a constructor receives.
#[repr(C)]
#[derive(StableAbi)]
pub struct PluginContext {
    /// The name the plugin was selected by.
    pub name: RString,
    /// The plugin's own configuration table (`[drivers.<role>.<name>]`) as
    /// JSON; `{}` when the operator wrote none.
    pub config: RVec<u8>,
    /// Host services (logging).
    pub services: HostServicesBox,
}

impl PluginContext {
    /// Decodes the plugin's configuration table. Unknown keys are reported
    /// if `T` uses `#[serde(deny_unknown_fields)]`, which it should.
    pub fn config<T: DeserializeOwned>(&self) -> PluginResult<T> {
        serde_json::from_slice(&self.config).map_err(|e| {
            PluginError::bad_config(format!("configuration of plugin `{}`: {e}", self.name))
        })
    }

    /// Logs through the host at the given level.
    pub fn log(&self, level: LogLevel, message: &str) {
        self.services.log(level, message.into());
    }
}

/// A constructor, tagged with the role (and so the namespace) it builds for.
///
/// Exhaustive in 1.x: a later namespace is added as a new field of the root
/// module, never as a variant here.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy)]
pub enum Constructor {
    /// `zaqar.transport`
    Transport(extern "C" fn(PluginContext) -> FfiFuture<RResult<TransportBox, PluginError>>),
    /// `zaqar.storage.message`
    MessageStore(extern "C" fn(PluginContext) -> FfiFuture<RResult<MessageStoreBox, PluginError>>),
    /// `zaqar.storage.management`
    ManagementStore(
        extern "C" fn(PluginContext) -> FfiFuture<RResult<ManagementStoreBox, PluginError>>,
    ),
    /// `zaqar.notification`
    Notifier(extern "C" fn(PluginContext) -> FfiFuture<RResult<NotifierBox, PluginError>>),
}

impl Constructor {
    /// The namespace this constructor's entry point belongs to.
    pub fn namespace(&self) -> &'static str {
        match self {
            Self::Transport(_) => NAMESPACE_TRANSPORT,
            Self::MessageStore(_) => NAMESPACE_MESSAGE_STORE,
            Self::ManagementStore(_) => NAMESPACE_MANAGEMENT_STORE,
            Self::Notifier(_) => NAMESPACE_NOTIFICATION,
        }
    }
}

/// One named constructor in one namespace: the `(namespace, name,
/// constructor)` of Zaqar's stevedore entry points.
#[repr(C)]
#[derive(StableAbi, Clone)]
pub struct EntryPoint {
    /// The name operators select it by (for notifiers: the URI scheme).
    pub name: RString,
    /// The constructor; its variant gives the namespace.
    pub constructor: Constructor,
}

impl EntryPoint {
    /// The entry point's namespace.
    pub fn namespace(&self) -> &'static str {
        self.constructor.namespace()
    }
}

/// The root module every plugin library exports (see [`crate::export_plugin!`]).
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
#[sabi(missing_field(panic))]
pub struct PluginModule {
    /// Lists the library's entry points.
    #[sabi(last_prefix_field)]
    pub entry_points: extern "C" fn() -> RVec<EntryPoint>,
}

impl RootModule for PluginModuleRef {
    declare_root_module_statics! {PluginModuleRef}
    const BASE_NAME: &'static str = "zaqar_plugin";
    const NAME: &'static str = "zaqar_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// Defines a constructor function for one entry point from an `async fn`
/// that builds the plugin's native value. Used by [`crate::entry_points!`];
/// the generated function is guarded against panics.
#[doc(hidden)]
#[macro_export]
macro_rules! __constructor {
    ($variant:ident, $wrap:path, $boxed:ty, $build:path) => {{
        extern "C" fn constructor(
            context: $crate::PluginContext,
        ) -> $crate::__private::FfiFuture<$crate::__private::RResult<$boxed, $crate::PluginError>>
        {
            $crate::runtime::guard(move || {
                let building = $build(context);
                async move { building.await.map($wrap) }
            })
        }
        $crate::Constructor::$variant(constructor)
    }};
}

/// Defines `pub extern "C" fn $fn_name() -> RVec<EntryPoint>` listing a
/// plugin crate's entry points. Each entry names a role, the name operators
/// select it by, and an `async fn(PluginContext) -> PluginResult<T>` that
/// builds the plugin, where `T` implements the role's native trait.
///
/// ```ignore
/// plugin_api::entry_points! {
///     pub fn entry_points;
///     notifier "file" => FileNotifier::open,
///     message_store "mystore" => MyStore::open,
/// }
/// ```
///
/// Roles: `transport`, `message_store`, `management_store`, `notifier`.
/// Then export the list from a `cdylib` with [`export_plugin!`], or register
/// a plugin linked into the host with [`register_builtin!`].
#[macro_export]
macro_rules! entry_points {
    ($vis:vis fn $fn_name:ident; $($role:ident $name:literal => $build:path),+ $(,)?) => {
        /// The entry points of this plugin crate.
        $vis extern "C" fn $fn_name() -> $crate::__private::RVec<$crate::EntryPoint> {
            let mut entries = $crate::__private::RVec::new();
            $( entries.push($crate::__entry_point!($role, $name, $build)); )+
            entries
        }
    };
}

/// Exports a plugin library's root module, listing the entry points that the
/// given function (see [`entry_points!`]) returns. Use it once, in the
/// `cdylib` crate of a plugin; the host's loader finds it under abi_stable's
/// well-known symbol and checks its ABI version and layout before use.
#[macro_export]
macro_rules! export_plugin {
    ($entry_points:path) => {
        /// The root module of this plugin library.
        #[no_mangle]
        pub static _1as_0lib_1header_0root_bmodule_bloader: $crate::__private::LibHeader = {
            extern "C" fn load_root_module() -> $crate::__private::RootModuleResult {
                $crate::__private::call_root_module_loader(|| {
                    $crate::__private::prefix_module($entry_points)
                })
            }
            // SAFETY: the constructor returns the module type named here, as
            // abi_stable's own `#[export_root_module]` arranges; the loader
            // checks the layout before use.
            unsafe {
                $crate::__private::LibHeader::from_constructor::<$crate::PluginModuleRef>(
                    load_root_module,
                    $crate::__private::CheckTypeLayout::Yes,
                )
            }
        };
    };
}

/// Registers a plugin crate linked into the host (a built-in) with the
/// host's plugin registry, given its entry-point function (see
/// [`entry_points!`]). Built-ins are constructed and called through the same
/// ABI-stable trait objects as dynamic libraries.
#[macro_export]
macro_rules! register_builtin {
    ($entry_points:path) => {
        $crate::__private::inventory::submit! {
            $crate::BuiltinPlugin {
                crate_name: env!("CARGO_PKG_NAME"),
                entry_points: $entry_points,
            }
        }
    };
}

/// A plugin crate linked into the host, registered by [`register_builtin!`].
pub struct BuiltinPlugin {
    /// The crate that registered it (shown by `zaqar-server plugins`).
    pub crate_name: &'static str,
    /// Its entry points.
    pub entry_points: extern "C" fn() -> RVec<EntryPoint>,
}

inventory::collect!(BuiltinPlugin);

/// Every built-in plugin registered in this process.
pub fn builtin_plugins() -> impl Iterator<Item = &'static BuiltinPlugin> {
    inventory::iter::<BuiltinPlugin>.into_iter()
}

/// One [`EntryPoint`] for [`export_plugin`] and for built-in registration.
#[doc(hidden)]
#[macro_export]
macro_rules! __entry_point {
    (transport, $name:expr, $build:path) => {
        $crate::EntryPoint {
            name: $crate::__private::RString::from($name),
            constructor: $crate::__constructor!(
                Transport,
                $crate::transport::wrap_transport,
                $crate::transport::TransportBox,
                $build
            ),
        }
    };
    (message_store, $name:expr, $build:path) => {
        $crate::EntryPoint {
            name: $crate::__private::RString::from($name),
            constructor: $crate::__constructor!(
                MessageStore,
                $crate::storage::wrap_message_store,
                $crate::storage::MessageStoreBox,
                $build
            ),
        }
    };
    (management_store, $name:expr, $build:path) => {
        $crate::EntryPoint {
            name: $crate::__private::RString::from($name),
            constructor: $crate::__constructor!(
                ManagementStore,
                $crate::management::wrap_management_store,
                $crate::management::ManagementStoreBox,
                $build
            ),
        }
    };
    (notifier, $name:expr, $build:path) => {
        $crate::EntryPoint {
            name: $crate::__private::RString::from($name),
            constructor: $crate::__constructor!(
                Notifier,
                $crate::notification::wrap_notifier,
                $crate::notification::NotifierBox,
                $build
            ),
        }
    };
}

/// Builds the prefix reference of a root module from its entry-point list.
#[doc(hidden)]
pub fn prefix_module(entry_points: extern "C" fn() -> RVec<EntryPoint>) -> PluginModuleRef {
    use abi_stable::prefix_type::PrefixTypeTrait;
    PluginModule { entry_points }.leak_into_prefix()
}

#[cfg(test)]
mod tests {
    #[test]
    fn exported_symbol_is_abi_stables_root_module_loader() {
        assert_eq!(
            abi_stable::library::ROOT_MODULE_LOADER_NAME,
            "_1as_0lib_1header_0root_bmodule_bloader"
        );
    }
}
