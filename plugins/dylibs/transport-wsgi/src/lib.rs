//! `transport-wsgi` as a dynamic library: the same entry points the host registers as
//! a built-in, exported as the root module of `libzaqar_transport_wsgi.so`.

plugin_api::export_plugin!(transport_wsgi::entry_points);
