//! Libraries built against plugin-api 1.0.
//!
//! abi_stable lets a library be built against a newer minor of an interface
//! than its user, never an older one: the layout check refuses a library
//! whose types have fewer fields or trait methods than the host's. Since
//! 1.1 appended methods to the roles, the host loads a library that reports
//! plugin-api 1.0.x through the 1.0 types as released (the `plugin-api-1.0`
//! crate in the repository, linked as `plugin_api_v1_0`), and bridges each
//! of its plugins to the current traits. Methods appended since 1.0 answer
//! `UNSUPPORTED` for them, as the ABI defaults do for a vtable that ends
//! early, and the host falls back as each method's documentation says.
//!
//! The data types that cross the boundary did not change in 1.1, so a value
//! moves between the two definitions as-is ([`relabel`]); every pair is
//! listed in [`same_layout!`] and a test checks each with abi_stable's own
//! layout checker.

use std::mem::ManuallyDrop;

use abi_stable::{
    library::lib_header_from_path,
    std_types::{ROption, RResult, RStr, RString, RVec},
};
use plugin_api::{
    management::{FlavorRecord, ManagementStore, NameListQuery, PoolRecord},
    notification::{Delivery, Notifier},
    storage::{
        ClaimRequest, MessageListQuery, MessageStore, NewMessage, NewSubscription, PostedMessage,
        QueueEntry, QueueListQuery, QueueRef, QueueStats, StoredClaim, StoredMessage,
        SubscriptionCreated, SubscriptionEntry, SubscriptionListQuery, SubscriptionPatch,
        SubscriptionRecord, SubscriptionScanPage,
    },
    transport::{ApiRequest, ApiResponse, HostApi, HostApiBox, PushFrame, PushSink, Transport},
    PluginError, PluginResult,
};
use plugin_api_v1_0 as v1_0;

use super::forward::message_store_methods;

/// Marks `Self` and `B` as the 1.0 and current definitions of one type.
///
/// # Safety
/// Only for pairs whose layouts are identical (checked by the
/// `one_zero_types_have_the_current_layouts` test).
unsafe trait SameLayout<B> {}

macro_rules! same_layout {
    ($($old:ty => $new:ty),* $(,)?) => {$(
        unsafe impl SameLayout<$new> for $old {}
        unsafe impl SameLayout<$old> for $new {}
    )*};
}

macro_rules! identical {
    ($($ty:ty),* $(,)?) => {$( unsafe impl SameLayout<$ty> for $ty {} )*};
}

identical!(u8, u32, u64, bool, (), RString);

/// Every data type that crosses the boundary in 1.0, old => current; one
/// list for the markers and for the test that checks them.
macro_rules! bridged_types {
    ($then:ident) => {
        $then! {
        v1_0::PluginError => PluginError,
        v1_0::storage::QueueRef => QueueRef,
        v1_0::storage::QueueEntry => QueueEntry,
        v1_0::storage::QueueListQuery => QueueListQuery,
        v1_0::storage::NewMessage => NewMessage,
        v1_0::storage::PostedMessage => PostedMessage,
        v1_0::storage::StoredMessage => StoredMessage,
        v1_0::storage::MessageListQuery => MessageListQuery,
        v1_0::storage::QueueStats => QueueStats,
        v1_0::storage::ClaimRequest => ClaimRequest,
        v1_0::storage::StoredClaim => StoredClaim,
        v1_0::storage::SubscriptionRecord => SubscriptionRecord,
        v1_0::storage::SubscriptionEntry => SubscriptionEntry,
        v1_0::storage::SubscriptionScanPage => SubscriptionScanPage,
        v1_0::storage::NewSubscription => NewSubscription,
        v1_0::storage::SubscriptionCreated => SubscriptionCreated,
        v1_0::storage::SubscriptionPatch => SubscriptionPatch,
        v1_0::storage::SubscriptionListQuery => SubscriptionListQuery,
        v1_0::management::PoolRecord => PoolRecord,
        v1_0::management::FlavorRecord => FlavorRecord,
        v1_0::management::NameListQuery => NameListQuery,
        v1_0::notification::Delivery => Delivery,
        v1_0::transport::ApiRequest => ApiRequest,
        v1_0::transport::ApiResponse => ApiResponse,
        v1_0::transport::PushFrame => PushFrame,
        }
    };
}

bridged_types!(same_layout);

unsafe impl<A: SameLayout<B>, B> SameLayout<RVec<B>> for RVec<A> {}
unsafe impl<A: SameLayout<B>, B> SameLayout<ROption<B>> for ROption<A> {}

/// Moves a value to the other definition of its type.
fn relabel<A: SameLayout<B>, B>(value: A) -> B {
    const { assert!(size_of::<A>() == size_of::<B>() && align_of::<A>() == align_of::<B>()) };
    let value = ManuallyDrop::new(value);
    // SAFETY: `SameLayout` is implemented only for pairs with one layout
    // (see the trait), and `value` is not dropped here, so ownership moves.
    unsafe { std::mem::transmute_copy::<A, B>(&*value) }
}

fn relabel_result<A: SameLayout<B>, B>(result: Result<A, v1_0::PluginError>) -> PluginResult<B> {
    result.map(relabel).map_err(relabel)
}

/// A 1.0 plugin behind a current trait.
pub struct Bridge<T>(T);

/// A loaded 1.0 library's entry points.
pub struct LoadedV1_0 {
    /// Its entry points, with their 1.0 constructors.
    pub entry_points: Vec<v1_0::EntryPoint>,
}

/// Whether a library's plugin-api version string is a 1.0.x.
pub fn is_v1_0(version: &str) -> bool {
    version.starts_with("1.0.")
}

/// Loads a library built against plugin-api 1.0 through the 1.0 types.
pub fn load(path: &std::path::Path) -> Result<LoadedV1_0, abi_stable::library::LibraryError> {
    let header = lib_header_from_path(path)?;
    let module = header.init_root_module::<v1_0::PluginModuleRef>()?;
    Ok(LoadedV1_0 {
        entry_points: (module.entry_points())().into_vec(),
    })
}

/// The 1.0 face of the host services a plugin gets.
struct ServicesV1_0(plugin_api::HostServicesBox);

impl v1_0::HostServices for ServicesV1_0 {
    fn log(&self, level: v1_0::LogLevel, message: RStr<'_>) {
        self.0.log(plugin_api::LogLevel(level.0), message);
    }
}

/// The 1.0 constructor context for a current one.
pub fn context(context: plugin_api::PluginContext) -> v1_0::PluginContext {
    v1_0::PluginContext {
        name: context.name,
        config: context.config,
        services: v1_0::HostServices_TO::from_value(
            ServicesV1_0(context.services),
            abi_stable::sabi_trait::TD_Opaque,
        ),
    }
}

/// Runs a 1.0 constructor and bridges what it builds.
pub async fn construct<T, B>(
    built: async_ffi::FfiFuture<RResult<T, v1_0::PluginError>>,
    wrap: impl FnOnce(Bridge<T>) -> B,
) -> PluginResult<B> {
    match built.await {
        RResult::ROk(plugin) => Ok(wrap(Bridge(plugin))),
        RResult::RErr(error) => Err(relabel(error)),
    }
}

impl Transport for Bridge<v1_0::transport::TransportBox> {
    async fn start(&self, host: HostApiBox) -> PluginResult<RString> {
        let host = v1_0::transport::wrap_host_api(Bridge(host));
        relabel_result(v1_0::transport::Transport::start(&self.0, host).await)
    }

    async fn stop(&self) -> PluginResult<()> {
        relabel_result(v1_0::transport::Transport::stop(&self.0).await)
    }
}

/// The host as a 1.0 transport calls it.
impl v1_0::transport::HostApi for Bridge<HostApiBox> {
    async fn handle(
        &self,
        request: v1_0::transport::ApiRequest,
    ) -> v1_0::PluginResult<v1_0::transport::ApiResponse> {
        let answer = HostApi::handle(&self.0, relabel(request)).await;
        answer.map(relabel).map_err(relabel)
    }

    async fn connection_opened(
        &self,
        connection: RString,
        sink: v1_0::transport::PushSinkBox,
    ) -> v1_0::PluginResult<()> {
        let sink = plugin_api::transport::wrap_push_sink(Bridge(sink));
        HostApi::connection_opened(&self.0, connection, sink)
            .await
            .map_err(relabel)
    }

    async fn connection_closed(&self, connection: RString) -> v1_0::PluginResult<()> {
        HostApi::connection_closed(&self.0, connection)
            .await
            .map_err(relabel)
    }
}

impl PushSink for Bridge<v1_0::transport::PushSinkBox> {
    fn push(&self, frame: PushFrame) -> bool {
        v1_0::transport::PushSink::push(&self.0, relabel(frame))
    }
}

/// Writes the bridge's `MessageStore` methods: each 1.0 method relabels its
/// arguments and answer; the methods appended since keep the trait's
/// `UNSUPPORTED` default, as a 1.0 vtable would answer.
macro_rules! bridge_message_store {
    (
        since_1_0 {
            $( $kind:ident $method:ident ($($arg:ident: $arg_ty:ty),*) -> $out:ty; )*
        }
        $($_later:ident { $($_appended:tt)* })*
    ) => {
        impl MessageStore for Bridge<v1_0::storage::MessageStoreBox> {
            $( bridge_message_store!(@method $method $kind ($($arg: $arg_ty),*) -> $out); )*
        }
    };
    (@method $method:ident routed ($($arg:ident: $arg_ty:ty),*) -> $out:ty) => {
        async fn $method(&self, queue: QueueRef $(, $arg: $arg_ty)*) -> PluginResult<$out> {
            let answer = v1_0::storage::MessageStore::$method(&self.0, relabel(queue) $(, relabel($arg))*);
            relabel_result(answer.await)
        }
    };
    (@method $method:ident unrouted ($($arg:ident: $arg_ty:ty),*) -> $out:ty) => {
        async fn $method(&self $(, $arg: $arg_ty)*) -> PluginResult<$out> {
            let answer = v1_0::storage::MessageStore::$method(&self.0 $(, relabel($arg))*);
            relabel_result(answer.await)
        }
    };
}

message_store_methods!(bridge_message_store! {});

impl ManagementStore for Bridge<v1_0::management::ManagementStoreBox> {
    async fn pool_put(&self, pool: PoolRecord) -> PluginResult<bool> {
        let answer = v1_0::management::ManagementStore::pool_put(&self.0, relabel(pool));
        relabel_result(answer.await)
    }
    async fn pool_get(&self, name: RString) -> PluginResult<ROption<PoolRecord>> {
        let answer = v1_0::management::ManagementStore::pool_get(&self.0, relabel(name));
        relabel_result(answer.await)
    }
    async fn pool_list(&self, query: NameListQuery) -> PluginResult<RVec<PoolRecord>> {
        let answer = v1_0::management::ManagementStore::pool_list(&self.0, relabel(query));
        relabel_result(answer.await)
    }
    async fn pool_delete(&self, name: RString) -> PluginResult<()> {
        let answer = v1_0::management::ManagementStore::pool_delete(&self.0, relabel(name));
        relabel_result(answer.await)
    }
    async fn flavor_put(&self, flavor: FlavorRecord) -> PluginResult<bool> {
        let answer = v1_0::management::ManagementStore::flavor_put(&self.0, relabel(flavor));
        relabel_result(answer.await)
    }
    async fn flavor_get(
        &self,
        project: RString,
        name: RString,
    ) -> PluginResult<ROption<FlavorRecord>> {
        let answer =
            v1_0::management::ManagementStore::flavor_get(&self.0, relabel(project), relabel(name));
        relabel_result(answer.await)
    }
    async fn flavor_list(
        &self,
        project: RString,
        query: NameListQuery,
    ) -> PluginResult<RVec<FlavorRecord>> {
        let answer = v1_0::management::ManagementStore::flavor_list(
            &self.0,
            relabel(project),
            relabel(query),
        );
        relabel_result(answer.await)
    }
    async fn flavor_delete(&self, project: RString, name: RString) -> PluginResult<()> {
        let answer = v1_0::management::ManagementStore::flavor_delete(
            &self.0,
            relabel(project),
            relabel(name),
        );
        relabel_result(answer.await)
    }
    async fn is_alive(&self) -> PluginResult<bool> {
        let answer = v1_0::management::ManagementStore::is_alive(&self.0);
        relabel_result(answer.await)
    }
}

impl Notifier for Bridge<v1_0::notification::NotifierBox> {
    async fn deliver(&self, delivery: Delivery) -> PluginResult<()> {
        let answer = v1_0::notification::Notifier::deliver(&self.0, relabel(delivery));
        relabel_result(answer.await)
    }
}

#[cfg(test)]
mod tests {
    use abi_stable::{abi_stability::abi_checking::check_layout_compatibility, StableAbi};

    use super::*;

    fn assert_same<A: StableAbi, B: StableAbi>() {
        // Both directions: neither definition may have a field the other lacks.
        check_layout_compatibility(A::LAYOUT, B::LAYOUT)
            .and_then(|()| check_layout_compatibility(B::LAYOUT, A::LAYOUT))
            .unwrap_or_else(|e| panic!("{} changed since 1.0: {e}", std::any::type_name::<B>()));
    }

    macro_rules! assert_all_same {
        ($($old:ty => $new:ty),* $(,)?) => {$( assert_same::<$old, $new>(); )*};
    }

    #[test]
    fn one_zero_types_have_the_current_layouts() {
        bridged_types!(assert_all_same);
    }
}
