//! `storage-embedded` as a dynamic library: the same entry points the host registers as
//! a built-in, exported as the root module of `libzaqar_storage_embedded.so`.

plugin_api::export_plugin!(storage_embedded::entry_points);
