//! `storage-postgresql` as a dynamic library: the same entry points the host registers as
//! a built-in, exported as the root module of `libzaqar_storage_postgresql.so`.

plugin_api::export_plugin!(storage_postgresql::entry_points);
