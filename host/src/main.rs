//! The `zaqar-server` command line.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use zaqar_host::{config, logging, plugins, server};

// glibc's malloc spent a fifth of the request path's instructions (and
// showed arena contention between the tokio workers and the store's writer
// thread); mimalloc's thread-local pages cut that. Plugins loaded from a
// dylib keep their own allocator: every value that crosses the boundary is
// an abi_stable type that frees itself through its own vtable.
#[global_allocator]
static ALLOCATOR: zaqar_host::allocator::Allocator = zaqar_host::allocator::Allocator;

/// A Zaqar v2 compatible messaging server.
#[derive(Parser)]
#[command(name = "zaqar-server", version)]
struct Cli {
    /// Configuration file (default: ./zaqar.toml when present, else built-in defaults).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// List every plugin entry point found, and every library refused.
    Plugins {
        /// Check instead of listing: with LIBRARY, load that one library and
        /// say whether this host accepts it; without, build every plugin the
        /// configuration selects (decoding its table, running its
        /// constructor) without starting anything. Exit status 1 when
        /// something would fail.
        #[arg(long, value_name = "LIBRARY", num_args = 0..=1)]
        check: Option<Option<PathBuf>>,
    },
}

/// mimalloc's `purge_delay` option.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // Memory freed after a burst (large request bodies, slow WebSocket
    // readers closed) goes back to the OS at once: with mimalloc's default
    // delay it is only returned when the thread that freed it allocates
    // again, so an idle server kept its peak resident size. The
    // `MIMALLOC_PURGE_DELAY` environment variable still overrides this.
    // SAFETY: sets a process-wide option; mimalloc reads options atomically.
    unsafe { libmimalloc_sys::mi_option_set_default(MI_OPTION_PURGE_DELAY, 0) };
    let cli = Cli::parse();
    let loaded = match config::load(cli.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("zaqar-server: invalid configuration:\n{error}");
            return ExitCode::from(2);
        }
    };
    let server_options = &loaded.config.server;
    logging::init(&server_options.log_level, &server_options.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Plugins { check: None } => list_plugins(&loaded),
        Command::Plugins {
            check: Some(Some(library)),
        } => exit_status(plugins::check_library(&library)),
        Command::Plugins { check: Some(None) } => check_configured(&loaded),
        Command::Serve => serve(loaded),
    }
}

fn serve(loaded: config::Loaded) -> ExitCode {
    match &loaded.file {
        Some(file) => tracing::info!(config = %file.display(), "configuration loaded"),
        None => tracing::info!("no configuration file: using built-in defaults"),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("zaqar-server: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = {
        let _in_runtime = runtime.enter();
        server::shutdown_signal()
    };
    match runtime.block_on(server::run(loaded, shutdown)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "start-up failed");
            eprintln!("zaqar-server: {error}");
            ExitCode::FAILURE
        }
    }
}

fn list_plugins(loaded: &config::Loaded) -> ExitCode {
    let registry = server::discover(loaded);
    println!(
        "{:<26} {:<16} {:<11} ORIGIN",
        "NAMESPACE", "NAME", "PLUGIN-API"
    );
    let mut plugins: Vec<_> = registry.plugins().iter().collect();
    plugins.sort_by(|a, b| (a.namespace, &a.name).cmp(&(b.namespace, &b.name)));
    for plugin in plugins {
        println!(
            "{:<26} {:<16} {:<11} {}",
            plugin.namespace, plugin.name, plugin.api_version, plugin.origin
        );
    }
    if !registry.conflicts().is_empty() {
        println!("\nConflicts:");
        for conflict in registry.conflicts() {
            println!("  {conflict}");
        }
    }
    if !registry.refusals().is_empty() {
        println!("\nRefused libraries:");
        for refusal in registry.refusals() {
            println!("  {}: {}", refusal.path.display(), refusal.reason);
        }
    }
    ExitCode::SUCCESS
}

fn check_configured(loaded: &config::Loaded) -> ExitCode {
    let registry = server::discover(loaded);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("zaqar-server: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    exit_status(runtime.block_on(plugins::check_configured(loaded, &registry)))
}

fn exit_status(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
