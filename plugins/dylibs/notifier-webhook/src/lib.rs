//! `notifier-webhook` as a dynamic library: the same entry points the host registers as
//! a built-in, exported as the root module of `libzaqar_notifier_webhook.so`.

plugin_api::export_plugin!(notifier_webhook::entry_points);
