//! `transport-websocket` as a dynamic library: the same entry points the host registers as
//! a built-in, exported as the root module of `libzaqar_transport_websocket.so`.

plugin_api::export_plugin!(transport_websocket::entry_points);
