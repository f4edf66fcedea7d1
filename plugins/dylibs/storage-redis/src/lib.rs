//! `storage-redis` as a dynamic library: the same entry points the host registers as
//! a built-in, exported as the root module of `libzaqar_storage_redis.so`.

plugin_api::export_plugin!(storage_redis::entry_points);
