//! The host's `MessageStore` wrappers (the pools' router, the local change
//! feed, the 1.0 bridge) pass most calls through unchanged. Their
//! signatures are written once, in [`message_store_methods!`], and
//! [`forward_message_store!`] writes the pass-through methods a wrapper does
//! not write itself. A method appended to the contract is then added in
//! one place, and every wrapper forwards it instead of silently answering
//! `UNSUPPORTED` through the trait's default.

/// Expands `$callback! { $($pre)* since_1_0 { .. } since_1_1 { .. } }` with
/// every `MessageStore` method as `routed name(args) -> T;` (its first
/// parameter, left out here, is the `queue: QueueRef` it acts on) or
/// `unrouted name(args) -> T;` (no queue), grouped by the plugin-api
/// version that introduced it.
macro_rules! message_store_methods {
    ($callback:ident! { $($pre:tt)* }) => {
        $callback! { $($pre)*
            since_1_0 {
                routed queue_create(metadata: ::plugin_api::types::RVec<u8>, now_ms: u64) -> bool;
                routed queue_get_metadata() -> ::plugin_api::types::ROption<::plugin_api::types::RVec<u8>>;
                routed queue_set_metadata(metadata: ::plugin_api::types::RVec<u8>) -> ();
                routed queue_delete() -> ();
                unrouted queue_list(project: ::plugin_api::types::RString, query: ::plugin_api::storage::QueueListQuery) -> ::plugin_api::types::RVec<::plugin_api::storage::QueueEntry>;
                unrouted queue_count(project: ::plugin_api::types::RString) -> u64;
                routed queue_stats(now_ms: u64) -> ::plugin_api::storage::QueueStats;
                routed message_post(client_id: ::plugin_api::types::RString, messages: ::plugin_api::types::RVec<::plugin_api::storage::NewMessage>, now_ms: u64) -> ::plugin_api::types::RVec<::plugin_api::storage::PostedMessage>;
                routed message_list(query: ::plugin_api::storage::MessageListQuery, now_ms: u64) -> ::plugin_api::types::RVec<::plugin_api::storage::StoredMessage>;
                routed message_get_many(ids: ::plugin_api::types::RVec<::plugin_api::types::RString>, now_ms: u64) -> ::plugin_api::types::RVec<::plugin_api::storage::StoredMessage>;
                routed message_delete(id: ::plugin_api::types::RString, claim_id: ::plugin_api::types::ROption<::plugin_api::types::RString>, now_ms: u64) -> ();
                routed message_delete_many(ids: ::plugin_api::types::RVec<::plugin_api::types::RString>, now_ms: u64) -> ();
                routed message_pop(limit: u32, now_ms: u64) -> ::plugin_api::types::RVec<::plugin_api::storage::StoredMessage>;
                routed message_purge() -> ();
                routed claim_create(request: ::plugin_api::storage::ClaimRequest, now_ms: u64) -> ::plugin_api::storage::StoredClaim;
                routed claim_get(claim_id: ::plugin_api::types::RString, now_ms: u64) -> ::plugin_api::types::ROption<::plugin_api::storage::StoredClaim>;
                routed claim_update(claim_id: ::plugin_api::types::RString, ttl: u32, grace: u32, now_ms: u64) -> ();
                routed claim_delete(claim_id: ::plugin_api::types::RString, now_ms: u64) -> ();
                routed subscription_create(subscription: ::plugin_api::storage::NewSubscription, now_ms: u64) -> ::plugin_api::storage::SubscriptionCreated;
                routed subscription_list(query: ::plugin_api::storage::SubscriptionListQuery, now_ms: u64) -> ::plugin_api::types::RVec<::plugin_api::storage::SubscriptionRecord>;
                routed subscription_get(id: ::plugin_api::types::RString, now_ms: u64) -> ::plugin_api::types::ROption<::plugin_api::storage::SubscriptionRecord>;
                routed subscription_update(id: ::plugin_api::types::RString, patch: ::plugin_api::storage::SubscriptionPatch, now_ms: u64) -> ();
                routed subscription_confirm(id: ::plugin_api::types::RString, confirmed: bool, now_ms: u64) -> ();
                routed subscription_delete(id: ::plugin_api::types::RString) -> ();
                unrouted subscription_scan(marker: ::plugin_api::types::ROption<::plugin_api::types::RString>, limit: u32, now_ms: u64) -> ::plugin_api::storage::SubscriptionScanPage;
                routed subscription_advance(id: ::plugin_api::types::RString, delivered_seq: u64, now_ms: u64) -> ();
                routed queue_last_seq() -> u64;
                unrouted is_alive() -> bool;
            }
            since_1_1 {
                unrouted changes_watch(sink: ::plugin_api::storage::ChangeSinkBox) -> ();
                routed notification_log(after_seq: u64, limit: u32, now_ms: u64) -> ::plugin_api::types::RVec<::plugin_api::storage::StoredMessage>;
                unrouted lease_acquire(key: ::plugin_api::types::RString, holder: ::plugin_api::types::RString, ttl_ms: u64, now_ms: u64) -> bool;
                unrouted lease_release(key: ::plugin_api::types::RString, holder: ::plugin_api::types::RString) -> ();
                unrouted messages_expired() -> u64;
            }
        }
    };
}

/// Implements `MessageStore` for a wrapper: the methods written in the
/// block, and every other method forwarded to the store `$target`
/// evaluates to. `$target` may use `$queue`, the queue the call acts on (a
/// `&QueueRef` borrow ends before the call takes it), and `?`; a method
/// without a queue must then be written by hand.
///
/// ```ignore
/// forward_message_store! {
///     impl MessageStore for LocalFeed {
///         forward |self, queue| self.inner;
///         async fn queue_delete(&self, queue: QueueRef) -> PluginResult<()> { .. }
///     }
/// }
/// ```
macro_rules! forward_message_store {
    (
        impl MessageStore for $wrapper:ty {
            forward |$self:ident, $queue:ident| $target:expr;
            $(
                $(#[$meta:meta])*
                async fn $own:ident ($($params:tt)*) -> $ret:ty $body:block
            )*
        }
    ) => {
        $crate::plugins::forward::message_store_methods!(forward_message_store! {
            @impl ($) $wrapper, [$($own)*], ($self, $queue, $target),
            { $( $(#[$meta])* async fn $own ($($params)*) -> $ret $body )* }
        });
    };
    (
        @impl ($d:tt) $wrapper:ty, [$($own:ident)*], $route:tt, { $($written:tt)* }
        $(
            $_version:ident {
                $( $kind:ident $method:ident ($($arg:ident: $arg_ty:ty),*) -> $out:ty; )*
            }
        )*
    ) => {
        // Matches the names the wrapper wrote, so only the others are forwarded.
        macro_rules! forward_unless_written {
            $( ($own $d($d signature:tt)*) => {}; )*
            ($d($d signature:tt)*) => {
                forward_message_store!(@method $route $d($d signature)*);
            };
        }
        impl ::plugin_api::storage::MessageStore for $wrapper {
            $($written)*
            $($(
                forward_unless_written!($method $kind ($($arg: $arg_ty),*) -> $out);
            )*)*
        }
    };
    (@method ($self:ident, $queue:ident, $target:expr) $method:ident routed ($($arg:ident: $arg_ty:ty),*) -> $out:ty) => {
        async fn $method(
            &$self,
            $queue: ::plugin_api::storage::QueueRef
            $(, $arg: $arg_ty)*
        ) -> ::plugin_api::PluginResult<$out> {
            $target.$method($queue $(, $arg)*).await
        }
    };
    (@method ($self:ident, $queue:ident, $target:expr) $method:ident unrouted ($($arg:ident: $arg_ty:ty),*) -> $out:ty) => {
        async fn $method(&$self $(, $arg: $arg_ty)*) -> ::plugin_api::PluginResult<$out> {
            $target.$method($($arg),*).await
        }
    };
}

pub(crate) use {forward_message_store, message_store_methods};
