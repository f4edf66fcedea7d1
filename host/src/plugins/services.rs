//! The services the host offers plugins: a log that lands in the host's
//! structured log, attributed to the plugin.

use plugin_api::{types::RStr, wrap_host_services, HostServices, HostServicesBox, LogLevel};

/// Logs on behalf of one plugin.
pub struct PluginLog {
    plugin: String,
}

impl HostServices for PluginLog {
    fn log(&self, level: LogLevel, message: RStr<'_>) {
        let message = message.as_str();
        let plugin = self.plugin.as_str();
        match level {
            LogLevel::ERROR => tracing::error!(plugin, "{message}"),
            LogLevel::WARN => tracing::warn!(plugin, "{message}"),
            LogLevel::INFO => tracing::info!(plugin, "{message}"),
            _ => tracing::debug!(plugin, "{message}"),
        }
    }
}

/// Host services for the plugin selected as `plugin`.
pub fn for_plugin(plugin: &str) -> HostServicesBox {
    wrap_host_services(PluginLog {
        plugin: plugin.to_string(),
    })
}
