//! The store's log lines go to the host's structured log.
//!
//! The host hands every constructor its logging service; the first one this
//! crate receives is kept for the background tasks (the collector), which
//! outlive any single call. Before a host has given one (the store opened
//! directly, in tests), lines go to stderr.

use std::sync::OnceLock;

use plugin_api::{HostServicesBox, LogLevel};

static HOST_LOG: OnceLock<HostServicesBox> = OnceLock::new();

/// Keeps the host's logging service, if none is kept yet.
pub(crate) fn install(services: HostServicesBox) {
    let _ = HOST_LOG.set(services);
}

fn emit(level: LogLevel, message: &str) {
    match HOST_LOG.get() {
        Some(host) => host.log(level, message.into()),
        None => eprintln!("{message}"),
    }
}

pub(crate) fn info(message: &str) {
    emit(LogLevel::INFO, message);
}

pub(crate) fn warn(message: &str) {
    emit(LogLevel::WARN, message);
}
