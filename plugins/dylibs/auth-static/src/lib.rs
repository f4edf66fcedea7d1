//! `auth-static` as a dynamic library: the same entry points the host registers as
//! a built-in, exported as the root module of `libzaqar_auth_static.so`.

plugin_api::export_plugin!(auth = auth_static::auth_entry_points);
