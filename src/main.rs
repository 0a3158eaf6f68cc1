//! Thin entry point: parse the command line, load configuration, run.

use std::process::ExitCode;

use billing_core::cli::{Cli, Command};
use billing_core::config::Config;
use clap::Parser;

/// The service allocates many small, short-lived objects per request (headers, routing, JSON);
/// mimalloc serves them with far less locking and bookkeeping than the system allocator
/// (measured in BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("billing-core: {e}");
            return ExitCode::from(2);
        }
    };
    billing_core::telemetry::init(
        config.log_format,
        config.log_filter.as_deref(),
        config.no_color.as_deref(),
    );
    let result = match cli.command.unwrap_or(Command::Serve { no_migrate: false }) {
        Command::Serve { no_migrate } => billing_core::server::serve(config, !no_migrate)
            .await
            .map(|()| 0),
        other => billing_core::commands::run(other, config).await,
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("billing-core: {e:#}");
            ExitCode::FAILURE
        }
    }
}
