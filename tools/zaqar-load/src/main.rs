use clap::Parser;
use zaqar_load::cli::Cli;

fn main() {
    let cli = Cli::parse();
    let threads = cli.load.threads;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(threads) = threads {
        builder.worker_threads(threads.max(1));
    }
    let runtime = match builder.build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("zaqar-load: cannot start the async runtime: {error}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(async {
        // First Ctrl-C: stop and print the summary so far; second: leave now.
        let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            let _ = first_tx.send(());
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("zaqar-load: interrupted again, exiting");
                std::process::exit(zaqar_load::EXIT_INTERRUPTED);
            }
        });
        let interrupt = async move {
            if first_rx.await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        zaqar_load::run_cli(cli, interrupt).await
    });
    // Do not wait for connection tasks still parked on the runtime.
    runtime.shutdown_background();
    std::process::exit(code);
}
