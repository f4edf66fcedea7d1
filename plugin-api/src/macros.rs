//! Generates, for each plugin role, the three faces of one contract:
//!
//! * the **native trait** plugin authors implement (plain `async`-style
//!   methods returning `Result`);
//! * the **ABI trait** (`#[sabi_trait]`) whose vtable crosses the boundary,
//!   every method returning an FFI-safe future and prefixed `abi_` (so the
//!   inherent methods sabi_trait puts on the trait object do not shadow the
//!   native trait's); its last 1.0 method carries
//!   `#[sabi(last_prefix_field)]` so later versions can append methods;
//! * the **adapter** that implements the ABI trait for any native
//!   implementation, guarding every call with [`crate::runtime::guard`].
//!
//! Methods a later 1.x version appends go in the `appended` section. Each has
//! a default in both traits answering [`crate::ErrorCode::UNSUPPORTED`]: the
//! native default serves plugins written before the method existed, the ABI
//! default serves libraries built against an older plugin-api, whose vtable
//! ends before the method (abi_stable falls back to the trait's default).
//!
//! The boxed trait object implements the native trait too, so the host (and
//! the conformance suite) call a loaded plugin exactly like a local value.
//! Writing the contract once here keeps the three faces from drifting apart.

macro_rules! plugin_trait {
    (
        $(#[$native_meta:meta])*
        native $native:ident;
        abi $abi:ident, object $object:ident, boxed $boxed:ident, adapter $adapter:ident, wrap $wrap:ident;
        methods {
            $(
                $(#[$method_meta:meta])*
                fn $method:ident(&self $(, $arg:ident : $arg_ty:ty)* $(,)?) -> $ret:ty;
            )*
        }
        last {
            $(#[$last_meta:meta])*
            fn $last:ident(&self $(, $last_arg:ident : $last_arg_ty:ty)* $(,)?) -> $last_ret:ty;
        }
        $(appended {
            $(
                $(#[$app_meta:meta])*
                fn $app:ident(&self $(, $app_arg:ident : $app_arg_ty:ty)* $(,)?) -> $app_ret:ty;
            )*
        })?
    ) => { ::paste::paste! {
        $(#[$native_meta])*
        pub trait $native: Send + Sync + 'static {
            $(
                $(#[$method_meta])*
                fn $method(&self $(, $arg: $arg_ty)*)
                    -> impl ::std::future::Future<Output = $crate::PluginResult<$ret>> + Send;
            )*
            $(#[$last_meta])*
            fn $last(&self $(, $last_arg: $last_arg_ty)*)
                -> impl ::std::future::Future<Output = $crate::PluginResult<$last_ret>> + Send;
            $($(
                $(#[$app_meta])*
                #[doc = ""]
                #[doc = "Appended in a later 1.x version; the default answers `ErrorCode::UNSUPPORTED`."]
                fn $app(&self $(, $app_arg: $app_arg_ty)*)
                    -> impl ::std::future::Future<Output = $crate::PluginResult<$app_ret>> + Send {
                    let _ = ($($app_arg,)*);
                    async { Err($crate::PluginError::unsupported(stringify!($app))) }
                }
            )*)?
        }

        #[doc = concat!("The ABI-stable vtable of [`", stringify!($native), "`]: what crosses the plugin boundary.")]
        #[doc = ""]
        #[doc = concat!("Do not implement it by hand: implement [`", stringify!($native), "`] and call [`", stringify!($wrap), "`].")]
        #[::abi_stable::sabi_trait]
        pub trait $abi: Send + Sync {
            $(
                $(#[$method_meta])*
                fn [<abi_ $method>](&self $(, $arg: $arg_ty)*)
                    -> ::async_ffi::FfiFuture<::abi_stable::std_types::RResult<$ret, $crate::PluginError>>;
            )*
            $(#[$last_meta])*
            #[sabi(last_prefix_field)]
            fn [<abi_ $last>](&self $(, $last_arg: $last_arg_ty)*)
                -> ::async_ffi::FfiFuture<::abi_stable::std_types::RResult<$last_ret, $crate::PluginError>>;
            $($(
                $(#[$app_meta])*
                fn [<abi_ $app>](&self $(, $app_arg: $app_arg_ty)*)
                    -> ::async_ffi::FfiFuture<::abi_stable::std_types::RResult<$app_ret, $crate::PluginError>> {
                    let _ = ($($app_arg,)*);
                    $crate::runtime::unsupported(stringify!($app))
                }
            )*)?
        }

        #[doc = concat!("A boxed, ABI-stable [`", stringify!($native), "`] as it crosses the plugin boundary.")]
        pub type $boxed = $object<'static, ::abi_stable::std_types::RBox<()>>;

        #[doc = concat!("Implements [`", stringify!($abi), "`] for a native [`", stringify!($native), "`], guarding every call.")]
        pub struct $adapter<T>(::std::sync::Arc<T>);

        impl<T: $native> $abi for $adapter<T> {
            $(
                fn [<abi_ $method>](&self $(, $arg: $arg_ty)*)
                    -> ::async_ffi::FfiFuture<::abi_stable::std_types::RResult<$ret, $crate::PluginError>> {
                    let this = ::std::sync::Arc::clone(&self.0);
                    $crate::runtime::guard(move || async move { <T as $native>::$method(&this $(, $arg)*).await })
                }
            )*
            fn [<abi_ $last>](&self $(, $last_arg: $last_arg_ty)*)
                -> ::async_ffi::FfiFuture<::abi_stable::std_types::RResult<$last_ret, $crate::PluginError>> {
                let this = ::std::sync::Arc::clone(&self.0);
                $crate::runtime::guard(move || async move { <T as $native>::$last(&this $(, $last_arg)*).await })
            }
            $($(
                fn [<abi_ $app>](&self $(, $app_arg: $app_arg_ty)*)
                    -> ::async_ffi::FfiFuture<::abi_stable::std_types::RResult<$app_ret, $crate::PluginError>> {
                    let this = ::std::sync::Arc::clone(&self.0);
                    $crate::runtime::guard(move || async move { <T as $native>::$app(&this $(, $app_arg)*).await })
                }
            )*)?
        }

        impl $native for $boxed {
            $(
                fn $method(&self $(, $arg: $arg_ty)*)
                    -> impl ::std::future::Future<Output = $crate::PluginResult<$ret>> + Send {
                    let future = <Self as $abi>::[<abi_ $method>](self $(, $arg)*);
                    async move { future.await.into_result() }
                }
            )*
            fn $last(&self $(, $last_arg: $last_arg_ty)*)
                -> impl ::std::future::Future<Output = $crate::PluginResult<$last_ret>> + Send {
                let future = <Self as $abi>::[<abi_ $last>](self $(, $last_arg)*);
                async move { future.await.into_result() }
            }
            $($(
                fn $app(&self $(, $app_arg: $app_arg_ty)*)
                    -> impl ::std::future::Future<Output = $crate::PluginResult<$app_ret>> + Send {
                    let future = <Self as $abi>::[<abi_ $app>](self $(, $app_arg)*);
                    async move { future.await.into_result() }
                }
            )*)?
        }

        #[doc = concat!("Boxes a native [`", stringify!($native), "`] for the boundary.")]
        pub fn $wrap<T: $native>(value: T) -> $boxed {
            $object::from_value($adapter(::std::sync::Arc::new(value)), ::abi_stable::sabi_trait::TD_Opaque)
        }
    } };
}

pub(crate) use plugin_trait;
