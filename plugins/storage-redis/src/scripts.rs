//! The Lua scripts, each one atomic unit on the Redis side, with the shared
//! helpers of `lua/lib.lua` in front. Loaded once per connection and run by
//! SHA (the `redis` crate falls back to EVAL after a NOSCRIPT).

use std::sync::LazyLock;

use redis::Script;

macro_rules! scripts {
    ($($name:ident => $file:literal,)+) => {$(
        pub(crate) static $name: LazyLock<Script> = LazyLock::new(|| {
            Script::new(concat!(include_str!("lua/lib.lua"), "\n", include_str!(concat!("lua/", $file))))
        });
    )+};
}

scripts! {
    QUEUE_CREATE => "queue_create.lua",
    QUEUE_GET_METADATA => "queue_get_metadata.lua",
    QUEUE_SET_METADATA => "queue_set_metadata.lua",
    QUEUE_LIST => "queue_list.lua",
    QUEUE_PURGE => "queue_purge.lua",
    QUEUE_STATS => "queue_stats.lua",
    MESSAGE_POST => "message_post.lua",
    MESSAGE_LIST => "message_list.lua",
    MESSAGE_GET_MANY => "message_get_many.lua",
    MESSAGE_DELETE => "message_delete.lua",
    MESSAGE_DELETE_MANY => "message_delete_many.lua",
    MESSAGE_POP => "message_pop.lua",
    CLAIM_CREATE => "claim_create.lua",
    CLAIM_GET => "claim_get.lua",
    CLAIM_UPDATE => "claim_update.lua",
    CLAIM_DELETE => "claim_delete.lua",
    SUB_CREATE => "sub_create.lua",
    SUB_LIST => "sub_list.lua",
    SUB_GET => "sub_get.lua",
    SUB_UPDATE => "sub_update.lua",
    SUB_DELETE => "sub_delete.lua",
    SUB_SCAN => "sub_scan.lua",
    NOTIFICATION_LOG => "notification_log.lua",
    LEASE_ACQUIRE => "lease_acquire.lua",
    LEASE_RELEASE => "lease_release.lua",
}
