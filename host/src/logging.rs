//! Structured logs through `tracing`, to stderr: text for people, JSON for
//! log pipelines. `RUST_LOG` overrides the configured level.

use std::io::IsTerminal;

use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber. Call once, first thing.
pub fn init(level: &str, format: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let result = if format == "json" {
        builder.json().try_init()
    } else {
        builder.with_target(false).try_init()
    };
    // Already installed (tests that call `init` twice): keep the first.
    let _ = result;
}
