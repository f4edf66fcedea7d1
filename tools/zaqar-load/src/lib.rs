//! `zaqar-load`: a load generator for Zaqar v2 servers over HTTP and
//! WebSocket, with HdrHistogram latencies and a JSON summary, plus a bare
//! hyper reference server to compare HTTP figures with.
//!
//! The binary is a thin wrapper over [`run_cli`]; tests drive
//! [`workload::run`] and [`reference::serve`] directly.

pub mod cli;
pub mod client;
mod progress;
pub mod reference;
pub mod reference_ws;
pub mod report;
pub mod stats;
pub mod sync_log;
pub mod workload;

use std::{future::Future, io::Write, net::SocketAddr};

use cli::{Cli, Command, ReferenceArgs};

/// Exit status of a run whose server went away or could not be reached.
pub const EXIT_SERVER_DOWN: i32 = 1;
/// Exit status of bad arguments.
pub const EXIT_USAGE: i32 = 2;
/// Exit status of a run stopped by Ctrl-C (after its summary).
pub const EXIT_INTERRUPTED: i32 = 130;

/// Runs the command line; answers the process exit status.
pub async fn run_cli(cli: Cli, interrupt: impl Future<Output = ()>) -> i32 {
    match cli.command {
        Some(Command::ReferenceServer(args)) => reference_server(args, interrupt).await,
        None => load(cli.load, interrupt).await,
    }
}

async fn reference_server(args: ReferenceArgs, interrupt: impl Future<Output = ()>) -> i32 {
    let addr: SocketAddr = match format!("{}:{}", args.bind, args.port).parse() {
        Ok(addr) => addr,
        Err(error) => {
            eprintln!(
                "zaqar-load: invalid address {}:{}: {error}",
                args.bind, args.port
            );
            return EXIT_USAGE;
        }
    };
    let log = match &args.durable_dir {
        Some(dir) => match sync_log::SyncLog::open(dir) {
            Ok(log) => Some(log),
            Err(error) => {
                eprintln!(
                    "zaqar-load: cannot open the sync log in {}: {error}",
                    dir.display()
                );
                return EXIT_USAGE;
            }
        },
        None => None,
    };
    let listener = match reference::bind(addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("zaqar-load: cannot listen on {addr}: {error}");
            return EXIT_SERVER_DOWN;
        }
    };
    match listener.local_addr() {
        Ok(local) => println!(
            "zaqar-load: {} {} reference server listening on {local}",
            if log.is_some() { "durable" } else { "bare" },
            if args.websocket { "WebSocket" } else { "HTTP" }
        ),
        Err(error) => eprintln!("zaqar-load: listening, address unknown: {error}"),
    }
    let _ = std::io::stdout().flush();
    match log {
        _ if args.websocket => reference_ws::serve(listener, interrupt, log).await,
        Some(log) => reference::serve_durable(listener, interrupt, log).await,
        None => reference::serve(listener, interrupt).await,
    }
    0
}

async fn load(args: cli::LoadArgs, interrupt: impl Future<Output = ()>) -> i32 {
    let json = args.json;
    let config = match args.into_config().await {
        Ok(config) => config,
        Err(message) => {
            eprintln!("zaqar-load: {message}");
            return EXIT_USAGE;
        }
    };
    let outcome = match workload::run(config, interrupt).await {
        Ok(outcome) => outcome,
        Err(error) => {
            eprintln!("zaqar-load: {error}");
            return EXIT_SERVER_DOWN;
        }
    };
    let text = outcome.summary.to_text();
    if json {
        eprint!("{text}");
        println!("{}", outcome.summary.to_json());
    } else {
        print!("{text}");
    }
    let _ = std::io::stdout().flush();
    if let Some(reason) = outcome.fatal {
        eprintln!(
            "zaqar-load: the server at {} went away during the run: {reason}",
            outcome.summary.target
        );
        return EXIT_SERVER_DOWN;
    }
    if outcome.interrupted {
        return EXIT_INTERRUPTED;
    }
    0
}
